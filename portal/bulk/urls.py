from django.urls import path

from portal.bulk import views

app_name = "bulk"

urlpatterns = [
    path("", views.upload, name="upload"),
    path("template.csv", views.template_csv, name="template"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/confirm/", views.confirm, name="confirm"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/progress.json", views.progress, name="progress"),
    path("<int:pk>/rows-to-fix.csv", views.rows_to_fix, name="rows_to_fix"),
]
