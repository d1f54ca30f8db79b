"""Kit registration services: register a kit to a patient against an order, and send it."""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.core.states import Move, Submission, record_state_change
from portal.core.submission import submission_claim, submission_record_failure
from portal.kits.models import KitRegistration
from portal.orders.models import Order
from portal.patients.models import Patient
from portal.patients.services import AddressData, PatientData, patient_create
from portal.upstream.client import get_client
from portal.upstream.errors import UpstreamError, UpstreamRejected
from portal.upstream.types import AddressIn, RegistrationIn, UserIn

logger = logging.getLogger(__name__)


class RegistrationError(Exception):
    """A staff-facing problem with a kit registration request."""


def registration_create(
    *,
    order: Order,
    patient: Patient | None = None,
    patient_data: PatientData | None = None,
    addresses: list[AddressData] | None = None,
    created_by=None,
    idempotency_key: uuid.UUID | None = None,
) -> KitRegistration:
    """Save a kit registration (and a new patient when `patient_data` is given) locally.

    Saved before anything is sent, so nothing typed is lost. The same idempotency
    key returns the same registration: a double click creates one record. When a
    registration with this key was rejected by the lab, the corrected data replace
    the patient's and it is queued again, so staff fix a form and resubmit it.
    """
    if (patient is None) == (patient_data is None):
        raise ValueError("give either an existing patient or the data of a new one")
    key = idempotency_key or uuid.uuid4()
    existing = KitRegistration.objects.filter(idempotency_key=key).select_related("patient").first()
    if existing:
        if existing.submission_status == Submission.REJECTED:
            return _registration_correct(existing, patient=patient, patient_data=patient_data, addresses=addresses)
        return existing
    if order.submission_status == Submission.REJECTED:
        raise RegistrationError("This order was rejected by the lab; kits cannot be registered against it.")
    try:
        with transaction.atomic():
            if patient is None:
                patient = patient_create(data=patient_data, addresses=addresses or [], created_by=created_by)
            registration = KitRegistration.objects.create(
                order=order, patient=patient, created_by=created_by, idempotency_key=key
            )
    except IntegrityError:
        return KitRegistration.objects.get(idempotency_key=key)
    logger.info("kit registration %s created locally for order %s", registration.pk, order.pk)
    return registration


@transaction.atomic
def _registration_correct(registration, *, patient, patient_data, addresses) -> KitRegistration:
    from portal.patients.models import Address

    if patient is not None:
        registration.patient = patient
    elif registration.patient.registrations.exclude(pk=registration.pk).exists():
        # The patient has other kits: corrected data make a new patient rather
        # than rewrite the record those kits were registered with.
        registration.patient = patient_create(data=patient_data, addresses=addresses or [], created_by=None)
    else:
        target = registration.patient
        for field, value in patient_data.__dict__.items():
            setattr(target, field, value)
        target.save()
        if addresses:
            target.addresses.all().delete()
            Address.objects.bulk_create(
                Address(patient=target, position=i, **a.__dict__) for i, a in enumerate(addresses)
            )
    registration.submission_status = Submission.QUEUED
    registration.save(update_fields=["patient", "submission_status", "updated_at"])
    return registration


def registration_enqueue_submit(registration: KitRegistration) -> None:
    """Send the registration in the background once the current transaction commits."""
    from portal.kits.tasks import registration_submit_task

    transaction.on_commit(lambda: registration_submit_task.delay(registration.pk), robust=True)


def registration_payload(registration: KitRegistration) -> RegistrationIn:
    """The partner's view of a registration: the patient and their addresses."""
    p = registration.patient
    return RegistrationIn(
        user=UserIn(
            email=p.email,
            first_name=p.first_name,
            last_name=p.last_name,
            dob=p.date_of_birth,
            phone=p.phone,
            gender=p.gender,
        ),
        addresses=tuple(
            AddressIn(street1=a.street1, street2=a.street2, city=a.city, state=a.state, zipcode=a.zipcode)
            for a in p.addresses.all()
        ),
    )


def registration_submit(*, registration_id: int) -> KitRegistration:
    """Register the kit at the lab, once. A registration whose order is not accepted
    yet stays queued and is sent when the order is."""
    registration = KitRegistration.objects.select_related("order").get(pk=registration_id)
    if not registration.order.upstream_id:
        return registration
    if not submission_claim(KitRegistration, registration_id):
        return KitRegistration.objects.get(pk=registration_id)
    registration = KitRegistration.objects.select_related("order", "patient").get(pk=registration_id)
    try:
        upstream = get_client().register_kit(registration.order.upstream_id, registration_payload(registration))
    except UpstreamError as exc:
        submission_record_failure(registration, exc)
        return registration
    except ValueError:
        # The stored data cannot be put in the partner's format (e.g. edited in
        # admin past the forms' validation): nothing was sent; staff must fix it.
        submission_record_failure(
            registration, UpstreamRejected("the patient's phone or ZIP code is not in a format the lab accepts")
        )
        return registration
    from portal.results.services import result_create_for_registration

    with transaction.atomic():
        registration = KitRegistration.objects.select_for_update().get(pk=registration_id)
        move = Move(registration.state, upstream.state, "", "")
        registration.upstream_id = upstream.id
        registration.kit_id = upstream.kit_id
        registration.upstream_user_id = upstream.user_id
        registration.state = upstream.state[:64]
        registration.raw_payload = upstream.raw
        registration.submission_status = Submission.ACCEPTED
        registration.submitting_since = None
        registration.last_error_class = registration.last_error = ""
        registration.registered_at = timezone.now()
        registration.save()
        record_state_change(registration, move, source="submission")
        if upstream.user_id and not registration.patient.upstream_user_id:
            type(registration.patient).objects.filter(pk=registration.patient_id).update(
                upstream_user_id=upstream.user_id
            )
        result_create_for_registration(registration)
    logger.info("kit registration %s accepted upstream as %s", registration.pk, registration.upstream_id)
    return registration


def registration_retry_submission(*, registration_id: int, actor=None) -> KitRegistration:
    """Staff asked to send a failed registration again."""
    updated = KitRegistration.objects.filter(
        pk=registration_id, submission_status__in=[Submission.FAILED, Submission.REJECTED]
    ).update(submission_status=Submission.QUEUED, updated_at=timezone.now())
    if not updated:
        raise RegistrationError("Only a registration whose submission failed or was rejected can be sent again.")
    registration = KitRegistration.objects.get(pk=registration_id)
    record_state_change(
        registration,
        Move(registration.state, registration.state, "", ""),
        source="staff" if actor else "system",
        actor=actor,
        note="Asked to send the registration to the lab again",
    )
    return registration_submit(registration_id=registration_id)


def registration_resolve_review(
    *,
    registration_id: int,
    actor,
    confirmed_absent: bool = False,
    upstream_id: int | None = None,
    kit_id: str = "",
) -> KitRegistration:
    """Settle a registration whose submission outcome was unknown, after a person
    checked with the lab: either it does not exist there (`confirmed_absent`: it is
    queued to be sent again), or it does, with the lab's registration id and kit id
    (it is linked, and its result is polled)."""
    from portal.results.services import result_create_for_registration

    kit_id = (kit_id or "").strip()
    if confirmed_absent == bool(upstream_id and kit_id):
        raise RegistrationError("Either confirm it is not at the lab, or give the lab's registration id and kit id.")
    with transaction.atomic():
        registration = KitRegistration.objects.select_for_update().get(pk=registration_id)
        if registration.submission_status != Submission.NEEDS_REVIEW:
            raise RegistrationError("This registration does not need review.")
        if confirmed_absent:
            registration.submission_status = Submission.QUEUED
            note = "Confirmed not registered at the lab; queued to be sent again"
        else:
            taken = KitRegistration.objects.exclude(pk=registration.pk)
            if taken.filter(upstream_id=upstream_id).exists() or taken.filter(kit_id__iexact=kit_id).exists():
                raise RegistrationError("That lab registration id or kit id belongs to another registration.")
            registration.upstream_id = upstream_id
            registration.kit_id = kit_id
            registration.state = registration.state or "registered"
            registration.registered_at = registration.registered_at or timezone.now()
            registration.submission_status = Submission.ACCEPTED
            note = f"Linked to lab registration {upstream_id} after review"
        registration.last_error_class = registration.last_error = ""
        registration.submitting_since = None
        registration.save()
        record_state_change(
            registration,
            Move(registration.state, registration.state, "", ""),
            source="staff",
            actor=actor,
            note=note,
        )
        if confirmed_absent:
            registration_enqueue_submit(registration)
        else:
            result_create_for_registration(registration, actor=actor)
    return registration


def registration_set_result_id(*, registration_id: int, result_upstream_id: int, actor=None) -> KitRegistration:
    """Set or correct the lab result id of a registration (NOTES.md point 15)."""
    from portal.results.models import Result
    from portal.results.services import result_create_for_registration

    if result_upstream_id <= 0:
        raise RegistrationError("A result id is a positive number.")
    with transaction.atomic():
        registration = KitRegistration.objects.select_for_update().get(pk=registration_id)
        if Result.objects.filter(upstream_id=result_upstream_id).exclude(registration=registration).exists():
            raise RegistrationError(f"Result id {result_upstream_id} belongs to another kit registration.")
        registration.result_upstream_id = result_upstream_id
        registration.save(update_fields=["result_upstream_id", "updated_at"])
        result_create_for_registration(registration, actor=actor)
    return registration
