"""django-axes hooks: the client address a lockout is keyed on, the cool-off, and
the page a locked-out person sees.

Docs: https://django-axes.readthedocs.io/en/latest/4_configuration.html
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.shortcuts import render


def client_ip_address(request) -> str | None:
    """The address lockouts are keyed on (with the username).

    Behind DJANGO_TRUSTED_PROXY_COUNT reverse proxies, the client is the entry that
    many places from the right of X-Forwarded-For (the part our own proxies wrote;
    anything left of it is client-supplied and could be forged). Without proxies
    it is the socket's address: every client would otherwise share the proxy's
    address, and a lockout by username and address would lock a person out for
    everyone.
    """
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")


def cool_off(request=None) -> timedelta | None:
    """AXES_COOLOFF_TIME: AXES_COOLOFF_MINUTES, or None (locked until an admin
    resets it) when that is 0."""
    minutes = settings.AXES_COOLOFF_MINUTES
    return timedelta(minutes=minutes) if minutes else None


def lockout_response(request, original_response=None, credentials=None):
    """The page shown instead of the login form while locked out (HTTP 429)."""
    return render(
        request,
        "accounts/lockout.html",
        {"title": "Sign-in locked", "cooloff_minutes": settings.AXES_COOLOFF_MINUTES},
        status=429,
    )
