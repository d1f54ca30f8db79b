"""The admin site: on top of Django's is_active + is_staff check, the person must
have passed two-factor authentication in this session (HIPAA 164.312(d))."""

from __future__ import annotations

from django.contrib.admin import AdminSite


class PortalAdminSite(AdminSite):
    site_header = "Clinic lab-kit portal administration"
    site_title = "Lab-kit portal admin"
    index_title = "Administration"

    def has_permission(self, request) -> bool:
        # `is_verified` is installed by django_otp's OTPMiddleware; without it
        # (a misconfigured stack) nobody is treated as verified.
        is_verified = getattr(request.user, "is_verified", None)
        return super().has_permission(request) and callable(is_verified) and is_verified()
