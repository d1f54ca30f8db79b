"""Checking the rows of a bulk registration CSV, with the single registration form's rules.

Every cell goes through the same validators as the form (portal.patients.validators),
so a row is accepted here exactly when the form would accept the same values. Then,
for the whole file at once (three queries whatever the number of rows):
- the orders named by the rows are looked up;
- a row repeating an earlier valid row (same order, email and date of birth) is a
  duplicate within the file;
- a row whose email and date of birth match exactly one existing patient is attached
  to that patient (as `patient_find_match` decides for one row);
- a row matching an existing registration for the same order and patient (same email
  and date of birth) is a duplicate and skipped, unless the lab rejected that
  registration: then the row corrects it and it is sent again (as resubmitting the
  single form does).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Lower

from portal.bulk.csvfile import COLUMNS, ParsedRow
from portal.bulk.models import BulkRow
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.orders.models import Order
from portal.patients import validators
from portal.patients.models import Gender, Patient

# The single form's date formats (portal.patients.forms.PatientForm.date_of_birth).
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")
MAX_LAB_ID = 2**63 - 1
_GENDERS = {
    **{value: value for value in Gender.values},
    **{label.casefold(): value for value, label in Gender.choices},
    "f": Gender.FEMALE,
    "m": Gender.MALE,
}
ROW = ""  # the errors key of a problem with the whole row


@dataclass
class RowCheck:
    """What one row means: its normalised values or its errors, and what to do with it."""

    number: int
    values: dict[str, str]
    cleaned: dict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    outcome: str = BulkRow.Outcome.VALID
    duplicate_of: int | None = None
    order_id: int | None = None
    patient_id: int | None = None
    registration_id: int | None = None
    # The lab rejected `registration_id`: this row corrects it.
    corrects: bool = False

    @property
    def is_valid(self) -> bool:
        return self.outcome == BulkRow.Outcome.VALID

    @property
    def identity(self) -> tuple[str, dt.date]:
        return self.cleaned["email"].lower(), dt.date.fromisoformat(self.cleaned["date_of_birth"])


def _required(value: str, message: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(message, code="required")
    return text


def _date_of_birth(value: str, *, today: dt.date) -> dt.date:
    text = _required(value, "Enter the date of birth.")
    for fmt in DATE_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        return validators.validate_date_of_birth(parsed, today=today)
    raise ValidationError("Enter a real date, e.g. 1985-04-12 (YYYY-MM-DD) or 04/12/1985.", code="invalid")


def _email(value: str) -> str:
    _required(value, "Enter the patient's email address.")
    try:
        return validators.normalize_email(value)
    except ValidationError as exc:
        if exc.code == "invalid":
            raise ValidationError("Enter a valid email address, e.g. jane@example.com.", code="invalid") from exc
        raise


def _phone(value: str) -> str:
    return validators.normalize_phone(_required(value, "Enter the patient's phone number."))


def _gender(value: str) -> str:
    text = _required(value, "Enter the patient's gender (the lab requires it): female, male or other.")
    try:
        return _GENDERS[text.casefold()]
    except KeyError:
        raise ValidationError("Enter female, male or other.", code="invalid_choice") from None


def _zipcode(value: str) -> str:
    text = _required(value, "Enter the ZIP code.")
    try:
        return validators.normalize_zip(text)
    except ValidationError:
        if text.isdigit() and len(text) in (3, 4, 8):
            raise ValidationError(
                "Enter a 5-digit ZIP code. This one lost its leading zero: Excel drops it from numbers; "
                "format the zipcode column as Text and type it again, e.g. 02139.",
                code="zip_leading_zero",
            ) from None
        raise


def _order_ref(value: str) -> tuple[str, int]:
    """("lab", id) for a lab order id, ("portal", pk) for "#pk"."""
    text = _required(value, "Enter the order: the lab's order id, e.g. 1234 (or #5 for an order not sent yet).")
    kind = "lab"
    if text.startswith("#"):
        kind, text = "portal", text[1:].strip()
    if not text.isdigit() or len(text) > 19 or int(text) > MAX_LAB_ID or int(text) == 0:
        raise ValidationError(
            "Enter the lab's order id as digits, e.g. 1234 (or #5 for an order not sent to the lab yet).",
            code="invalid",
        )
    return kind, int(text)


CLEANERS = {
    "first_name": lambda v, today: validators.clean_name(v, field="First name"),
    "last_name": lambda v, today: validators.clean_name(v, field="Last name"),
    "email": lambda v, today: _email(v),
    "date_of_birth": lambda v, today: _date_of_birth(v, today=today).isoformat(),
    "phone": lambda v, today: _phone(v),
    "gender": lambda v, today: _gender(v),
    "street1": lambda v, today: validators.clean_text(v, field="Street address", max_length=255),
    "street2": lambda v, today: validators.clean_text(
        v, field="Apartment, suite, etc.", max_length=255, required=False
    ),
    "city": lambda v, today: validators.clean_text(v, field="City", max_length=100),
    "state": lambda v, today: validators.normalize_state(v),
    "zipcode": lambda v, today: _zipcode(v),
}


def _message(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def clean_row(row: ParsedRow, *, today: dt.date) -> tuple[RowCheck, tuple[str, int] | None]:
    """Validate the cells of one row (no query). Returns the check and the row's order reference."""
    check = RowCheck(number=row.number, values=row.values)
    order_ref = None
    try:
        order_ref = _order_ref(row.values.get("order_id", ""))
    except ValidationError as exc:
        check.errors["order_id"] = _message(exc)
    for name, cleaner in CLEANERS.items():
        try:
            check.cleaned[name] = cleaner(row.values.get(name, ""), today)
        except ValidationError as exc:
            check.errors[name] = _message(exc)
    if row.extra_cells:
        check.errors[ROW] = (
            f"This row has {row.extra_cells} more cell{'s' if row.extra_cells > 1 else ''} than the header has "
            "columns: a comma inside a value must be in quotes."
        )
    return check, order_ref


def _resolve_orders(checks: list[RowCheck], refs: dict[int, tuple[str, int]]) -> None:
    """Set each row's order (one query), or an error on its order_id cell."""
    lab_ids = {value for kind, value in refs.values() if kind == "lab"}
    pks = {value for kind, value in refs.values() if kind == "portal"}
    by_lab, by_pk = {}, {}
    if lab_ids or pks:
        for order in Order.objects.filter(Q(upstream_id__in=lab_ids) | Q(pk__in=pks)).only(
            "pk", "upstream_id", "submission_status"
        ):
            by_pk[order.pk] = order
            if order.upstream_id is not None:
                by_lab[order.upstream_id] = order
    for check in checks:
        ref = refs.get(check.number)
        if ref is None:
            continue
        kind, value = ref
        order = by_lab.get(value) if kind == "lab" else by_pk.get(value)
        if order is None:
            check.errors["order_id"] = (
                f"No order with lab id {value}: check the id on the order's page."
                if kind == "lab"
                else f"No order #{value} in the portal."
            )
        elif order.submission_status == Submission.REJECTED:
            check.errors["order_id"] = "This order was rejected by the lab; kits cannot be registered against it."
        else:
            check.order_id = order.pk
            check.cleaned["order"] = order.pk


def match_and_dedupe(checks: Iterable[RowCheck]) -> None:
    """Attach valid rows to existing patients and mark duplicates (within the rows
    given, and against existing registrations). Two queries for any number of rows."""
    valid = [c for c in checks if c.is_valid]
    seen: dict[tuple, int] = {}
    for check in valid:
        key = (check.order_id, *check.identity)
        if key in seen:
            check.outcome, check.duplicate_of = BulkRow.Outcome.DUPLICATE, seen[key]
        else:
            seen[key] = check.number
    valid = [c for c in valid if c.is_valid]
    if not valid:
        return
    emails = {c.identity[0] for c in valid}

    patients: dict[tuple, list[int]] = defaultdict(list)
    for pk, email, dob in (
        Patient.objects.annotate(email_key=Lower("email"))
        .filter(email_key__in=emails, date_of_birth__in={c.identity[1] for c in valid})
        .values_list("pk", "email_key", "date_of_birth")
    ):
        patients[(email.lower(), dob)].append(pk)

    registrations: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    for pk, order_id, email, dob, status in (
        KitRegistration.objects.annotate(email_key=Lower("patient__email"))
        .filter(order_id__in={c.order_id for c in valid}, email_key__in=emails)
        .order_by("-created_at", "-pk")
        .values_list("pk", "order_id", "email_key", "patient__date_of_birth", "submission_status")
    ):
        registrations[(order_id, email.lower(), dob)].append((pk, status))

    for check in valid:
        check.patient_id = check.registration_id = None
        check.corrects = False
        matches = patients.get(check.identity, [])
        if len(matches) == 1:
            check.patient_id = matches[0]
        existing = registrations.get((check.order_id, *check.identity), [])
        live = [pk for pk, status in existing if status != Submission.REJECTED]
        if live:
            check.outcome, check.registration_id = BulkRow.Outcome.DUPLICATE, live[0]
        elif existing:
            check.registration_id, check.corrects = existing[0][0], True


def check_rows(rows: list[ParsedRow], *, today: dt.date) -> list[RowCheck]:
    """Every row checked: cells, orders, patients and duplicates."""
    checks, refs = [], {}
    for row in rows:
        check, ref = clean_row(row, today=today)
        checks.append(check)
        if ref is not None:
            refs[check.number] = ref
    _resolve_orders(checks, refs)
    for check in checks:
        if check.errors:
            check.outcome, check.cleaned = BulkRow.Outcome.INVALID, {}
    match_and_dedupe(checks)
    return checks


def columns_in_error(check: RowCheck) -> list[str]:
    return [c for c in COLUMNS if c in check.errors]
