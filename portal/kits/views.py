"""Staff pages for kit registrations: the registration form, list, detail and its
actions, CSV export, and the navigation bar's kit lookup."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.audit.services import phi_access_record
from portal.core.exports import csv_response
from portal.core.pagination import FastPaginator
from portal.core.states import Submission, timeline
from portal.kits import selectors
from portal.kits.filters import RegistrationFilter
from portal.kits.forms import RegistrationForm
from portal.kits.models import KitRegistration
from portal.kits.services import (
    RegistrationError,
    registration_create,
    registration_resolve_review,
    registration_retry_submission,
    registration_submit,
)
from portal.orders.models import Order
from portal.patients.forms import ADDRESS_PREFIX, AddressFormSet
from portal.patients.models import Patient
from portal.patients.selectors import patient_get_with_addresses, patient_list, patient_search

PAGE_SIZE = 50
PATIENT_SEARCH_LIMIT = 20
NOT_FOUND = "No kit registration with that kit id."


def _crumbs(*items):
    return [("Kits", reverse("kits:list")), *items]


def _say_submission_outcome(request, registration: KitRegistration) -> None:
    """One message telling staff where a just-sent registration stands (rejections
    are shown on the form instead, by the registration view)."""
    status = registration.submission_status
    if status == Submission.ACCEPTED:
        messages.success(request, f"Kit registered at the lab: kit id {registration.kit_id}.")
    elif status == Submission.FAILED:
        messages.warning(request, "Saved. The lab could not be reached; the portal will retry automatically.")
    elif status == Submission.NEEDS_REVIEW:
        messages.warning(
            request,
            "Saved, but the lab did not confirm whether it received the registration. It needs review: "
            "check with the lab before sending it again.",
        )
    elif status == Submission.QUEUED:
        messages.warning(
            request,
            "Saved. The order has not been accepted by the lab yet; the registration is sent as soon as it is.",
        )
    elif status == Submission.REJECTED:
        messages.error(request, f"The lab refused the registration: {registration.last_error}")
    else:
        messages.info(request, "Saved. The registration is being sent to the lab; refresh this page in a moment.")


def _chosen_patient(value):
    """The existing patient named by a `patient` parameter, or None."""
    value = (value or "").strip()
    return patient_get_with_addresses(patient_id=int(value)) if value.isdigit() and len(value) < 19 else None


@require_http_methods(["GET", "POST"])
@permission_required("kits.add_kitregistration", raise_exception=True)
def registration_create_view(request, order_pk: int):
    order = get_object_or_404(Order, pk=order_pk)
    if order.submission_status == Submission.REJECTED:
        messages.error(request, "This order was rejected by the lab; kits cannot be registered against it.")
        return redirect("orders:detail", pk=order.pk)
    can_search = request.user.has_perm("patients.view_patient")
    if request.method == "POST":
        form = RegistrationForm(request.POST)
        formset = AddressFormSet(request.POST, prefix=ADDRESS_PREFIX)
        # Registering a new patient adds one; picking an existing patient shows theirs.
        if not request.user.has_perm("patients.view_patient" if form.for_existing_patient else "patients.add_patient"):
            raise PermissionDenied
        # An existing patient's stored addresses are used: the formset is not required then.
        if form.is_valid() and (form.for_existing_patient or formset.is_valid()):
            new_patient = not form.for_existing_patient
            try:
                registration = registration_create(
                    order=order,
                    patient=form.cleaned_data["patient"],
                    patient_data=form.patient_data() if new_patient else None,
                    addresses=formset.addresses() if new_patient else None,
                    created_by=request.user,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except RegistrationError as exc:
                form.add_error(None, str(exc))
            else:
                registration = registration_submit(registration_id=registration.pk)
                if registration.submission_status != Submission.REJECTED:
                    _say_submission_outcome(request, registration)
                    return redirect("kits:detail", pk=registration.pk)
                # The lab refused the data: same form, same key, so the corrected
                # resubmission updates this registration instead of adding one.
                form.add_error(
                    None,
                    f"The lab refused this registration: {registration.last_error} "
                    "Correct the details and submit again.",
                )
        chosen = _chosen_patient(request.POST.get("patient"))
    else:
        chosen = _chosen_patient(request.GET.get("patient")) if can_search else None
        form = RegistrationForm(initial={"idempotency_key": uuid.uuid4(), "patient": chosen.pk if chosen else None})
        formset = AddressFormSet(prefix=ADDRESS_PREFIX)
    patient_q = request.GET.get("patient_q", "").strip()
    matches = None
    if patient_q and can_search and not form.for_existing_patient:
        matches = patient_search(patient_list(), patient_q)[:PATIENT_SEARCH_LIMIT]
        phi_access_record(request=request, action="search", model=Patient, ids=matches)
    return render(
        request,
        "kits/registration_form.html",
        {
            "title": "Register a kit",
            "breadcrumbs": [
                ("Orders", reverse("orders:list")),
                (str(order), reverse("orders:detail", args=[order.pk])),
                ("Register a kit", None),
            ],
            "order": order,
            "form": form,
            "formset": formset,
            "chosen_patient": chosen if form.for_existing_patient else None,
            "can_search": can_search,
            "patient_q": patient_q,
            "matches": matches,
            "search_limit": PATIENT_SEARCH_LIMIT,
        },
    )


def _filtered_registrations(request):
    """The filter form and the registrations it selects; none while the form has errors."""
    filterset = RegistrationFilter(request.GET, queryset=selectors.registration_list())
    return filterset, filterset.qs if filterset.is_valid() else filterset.queryset.none()


@require_GET
@permission_required("kits.view_kitregistration", raise_exception=True)
def registration_list(request):
    filterset, queryset = _filtered_registrations(request)
    page = FastPaginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    phi_access_record(request=request, action="list", model=KitRegistration, ids=page.object_list)
    return render(
        request,
        "kits/registration_list.html",
        {
            "title": "Kit registrations",
            "breadcrumbs": [("Kits", None)],
            "filter": filterset,
            "page_obj": page,
            "registrations": page.object_list,
            "filtering": any(request.GET.get(name) for name in ("q", "submission_status")),
        },
    )


@require_GET
@permission_required("kits.view_kitregistration", raise_exception=True)
def registration_export(request):
    """The list as filtered, streamed as CSV. Patient data is limited to the name:
    what staff need to match a row to a person."""
    _, queryset = _filtered_registrations(request)
    phi_access_record(request=request, action="export", model=KitRegistration, ids=queryset)
    header = [
        "Portal id",
        "Kit id",
        "Lab registration id",
        "Lab state",
        "Submission",
        "Portal order id",
        "Lab order id",
        "Patient id",
        "Patient last name",
        "Patient first name",
        "Result status",
        "Registered",
        "Created",
        "Last error",
    ]
    submission_labels = dict(Submission.choices)
    rows = queryset.values_list(
        "pk",
        "kit_id",
        "upstream_id",
        "state",
        "submission_status",
        "order_id",
        "order__upstream_id",
        "patient_id",
        "patient__last_name",
        "patient__first_name",
        "result__status",
        "registered_at",
        "created_at",
        "last_error",
    ).iterator(chunk_size=1000)

    def lines():
        for row in rows:
            row = list(row)
            row[4] = submission_labels.get(row[4], row[4])
            row[11], row[12] = _local(row[11]), _local(row[12])
            yield row

    return csv_response(f"kit-registrations-{timezone.localdate():%Y-%m-%d}.csv", header, lines())


def _local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _get_registration(pk: int) -> KitRegistration:
    try:
        return selectors.registration_get_for_detail(registration_id=pk)
    except KitRegistration.DoesNotExist:
        raise Http404("No such kit registration.") from None


@require_GET
@permission_required("kits.view_kitregistration", raise_exception=True)
def registration_detail(request, pk: int):
    registration = _get_registration(pk)
    phi_access_record(request=request, action="view", model=KitRegistration, ids=[registration])
    result = getattr(registration, "result", None)
    return render(
        request,
        "kits/registration_detail.html",
        {
            "title": str(registration),
            "breadcrumbs": _crumbs((str(registration), None)),
            "registration": registration,
            "result": result,
            "timeline": timeline(registration),
            "can_retry": registration.submission_status in (Submission.FAILED, Submission.REJECTED),
            "needs_review": registration.submission_status == Submission.NEEDS_REVIEW,
        },
    )


@require_POST
@permission_required("kits.change_kitregistration", raise_exception=True)
def registration_retry_view(request, pk: int):
    registration = _get_registration(pk)
    try:
        registration = registration_retry_submission(registration_id=registration.pk, actor=request.user)
    except RegistrationError as exc:
        messages.error(request, str(exc))
    else:
        _say_submission_outcome(request, registration)
    return redirect("kits:detail", pk=registration.pk)


@require_POST
@permission_required("kits.change_kitregistration", raise_exception=True)
def registration_review_view(request, pk: int):
    registration = _get_registration(pk)
    if request.POST.get("action") == "link":
        upstream_id = request.POST.get("upstream_id", "").strip()
        kit_id = request.POST.get("kit_id", "").strip()
        if not upstream_id.isdigit() or not kit_id:
            messages.error(request, "Enter the lab's registration id (digits) and the kit id to link it.")
            return redirect("kits:detail", pk=registration.pk)
        try:
            registration_resolve_review(
                registration_id=registration.pk, actor=request.user, upstream_id=int(upstream_id), kit_id=kit_id
            )
        except RegistrationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Linked to the lab's registration; its result will be followed from now on.")
        return redirect("kits:detail", pk=registration.pk)
    if request.POST.get("confirmed_absent") != "yes":
        messages.error(request, "Tick the box to confirm the lab has no such registration.")
        return redirect("kits:detail", pk=registration.pk)
    try:
        registration_resolve_review(registration_id=registration.pk, actor=request.user, confirmed_absent=True)
    except RegistrationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Queued to be sent to the lab again; it will be sent within a few minutes.")
    return redirect("kits:detail", pk=registration.pk)


@require_GET
@permission_required("kits.view_kitregistration", raise_exception=True)
def registration_lookup(request):
    """Open the registration of a typed or scanned kit id, or go back saying there is none."""
    registration = selectors.registration_find_by_kit_id(kit_id=request.GET.get("kit_id", ""))
    if registration:
        return redirect("kits:detail", pk=registration.pk)
    messages.error(request, NOT_FOUND)
    back = request.headers.get("referer", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("kits:list")
