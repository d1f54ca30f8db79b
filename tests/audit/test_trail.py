"""The create/change/delete trail (django-auditlog): every change of a patient,
address, order, kit registration, result or email names its actor, its time and
the values before and after; the worker and commands act as the SYSTEM actor."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from portal.audit.actors import SYSTEM_USERNAME, system_user
from portal.audit.receivers import addresses_log_unlogged
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.orders.services import order_create
from portal.orders.tasks import order_submit_task
from portal.patients.models import Address, Patient
from portal.patients.services import AddressData, PatientData, patient_create
from portal.results.models import Result
from portal.results.services import result_apply_state
from tests.factories import (
    AddressFactory,
    NotificationFactory,
    OrderFactory,
    PatientFactory,
    RegistrationFactory,
    ResultFactory,
)

pytestmark = pytest.mark.django_db


def entries(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp", "id"))


def patient_admin_data(patient: Patient, **changes) -> dict:
    return {
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "email": patient.email,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "phone": patient.phone,
        "gender": patient.gender,
        "addresses-TOTAL_FORMS": "0",
        "addresses-INITIAL_FORMS": "0",
        "addresses-MIN_NUM_FORMS": "0",
        "addresses-MAX_NUM_FORMS": "1000",
        **changes,
    }


# --- every audited model: create, change, delete, with before/after -------------------------

AUDITED = {
    "patient": (PatientFactory, "first_name", "Janet"),
    "address": (AddressFactory, "city", "Somerville"),
    "order": (OrderFactory, "state", "shipped"),
    "kitregistration": (RegistrationFactory, "state", "received"),
    "result": (ResultFactory, "state", "processing"),
    "notification": (NotificationFactory, "status", Notification.Status.SENT),
}


@pytest.mark.parametrize("name", sorted(AUDITED))
def test_create_change_and_delete_are_recorded_with_before_and_after(name, admin_user):
    factory, field, new_value = AUDITED[name]
    with set_actor(admin_user):
        obj = factory()
        old_value = getattr(obj, field)
        setattr(obj, field, new_value)
        obj.save()
        pk = obj.pk
        content_type_model = obj._meta.model_name
        obj.delete()

    created, changed, deleted = LogEntry.objects.filter(content_type__model=content_type_model, object_id=pk).order_by(
        "id"
    )
    assert created.action == LogEntry.Action.CREATE
    assert changed.action == LogEntry.Action.UPDATE
    assert deleted.action == LogEntry.Action.DELETE
    assert changed.changes_dict[field] == [str(old_value), str(new_value)]
    assert {created.actor, changed.actor, deleted.actor} == {admin_user}
    assert all(entry.timestamp for entry in (created, changed, deleted))


def test_a_change_in_admin_names_the_admin_and_their_address(admin_client_, admin_user):
    patient = PatientFactory(phone="6175550123")

    response = admin_client_.post(
        reverse("admin:patients_patient_change", args=[patient.pk]),
        patient_admin_data(patient, phone="(617) 555-0199"),
        REMOTE_ADDR="203.0.113.7",
        HTTP_X_FORWARDED_FOR="198.51.100.66",  # forged by the client: no proxy is trusted
    )

    assert response.status_code == 302
    change = entries(patient)[-1]
    assert change.action == LogEntry.Action.UPDATE
    assert change.actor == admin_user
    assert change.changes_dict["phone"] == ["6175550123", "6175550199"]
    assert change.remote_addr == "203.0.113.7"


def test_the_address_behind_trusted_proxies_is_the_one_the_proxies_saw(admin_client_, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    patient = PatientFactory()

    admin_client_.post(
        reverse("admin:patients_patient_change", args=[patient.pk]),
        patient_admin_data(patient, first_name="Janine"),
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.66, 203.0.113.7",
    )

    assert entries(patient)[-1].remote_addr == "203.0.113.7"


# --- who: the SYSTEM actor ---------------------------------------------------------------------


def test_the_system_actor_can_never_sign_in(client):
    user = get_user_model().objects.get(username=SYSTEM_USERNAME)  # made by the data migration

    assert not user.is_active and not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser and not user.groups.exists()
    assert not user.check_password("") and not user.check_password("!")
    client.post(reverse("login"), {"username": SYSTEM_USERNAME, "password": "anything-at-all-1"})
    assert "_auth_user_id" not in client.session
    assert system_user() == user


def test_a_celery_task_acts_as_the_system_actor(partner):
    order = Order.objects.create(amount=Decimal("199.00"))
    partner.create_order(id=4242)

    order_submit_task.apply(args=[order.pk], throw=True)

    accepted = entries(order)[-1]
    assert accepted.changes_dict["submission_status"][1] == Submission.ACCEPTED
    assert accepted.actor.username == SYSTEM_USERNAME


def test_a_task_run_inside_a_request_leaves_the_persons_actor_in_place(partner, staff_user):
    partner.create_order(id=4243)
    with set_actor(staff_user):
        order = Order.objects.create(amount=Decimal("199.00"))
        order_submit_task.apply(args=[order.pk], throw=True)  # eager, as CELERY_TASK_ALWAYS_EAGER would
        order.amount = Decimal("150.00")
        order.save()

    created, by_task, by_person = entries(order)
    assert created.actor == staff_user
    assert by_task.actor.username == SYSTEM_USERNAME
    assert by_person.actor == staff_user


def test_a_management_command_acts_as_the_system_actor(partner):
    result = ResultFactory(state="awaiting_sample")
    partner.get_result(result.upstream_id, state="processing")

    call_command("sync_result", str(result.pk))

    change = entries(result)[-1]
    assert change.changes_dict["state"] == ["awaiting_sample", "processing"]
    assert change.actor.username == SYSTEM_USERNAME


def test_no_change_is_ever_recorded_without_an_actor():
    order_create(amount=Decimal("10.00"))

    assert not LogEntry.objects.filter(actor__isnull=True).exists()


# --- what is left out, and what bulk writes hide ------------------------------------------------


def test_a_poll_that_changes_nothing_writes_no_entry():
    result = ResultFactory(state="processing", status="in_progress")
    before = len(entries(result))

    result_apply_state(result_id=result.pk, state="processing", raw={"id": result.upstream_id, "state": "processing"})
    result_apply_state(result_id=result.pk, state="processing", raw={"id": result.upstream_id, "state": "processing"})

    result.refresh_from_db()
    assert result.poll_count == 2 and result.raw_payload["state"] == "processing"
    # The lab's raw answer is kept on the result, not copied into the audit trail.
    assert len(entries(result)) == before


def test_a_poll_that_changes_the_state_writes_one_entry_with_the_state_only():
    result = ResultFactory(state="processing", status="in_progress")
    before = len(entries(result))

    result_apply_state(result_id=result.pk, state="ready", raw={"id": result.upstream_id, "state": "ready"})

    (entry,) = entries(result)[before:]
    assert set(entry.changes_dict) == {"state", "status", "ready_at"}


def test_addresses_created_in_bulk_get_their_create_entry_after_commit(django_capture_on_commit_callbacks):
    data = PatientData(
        first_name="Ada", last_name="Byron", email="ada@example.com",
        date_of_birth=dt.date(1970, 1, 1), phone="6175550123", gender="female",
    )  # fmt: skip
    homes = [
        AddressData(street1="1 Main St", city="Cambridge", state="MA", zipcode="02139"),
        AddressData(street1="2 Elm St", city="Boston", state="MA", zipcode="02118"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        patient = patient_create(data=data, addresses=homes)

    for address in Address.objects.filter(patient=patient):
        (created,) = entries(address)
        assert created.action == LogEntry.Action.CREATE
        assert created.changes_dict["street1"] == ["None", address.street1]
        assert created.actor.username == SYSTEM_USERNAME
    assert addresses_log_unlogged(patient_id=patient.pk) == 0  # never twice


def test_every_audited_model_is_registered():
    from auditlog.registry import auditlog

    for model in (Patient, Address, Order, KitRegistration, Result, Notification):
        assert auditlog.contains(model), model
