"""Passwords per OWASP ASVS: at least 12 characters, long ones allowed, no
composition rules, common passwords refused, stored with Argon2."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from portal.accounts.roles import CLINIC_STAFF
from portal.accounts.services import user_create_in_role

pytestmark = pytest.mark.django_db


def _errors(password: str, user=None) -> list[str]:
    try:
        validate_password(password, user)
    except ValidationError as error:
        return error.messages
    return []


def test_eleven_characters_are_too_short():
    assert any("at least 12 characters" in message for message in _errors("kx8-vq2-mzt"))


def test_twelve_lowercase_letters_are_enough_no_composition_rules():
    assert _errors("kettlebluefox") == []


def test_a_100_character_passphrase_is_accepted_and_signs_in(client):
    passphrase = "the quick brown fox jumps over the lazy dog while the clinic kettle boils " + "x" * 26
    assert len(passphrase) == 100
    assert _errors(passphrase) == []
    user, _ = user_create_in_role(username="longpass", role=CLINIC_STAFF, password=passphrase)
    assert user.check_password(passphrase)
    response = client.post(reverse("login"), {"username": "longpass", "password": passphrase})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_common_passwords_are_refused():
    assert any("too common" in message for message in _errors("password1234"))
    assert any("too common" in message for message in _errors("qwertyuiop123"))


def test_new_passwords_are_hashed_with_argon2():
    user, _ = user_create_in_role(username="hashcheck", role=CLINIC_STAFF, password="kettlebluefox-42")
    stored = get_user_model().objects.get(pk=user.pk).password
    assert stored.startswith("argon2")
