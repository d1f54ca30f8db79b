"""Admin for the state history, and the pieces every app's admin shares: the raw
payload shown as formatted JSON, and running a service over the selected rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext

from portal.core.models import StateChange
from portal.core.pagination import FastPaginator
from portal.core.states import Status, Submission

# An action runs its service once per row, in the request: it refuses larger
# selections instead of keeping the admin waiting on the lab for minutes.
MAX_ACTION_ROWS = 50
# How many of the rows that did not work an action's message names.
MAX_REPORTED_PROBLEMS = 10


def pretty_json(value) -> str:
    """A JSON value as indented, escaped HTML for a read-only admin field."""
    if value in (None, "", {}, []):
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)
    return format_html('<pre class="raw-payload">{}</pre>', text)


class BigTableAdminMixin:
    """For the changelists of tables that grow to millions of rows (results, kits,
    orders, patients): no full count, an ids-first paginator with an estimated count
    when unfiltered (portal/core/pagination.py), 50 rows a page like the staff lists,
    and the action checkbox written directly rather than rendered as a form widget
    (a third of the changelist's time at 100 rows)."""

    paginator = FastPaginator
    show_full_result_count = False
    list_per_page = 50

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # A search: its page and its count in one query (see FastPaginator).
        searching = bool(request.GET.get(SEARCH_VAR, "").strip())
        return self.paginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            count_with_page=searching,
            page_hint=request.GET.get(PAGE_VAR),
        )

    def action_checkbox(self, obj):
        # The same HTML as ModelAdmin.action_checkbox (checked by tests/test_admin.py);
        # the column's header is Django's own, chosen by this method's name.
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )


class RawPayloadMixin:
    """Adds `raw_payload_pretty`, to list in `readonly_fields` instead of `raw_payload`."""

    @admin.display(description="Raw payload (last answer from the lab)")
    def raw_payload_pretty(self, obj) -> str:
        return pretty_json(obj.raw_payload)


def run_action(
    modeladmin: admin.ModelAdmin,
    request,
    rows: Iterable,
    *,
    call: Callable[[object], str | None],
    done: str,
    errors: tuple[type[BaseException], ...],
) -> None:
    """Call `call(row)` for each selected row and tell the admin how it went.

    `call` returns None when the row went as wished, or a short text saying why not
    (e.g. "still failed: the lab could not be reached"). An exception of `errors`
    counts as a problem for that row; the other rows still run. `done` is the
    success message, formatted with the count ("Refreshed {n} order(s) from the lab.").
    """
    rows = list(rows)
    if len(rows) > MAX_ACTION_ROWS:
        modeladmin.message_user(
            request,
            f"Select at most {MAX_ACTION_ROWS} rows for this action (it asks the lab about each one); "
            "narrow the list with the filters.",
            messages.ERROR,
        )
        return
    succeeded, problems = 0, []
    for row in rows:
        try:
            problem = call(row)
        except errors as exc:
            problem = str(exc) or type(exc).__name__
        if problem:
            problems.append(f"{row}: {problem}")
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, done.format(n=succeeded), messages.SUCCESS)
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED_PROBLEMS])
        more = f" (and {len(problems) - MAX_REPORTED_PROBLEMS} more)" if len(problems) > MAX_REPORTED_PROBLEMS else ""
        modeladmin.message_user(request, f"{len(problems)} did not go through: {shown}{more}", messages.WARNING)


class ReadOnlyAdminMixin:
    """For records only the portal writes (history, emails): admins look, nobody edits."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NewStatusFilter(admin.SimpleListFilter):
    """The portal's statuses as fixed choices (the stock filter lists the values found
    with a DISTINCT over every state change)."""

    title = "new status"
    parameter_name = "new_status"

    def lookups(self, request, model_admin):
        return list(dict([*Status.choices, *Submission.choices]).items())

    def queryset(self, request, queryset):
        return queryset.filter(new_status=self.value()) if self.value() else queryset


@admin.register(StateChange)
class StateChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The timeline of every order, kit registration and result: read-only."""

    list_display = (
        "created_at",
        "record_link",
        "old_state",
        "new_state",
        "old_status",
        "new_status",
        "source",
        "actor",
        "note",
    )
    # A fixed-choice date filter, not date_hierarchy (a DISTINCT over every row).
    list_filter = ("source", "content_type", NewStatusFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("object_id__exact", "old_state", "new_state", "note", "actor__username")
    list_select_related = ("content_type", "actor")
    show_full_result_count = False
    paginator = FastPaginator
    ordering = ("-created_at", "-id")

    @admin.display(description="Record", ordering="object_id")
    def record_link(self, obj: StateChange) -> str:
        label = f"{obj.content_type.name} #{obj.object_id}"
        try:
            url = reverse(f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change", args=[obj.object_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)
