"""Automatic logoff (HIPAA 164.312(a)(2)(iii)) and the session's lifecycle:
a new key at sign-in, nothing left after sign-out or deactivation."""

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.urls import reverse

from portal.accounts import middleware
from tests.accounts.helpers import PRODUCTION_ENV, FakeClock, manage

pytestmark = pytest.mark.django_db

DASHBOARD = "/"


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(middleware, "now", fake)
    return fake


@pytest.fixture
def signed_in(client, staff_user, clock):
    """A staff member signed in at the fake clock's start."""
    client.force_login(staff_user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_defaults_are_15_minutes_idle_and_12_hours_in_all():
    assert settings.SESSION_IDLE_TIMEOUT == 15 * 60
    assert settings.SESSION_ABSOLUTE_TIMEOUT == 12 * 3600
    # The stored session does not outlive the cap, and the cookie dies with the browser.
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_ABSOLUTE_TIMEOUT
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_activity_within_the_idle_timeout_keeps_the_session_alive(signed_in, clock):
    # Sliding: each request restarts the idle clock, so 3 x 14 minutes is fine.
    for _ in range(3):
        clock.advance(14 * 60)
        assert signed_in.get(DASHBOARD).status_code == 200


def test_idle_session_is_signed_out_with_a_message(signed_in, clock):
    assert signed_in.get(DASHBOARD).status_code == 200
    clock.advance(15 * 60 + 1)

    response = signed_in.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/"

    login_page = signed_in.get(response["Location"])
    assert "You were signed out after 15 minutes of inactivity. Please sign in again." in _messages(login_page)
    assert "_auth_user_id" not in signed_in.session
    assert signed_in.get(DASHBOARD).status_code == 302


def test_idle_timeout_follows_the_setting(signed_in, clock, settings):
    settings.SESSION_IDLE_TIMEOUT = 5 * 60
    clock.advance(5 * 60 + 1)
    response = signed_in.get(DASHBOARD, follow=True)
    assert "You were signed out after 5 minutes of inactivity. Please sign in again." in _messages(response)


def test_session_ends_at_the_absolute_cap_even_when_active(signed_in, clock):
    # Active every 10 minutes: never idle, yet signed out once 12 hours have passed.
    for _ in range(72):
        clock.advance(10 * 60)
        assert signed_in.get(DASHBOARD).status_code == 200
    clock.advance(1)
    response = signed_in.get(DASHBOARD, follow=True)
    assert response.redirect_chain[0][0].startswith(reverse("login"))
    assert "You were signed out because a session lasts at most 12 hours. Please sign in again." in _messages(response)


def test_expired_session_on_the_login_page_just_shows_the_form(signed_in, clock):
    clock.advance(16 * 60)
    response = signed_in.get(reverse("login"))
    assert response.status_code == 200
    assert "You were signed out after 15 minutes of inactivity. Please sign in again." in _messages(response)


def test_sign_in_issues_a_new_session_key(client, staff_user, password):
    session = client.session
    session["seen_before_login"] = True
    session.save()
    key_before = session.session_key

    response = client.post(reverse("login"), {"username": "nurse", "password": password})
    assert response.status_code == 302
    assert client.session.session_key != key_before
    assert not SessionStore().exists(key_before)  # the old key is worth nothing


def test_sign_out_deletes_the_session(signed_in):
    key = signed_in.session.session_key
    signed_in.post(reverse("logout"))
    assert not SessionStore().exists(key)
    # Replaying the old cookie does not bring the session back.
    signed_in.cookies[settings.SESSION_COOKIE_NAME] = key
    assert signed_in.get(DASHBOARD).status_code == 302


def test_deactivating_a_user_ends_their_sessions(signed_in, staff_user):
    assert signed_in.get(DASHBOARD).status_code == 200
    staff_user.is_active = False
    staff_user.save()  # as unticking "active" in admin does
    response = signed_in.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_production_refuses_an_idle_timeout_longer_than_the_cap():
    result = manage(
        "check",
        env={**PRODUCTION_ENV, "SESSION_IDLE_TIMEOUT": "7200", "SESSION_ABSOLUTE_TIMEOUT": "3600"},
    )
    assert result.returncode != 0
    assert "SESSION_IDLE_TIMEOUT" in result.stderr
