"""Staff pages for patients: list with search, detail with their kits and results."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from portal.audit.services import phi_access_record
from portal.core.pagination import FastPaginator
from portal.orders.forms import OrderChoiceForm
from portal.orders.selectors import orders_open_for_registration
from portal.patients import selectors
from portal.patients.filters import PatientFilter
from portal.patients.models import Patient

PAGE_SIZE = 50


@require_GET
@permission_required("patients.view_patient", raise_exception=True)
def patient_list(request):
    filterset = PatientFilter(request.GET, queryset=selectors.patient_list())
    queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    page = FastPaginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    phi_access_record(request=request, action="list", model=Patient, ids=page.object_list)
    return render(
        request,
        "patients/patient_list.html",
        {
            "title": "Patients",
            "breadcrumbs": [("Patients", None)],
            "filter": filterset,
            "page_obj": page,
            "patients": page.object_list,
            "filtering": bool(request.GET.get("q", "").strip()),
        },
    )


def _get_patient(pk: int) -> Patient:
    try:
        return selectors.patient_get_for_detail(patient_id=pk)
    except Patient.DoesNotExist:
        raise Http404("No such patient.") from None


@require_GET
@permission_required("patients.view_patient", raise_exception=True)
def patient_detail(request, pk: int):
    patient = _get_patient(pk)
    phi_access_record(request=request, action="view", model=Patient, ids=[patient])
    title = patient.full_name
    return render(
        request,
        "patients/patient_detail.html",
        {
            "title": title,
            "breadcrumbs": [("Patients", reverse("patients:list")), (title, None)],
            "patient": patient,
            "addresses": patient.addresses.all(),
            "registrations": patient.registrations.all(),
            "order_form": OrderChoiceForm(orders=orders_open_for_registration()),
        },
    )


@require_GET
@permission_required("kits.add_kitregistration", raise_exception=True)
def patient_register_kit(request, pk: int):
    """Step one of "Register a kit" from a patient's page: the order chosen, go to the
    registration form with this patient picked (ids only in the address)."""
    if not Patient.objects.filter(pk=pk).exists():
        raise Http404("No such patient.")
    form = OrderChoiceForm(request.GET, orders=orders_open_for_registration())
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["order"]))
        return redirect("patients:detail", pk=pk)
    url = reverse("orders:register_kit", args=[form.cleaned_data["order"].pk])
    return redirect(f"{url}?patient={pk}")
