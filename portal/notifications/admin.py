from django.contrib import admin

from portal.audit.mixins import PhiAccessAdminMixin
from portal.core.admin import run_action
from portal.core.pagination import FastPaginator
from portal.notifications.models import Notification
from portal.notifications.services import ResendRefused, notification_resend
from portal.results import selectors as result_selectors


@admin.register(Notification)
class NotificationAdmin(PhiAccessAdminMixin, admin.ModelAdmin):
    """Emails to patients: the record of what was sent. Read-only; a resend is a new row."""

    list_display = (
        "created_at",
        "kit_id",
        "result",
        "recipient",
        "kind",
        "status",
        "attempts",
        "is_resend",
        "requested_by",
        "sent_at",
    )
    # A fixed-choice date filter, not date_hierarchy (a DISTINCT over every row).
    list_filter = ("status", "kind", "is_resend", ("created_at", admin.DateFieldListFilter))
    search_fields = ("recipient", "result__upstream_id__exact", "result__registration__kit_id")
    list_select_related = ("result", "result__registration", "requested_by")
    show_full_result_count = False
    paginator = FastPaginator
    readonly_fields = (
        "result",
        "kind",
        "recipient",
        "template",
        "status",
        "attempts",
        "last_error",
        "sending_since",
        "sent_at",
        "is_resend",
        "requested_by",
        "created_at",
        "updated_at",
    )
    actions = ("resend_email",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("notifications.add_notification")

    @admin.display(description="Kit id", ordering="result__registration__kit_id")
    def kit_id(self, obj: Notification) -> str:
        return obj.result.registration.kit_id or "—"

    @admin.action(description="Resend email", permissions=["resend"])
    def resend_email(self, request, queryset):
        """Send the result's email again (once per result, however many of its emails are selected)."""
        results = {n.result_id: n.result for n in queryset.select_related("result__registration__patient")}

        def call(result):
            if not result_selectors.result_can_resend(result=result):
                return "not ready yet: the email is sent only for a ready result"
            if result_selectors.result_resend_in_flight(result=result):
                return "a resend is already on its way"
            try:
                notification_resend(result=result, requested_by=request.user)
            except ResendRefused as exc:
                return str(exc)
            return None

        run_action(
            self,
            request,
            results.values(),
            call=call,
            done="The email will be sent again for {n} result(s). The resend is recorded.",
            errors=(),
        )
