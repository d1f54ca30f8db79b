from django.contrib import admin

from portal.core.pagination import FastPaginator
from portal.upstream.models import OPERATIONS, UpstreamCall


class OperationFilter(admin.SimpleListFilter):
    """The client's operations as fixed choices (the stock filter reads them with a
    DISTINCT over the whole call log, which grows by a row a call)."""

    title = "operation"
    parameter_name = "operation"

    def lookups(self, request, model_admin):
        return [(name, name) for name in OPERATIONS]

    def queryset(self, request, queryset):
        return queryset.filter(operation=self.value()) if self.value() else queryset


class StatusClassFilter(admin.SimpleListFilter):
    """HTTP status by class, as fixed choices (not a DISTINCT over every row)."""

    title = "HTTP status"
    parameter_name = "status_class"

    def lookups(self, request, model_admin):
        return [("2", "2xx"), ("4", "4xx"), ("5", "5xx"), ("none", "No answer")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(status_code__isnull=True)
        if self.value() in ("2", "4", "5"):
            low = int(self.value()) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


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
    # Fixed choices only: no filter here reads the call log to list its choices.
    list_filter = (OperationFilter, "outcome", StatusClassFilter, ("created_at", admin.DateFieldListFilter))
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
