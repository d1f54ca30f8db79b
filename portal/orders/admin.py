from django.contrib import admin

from portal.core.admin import BigTableAdminMixin, RawPayloadMixin, run_action
from portal.core.states import Submission
from portal.orders.models import Order
from portal.orders.services import OrderError, order_refresh, order_retry_submission
from portal.upstream.errors import UpstreamError

# Fields the lab or the portal's own submission machinery writes: never typed in admin.
PARTNER_FIELDS = (
    "upstream_id",
    "state",
    "status",
    "submission_status",
    "submit_attempts",
    "submitting_since",
    "last_error_class",
    "last_error",
    "last_synced_at",
    "next_sync_at",
    "raw_payload_pretty",
    "idempotency_key",
    "created_by",
    "created_at",
    "updated_at",
)
# Only a record that never reached the lab may be deleted (a mistake typed by staff).
DELETABLE_SUBMISSIONS = (Submission.QUEUED, Submission.FAILED, Submission.REJECTED)


@admin.register(Order)
class OrderAdmin(BigTableAdminMixin, RawPayloadMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "amount",
        "state",
        "status",
        "submission_status",
        "submit_attempts",
        "last_synced_at",
        "created_by",
        "created_at",
    )
    # A fixed-choice date filter, not date_hierarchy (a DISTINCT over every row).
    list_filter = ("status", "submission_status", ("created_at", admin.DateFieldListFilter))
    search_fields = ("upstream_id__exact", "state", "last_error")
    list_select_related = ("created_by",)
    readonly_fields = PARTNER_FIELDS
    fieldsets = (
        (None, {"fields": ("amount",)}),
        ("Lab", {"fields": ("upstream_id", "state", "status", "last_synced_at", "next_sync_at")}),
        (
            "Submission",
            {
                "fields": (
                    "submission_status",
                    "submit_attempts",
                    "submitting_since",
                    "last_error_class",
                    "last_error",
                    "idempotency_key",
                )
            },
        ),
        ("Raw payload", {"fields": ("raw_payload_pretty",)}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )
    actions = ("refresh_from_upstream", "retry_submission")

    def get_readonly_fields(self, request, obj=None):
        # The amount was sent to the lab with the order: it is not changed afterwards.
        return (*PARTNER_FIELDS, "amount") if obj else PARTNER_FIELDS

    def has_add_permission(self, request) -> bool:
        # Orders are created on the staff site (one per form, sent to the lab).
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        if obj is None:
            return allowed
        return allowed and obj.upstream_id is None and obj.submission_status in DELETABLE_SUBMISSIONS

    @admin.action(description="Refresh from upstream", permissions=["change"])
    def refresh_from_upstream(self, request, queryset):
        def call(order):
            order_refresh(order_id=order.pk, actor=request.user)

        run_action(
            self,
            request,
            queryset,
            call=call,
            done="Refreshed {n} order(s) from the lab.",
            errors=(UpstreamError, OrderError),
        )

    @admin.action(description="Retry submission", permissions=["change"])
    def retry_submission(self, request, queryset):
        def call(order):
            order = order_retry_submission(order_id=order.pk, actor=request.user)
            if order.submission_status != Submission.ACCEPTED:
                return f"{order.get_submission_status_display()}: {order.last_error or 'no error recorded'}"
            return None

        run_action(
            self,
            request,
            queryset,
            call=call,
            done="Sent {n} order(s) to the lab again; the lab accepted them.",
            errors=(UpstreamError, OrderError),
        )
