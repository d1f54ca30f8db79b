from django.urls import path

from portal.patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("<int:pk>/", views.patient_detail, name="detail"),
    path("<int:pk>/register-kit/", views.patient_register_kit, name="register_kit"),
]
