"""A ModelAdmin mixin that records what an admin was shown of patient data."""

from __future__ import annotations

from portal.audit.models import PhiAccess
from portal.audit.services import phi_access_record


class PhiAccessAdminMixin:
    """Records the admin change page of a record ("admin_view") and the rows of each
    changelist page ("list", or "search" with a search term) in `PhiAccess`.

    Put it first among the bases: `class PatientAdmin(PhiAccessAdminMixin, admin.ModelAdmin)`.
    A successful save answers with a redirect and is not a read (django-auditlog
    records the change); a form shown again with errors is.
    """

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        original = (getattr(response, "context_data", None) or {}).get("original")
        if response.status_code == 200 and original is not None:
            phi_access_record(request=request, action=PhiAccess.Action.ADMIN_VIEW, model=self.model, ids=[original])
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if response.status_code == 200 and changelist is not None:
            phi_access_record(
                request=request, action=PhiAccess.Action.LIST, model=self.model, ids=changelist.result_list
            )
        return response
