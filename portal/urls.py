from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from portal.core import views as core_views

urlpatterns = [
    path("", core_views.dashboard, name="dashboard"),
    path("healthz", core_views.healthz, name="healthz"),
    # Sign-in, sign-out and the two-factor steps (names: login, logout, two_factor_*).
    path("accounts/", include("portal.accounts.urls")),
    path("orders/", include("portal.orders.urls")),
    path("kits/", include("portal.kits.urls")),
    path("patients/", include("portal.patients.urls")),
    path("results/", include("portal.results.urls")),
    path("bulk/", include("portal.bulk.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
]

admin.site.site_header = "Clinic lab-kit portal administration"
admin.site.site_title = "Lab-kit portal admin"
admin.site.index_title = "Administration"
