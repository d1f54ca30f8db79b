"""Account reads: who must use two-factor authentication, and with which device."""

from __future__ import annotations

from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice


def user_requires_two_factor(*, user) -> bool:
    """Admins (anyone who can open Django admin, or a superuser) always need a
    second factor; everybody else when REQUIRE_2FA_FOR_STAFF is on."""
    if not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return settings.REQUIRE_2FA_FOR_STAFF


def user_totp_device(*, user) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they have enrolled one."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("id").first()


def user_totp_device_pending(*, user) -> TOTPDevice | None:
    """The authenticator app the user started to enrol but has not confirmed yet."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("-id").first()
