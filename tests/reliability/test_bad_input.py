"""Bad-input suite beyond the staff forms (issue 6): the same hostile values through
Django admin, the lab's answers, the patient email and the CSV exports. Each gets
a clear field error or is stored exactly and rendered escaped; none gives a 500
(the test client re-raises any exception a view lets escape).

The staff forms' own table (emails, phones, ZIPs, states, dates of birth, names,
script payloads, each with its message) is tests/patients/test_forms.py; the
escaped raw payload in admin is tests/test_admin.py; `safe_cell` itself is
tests/core/test_exports.py.
"""

from __future__ import annotations

import csv
import html
import io

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from portal.core.states import Status, Submission
from portal.kits.models import KitRegistration
from portal.kits.services import registration_submit
from portal.notifications.models import Notification
from portal.notifications.services import SendFailed, notification_send
from portal.patients.models import Address, Patient
from portal.results.models import Result
from portal.results.services import results_poll_due
from tests.factories import AddressFactory, NotificationFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = [SCRIPT, IMG]
NAMES = ["O'Brien", "Zoë", "Nguyễn", "李小龍", "de la Cruz", "Null", SCRIPT, IMG]


def assert_escaped(response, value: str) -> None:
    """`value` appears on the page only as text: never as markup."""
    body = response.content.decode()
    assert response.status_code == 200
    if any(ch in value for ch in "<>\"'&"):
        assert value not in body, f"unescaped {value!r}"
    assert html.escape(value, quote=True) in body or html.escape(value, quote=False) in body, f"{value!r} not shown"


# --- Django admin: the patient and address forms --------------------------------------------------

PATIENT = {
    "first_name": "Jane",
    "last_name": "Doe",
    "email": "jane@example.com",
    "date_of_birth": "1980-01-02",
    "phone": "6175550123",
    "gender": "female",
    "addresses-TOTAL_FORMS": "0",
    "addresses-INITIAL_FORMS": "0",
    "addresses-MIN_NUM_FORMS": "0",
    "addresses-MAX_NUM_FORMS": "1000",
}
LONG_EMAIL = "a" * 64 + "@" + "b" * 186 + ".com"  # 255 characters

ADMIN_PATIENT_REFUSED = [
    ("email", "jane@@x.com", "Enter a valid email address."),
    ("email", LONG_EMAIL, "Ensure this value has at most 254 characters (it has 255)."),
    ("email", "a@b.com\r\nBcc: x@y.com", "Enter a valid email address."),
    ("first_name", "x" * 10_000, "Ensure this value has at most 100 characters (it has 10000)."),
    ("first_name", "Ja\x00ne", "Null characters are not allowed."),
    ("last_name", "Doe\u202e", "Last name contains an invisible control character; please retype it."),
    ("first_name", "\u202eenaJ", "First name contains an invisible control character; please retype it."),
    # A single name: both names are required (the lab's API requires first_name and last_name).
    ("last_name", "", "This field is required."),
]


@pytest.mark.parametrize(("field", "typed", "message"), ADMIN_PATIENT_REFUSED)
def test_the_admin_patient_form_refuses_with_a_clear_field_error(admin_client_, field, typed, message):
    response = admin_client_.post(reverse("admin:patients_patient_add"), {**PATIENT, field: typed})

    assert response.status_code == 200
    assert message in response.context["adminform"].form.errors[field]
    assert not Patient.objects.exists()


ADMIN_PATIENT_STORED = [("email", " Jane@Example.COM ", "Jane@example.com")] + [
    (field, name, name) for name in NAMES for field in ("first_name", "last_name")
]


@pytest.mark.parametrize(("field", "typed", "stored"), ADMIN_PATIENT_STORED)
def test_the_admin_patient_form_stores_names_exactly_and_shows_them_escaped(admin_client_, field, typed, stored):
    response = admin_client_.post(reverse("admin:patients_patient_add"), {**PATIENT, field: typed})

    assert response.status_code == 302, response.context["adminform"].form.errors
    patient = Patient.objects.get()
    assert getattr(patient, field) == stored
    assert_escaped(admin_client_.get(reverse("admin:patients_patient_changelist")), stored)
    assert_escaped(admin_client_.get(reverse("admin:patients_patient_change", args=[patient.pk])), stored)


def _address(patient, **typed) -> dict:
    return {
        "patient": patient.pk,
        "street1": "1 Main St",
        "street2": "",
        "city": "Cambridge",
        "state": "MA",
        "zipcode": "02139",
        "position": "0",
        **typed,
    }


ADMIN_ADDRESS_REFUSED = [
    ("street1", "1 Main\x00St", "Null characters are not allowed."),
    ("street1", "1 Main St\u202e", "Street address contains an invisible control character."),
    ("street2", "Apt\u202e 4", "Apartment, suite, etc. contains an invisible control character."),
    ("city", "\u202eCambridge", "City contains an invisible control character."),
    ("city", "x" * 10_000, "Ensure this value has at most 100 characters (it has 10000)."),
    ("zipcode", "2139", "Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307."),
    ("zipcode", "ABCDE", "Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307."),
    ("state", "XX", "Select a valid choice. XX is not one of the available choices."),
    ("state", "PR", "Select a valid choice. PR is not one of the available choices."),  # territories: not served
]


@pytest.mark.parametrize(("field", "typed", "message"), ADMIN_ADDRESS_REFUSED)
def test_the_admin_address_form_refuses_with_a_clear_field_error(admin_client_, field, typed, message):
    patient = PatientFactory()

    response = admin_client_.post(reverse("admin:patients_address_add"), _address(patient, **{field: typed}))

    assert response.status_code == 200
    assert message in response.context["adminform"].form.errors[field]
    assert not Address.objects.exists()


@pytest.mark.parametrize("typed", [*PAYLOADS, "1 Rue de l'Église", "李小龍 路 1号"])
def test_the_admin_address_form_stores_text_exactly_and_shows_it_escaped(admin_client_, typed):
    patient = PatientFactory()

    response = admin_client_.post(reverse("admin:patients_address_add"), _address(patient, street1=typed))

    assert response.status_code == 302
    address = Address.objects.get()
    assert address.street1 == typed
    assert_escaped(admin_client_.get(reverse("admin:patients_address_changelist")), typed)
    assert_escaped(admin_client_.get(reverse("admin:patients_patient_change", args=[patient.pk])), typed)


# --- the lab's answers: stored exactly, rendered escaped ------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_script_payload_in_the_labs_kit_id_and_state_is_stored_exactly_and_escaped_everywhere(
    partner, admin_client_, payload
):
    registration = RegistrationFactory(
        upstream_id=None, kit_id=None, state="", submission_status=Submission.QUEUED, registered_at=None
    )
    partner.register_kit(registration.order.upstream_id, id=5151, kit_id=payload, state=payload)

    registration = registration_submit(registration_id=registration.pk)

    assert registration.submission_status == Submission.ACCEPTED
    assert (registration.kit_id, registration.state) == (payload, payload)
    for url in (
        reverse("kits:detail", args=[registration.pk]),
        reverse("kits:list"),
        reverse("orders:detail", args=[registration.order_id]),
        reverse("patients:detail", args=[registration.patient_id]),
        reverse("admin:kits_kitregistration_change", args=[registration.pk]),
        reverse("admin:kits_kitregistration_changelist"),
    ):
        assert_escaped(admin_client_.get(url), payload)  # an admin may open the staff pages too


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_script_payload_as_a_result_state_is_kept_as_unknown_and_escaped_everywhere(partner, admin_client_, payload):
    result = ResultFactory()
    partner.get_result(result.upstream_id, state=payload)

    results_poll_due()

    result.refresh_from_db()
    assert (result.state, result.status) == (payload, Status.UNKNOWN)
    for url in (
        reverse("results:detail", args=[result.pk]),
        reverse("results:list"),
        reverse("dashboard"),
        reverse("admin:results_result_change", args=[result.pk]),
        reverse("admin:results_result_changelist"),
    ):
        assert_escaped(admin_client_.get(url), payload)


# --- the patient email --------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_script_payloads_in_the_clinic_settings_are_escaped_and_patient_names_never_sent(settings, payload):
    settings.CLINIC_NAME = f"Clinic {payload}"
    settings.CLINIC_CONTACT = f"Call {payload}"
    patient = PatientFactory(first_name=payload, last_name="Quixotehart")
    notification = NotificationFactory(result__registration__patient=patient)

    notification_send(notification_id=notification.pk)

    (message,) = mail.outbox
    html_body = message.alternatives[0][0]
    assert payload not in html_body and html.escape(payload) in html_body
    assert payload not in message.body
    assert "Quixotehart" not in message.message().as_string()
    assert patient.first_name not in message.subject + message.body + html_body
    assert message.to == [patient.email]


@pytest.mark.parametrize(
    "recipient", ["a@b.com\r\nBcc: x@y.com", "a@b.com\nBcc: x@y.com", "a@b.com\rCc: x@y.com"], ids=["crlf", "lf", "cr"]
)
def test_a_recipient_carrying_a_header_injection_is_refused_before_sending(recipient, caplog):
    # Only a write that skipped every form could store this (the forms refuse it).
    notification = NotificationFactory(recipient=recipient)

    with pytest.raises(SendFailed):
        notification_send(notification_id=notification.pk)

    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING  # retried by its task, then shown as failed
    assert notification.last_error == "BadHeaderError: could not hand the email to the mail server"
    assert "x@y.com" not in caplog.text


def test_a_newline_in_the_clinic_name_cannot_add_a_header(settings):
    settings.CLINIC_NAME = "Clinic\r\nBcc: evil@example.com"
    notification = NotificationFactory()

    notification_send(notification_id=notification.pk)

    (message,) = mail.outbox
    assert message.recipients() == [notification.recipient]
    headers = message.message()
    assert headers["Bcc"] is None and headers["Subject"] == "Your lab results are ready"


# --- CSV exports: formula cells neutralised ------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(body)))


def _hostile_kits() -> list[KitRegistration]:
    kits = []
    for n, formula in enumerate(FORMULAS):
        patient = PatientFactory(first_name=formula, last_name=formula)
        AddressFactory(patient=patient)
        registration = RegistrationFactory(
            patient=patient, kit_id=f"{formula}{n}", state=formula, last_error=formula, with_address=False
        )
        ResultFactory(registration=registration, upstream_id=registration.upstream_id, state=formula)
        kits.append(registration)
    return kits


@pytest.mark.parametrize("export", ["kits:export", "results:export"])
def test_csv_exports_neutralise_formula_cells(staff_client, export):
    _hostile_kits()

    response = staff_client.get(reverse(export))

    assert response.status_code == 200
    rows = _csv(response)[1:]
    assert len(rows) == len(FORMULAS)
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    for formula in FORMULAS:
        assert "'" + formula in cells  # kept, with the apostrophe a spreadsheet shows as text


def test_csv_exports_keep_names_exactly(staff_client):
    for name in NAMES:
        RegistrationFactory(patient=PatientFactory(first_name=name, last_name=name))

    rows = _csv(staff_client.get(reverse("kits:export")))[1:]

    assert sorted(row[8] for row in rows) == sorted(NAMES)


def test_every_page_with_hostile_names_renders(staff_client):
    """Names of every kind on every staff page that lists or shows patients: no 500."""
    for name in [*NAMES, "\u202e-flipped"]:
        patient = PatientFactory.build(first_name=name, last_name=name)
        patient.save()  # stored past the forms, as admin or an import could
        registration = RegistrationFactory(patient=patient)
        ResultFactory(registration=registration, upstream_id=registration.upstream_id, ready_at=timezone.now())
    for url in (
        reverse("patients:list"),
        reverse("patients:list") + "?q=" + "李小龍",
        reverse("kits:list"),
        reverse("results:list"),
        reverse("dashboard"),
        *(reverse("patients:detail", args=[p.pk]) for p in Patient.objects.all()),
        *(reverse("results:detail", args=[r.pk]) for r in Result.objects.all()),
    ):
        assert staff_client.get(url).status_code == 200, url
