from django.urls import path

from portal.kits import views as kits_views
from portal.orders import views

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/", views.order_create_view, name="create"),
    path("import/", views.order_import_view, name="import"),
    path("export.csv", views.order_export, name="export"),
    path("<int:pk>/", views.order_detail, name="detail"),
    path("<int:pk>/refresh/", views.order_refresh_view, name="refresh"),
    path("<int:pk>/retry/", views.order_retry_view, name="retry"),
    path("<int:pk>/review/", views.order_review_view, name="review"),
    # The registration form lives in the kits app; its address names the order.
    path("<int:order_pk>/register/", kits_views.registration_create_view, name="register_kit"),
]
