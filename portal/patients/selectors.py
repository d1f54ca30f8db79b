"""Reads of patients for the staff pages, joins set for a fixed query count."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Lower

from portal.kits.models import KitRegistration
from portal.kits.selectors import registration_count
from portal.patients.models import Patient


def patient_list() -> QuerySet[Patient]:
    """Patients by name, with how many kits each has."""
    return Patient.objects.annotate(registration_count=registration_count(per="patient")).order_by(
        "last_name", "first_name", "id"
    )


# Trigram indexes serve "contains" for words of 3 characters or more; a shorter word
# ("Li", "Ng", "Wu") matches a whole first or last name instead, any case, which an
# index serves too and is what staff mean by it (not every "Alice" and "William").
MIN_CONTAINS = 3


def patient_match_q(word: str) -> Q:
    """The condition "this patient matches `word`" (see `patient_search`)."""
    if len(word) < MIN_CONTAINS:
        return Q(first_name__iexact=word) | Q(last_name__iexact=word)
    return Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)


def patient_search(queryset: QuerySet[Patient], text: str) -> QuerySet[Patient]:
    """Patients whose first name, last name or email contain every word of `text`
    ("jane doe", "doe", "jane@example"), case-insensitively, still by name; a word of
    one or two letters must be a whole first or last name.

    The matches come from the trigram indexes (PostgreSQL). They are ordered by the
    lower-cased name, which no index holds: otherwise the planner, asked for the first
    50 by name, walks the name index from "A" testing every patient (0.8 s at 650,000
    patients for "Nakamura") instead of sorting the few hundred that match.
    """
    words = (text or "").split()[:5]
    for word in words:
        queryset = queryset.filter(patient_match_q(word))
    return queryset.order_by(Lower("last_name"), Lower("first_name"), "id") if words else queryset


def patient_get_for_detail(*, patient_id: int) -> Patient:
    """One patient with addresses and kit registrations (order and result loaded)."""
    registrations = KitRegistration.objects.select_related("order", "result").order_by("-created_at", "-id")
    return Patient.objects.prefetch_related("addresses", Prefetch("registrations", queryset=registrations)).get(
        pk=patient_id
    )


def patient_get_with_addresses(*, patient_id: int) -> Patient | None:
    return Patient.objects.prefetch_related("addresses").filter(pk=patient_id).first()
