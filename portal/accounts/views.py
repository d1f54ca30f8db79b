"""Sign-in and two-factor pages.

After the password, a person who must use a second factor goes to
/accounts/2fa/verify/ (a code from their app) or, with no app enrolled yet, to
/accounts/2fa/setup/ (enrolment). TwoFactorRequiredMiddleware keeps every other
page closed to them until then.
"""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

import django_otp
import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from portal.accounts.forms import TotpTokenForm
from portal.accounts.selectors import user_requires_two_factor, user_totp_device
from portal.accounts.services import (
    TwoFactorError,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_token_check,
)


def _two_factor_step_url(*, user, next_url: str) -> str:
    step = "two_factor_verify" if user_totp_device(user=user) else "two_factor_setup"
    return f"{reverse(step)}?{urlencode({'next': next_url})}"


def _safe_next(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _sign_in_second_factor(request, device) -> None:
    # A new session key once the second factor is passed, as at password login,
    # so a key seen before this step is worth nothing afterwards.
    request.session.cycle_key()
    django_otp.login(request, device)


class PortalLoginView(LoginView):
    """Django's login, sending people who owe a second factor to it directly."""

    redirect_authenticated_user = True

    def get_success_url(self):
        url = super().get_success_url()
        user = self.request.user
        if user_requires_two_factor(user=user) and not getattr(user, "is_verified", lambda: False)():
            return _two_factor_step_url(user=user, next_url=url)
        return url


@require_http_methods(["GET", "POST"])
def two_factor_verify(request):
    """Enter the code from the enrolled authenticator app."""
    next_url = _safe_next(request)
    if request.user.is_verified():
        return redirect(next_url)
    device = user_totp_device(user=request.user)
    if device is None:
        return redirect(_two_factor_step_url(user=request.user, next_url=next_url))
    form = TotpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = totp_token_check(device=device, token=form.cleaned_data["token"])
        except TwoFactorError as refusal:
            form.add_error("token", str(refusal))
        else:
            _sign_in_second_factor(request, device)
            return redirect(next_url)
    return render(
        request,
        "accounts/two_factor_verify.html",
        {"title": "Two-factor authentication", "form": form, "next": next_url},
    )


@require_http_methods(["GET", "POST"])
def two_factor_setup(request):
    """Enrol an authenticator app: show its secret (text and QR code), confirm a code."""
    next_url = _safe_next(request)
    if user_totp_device(user=request.user) is not None:
        # Already enrolled: replacing the app takes an admin, not just a password.
        return redirect(_two_factor_step_url(user=request.user, next_url=next_url))
    device = totp_enrolment_start(user=request.user)
    form = TotpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = totp_enrolment_confirm(device=device, token=form.cleaned_data["token"])
        except TwoFactorError as refusal:
            form.add_error("token", str(refusal))
        else:
            _sign_in_second_factor(request, device)
            messages.success(request, "Two-factor authentication is on for your account.")
            return redirect(next_url)
    secret = b32encode(device.bin_key).decode("ascii")
    otpauth_uri = device.config_url
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "title": "Set up two-factor authentication",
            "form": form,
            "next": next_url,
            "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
            "otpauth_uri": otpauth_uri,
            # A data: URI (allowed by the CSP's img-src): no image URL that would carry
            # the secret, no CDN, and no markup marked safe in the template.
            "qr_data_uri": segno.make(otpauth_uri, error="m").svg_data_uri(scale=4, dark="#000", light="#fff"),
        },
    )
