from django.conf import settings


def portal(request):
    """Values every page template needs."""
    return {"ADMIN_URL": settings.ADMIN_URL, "CLINIC_NAME": settings.CLINIC_NAME}
