"""Login lockout (django-axes): per username and address, with a cool-off, so
guessing stops without letting an attacker lock everyone out."""

from datetime import timedelta

import pytest
from axes.exceptions import AxesBackendRequestParameterRequired
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse

from portal.accounts.lockout import client_ip_address

pytestmark = pytest.mark.django_db

LOCKED_TEXT = "Too many failed sign-in attempts. Try again in 15 minutes or ask an admin to unlock you."


def _sign_in(client, password, *, username="nurse", ip="192.0.2.10"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _fail(client, times, *, username="nurse", ip="192.0.2.10"):
    for _ in range(times):
        response = _sign_in(client, "not-the-password", username=username, ip=ip)
        assert response.status_code in (200, 429)
    return response


def test_lockout_settings():
    assert settings.AXES_ENABLED is True
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_MINUTES == 15
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_four_failures_then_the_right_password_signs_in(client, staff_user, password):
    _fail(client, 4)
    response = _sign_in(client, password)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_fifth_failure_locks_out_and_the_right_password_is_then_refused(client, staff_user, password):
    response = _fail(client, 5)
    assert response.status_code == 429
    assert LOCKED_TEXT in response.content.decode()

    response = _sign_in(client, password)
    assert response.status_code == 429
    assert LOCKED_TEXT in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert b"bootstrap.min.css" in response.content  # the portal's page, not a bare text


def test_lockout_is_per_username_and_address_so_others_are_not_locked_out(client, staff_user, admin_user, password):
    _fail(client, 5, username="nurse", ip="198.51.100.66")  # the attacker's address
    # The same person from the clinic's address still signs in...
    assert _sign_in(client, password, username="nurse", ip="192.0.2.10").status_code == 302
    client.post(reverse("logout"))
    # ...and another person from the attacker's address too.
    assert _sign_in(client, password, username="boss", ip="198.51.100.66").status_code == 302


def test_forged_forwarded_for_headers_do_not_dodge_the_lockout(client, staff_user, password):
    # Without trusted proxies the socket address counts, whatever the client claims.
    for n in range(5):
        client.post(
            reverse("login"),
            {"username": "nurse", "password": "wrong"},
            REMOTE_ADDR="198.51.100.66",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
    assert _sign_in(client, password, ip="198.51.100.66").status_code == 429


def test_client_address_behind_trusted_proxies(settings):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip_address(request) == "10.0.0.5"
    settings.TRUSTED_PROXY_COUNT = 1  # our proxy appended the real client last
    assert client_ip_address(request) == "203.0.113.7"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer hops than proxies: fall back to the socket
    assert client_ip_address(request) == "10.0.0.5"


def test_lockout_ends_after_the_cool_off(client, staff_user, password):
    _fail(client, 5)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert _sign_in(client, password).status_code == 302


def test_lockout_lasts_through_most_of_the_cool_off(client, staff_user, password):
    _fail(client, 5)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=14))
    assert _sign_in(client, password).status_code == 429


def test_cool_off_minutes_come_from_settings(client, staff_user, password, settings):
    settings.AXES_COOLOFF_MINUTES = 30
    response = _fail(client, 5)
    assert "Try again in 30 minutes or ask an admin to unlock you." in response.content.decode()


def test_a_success_resets_the_count(client, staff_user, password):
    _fail(client, 4)
    assert _sign_in(client, password).status_code == 302
    client.post(reverse("logout"))
    _fail(client, 4)
    assert _sign_in(client, password).status_code == 302


def test_the_reset_command_unlocks(client, staff_user, password):
    _fail(client, 5)
    call_command("axes_reset_username", "nurse")
    assert _sign_in(client, password).status_code == 302


def test_admins_see_and_can_delete_access_attempts_in_admin(staff_user, admin_client_):
    _fail(Client(), 5)
    attempt = AccessAttempt.objects.get(username="nurse")
    listing = admin_client_.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert b"nurse" in listing.content
    response = admin_client_.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()


def test_authenticate_without_a_request_is_refused(client, staff_user, password):
    # django-axes needs the request to know the address; tests sign in with
    # `force_login` (or pass `request=`) instead of a bare `client.login`.
    with pytest.raises(AxesBackendRequestParameterRequired):
        client.login(username="nurse", password=password)
