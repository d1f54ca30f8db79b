from django.conf import settings
from django.contrib import admin

from portal.audit.mixins import PhiAccessAdminMixin
from portal.core.admin import BigTableAdminMixin, RawPayloadMixin, run_action
from portal.notifications.services import ResendRefused, notification_resend
from portal.results import selectors
from portal.results.models import Result
from portal.results.services import result_refresh
from portal.upstream.errors import POLL_ERROR_CLASSES, UpstreamError

PARTNER_FIELDS = (
    "registration",
    "upstream_id",
    "state",
    "status",
    "ready_at",
    "last_polled_at",
    "next_poll_at",
    "poll_count",
    "claimed_until",
    "last_error_class",
    "last_error",
    "raw_payload_pretty",
    "created_at",
    "updated_at",
)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", f"Overdue (not final {settings.RESULT_OVERDUE_AFTER}+ days after registration)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(selectors.results_overdue_q())
        return queryset


class LastErrorFilter(admin.SimpleListFilter):
    """The error classes the poller records, as fixed choices: the stock filter for
    this field lists them with a DISTINCT over every result on each page view."""

    title = "last error"
    parameter_name = "last_error_class"

    def lookups(self, request, model_admin):
        return [("any", "Any error")] + [(name, name) for name in POLL_ERROR_CLASSES]

    def queryset(self, request, queryset):
        if self.value() == "any":
            return queryset.exclude(last_error_class="")
        if self.value():
            return queryset.filter(last_error_class=self.value())
        return queryset


@admin.register(Result)
class ResultAdmin(BigTableAdminMixin, PhiAccessAdminMixin, RawPayloadMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "kit_id",
        "patient",
        "state",
        "status",
        "ready_at",
        "last_polled_at",
        "next_poll_at",
        "poll_count",
        "last_error_class",
        "email_status",
    )
    # No date_hierarchy: with nothing picked it lists the years with a DISTINCT over
    # every row (3.5 s at a million results); a fixed-choice date filter instead.
    list_filter = ("status", OverdueFilter, LastErrorFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = (
        "upstream_id__exact",
        "registration__kit_id",
        "registration__patient__last_name",
        "registration__patient__email",
    )
    list_select_related = ("registration", "registration__patient")
    readonly_fields = PARTNER_FIELDS
    fieldsets = (
        (None, {"fields": ("registration", "upstream_id")}),
        ("Lab", {"fields": ("state", "status", "ready_at", "last_error_class", "last_error")}),
        ("Polling", {"fields": ("last_polled_at", "next_poll_at", "poll_count", "claimed_until")}),
        ("Raw payload", {"fields": ("raw_payload_pretty",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("refresh_from_upstream", "resend_email")

    def get_queryset(self, request):
        # The latest email's status, as one subquery (not one query per row).
        return selectors.results_list()

    def get_search_results(self, request, queryset, search_term):
        # The staff list's search (same fields, served by indexes), not the admin's
        # OR of `icontains` across three joined tables.
        return selectors.results_search(queryset, search_term), False

    def has_add_permission(self, request) -> bool:
        # A result is created by the portal when the lab accepts a kit registration.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The local mirror of a lab result, with its emails and history: never deleted.
        return False

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("notifications.add_notification")

    @admin.display(description="Kit id", ordering="registration__kit_id")
    def kit_id(self, obj: Result) -> str:
        return obj.registration.kit_id or "—"

    @admin.display(description="Patient", ordering="registration__patient__last_name")
    def patient(self, obj: Result):
        return obj.registration.patient

    @admin.display(description="Email to patient")
    def email_status(self, obj: Result) -> str:
        return obj.notification_status or "—"

    @admin.action(description="Refresh from upstream", permissions=["change"])
    def refresh_from_upstream(self, request, queryset):
        def call(result):
            result_refresh(result_id=result.pk, actor=request.user)

        run_action(
            self, request, queryset, call=call, done="Refreshed {n} result(s) from the lab.", errors=(UpstreamError,)
        )

    @admin.action(description="Resend email", permissions=["resend"])
    def resend_email(self, request, queryset):
        def call(result):
            if not selectors.result_can_resend(result=result):
                return "not ready yet: the email is sent only for a ready result"
            if selectors.result_resend_in_flight(result=result):
                return "a resend is already on its way"
            try:
                notification_resend(result=result, requested_by=request.user)
            except ResendRefused as exc:
                return str(exc)
            return None

        run_action(
            self,
            request,
            queryset,
            call=call,
            done="The email will be sent again for {n} result(s). The resend is recorded.",
            errors=(),
        )
