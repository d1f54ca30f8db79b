from django.urls import path

from portal.kits import views

app_name = "kits"

urlpatterns = [
    path("", views.registration_list, name="list"),
    path("export.csv", views.registration_export, name="export"),
    path("lookup/", views.registration_lookup, name="lookup"),
    path("<int:pk>/", views.registration_detail, name="detail"),
    path("<int:pk>/retry/", views.registration_retry_view, name="retry"),
    path("<int:pk>/review/", views.registration_review_view, name="review"),
]
