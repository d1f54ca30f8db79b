"""The audit trail in admin: read-only for everyone, admins included.

Clinic staff have no admin access at all; admins may read and filter both trails
but nobody can add, change or delete a row here (`has_*_permission` are False
whatever the user's permissions, so a superuser cannot either).
"""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin

from portal.audit.mixins import PhiAccessAdminMixin
from portal.audit.models import PhiAccess
from portal.core.pagination import FastPaginator


class ReadOnlyAuditMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(PhiAccessAdminMixin, ReadOnlyAuditMixin, AuditlogLogEntryAdmin):
    """Creates, changes and deletes of patient records: the before/after holds
    patient data, so opening an entry is itself recorded as a read."""

    # Searching the before/after text would search patient data; ids and actors suffice.
    search_fields = ["object_id", "actor__username"]

    def get_actions(self, request):
        return {}


class RecordTypeFilter(admin.SimpleListFilter):
    """The record types whose reads are recorded, as fixed choices (the stock filter
    lists them with a DISTINCT over every recorded page view)."""

    title = "record type"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        labels = {
            model._meta.label_lower
            for model, registered in admin.site._registry.items()
            if isinstance(registered, PhiAccessAdminMixin)
        }
        labels |= {"patients.patient", "kits.kitregistration", "results.result", "bulk.bulkrow"}
        return [(label, label) for label in sorted(labels)]

    def queryset(self, request, queryset):
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(PhiAccess)
class PhiAccessAdmin(ReadOnlyAuditMixin, admin.ModelAdmin):
    """Who read which patient records. Search with a record id to see who was shown it."""

    list_display = ("created_at", "actor", "action", "model", "object_count", "part_label", "url_name", "client_ip")
    # Fixed choices (and the users table) only: no filter reads this table, which
    # grows by a row a page view, to list its choices.
    list_filter = (
        "action",
        RecordTypeFilter,
        ("actor", admin.RelatedFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("actor",)
    show_full_result_count = False
    paginator = FastPaginator
    search_fields = ("object_ids_text",)
    fields = (
        "created_at",
        "actor",
        "action",
        "model",
        "object_count",
        "part_label",
        "object_ids",
        "filters",
        "url_name",
        "client_ip",
    )
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        """A record id finds the reads that showed it; anything else finds nothing."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if not term.isdigit():
            return queryset.none(), False
        return queryset.filter(object_ids_text__contains=f",{int(term)},"), False

    def get_actions(self, request):
        return {}

    @admin.display(description="part")
    def part_label(self, obj: PhiAccess) -> str:
        return f"{obj.part} of {obj.parts}" if obj.parts > 1 else "—"
