"""Each row checked with the single form's rules; orders, patients and duplicates in three queries."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.bulk.csvfile import ParsedRow
from portal.bulk.models import BulkRow
from portal.bulk.validation import ROW, check_rows
from portal.core.states import Submission
from tests.bulk.conftest import row
from tests.factories import OrderFactory, PatientFactory, RegistrationFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 1)


def check(*rows, today=TODAY):
    return check_rows([ParsedRow(n, values) for n, values in enumerate(rows, start=2)], today=today)


def test_a_good_row_is_valid_and_normalised(order):
    (result,) = check(row(order, 1, phone="617.555.0123", email="Ada@EXAMPLE.com", gender="Female", state="ma"))
    assert result.outcome == BulkRow.Outcome.VALID and result.errors == {}
    assert result.cleaned == {
        "order": order.pk,
        "first_name": "Ada",
        "last_name": "Lovelace1",
        "email": "Ada@example.com",
        "date_of_birth": "1985-04-12",
        "phone": "6175550123",
        "gender": "female",
        "street1": "12 Analytical Way",
        "street2": "",
        "city": "Boston",
        "state": "MA",
        "zipcode": "02139",
    }
    assert result.patient_id is None  # a new patient


def test_us_dates_as_excel_writes_them_are_accepted(order):
    (a, b) = check(row(order, 1, date_of_birth="4/12/1985"), row(order, 2, date_of_birth="04/12/1985"))
    assert a.cleaned["date_of_birth"] == b.cleaned["date_of_birth"] == "1985-04-12"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("first_name", "", "First name is required."),
        ("last_name", "x" * 101, "Last name has at most 100 characters"),
        ("first_name", "Ad\u202ea", "invisible control character"),
        ("email", "", "Enter the patient's email address."),
        ("email", "not-an-email", "Enter a valid email address"),
        ("date_of_birth", "", "Enter the date of birth."),
        ("date_of_birth", "12/04/85", "Enter a real date"),
        ("date_of_birth", "1985-02-30", "Enter a real date"),
        ("date_of_birth", "2027-01-01", "must be in the past"),
        ("date_of_birth", "2015-01-01", "at least 18 years old"),
        ("phone", "", "Enter the patient's phone number."),
        ("phone", "555-0123", "10-digit"),
        ("phone", "(617) 555-0123 x12", "without an extension"),
        ("gender", "", "gender"),
        ("gender", "robot", "Enter female, male or other."),
        ("street1", "", "Street address is required."),
        ("city", "", "City is required."),
        ("state", "Massachusetts", "Choose a US state"),
        ("state", "PR", "50 states and DC"),
        ("zipcode", "ABCDE", "5-digit ZIP code"),
        ("zipcode", "2139", "lost its leading zero"),
        ("order_id", "", "Enter the order"),
        ("order_id", "ORD-1", "as digits"),
        ("order_id", "999999", "No order with lab id 999999"),
        ("order_id", "#999999", "No order #999999"),
    ],
)
def test_each_kind_of_error_is_reported_against_its_column(order, column, value, message):
    (result,) = check(row(order, 1, **{column: value}))
    assert result.outcome == BulkRow.Outcome.INVALID
    assert list(result.errors) == [column]
    assert message in result.errors[column]
    assert result.cleaned == {}


def test_several_errors_in_one_row_are_all_reported(order):
    (result,) = check(row(order, 1, email="nope", phone="1", zipcode=""))
    assert set(result.errors) == {"email", "phone", "zipcode"}


def test_a_shifted_row_is_reported_as_a_whole(order):
    result = check_rows([ParsedRow(2, row(order, 1), extra_cells=2)], today=TODAY)[0]
    assert "2 more cells" in result.errors[ROW]


def test_an_order_the_portal_has_not_sent_yet_is_named_by_its_number():
    waiting = OrderFactory(upstream_id=None, submission_status=Submission.QUEUED)
    (result,) = check(row(f"#{waiting.pk}", 1))
    assert result.outcome == BulkRow.Outcome.VALID and result.order_id == waiting.pk


def test_an_order_the_lab_rejected_is_refused():
    rejected = OrderFactory(upstream_id=None, submission_status=Submission.REJECTED)
    (result,) = check(row(f"#{rejected.pk}", 1))
    assert "rejected by the lab" in result.errors["order_id"]


def test_a_row_repeating_an_earlier_one_is_a_duplicate_within_the_file(order):
    other_order = OrderFactory()
    first, again, other, case = check(
        row(order, 1),
        row(order, 1, first_name="Another"),
        row(other_order, 1),  # the same patient on another order: a second kit, not a duplicate
        row(order, 1, email="PATIENT1@example.com"),
    )
    assert first.outcome == other.outcome == BulkRow.Outcome.VALID
    assert (again.outcome, again.duplicate_of) == (BulkRow.Outcome.DUPLICATE, 2)
    assert (case.outcome, case.duplicate_of) == (BulkRow.Outcome.DUPLICATE, 2)


def test_an_invalid_row_does_not_make_the_next_one_a_duplicate(order):
    bad, good = check(row(order, 1, phone="1"), row(order, 1))
    assert bad.outcome == BulkRow.Outcome.INVALID
    assert good.outcome == BulkRow.Outcome.VALID


def test_a_row_matching_an_existing_patient_is_attached_to_them(order):
    patient = PatientFactory(email="Patient1@Example.com", date_of_birth=dt.date(1985, 4, 12))
    PatientFactory(email="patient2@example.com", date_of_birth=dt.date(1990, 1, 1))  # other date of birth
    matched, not_matched = check(row(order, 1), row(order, 2))
    assert matched.patient_id == patient.pk
    assert not_matched.patient_id is None


def test_two_existing_patients_with_the_same_email_and_birth_date_match_neither(order):
    PatientFactory(email="patient1@example.com", date_of_birth=dt.date(1985, 4, 12))
    PatientFactory(email="patient1@example.com", date_of_birth=dt.date(1985, 4, 12))
    (result,) = check(row(order, 1))
    assert result.outcome == BulkRow.Outcome.VALID and result.patient_id is None


def test_a_row_already_registered_for_the_same_order_and_patient_is_a_duplicate(order):
    patient = PatientFactory(email="patient1@example.com", date_of_birth=dt.date(1985, 4, 12))
    existing = RegistrationFactory(order=order, patient=patient)
    RegistrationFactory(order=OrderFactory(), patient=PatientFactory(email="patient2@example.com"))
    dup, other = check(row(order, 1), row(order, 2))
    assert (dup.outcome, dup.registration_id) == (BulkRow.Outcome.DUPLICATE, existing.pk)
    assert other.outcome == BulkRow.Outcome.VALID  # patient2 is registered on another order only


def test_a_row_for_a_registration_the_lab_rejected_corrects_it(order):
    patient = PatientFactory(email="patient1@example.com", date_of_birth=dt.date(1985, 4, 12))
    rejected = RegistrationFactory(
        order=order, patient=patient, upstream_id=None, kit_id=None, submission_status=Submission.REJECTED
    )
    (result,) = check(row(order, 1))
    assert result.outcome == BulkRow.Outcome.VALID
    assert result.corrects and result.registration_id == rejected.pk


def _queries(rows) -> int:
    with CaptureQueriesContext(connection) as queries:
        check(*rows)
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_rows(order):
    for n in range(20):
        RegistrationFactory(order=order, patient=PatientFactory(email=f"patient{n}@example.com"))
    few = _queries([row(order, n) for n in range(3)])
    many = _queries([row(order, n) for n in range(60)] + [row(OrderFactory(), n) for n in range(60)])
    assert few == many == 3  # orders, patients, registrations
