"""Request-level safeguards for signed-in people.

- SessionTimeoutMiddleware: automatic logoff (HIPAA 164.312(a)(2)(iii)) after
  SESSION_IDLE_TIMEOUT seconds without a request (sliding), and in any case
  SESSION_ABSOLUTE_TIMEOUT seconds after sign-in.
- TwoFactorRequiredMiddleware: a person who must use a second factor sees
  nothing but the two-factor pages until they have passed it this session.
- NoStoreForAuthenticatedMiddleware: no page served to a signed-in person is
  kept by the browser or a proxy cache (PHI on shared clinic workstations).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.cache import patch_cache_control

from portal.accounts.selectors import user_requires_two_factor, user_totp_device

LOGIN_AT_KEY = "portal_login_at"
LAST_SEEN_KEY = "portal_last_seen"


def now() -> float:
    """The clock of the session timeouts, in seconds; tests monkeypatch it."""
    return time.time()


def session_mark_login(sender, request, user, **kwargs) -> None:
    """`user_logged_in` receiver: start both session clocks at sign-in."""
    session = getattr(request, "session", None)
    if session is None:
        return
    started = now()
    session[LOGIN_AT_KEY] = started
    session[LAST_SEEN_KEY] = started


def _duration_text(seconds: int) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        value, unit = seconds // 3600, "hour"
    elif seconds >= 60:
        value, unit = round(seconds / 60), "minute"
    else:
        value, unit = seconds, "second"
    return f"{value} {unit}{'' if value == 1 else 's'}"


class SessionTimeoutMiddleware:
    """Sign out an idle or too-old session, then send the person to the login page
    with a message saying why. Place after AuthenticationMiddleware and
    MessageMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            reason = self._expired_because(request.session)
            if reason:
                logout(request)
                messages.info(request, reason)
                login_url = resolve_url(settings.LOGIN_URL)
                if request.path != login_url:
                    return redirect_to_login(request.get_full_path(), login_url)
        return self.get_response(request)

    @staticmethod
    def _expired_because(session) -> str | None:
        current = now()
        login_at = session.get(LOGIN_AT_KEY)
        last_seen = session.get(LAST_SEEN_KEY)
        if login_at is None or last_seen is None:
            # A session from before these clocks existed: start them now.
            session[LOGIN_AT_KEY] = session[LAST_SEEN_KEY] = current
            return None
        idle = settings.SESSION_IDLE_TIMEOUT
        if current - last_seen > idle:
            return f"You were signed out after {_duration_text(idle)} of inactivity. Please sign in again."
        cap = settings.SESSION_ABSOLUTE_TIMEOUT
        if current - login_at > cap:
            return f"You were signed out because a session lasts at most {_duration_text(cap)}. Please sign in again."
        session[LAST_SEEN_KEY] = current
        return None


# Pages a person who still owes a second factor may open: signing out and the
# two-factor steps themselves. Public pages (login, healthz) are marked
# `login_not_required` and pass too.
TWO_FACTOR_EXEMPT_VIEWS = frozenset({"logout", "admin:logout", "two_factor_verify", "two_factor_setup"})


class TwoFactorRequiredMiddleware:
    """Redirect a signed-in person who must use 2FA and has not passed it in this
    session to the verify step (or to enrolment when they have no device yet).
    Place after django_otp's OTPMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if getattr(view_func, "login_required", True) is False:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in TWO_FACTOR_EXEMPT_VIEWS:
            return None
        if not user_requires_two_factor(user=user):
            return None
        step = "two_factor_verify" if user_totp_device(user=user) else "two_factor_setup"
        return redirect_to_login(request.get_full_path(), reverse(step))


class NoStoreForAuthenticatedMiddleware:
    """`Cache-Control: no-store, private` on every response to a signed-in person.

    The portal's pages for signed-in people are the ones that show PHI, so none of
    them may be kept in the browser's history cache or a shared proxy.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        signed_in_before = request.user.is_authenticated
        response = self.get_response(request)
        if signed_in_before or request.user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
        return response
