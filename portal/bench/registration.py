"""Kit registration: the staff form submitted end to end, the lab answering at once.

The partner is mocked with `responses` (zero latency, no sockets): what is measured is
the portal's own work per registration, i.e. form validation, the patient and
registration saved, the registration sent (payload, token from the cache, call log),
the answer stored, the result created, and the redirect. Two cases: a new patient
typed in (the fuller path) and an existing patient picked by search.

The kits registered here are deleted afterwards, so the generated data stay as they were.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from html.parser import HTMLParser

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import NoReverseMatch, reverse

from portal.bench.data import UPSTREAM_BASE
from portal.bench.report import latency_summary
from portal.core.models import StateChange
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.patients.models import Address, Patient
from portal.results.models import Result
from portal.upstream.client import reset_client
from portal.upstream.models import UpstreamCall
from portal.upstream.tokens import TOKEN_KEY

LAB = "https://lab.bench.invalid"
FIRST_LAB_ID = 900_000_000  # below UPSTREAM_BASE, above any polling sandbox id
EMAIL_PREFIX = "bench-registration-"
NEW_PATIENT = {
    "first_name": "Bench",
    "last_name": "Registrant",
    "date_of_birth": "1980-04-12",
    "phone": "6175550100",
    "gender": "female",
    "street1": "1 Main St",
    "street2": "",
    "city": "Boston",
    "state": "MA",
    "zipcode": "02118",
}


class _FormFields(HTMLParser):
    """The names and initial values of a rendered form's inputs and selects."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if not name:
            return
        if tag == "input" and attrs.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.values.setdefault(name, attrs.get("value") or "")
        elif tag in ("select", "textarea"):
            self.values.setdefault(name, "")


def _form_data(page_html: str, *, email: str, patient_id: int | None) -> dict:
    fields = _FormFields()
    fields.feed(page_html)
    data = dict(fields.values)
    data["idempotency_key"] = str(uuid.uuid4())
    if patient_id is not None:
        data["patient"] = str(patient_id)
        return data
    data.pop("patient", None)
    for name in list(data):
        # The first address form of the formset (prefix-0-street1, ...) and the patient's fields.
        base = name.rsplit("-", 1)[-1]
        if base in NEW_PATIENT and ("-" not in name or re.search(r"-0-[a-z0-9_]+$", name)):
            data[name] = NEW_PATIENT[base]
    data["email"] = email
    return data


def _lab_mock():
    """The partner, answering at once: a token, and 201 to every registration."""
    import responses

    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    ids = itertools.count(FIRST_LAB_ID)
    mock.add(responses.GET, f"{LAB}/api/v1/token", json={"token": "bench-token"}, status=200)

    def register(request):
        lab_id = next(ids)
        body = {"id": lab_id, "state": "registred", "kit_id": f"bench-{lab_id}", "user_id": 77}
        return 201, {"Content-Type": "application/json"}, json.dumps(body)

    mock.add_callback(responses.POST, re.compile(rf"{re.escape(LAB)}/aapi/v1/kits/\d+/registration"), register)
    return mock


def _register_url(order: Order) -> str | None:
    for name, kwargs in (
        ("orders:register_kit", {"order_pk": order.pk}),
        ("kits:register", {"order_pk": order.pk}),
        ("kits:register", {"pk": order.pk}),
    ):
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            continue
    return None


def _cleanup(*, registration_from: int, patient_from: int) -> None:
    registrations = KitRegistration.objects.filter(pk__gt=registration_from)
    reg_ids = list(registrations.values_list("pk", flat=True))
    results = Result.objects.filter(registration_id__in=reg_ids)
    result_ids = list(results.values_list("pk", flat=True))
    Notification.objects.filter(result_id__in=result_ids).delete()
    for model, ids in ((Result, result_ids), (KitRegistration, reg_ids)):
        StateChange.objects.filter(content_type=ContentType.objects.get_for_model(model), object_id__in=ids).delete()
    results.delete()
    registrations.delete()
    patients = Patient.objects.filter(pk__gt=patient_from, email__startswith=EMAIL_PREFIX)
    Address.objects.filter(patient__in=patients).delete()
    patients.delete()
    UpstreamCall.objects.all().delete()


def run_registration(*, client: Client, repeat: int) -> dict:
    out: dict = {"upstream": "mocked with `responses`, zero latency"}
    try:
        import responses  # noqa: F401 - a dev requirement
    except ImportError:
        return {**out, "available": False, "reason": "needs `responses` (requirements/dev.txt)"}
    order = (
        Order.objects.filter(submission_status=Submission.ACCEPTED, upstream_id__gte=UPSTREAM_BASE)
        .order_by("-pk")
        .first()
    )
    patient = Patient.objects.filter(addresses__isnull=False).order_by("pk").first()
    if order is None or patient is None:
        return {**out, "available": False, "reason": "no generated data"}
    url = _register_url(order)
    if url is None:
        return {**out, "available": False, "reason": "the kit registration URL does not resolve yet"}
    out["url"] = url
    registration_from = KitRegistration.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    patient_from = Patient.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    counter = itertools.count()
    cases = {}
    try:
        with (
            override_settings(
                EVERLYWELL_API_URL=f"{LAB}/aapi",
                EVERLYWELL_AUTH_URL=f"{LAB}/api",
                EVERLYWELL_CLIENT_ID="bench",
                EVERLYWELL_CLIENT_SECRET="bench-secret",  # noqa: S106 - the mock's, not a credential
            ),
            _lab_mock(),
        ):
            reset_client()
            cache.delete(TOKEN_KEY)
            form = client.get(url, secure=True)
            if form.status_code != 200:
                return {**out, "available": False, "reason": f"HTTP {form.status_code} for the form"}
            html = form.content.decode()
            for case, patient_id in (("new_patient", None), ("existing_patient", patient.pk)):

                def submit(patient_id=patient_id) -> tuple[float, int, str]:
                    data = _form_data(html, email=f"{EMAIL_PREFIX}{next(counter)}@example.com", patient_id=patient_id)
                    started = time.perf_counter()
                    response = client.post(url, data, secure=True)
                    return time.perf_counter() - started, response.status_code, response.get("Location", "")

                _, status, location = submit()  # warm-up, and the check that it works
                if status != 302 or "register" in location:
                    cases[case] = {"available": False, "reason": f"HTTP {status} (expected a redirect to the kit)"}
                    continue
                samples = []
                for _ in range(repeat):
                    seconds, status, _ = submit()
                    if status != 302:
                        raise RuntimeError(f"a registration answered HTTP {status}")
                    samples.append(seconds)
                with CaptureQueriesContext(connection) as captured:
                    submit()
                summary = latency_summary(samples)
                cases[case] = {
                    "available": True,
                    **summary,
                    "per_s": round(len(samples) / sum(samples), 1),
                    "queries": len(captured.captured_queries),
                }
            accepted = KitRegistration.objects.filter(
                pk__gt=registration_from, submission_status=Submission.ACCEPTED
            ).count()
            out["accepted"] = accepted
    finally:
        reset_client()
        _cleanup(registration_from=registration_from, patient_from=patient_from)
    out["cases"] = cases
    out["available"] = any(case.get("available") for case in cases.values())
    return out
