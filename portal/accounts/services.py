"""Account services: creating people in their roles."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from portal.accounts.roles import ADMINS, CLINIC_STAFF


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
