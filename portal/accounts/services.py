"""Account services: creating people in their roles, and enrolling and checking
their second factor (a TOTP authenticator app)."""

from __future__ import annotations

import math
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.roles import ADMINS, CLINIC_STAFF
from portal.accounts.selectors import user_totp_device, user_totp_device_pending


class TwoFactorError(Exception):
    """A one-time code was refused; the message is safe to show to the person."""


@transaction.atomic
def user_create_in_role(*, username: str, role: str, password: str | None = None, email: str = ""):
    """Create a user in `role` (CLINIC_STAFF or ADMINS). Returns (user, password).

    Admins also get `is_staff` so they can open Django admin; clinic staff never do.
    """
    if role not in (CLINIC_STAFF, ADMINS):
        raise ValueError(f"unknown role {role!r}")
    password = password or secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(
        username=username, email=email, password=password, is_staff=(role == ADMINS)
    )
    user.groups.add(Group.objects.get(name=role))
    return user, password


def demo_accounts_ensure() -> list[tuple[str, str, str]]:
    """Create the demo staff and admin accounts if they do not exist yet.

    Returns (role, username, password) for each account created now; an account
    that exists is left as it is, so a changed password is never overwritten.
    """
    created = []
    User = get_user_model()
    for role, username in ((CLINIC_STAFF, "staff"), (ADMINS, "admin")):
        if User.objects.filter(username=username).exists():
            continue
        _, password = user_create_in_role(username=username, role=role)
        created.append((role, username, password))
    return created


def totp_enrolment_start(*, user) -> TOTPDevice:
    """Return the user's unconfirmed authenticator device, creating it (with a new
    random secret) on first call, so reloading the enrolment page keeps the secret.

    Refuses when the user already has a confirmed device: replacing a second
    factor is an admin's job (delete the device in admin), never the holder of
    a password alone.
    """
    if user_totp_device(user=user) is not None:
        raise TwoFactorError("Two-factor authentication is already set up for this account.")
    device = user_totp_device_pending(user=user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def _throttle_message(device: TOTPDevice) -> str | None:
    allowed, details = device.verify_is_allowed()
    if allowed:
        return None
    locked_until = (details or {}).get("locked_until")
    if locked_until is not None:
        wait = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
        return f"Too many wrong codes. Wait {wait} seconds, then enter the newest code from your app."
    return "Too many wrong codes. Ask an admin to reset your two-factor authentication."


_WRONG_CODE = "That code is not right. Enter the 6-digit code your app shows now."


def _token_verify(*, device_id: int, token: str, confirm: bool) -> tuple[TOTPDevice, str | None]:
    """Verify `token` with the device row locked. Returns the device and a refusal
    message or None. Never raises, so the throttling counter that a wrong code
    increments is committed, not rolled back."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device_id)
        if confirm and device.confirmed:
            return device, "This authenticator app is already confirmed."
        if message := _throttle_message(device):
            return device, message
        if not device.verify_token(token):
            return device, _WRONG_CODE
        if confirm:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        return device, None


def totp_enrolment_confirm(*, device: TOTPDevice, token: str) -> TOTPDevice:
    """Confirm a pending authenticator device with a code it shows. Raises
    TwoFactorError when the code is wrong or too many wrong codes were tried."""
    device, refusal = _token_verify(device_id=device.pk, token=token, confirm=True)
    if refusal:
        raise TwoFactorError(refusal)
    return device


def totp_token_check(*, device: TOTPDevice, token: str) -> TOTPDevice:
    """Check a code against the user's confirmed device (with django-otp's growing
    delay after each wrong code, and no reuse of a code already accepted).
    Raises TwoFactorError when the code is refused."""
    device, refusal = _token_verify(device_id=device.pk, token=token, confirm=False)
    if refusal:
        raise TwoFactorError(refusal)
    return device
