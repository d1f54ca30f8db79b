from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import IntegrityError
from django.template.response import TemplateResponse

from portal.audit.mixins import PhiAccessAdminMixin
from portal.core.admin import BigTableAdminMixin, RawPayloadMixin, run_action
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.kits.services import RegistrationError, registration_retry_submission, registration_set_result_id
from portal.results.models import Result
from portal.upstream.errors import UpstreamError

PARTNER_FIELDS = (
    "order",
    "patient",
    "upstream_id",
    "kit_id",
    "upstream_user_id",
    "state",
    "submission_status",
    "submit_attempts",
    "submitting_since",
    "last_error_class",
    "last_error",
    "result_upstream_id",
    "registered_at",
    "raw_payload_pretty",
    "idempotency_key",
    "created_by",
    "created_at",
    "updated_at",
)
DELETABLE_SUBMISSIONS = (Submission.QUEUED, Submission.FAILED, Submission.REJECTED)


class SetResultIdForm(forms.Form):
    result_upstream_id = forms.IntegerField(
        label="Lab result id",
        min_value=1,
        max_value=2**63 - 1,
        help_text="The id the lab gave for this kit's result. The portal polls the lab with it from now on.",
    )

    def __init__(self, *args, registration: KitRegistration, **kwargs):
        super().__init__(*args, **kwargs)
        self.registration = registration

    def clean_result_upstream_id(self):
        value = self.cleaned_data["result_upstream_id"]
        if Result.objects.filter(upstream_id=value).exclude(registration=self.registration).exists():
            raise forms.ValidationError(f"Lab result id {value} already belongs to another kit's result.")
        return value


@admin.register(KitRegistration)
class KitRegistrationAdmin(BigTableAdminMixin, PhiAccessAdminMixin, RawPayloadMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "patient",
        "order",
        "state",
        "submission_status",
        "submit_attempts",
        "result_upstream_id",
        "registered_at",
        "created_at",
    )
    # A fixed-choice date filter, not date_hierarchy (a DISTINCT over every row).
    list_filter = ("submission_status", ("created_at", admin.DateFieldListFilter))
    search_fields = (
        "kit_id",
        "upstream_id__exact",
        "result_upstream_id__exact",
        "patient__last_name",
        "patient__email",
        "order__upstream_id__exact",
    )
    list_select_related = ("patient", "order")
    readonly_fields = PARTNER_FIELDS
    fieldsets = (
        (None, {"fields": ("order", "patient")}),
        (
            "Lab",
            {"fields": ("kit_id", "upstream_id", "upstream_user_id", "state", "result_upstream_id", "registered_at")},
        ),
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
    actions = ("retry_submission", "set_result_id")

    def has_add_permission(self, request) -> bool:
        # Kits are registered on the staff site, with the patient's form.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        if obj is None:
            return allowed
        return allowed and obj.upstream_id is None and obj.submission_status in DELETABLE_SUBMISSIONS

    @admin.action(description="Retry submission", permissions=["change"])
    def retry_submission(self, request, queryset):
        def call(registration):
            registration = registration_retry_submission(registration_id=registration.pk, actor=request.user)
            if registration.submission_status == Submission.QUEUED:
                return "queued: it is sent once its order is accepted by the lab"
            if registration.submission_status != Submission.ACCEPTED:
                return f"{registration.get_submission_status_display()}: {registration.last_error or 'no error'}"
            return None

        run_action(
            self,
            request,
            queryset,
            call=call,
            done="Sent {n} kit registration(s) to the lab again; the lab accepted them.",
            errors=(UpstreamError, RegistrationError),
        )

    @admin.action(description="Set result id", permissions=["change"])
    def set_result_id(self, request, queryset):
        """Ask for the lab's result id of one registration (NOTES.md point 15), then set it."""
        selected = list(queryset.select_related("patient", "order")[:2])
        if len(selected) != 1:
            self.message_user(request, "Select exactly one kit registration to set its result id.", messages.ERROR)
            return None
        registration = selected[0]
        if "apply" in request.POST:
            form = SetResultIdForm(request.POST, registration=registration)
            if form.is_valid():
                result_id = form.cleaned_data["result_upstream_id"]
                try:
                    registration_set_result_id(
                        registration_id=registration.pk, result_upstream_id=result_id, actor=request.user
                    )
                except IntegrityError:
                    form.add_error(
                        "result_upstream_id", f"Lab result id {result_id} already belongs to another result."
                    )
                else:
                    self.message_user(
                        request,
                        f"{registration}: result id set to {result_id}; the portal asks the lab for it now.",
                        messages.SUCCESS,
                    )
                    return None  # back to the changelist
        else:
            initial = registration.result_upstream_id or registration.upstream_id
            form = SetResultIdForm(initial={"result_upstream_id": initial}, registration=registration)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Set the result id of {registration}",
            "opts": self.opts,
            "registration": registration,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "set_result_id",
        }
        return TemplateResponse(request, "admin/kits/kitregistration/set_result_id.html", context)
