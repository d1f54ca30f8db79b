from django.urls import path

from portal.results import views

app_name = "results"

urlpatterns = [
    path("", views.result_list, name="list"),
    path("export.csv", views.result_export, name="export"),
    path("<int:pk>/", views.result_detail, name="detail"),
    path("<int:pk>/refresh/", views.result_refresh_now, name="refresh"),
    path("<int:pk>/resend/", views.result_resend_email, name="resend"),
]
