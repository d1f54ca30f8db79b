"""Bulk uploads in admin: read-only (they are made by the staff pages); an upload may
be deleted, which deletes its rows (patient data) and leaves the registrations."""

from django.contrib import admin

from portal.bulk.models import BulkRow, BulkUpload
from portal.core.admin import pretty_json


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BulkUpload)
class BulkUploadAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "file_name",
        "status",
        "row_count",
        "valid_count",
        "invalid_count",
        "duplicate_count",
        "registered_count",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("id__exact", "file_name")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(BulkRow)
class BulkRowAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "outcome", "order", "patient", "registration")
    list_filter = ("outcome",)
    search_fields = ("upload__id__exact",)
    list_select_related = ("upload", "order", "patient", "registration")
    show_full_result_count = False
    fields = (
        "upload",
        "row_number",
        "outcome",
        "values_pretty",
        "errors_pretty",
        "duplicate_of",
        "order",
        "patient",
        "registration",
    )
    readonly_fields = fields

    @admin.display(description="Values as typed")
    def values_pretty(self, obj):
        return pretty_json(obj.values)

    @admin.display(description="Errors")
    def errors_pretty(self, obj):
        return pretty_json(obj.errors)
