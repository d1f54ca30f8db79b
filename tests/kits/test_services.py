import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
import requests

from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.kits.services import (
    RegistrationError,
    registration_create,
    registration_set_result_id,
    registration_submit,
)
from portal.orders.models import Order
from portal.patients.models import Patient
from portal.patients.services import AddressData, PatientData
from portal.results.models import Result
from tests.factories import OrderFactory, PatientFactory, RegistrationFactory

pytestmark = pytest.mark.django_db

JANE = PatientData(
    first_name="Jane",
    last_name="O'Brien",
    email="jane@example.com",
    date_of_birth=dt.date(1980, 1, 2),
    phone="6175550123",
    gender="female",
)
HOME = AddressData(street1="1 Main St", city="Cambridge", state="MA", zipcode="02139")
WORK = AddressData(street1="2 Elm St", street2="Suite 4", city="Boston", state="MA", zipcode="02110-1234")


def test_register_new_patient_with_two_addresses_and_submit(partner):
    order = OrderFactory(upstream_id=321)
    partner.register_kit(321, id=88, kit_id="ab12cd34ef", user_id=9)
    registration = registration_create(order=order, patient_data=JANE, addresses=[HOME, WORK])
    registration = registration_submit(registration_id=registration.pk)
    assert registration.submission_status == Submission.ACCEPTED
    assert (registration.upstream_id, registration.kit_id, registration.state) == (
        88,
        "ab12cd34ef",
        "registered",
    )
    assert Result.objects.get(registration=registration).upstream_id == 88
    sent = json.loads(partner.calls_to("/registration", "POST")[0].request.body)
    assert [a["street1"] for a in sent["addresses"]] == ["1 Main St", "2 Elm St"]
    assert sent["user"]["phone_number"] == 6175550123
    assert Patient.objects.get().upstream_user_id == 9


def test_registration_waits_for_its_order_to_be_accepted(partner):
    order = Order.objects.create(amount=Decimal("9.00"))
    registration = registration_create(order=order, patient_data=JANE, addresses=[HOME])
    registration = registration_submit(registration_id=registration.pk)
    assert registration.submission_status == Submission.QUEUED
    assert not partner.calls_to("/registration")


def test_double_submit_creates_one_registration_and_one_patient():
    order = OrderFactory()
    key = uuid.uuid4()
    a = registration_create(order=order, patient_data=JANE, addresses=[HOME], idempotency_key=key)
    b = registration_create(order=order, patient_data=JANE, addresses=[HOME], idempotency_key=key)
    assert a.pk == b.pk
    assert KitRegistration.objects.count() == 1 and Patient.objects.count() == 1


def test_rejected_registration_is_corrected_and_resent_with_the_same_key(partner):
    order = OrderFactory(upstream_id=10)
    key = uuid.uuid4()
    partner.register_kit(10, status=422, json={"error": "phone_number is invalid"})
    first = registration_submit(
        registration_id=registration_create(order=order, patient_data=JANE, addresses=[HOME], idempotency_key=key).pk
    )
    assert first.submission_status == Submission.REJECTED
    assert "phone_number is invalid" in first.last_error

    partner.mock.reset()
    partner.mock.get(f"{partner.auth}/v1/token", json={"token": "t"})
    partner.register_kit(10, id=5)
    fixed = PatientData(**{**JANE.__dict__, "phone": "6175550199"})
    again = registration_create(order=order, patient_data=fixed, addresses=[HOME], idempotency_key=key)
    assert again.pk == first.pk and again.submission_status == Submission.QUEUED
    again = registration_submit(registration_id=again.pk)
    assert again.submission_status == Submission.ACCEPTED
    assert Patient.objects.get().phone == "6175550199"


def test_outcome_unknown_registration_is_marked_for_review(partner):
    order = OrderFactory(upstream_id=11)
    partner.register_kit(11, body=requests.exceptions.ReadTimeout())
    registration = registration_create(order=order, patient_data=JANE, addresses=[HOME])
    registration = registration_submit(registration_id=registration.pk)
    assert registration.submission_status == Submission.NEEDS_REVIEW
    registration_submit(registration_id=registration.pk)
    assert len(partner.calls_to("/registration", "POST")) == 1


def test_existing_patient_is_registered_without_a_new_patient():
    patient = PatientFactory()
    registration = registration_create(order=OrderFactory(), patient=patient)
    assert registration.patient == patient and Patient.objects.count() == 1


def test_kits_cannot_be_registered_against_a_rejected_order():
    order = Order.objects.create(amount=Decimal("1.00"), submission_status=Submission.REJECTED)
    with pytest.raises(RegistrationError):
        registration_create(order=order, patient_data=JANE, addresses=[HOME])


def test_staff_can_set_the_result_id():
    registration = RegistrationFactory(upstream_id=70)
    registration_set_result_id(registration_id=registration.pk, result_upstream_id=700)
    assert Result.objects.get(registration=registration).upstream_id == 700
    registration_set_result_id(registration_id=registration.pk, result_upstream_id=701)
    assert Result.objects.get(registration=registration).upstream_id == 701


def test_data_the_lab_cannot_take_is_rejected_before_sending(partner, monkeypatch):
    registration = RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.QUEUED)

    def unformattable(registration):
        raise ValueError("zipcode")

    monkeypatch.setattr("portal.kits.services.registration_payload", unformattable)
    registration = registration_submit(registration_id=registration.pk)
    assert registration.submission_status == Submission.REJECTED
    assert not partner.calls_to("/registration")


def test_review_can_link_a_registration_that_exists_at_the_lab(staff_user):
    from portal.kits.services import registration_resolve_review

    registration = RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.NEEDS_REVIEW)
    registration = registration_resolve_review(
        registration_id=registration.pk, actor=staff_user, upstream_id=4242, kit_id="ab12cd34ef"
    )
    assert registration.submission_status == Submission.ACCEPTED
    assert Result.objects.get(registration=registration).upstream_id == 4242
    with pytest.raises(RegistrationError):
        registration_resolve_review(registration_id=registration.pk, actor=staff_user, confirmed_absent=True)


def test_a_result_id_used_by_another_registration_is_refused():
    first = RegistrationFactory(upstream_id=80)
    registration_set_result_id(registration_id=first.pk, result_upstream_id=800)
    second = RegistrationFactory(upstream_id=81)
    with pytest.raises(RegistrationError, match="belongs to another"):
        registration_set_result_id(registration_id=second.pk, result_upstream_id=800)


def test_a_staff_retry_is_on_the_timeline(partner, staff_user):
    from portal.core.states import timeline
    from portal.kits.services import registration_retry_submission

    registration = RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.FAILED)
    partner.register_kit(registration.order.upstream_id, id=91)
    registration_retry_submission(registration_id=registration.pk, actor=staff_user)
    assert any(c.actor == staff_user and "again" in c.note for c in timeline(registration))


def test_correcting_a_rejected_kit_never_rewrites_a_patient_with_other_kits(partner):
    order = OrderFactory(upstream_id=12)
    earlier = RegistrationFactory()
    key = uuid.uuid4()
    partner.register_kit(12, status=422, json={"error": "bad"})
    rejected = registration_submit(
        registration_id=registration_create(order=order, patient=earlier.patient, idempotency_key=key).pk
    )
    assert rejected.submission_status == Submission.REJECTED
    fixed = PatientData(**{**JANE.__dict__, "first_name": "Janet"})
    again = registration_create(order=order, patient_data=fixed, addresses=[HOME], idempotency_key=key)
    earlier.patient.refresh_from_db()
    assert earlier.patient.first_name == "Jane"
    assert again.patient_id != earlier.patient_id and again.patient.first_name == "Janet"
