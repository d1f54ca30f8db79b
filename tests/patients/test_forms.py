"""Table-driven: what the patient and address forms accept (and store), and what they
refuse with which message."""

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.kits.models import KitRegistration
from portal.patients.forms import AddressForm, PatientForm
from tests.factories import OrderFactory

VALID_PATIENT = {
    "first_name": "Jane",
    "last_name": "Doe",
    "email": "jane@example.com",
    "date_of_birth": "1980-01-02",
    "phone": "6175550123",
    "gender": "female",
}
VALID_ADDRESS = {"street1": "1 Main St", "street2": "", "city": "Cambridge", "state": "MA", "zipcode": "02139"}


def patient_form(**typed) -> PatientForm:
    return PatientForm(data={**VALID_PATIENT, **typed})


def address_form(**typed) -> AddressForm:
    return AddressForm(data={**VALID_ADDRESS, **typed})


def today() -> dt.date:
    return timezone.localdate()


def years_ago(years: int) -> dt.date:
    d = today()
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


# --- Accepted, and stored normalised -------------------------------------------

ACCEPTED_PATIENT = [
    ("email", " Jane@Example.COM ", "Jane@example.com"),
    ("phone", "(617) 555-0123", "6175550123"),
    ("phone", "1-617-555-0123", "6175550123"),
    ("phone", "617.555.0123", "6175550123"),
    ("phone", "+1 617 555 0123", "6175550123"),
    ("date_of_birth", "04/12/1985", dt.date(1985, 4, 12)),
    ("first_name", "O'Brien", "O'Brien"),
    ("first_name", "Zoë", "Zoë"),
    ("last_name", "Nguyễn", "Nguyễn"),
    ("last_name", "李小龍", "李小龍"),
    ("last_name", "de la Cruz", "de la Cruz"),
    ("last_name", "Null", "Null"),
    ("first_name", "<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("first_name", "  Jane  ", "Jane"),
]


@pytest.mark.parametrize(("field", "typed", "stored"), ACCEPTED_PATIENT)
def test_patient_values_accepted(field, typed, stored):
    form = patient_form(**{field: typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data[field] == stored


def test_an_adult_born_exactly_eighteen_years_ago_is_accepted():
    form = patient_form(date_of_birth=years_ago(18).isoformat())
    assert form.is_valid(), form.errors


ACCEPTED_ADDRESS = [
    ("zipcode", "02139", "02139"),
    ("zipcode", "02139-4307", "02139-4307"),
    ("zipcode", "021394307", "02139-4307"),
    ("state", "ma", "MA"),
    ("state", "DC", "DC"),
    ("street2", "", ""),
    ("street1", "1 Rue de l'Église", "1 Rue de l'Église"),
]


@pytest.mark.parametrize(("field", "typed", "stored"), ACCEPTED_ADDRESS)
def test_address_values_accepted(field, typed, stored):
    form = address_form(**{field: typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data[field] == stored


# --- Refused, with the message shown next to the field -----------------------

REFUSED_PATIENT = [
    ("email", "", "Enter the patient's email address."),
    ("email", "jane@@x.com", "Enter a valid email address, e.g. jane@example.com."),
    ("email", "a" * 64 + "@" + "b" * 186 + ".com", "An email address has at most 254 characters."),
    ("email", "a@b.com\r\nBcc: x@y.com", "Enter a valid email address, e.g. jane@example.com."),
    ("email", "jane", "Enter a valid email address, e.g. jane@example.com."),
    ("phone", "", "Enter the patient's phone number."),
    (
        "phone",
        "123-456-7890",
        "This is not a valid US number: the area code and the next three digits cannot start with 0 or 1.",
    ),
    ("phone", "617-911-1234", "This is not a valid US number (N11 codes such as 911 are service codes)."),
    ("phone", "617-555-CALL", "A phone number contains digits only, e.g. (617) 555-0123."),
    ("phone", "617-555-0123 x12", "Enter the phone number without an extension."),
    ("phone", "555-0123", "Enter a 10-digit US phone number, e.g. (617) 555-0123."),
    ("phone", "617/555/0123", "Enter a phone number like (617) 555-0123."),
    ("date_of_birth", "", "Enter the date of birth."),
    ("date_of_birth", "2001-02-29", "Enter a real date, e.g. 1985-04-12 (YYYY-MM-DD) or 04/12/1985."),
    ("date_of_birth", "yesterday", "Enter a real date, e.g. 1985-04-12 (YYYY-MM-DD) or 04/12/1985."),
    ("date_of_birth", "1899-12-31", "The date of birth cannot be before 1900."),
    ("first_name", "", "First name is required."),
    ("first_name", "   ", "First name is required."),
    ("last_name", "x" * 10_000, "Last name has at most 100 characters (it has 10000)."),
    ("first_name", "Ja\x00ne", "First name contains an invisible control character; please retype it."),
    ("last_name", "Doe\u202e", "Last name contains an invisible control character; please retype it."),
    ("last_name", "Do\u200be", "Last name contains an invisible control character; please retype it."),
    ("gender", "", "Choose the patient's gender (the lab requires it)."),
    ("gender", "robot", "Choose one of the listed options."),
]


@pytest.mark.parametrize(("field", "typed", "message"), REFUSED_PATIENT)
def test_patient_values_refused(field, typed, message):
    form = patient_form(**{field: typed})
    assert not form.is_valid()
    assert form.errors[field] == [message]
    assert list(form.errors) == [field]


@pytest.mark.parametrize(
    ("date_of_birth", "message"),
    [
        (lambda: today() + dt.timedelta(days=1), "The date of birth must be in the past."),
        (lambda: today(), "The date of birth must be in the past."),
        (
            lambda: years_ago(18) + dt.timedelta(days=1),
            "The patient must be at least 18 years old to use an at-home kit.",
        ),
        (lambda: years_ago(10), "The patient must be at least 18 years old to use an at-home kit."),
    ],
    ids=["tomorrow", "today", "one-day-short-of-18", "a-child"],
)
def test_dates_of_birth_refused(date_of_birth, message):
    form = patient_form(date_of_birth=date_of_birth().isoformat())
    assert form.errors["date_of_birth"] == [message]


REFUSED_ADDRESS = [
    ("zipcode", "2139", "Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307."),
    ("zipcode", "ABCDE", "Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307."),
    ("zipcode", "02139-43", "Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307."),
    ("zipcode", "", "Enter the ZIP code."),
    ("state", "XX", "Choose a US state (two letters, e.g. MA)."),
    (
        "state",
        "PR",
        "Kits can be shipped to the 50 states and DC only; territories and military addresses are not served.",
    ),
    (
        "state",
        "AE",
        "Kits can be shipped to the 50 states and DC only; territories and military addresses are not served.",
    ),
    ("state", "", "Choose the state."),
    ("street1", "", "Street address is required."),
    ("street1", "x" * 256, "Street address has at most 255 characters."),
    ("street1", "1 Main\x00St", "Street address contains an invisible control character."),
    ("street2", "Apt\u202e 4", "Apartment, suite, etc. contains an invisible control character."),
    ("city", "", "City is required."),
    ("city", "x" * 101, "City has at most 100 characters."),
]


@pytest.mark.parametrize(("field", "typed", "message"), REFUSED_ADDRESS)
def test_address_values_refused(field, typed, message):
    form = address_form(**{field: typed})
    assert not form.is_valid()
    assert form.errors[field] == [message]


# --- Stored exactly as typed, end to end ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["O'Brien", "Zoë", "Nguyễn", "李小龍", "de la Cruz", "Null", "<script>alert(1)</script>"]
)
def test_names_are_stored_exactly_as_typed(staff_client, name):
    order = OrderFactory(submission_status="queued", upstream_id=None, state="", status="pending")
    data = {
        "idempotency_key": str(uuid.uuid4()),
        **VALID_PATIENT,
        "first_name": name,
        "last_name": name,
        "addresses-TOTAL_FORMS": "1",
        "addresses-INITIAL_FORMS": "0",
        **{f"addresses-0-{k}": v for k, v in VALID_ADDRESS.items()},
    }
    response = staff_client.post(reverse("orders:register_kit", args=[order.pk]), data)
    assert response.status_code == 302
    patient = KitRegistration.objects.get().patient
    assert (patient.first_name, patient.last_name) == (name, name)
