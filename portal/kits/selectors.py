"""Reads of kit registrations for the staff pages, joins set for a fixed query count."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from portal.kits.models import KitRegistration


def registration_list() -> QuerySet[KitRegistration]:
    """Registrations for the list page and its CSV export, newest first."""
    return KitRegistration.objects.select_related("order", "patient", "result", "created_by")


def kit_id_match_q(value: str) -> Q:
    """Kit ids containing `value`, any case; one or two characters must be the whole
    kit id (a trigram index serves 3 or more, see patients.selectors.MIN_CONTAINS)."""
    from portal.patients.selectors import MIN_CONTAINS

    return Q(kit_id__icontains=value) if len(value) >= MIN_CONTAINS else Q(kit_id__iexact=value)


def registration_count(*, per: str) -> Coalesce:
    """An annotation: how many kit registrations point at the row, through the foreign
    key `per` ("order" or "patient"). A correlated subquery on that key's index, so a
    page of 50 counts 50 rows' kits, where `Count()` would group the whole table."""
    counted = (
        KitRegistration.objects.filter(**{per: OuterRef("pk")})
        .order_by()
        .values(per)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def registration_get_for_detail(*, registration_id: int) -> KitRegistration:
    """One registration with its order, patient (and addresses) and result. Raises DoesNotExist."""
    return (
        KitRegistration.objects.select_related("order", "patient", "result", "created_by")
        .prefetch_related("patient__addresses")
        .get(pk=registration_id)
    )


def registration_find_by_kit_id(*, kit_id: str) -> KitRegistration | None:
    """The registration of a kit id typed or scanned from a barcode: trimmed, exact,
    case-insensitive. The exact match (unique index) is tried first."""
    kit_id = (kit_id or "").strip()
    if not kit_id:
        return None
    exact = KitRegistration.objects.filter(kit_id=kit_id).first()
    if exact:
        return exact
    matches = list(KitRegistration.objects.filter(kit_id__iexact=kit_id)[:2])
    # Two kit ids differing only in case: refuse to guess.
    return matches[0] if len(matches) == 1 else None
