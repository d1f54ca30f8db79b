from django.contrib import admin

from portal.core.pagination import FastPaginator
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
    # A fixed-choice date filter, not date_hierarchy (a DISTINCT over every row).
    list_filter = ("operation", "outcome", "status_code", ("created_at", admin.DateFieldListFilter))
    show_full_result_count = False
    paginator = FastPaginator
    search_fields = ("object_id",)
    list_per_page = 100

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
