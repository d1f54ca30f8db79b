from django.contrib import admin

from portal.upstream.models import UpstreamCall


@admin.register(UpstreamCall)
class UpstreamCallAdmin(admin.ModelAdmin):
    """Read-only: the client writes these rows; admins only read them."""

    list_display = (
        "created_at",
        "operation",
        "method",
        "path",
        "object_id",
        "status_code",
        "outcome",
        "latency_ms",
        "attempts",
    )
    list_filter = ("operation", "outcome", "status_code")
    search_fields = ("object_id",)
    date_hierarchy = "created_at"
    list_per_page = 100

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
