"""Patient services. Inputs arrive validated and normalised by the forms."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from portal.patients.models import Address, Patient


@dataclass(frozen=True)
class AddressData:
    street1: str
    city: str
    state: str
    zipcode: str
    street2: str = ""


@dataclass(frozen=True)
class PatientData:
    first_name: str
    last_name: str
    email: str
    date_of_birth: dt.date
    phone: str
    gender: str


@transaction.atomic
def patient_create(*, data: PatientData, addresses: list[AddressData], created_by=None) -> Patient:
    """A new patient with one or more addresses, in the order given."""
    if not addresses:
        raise ValueError("a patient needs at least one address")
    patient = Patient.objects.create(**data.__dict__, created_by=created_by)
    Address.objects.bulk_create(
        Address(patient=patient, position=i, **address.__dict__) for i, address in enumerate(addresses)
    )
    return patient


def patient_find_match(*, email: str, date_of_birth: dt.date) -> Patient | None:
    """The existing patient with this email and date of birth, if exactly one exists."""
    matches = list(Patient.objects.filter(email__iexact=email, date_of_birth=date_of_birth)[:2])
    return matches[0] if len(matches) == 1 else None
