"""The bench's data: a clinic network's patients, orders, kits, results and emails.

Made fast (PostgreSQL COPY; batched multi-row INSERTs elsewhere), deterministic (one
seed; every table drawn from its own seeded generator) and realistic:

- patients with 1-3 addresses and 1-3 kits over the year (a repeat test months later);
- orders of 2-8 kits registered around the same time;
- about 1% of kits never accepted by the lab (queued, failed, needs review, rejected);
- results like a clinic's: ~85% ready (ready_at spread over the past year), ~10%
  pending or in progress (kits never sent back stay pending), ~3% failed, ~2% in a
  state the portal does not know; kits registered in the last two days are never ready;
- one "results ready" email per ready result (a few failed or waiting, 1% resent);
- one timeline row (StateChange) per result;
- unique kit ids, last names from a fixed list with a Zipf-like spread, so a search
  for `SEARCH_LAST_NAME` finds a known share of the patients.

Lab ids of this data start at `UPSTREAM_BASE`; smaller ids are left to the polling
benchmark, whose sandbox numbers its records from 1.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from array import array
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import DatabaseError, connection, models, transaction

from portal.core.models import StateChange
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.patients.models import Address, Patient
from portal.results.models import Result

DEFAULT_SEED = 20250101
UPSTREAM_BASE = 1_000_000_000
DAY = 86400.0
SPAN_DAYS = 400
UNSENT_SHARE = 100  # one kit in this many was never accepted by the lab
# Kits per patient and addresses per patient: values and cumulative weights.
KITS_PER_PATIENT = ((1, 2, 3), (45, 80, 100))
ADDRESSES_PER_PATIENT = ((1, 2, 3), (60, 90, 100))

# Result status codes in the plan arrays.
UNSENT, READY, PENDING, IN_PROGRESS, FAILED, UNKNOWN = range(6)
STATUS_OF_CODE = {
    READY: ("ready", "ready"),
    PENDING: ("pending", "awaiting_sample"),
    IN_PROGRESS: ("in_progress", "processing"),
    FAILED: ("failed", "failed"),
    UNKNOWN: ("unknown", "quality_review"),
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez "
    "Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole "
    "Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens "
    "Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker "
    "Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz "
    "Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice "
    "Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley "
    "Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham "
    "Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman "
    "Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval Okonkwo Nakamura "
    "Kowalski Oyelaran"
)
# Zipf-like: the k-th name is about 1/k^0.9 as common as the first.
LAST_NAME_WEIGHTS = tuple(accumulate(1 / (k**0.9) for k in range(1, len(LAST_NAMES) + 1)))
# A rarer name (about 1 patient in 1,000): what "search by last name" types.
SEARCH_LAST_NAME = "Nakamura"
FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Sandra "
    "Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol "
    "Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura "
    "Jeffrey Cynthia Ryan Dorothy Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Emma "
    "Maria Jose Ana Luis Carmen Wei Mei Minh Linh Aisha Omar Fatima Priya Raj Chidi Ngozi Yuki Hiro Zoe "
    "Noah"
)
CITIES = (
    ("Boston", "MA", "02118"),
    ("Cambridge", "MA", "02139"),
    ("Worcester", "MA", "01608"),
    ("Providence", "RI", "02903"),
    ("Hartford", "CT", "06103"),
    ("New York", "NY", "10027"),
    ("Brooklyn", "NY", "11215"),
    ("Newark", "NJ", "07102"),
    ("Philadelphia", "PA", "19104"),
    ("Baltimore", "MD", "21201"),
    ("Chicago", "IL", "60614"),
    ("Evanston", "IL", "60201"),
    ("Milwaukee", "WI", "53202"),
    ("Minneapolis", "MN", "55414"),
    ("Columbus", "OH", "43210"),
    ("Detroit", "MI", "48201"),
    ("Atlanta", "GA", "30309"),
    ("Miami", "FL", "33130"),
    ("Tampa", "FL", "33602"),
    ("Nashville", "TN", "37203"),
    ("Houston", "TX", "77004"),
    ("Austin", "TX", "78701"),
    ("Dallas", "TX", "75201"),
    ("Denver", "CO", "80202"),
    ("Phoenix", "AZ", "85004"),
    ("Seattle", "WA", "98103"),
    ("Portland", "OR", "97205"),
    ("San Diego", "CA", "92101"),
    ("Oakland", "CA", "94612"),
    ("Los Angeles", "CA", "90012"),
)
STREETS = _words("Main Oak Maple Cedar Elm Pine Washington Lake Hill Park Sunset Lincoln Church River Mill")
STREET_KINDS = ("St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way")
UNSENT_STATES = (
    ("queued", "", ""),
    ("failed", "UpstreamUnavailable", "the partner did not answer in time"),
    ("needs_review", "UpstreamOutcomeUnknown", "the partner may have received the registration"),
    ("rejected", "UpstreamRejected", "the partner rejected register_kit (HTTP 422)"),
)


def kit_code(registration_id: int) -> str:
    """A unique 10-hex-digit kit id, as the lab's look: an odd multiplier is a
    bijection modulo 2**40, so distinct ids give distinct codes."""
    return f"{(registration_id * 0x9E3779B97F) % (1 << 40):010x}"


def email_for(first: str, last: str, patient_id: int) -> str:
    local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
    return f"{local}.{patient_id}@example.com"


# --- The plan: compact arrays every table is derived from ---------------------


@dataclass
class Plan:
    """Who and when, per patient, order and kit (kits sorted by registration time)."""

    now: float
    rows: int
    patient_first: array = field(default_factory=lambda: array("H"))
    patient_last: array = field(default_factory=lambda: array("H"))
    patient_created: array = field(default_factory=lambda: array("d"))
    kit_time: array = field(default_factory=lambda: array("d"))
    kit_patient: array = field(default_factory=lambda: array("l"))
    kit_order: array = field(default_factory=lambda: array("l"))
    kit_status: array = field(default_factory=lambda: array("b"))
    kit_final: array = field(default_factory=lambda: array("d"))
    order_created: array = field(default_factory=lambda: array("d"))
    order_kits: array = field(default_factory=lambda: array("H"))

    @property
    def patients(self) -> int:
        return len(self.patient_created)

    @property
    def kits(self) -> int:
        return len(self.kit_time)

    @property
    def orders(self) -> int:
        return len(self.order_created)


def make_plan(*, rows: int, seed: int, now: float) -> Plan:
    """`rows` results (accepted kits) plus 1% unsent kits, their patients and orders."""
    rng = random.Random(seed)  # noqa: S311 - reproducible bench data, not security
    plan = Plan(now=now, rows=rows)
    unsent = rows // UNSENT_SHARE
    total = rows + unsent
    start = now - SPAN_DAYS * DAY
    kit_values, kit_weights = KITS_PER_PATIENT
    kit_time: list[float] = []
    kit_patient: list[int] = []
    n_first = len(FIRST_NAMES)
    while len(kit_time) < total:
        patient = plan.patients
        created = start + rng.random() * SPAN_DAYS * DAY
        plan.patient_created.append(created)
        plan.patient_first.append(rng.randrange(n_first))
        plan.patient_last.append(bisect(LAST_NAME_WEIGHTS, rng.random() * LAST_NAME_WEIGHTS[-1]))
        when = created
        for _ in range(kit_values[bisect(kit_weights, rng.random() * 100)]):
            kit_time.append(when)
            kit_patient.append(patient)
            when += rng.uniform(30, 150) * DAY
            if when >= now:
                break
    del kit_time[total:], kit_patient[total:]
    order = sorted(range(total), key=kit_time.__getitem__)
    plan.kit_time = array("d", (kit_time[i] for i in order))
    plan.kit_patient = array("l", (kit_patient[i] for i in order))
    del kit_time, kit_patient, order
    unsent_positions = set(rng.sample(range(total), unsent))
    left_in_order = 0
    for position in range(total):
        when = plan.kit_time[position]
        if left_in_order == 0:
            left_in_order = rng.randint(2, 8)
            plan.order_created.append(when - rng.uniform(60, 2 * DAY))
            plan.order_kits.append(0)
        left_in_order -= 1
        plan.kit_order.append(plan.orders - 1)
        plan.order_kits[-1] += 1
        if position in unsent_positions:
            plan.kit_status.append(UNSENT)
            plan.kit_final.append(0.0)
            continue
        age = now - when
        draw = rng.random()
        if age < 2 * DAY:
            status = PENDING if draw < 0.6 else IN_PROGRESS
        elif draw < 0.85:
            status = READY
        elif draw < 0.90:
            status = PENDING
        elif draw < 0.95:
            status = IN_PROGRESS
        elif draw < 0.98:
            status = FAILED
        else:
            status = UNKNOWN
        final = when + rng.uniform(2, 14) * DAY
        if final >= now:
            final = now - rng.uniform(60, 6 * 3600)
        if status in (PENDING, IN_PROGRESS, UNKNOWN):
            final = min(now - 60, when + rng.uniform(0.5, 3) * DAY)  # the last state change
        plan.kit_status.append(status)
        plan.kit_final.append(max(final, when + 60))
    return plan


# --- Rows, table by table ------------------------------------------------------


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass
class Table:
    model: type[models.Model]
    columns: tuple[str, ...]
    rows: Callable[[], Iterable[tuple]]


def tables(plan: Plan, *, seed: int, staff_user_id: int | None, result_content_type_id: int) -> list[Table]:
    """Every table's columns (attnames) and a generator of its rows, parents first."""
    now = plan.now

    def patients() -> Iterator[tuple]:
        rng = random.Random(seed + 1)  # noqa: S311
        for i in range(plan.patients):
            pk = i + 1
            first, last = FIRST_NAMES[plan.patient_first[i]], LAST_NAMES[plan.patient_last[i]]
            created = _dt(plan.patient_created[i])
            dob = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 64))
            phone = f"{rng.randint(201, 989)}555{rng.randrange(10000):04d}"
            gender = ("female", "male", "other")[bisect((52, 97, 100), rng.random() * 100)]
            yield (
                pk, created, created, first, last, email_for(first, last, pk), dob, phone, gender,
                5_000_000 + pk, staff_user_id,
            )  # fmt: skip

    def addresses() -> Iterator[tuple]:
        rng = random.Random(seed + 2)  # noqa: S311
        values, weights = ADDRESSES_PER_PATIENT
        pk = 0
        for i in range(plan.patients):
            for position in range(values[bisect(weights, rng.random() * 100)]):
                pk += 1
                city, state, zipcode = CITIES[rng.randrange(len(CITIES))]
                street = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
                apartment = f"Apt {rng.randint(1, 40)}" if rng.random() < 0.3 else ""
                yield (pk, i + 1, street, apartment, city, state, zipcode, position)

    def orders() -> Iterator[tuple]:
        rng = random.Random(seed + 3)  # noqa: S311
        for i in range(plan.orders):
            pk = i + 1
            created = plan.order_created[i]
            shipped = now - created > 7 * DAY
            state, status = ("delivered", "completed") if shipped else ("shipped", "in_progress")
            synced = _dt(min(now - 60, created + rng.uniform(1, 5) * DAY))
            upstream_id = UPSTREAM_BASE + pk
            yield (
                pk, _dt(created), synced, Decimal(49 * plan.order_kits[i]), upstream_id, state, status,
                "accepted", 1, None, "", "", synced, None if shipped else _dt(now + rng.uniform(60, 900)),
                json.dumps({"id": upstream_id, "state": state}), _uuid(rng), staff_user_id,
            )  # fmt: skip

    def registrations() -> Iterator[tuple]:
        rng = random.Random(seed + 4)  # noqa: S311
        for i in range(plan.kits):
            pk = i + 1
            when = _dt(plan.kit_time[i])
            patient = plan.kit_patient[i] + 1
            order = plan.kit_order[i] + 1
            if plan.kit_status[i] == UNSENT:
                status, error_class, error = UNSENT_STATES[rng.randrange(len(UNSENT_STATES))]
                yield (
                    pk, when, when, order, patient, None, None, None, "", status, 0 if status == "queued" else 1,
                    None, error_class, error, None, "{}", None, _uuid(rng), staff_user_id,
                )  # fmt: skip
                continue
            upstream_id = UPSTREAM_BASE + pk
            kit_id = kit_code(pk)
            user_id = 5_000_000 + patient
            raw = json.dumps({"id": upstream_id, "state": "registred", "kit_id": kit_id, "user_id": user_id})
            yield (
                pk, when, when, order, patient, upstream_id, kit_id, user_id, "registered", "accepted", 1,
                None, "", "", None, raw, when, _uuid(rng), staff_user_id,
            )  # fmt: skip

    def results() -> Iterator[tuple]:
        rng = random.Random(seed + 5)  # noqa: S311
        pk = 0
        for i in range(plan.kits):
            code = plan.kit_status[i]
            if code == UNSENT:
                continue
            pk += 1
            registration = i + 1
            upstream_id = UPSTREAM_BASE + registration
            status, state = STATUS_OF_CODE[code]
            created = _dt(plan.kit_time[i] + 1)
            final = _dt(plan.kit_final[i])
            ready_at = final if code == READY else None
            if code in (READY, FAILED):
                last_polled, next_poll = final, None
            else:
                last_polled = _dt(now - rng.uniform(0, 3600))
                next_poll = _dt(now + rng.uniform(3600, 6 * 3600))
            yield (
                pk, created, last_polled, registration, upstream_id, state, status, ready_at, last_polled,
                next_poll, rng.randint(3, 40), None, "", "", json.dumps({"id": upstream_id, "state": state}),
            )  # fmt: skip

    def notifications() -> Iterator[tuple]:
        rng = random.Random(seed + 6)  # noqa: S311
        pk = result = 0
        for i in range(plan.kits):
            code = plan.kit_status[i]
            if code == UNSENT:
                continue
            result += 1
            if code != READY:
                continue
            patient = plan.kit_patient[i]
            recipient = email_for(
                FIRST_NAMES[plan.patient_first[patient]], LAST_NAMES[plan.patient_last[patient]], patient + 1
            )
            ready = plan.kit_final[i]
            created = _dt(ready)
            draw = rng.random()
            pk += 1
            if draw < 0.97:
                sent = _dt(ready + rng.uniform(1, 120))
                status, attempts, error, updated = "sent", 1, "", sent
            elif draw < 0.99:
                sent, status, attempts, error, updated = None, "failed", 5, MAIL_ERROR, _dt(ready + 3600)
            else:
                sent, status, attempts, error, updated = None, "pending", 0, "", created
            yield (pk, created, updated, result, KIND, recipient, TEMPLATE, status, attempts, error, None, sent,
                   False, None)  # fmt: skip
            if rng.random() < 0.01:
                pk += 1
                again = _dt(min(now - 60, ready + rng.uniform(1, 30) * DAY))
                yield (pk, again, again, result, KIND, recipient, TEMPLATE, "sent", 1, "", None, again, True,
                       staff_user_id)  # fmt: skip

    def state_changes() -> Iterator[tuple]:
        pk = 0
        for i in range(plan.kits):
            code = plan.kit_status[i]
            if code == UNSENT:
                continue
            pk += 1
            status, state = STATUS_OF_CODE[code]
            yield (pk, result_content_type_id, pk, "awaiting_sample", state, "pending", status, "sync", None, "",
                   _dt(plan.kit_final[i]))  # fmt: skip

    return [
        Table(Patient, PATIENT_COLUMNS, patients),
        Table(Address, ADDRESS_COLUMNS, addresses),
        Table(Order, ORDER_COLUMNS, orders),
        Table(KitRegistration, REGISTRATION_COLUMNS, registrations),
        Table(Result, RESULT_COLUMNS, results),
        Table(Notification, NOTIFICATION_COLUMNS, notifications),
        Table(StateChange, STATE_CHANGE_COLUMNS, state_changes),
    ]


TEMPLATE = "notifications/results_ready"
KIND = "results_ready"
MAIL_ERROR = "SMTPException: could not hand the email to the mail server"
PATIENT_COLUMNS = (
    "id", "created_at", "updated_at", "first_name", "last_name", "email", "date_of_birth", "phone", "gender",
    "upstream_user_id", "created_by_id",
)  # fmt: skip
ADDRESS_COLUMNS = ("id", "patient_id", "street1", "street2", "city", "state", "zipcode", "position")
ORDER_COLUMNS = (
    "id", "created_at", "updated_at", "amount", "upstream_id", "state", "status", "submission_status",
    "submit_attempts", "submitting_since", "last_error_class", "last_error", "last_synced_at", "next_sync_at",
    "raw_payload", "idempotency_key", "created_by_id",
)  # fmt: skip
REGISTRATION_COLUMNS = (
    "id", "created_at", "updated_at", "order_id", "patient_id", "upstream_id", "kit_id", "upstream_user_id", "state",
    "submission_status", "submit_attempts", "submitting_since", "last_error_class", "last_error",
    "result_upstream_id", "raw_payload", "registered_at", "idempotency_key", "created_by_id",
)  # fmt: skip
RESULT_COLUMNS = (
    "id", "created_at", "updated_at", "registration_id", "upstream_id", "state", "status", "ready_at",
    "last_polled_at", "next_poll_at", "poll_count", "claimed_until", "last_error_class", "last_error", "raw_payload",
)  # fmt: skip
NOTIFICATION_COLUMNS = (
    "id", "created_at", "updated_at", "result_id", "kind", "recipient", "template", "status", "attempts",
    "last_error", "sending_since", "sent_at", "is_resend", "requested_by_id",
)  # fmt: skip
STATE_CHANGE_COLUMNS = (
    "id", "content_type_id", "object_id", "old_state", "new_state", "old_status", "new_status", "source",
    "actor_id", "note", "created_at",
)  # fmt: skip

GENERATED_MODELS = (Patient, Address, Order, KitRegistration, Result, Notification, StateChange)
# Rows the benchmarks' own requests and polls write (call log, audit trails), where
# those apps are installed: emptied at the start of every run, so no run depends on
# the ones before it.
ACTIVITY_MODELS = ("upstream.UpstreamCall", "auditlog.LogEntry", "audit.PhiAccess")


def activity_models() -> list[type[models.Model]]:
    found = []
    for label in ACTIVITY_MODELS:
        try:
            found.append(apps.get_model(label))
        except LookupError:
            continue
    return found


def _truncate(model_list) -> None:
    quote = connection.ops.quote_name
    names = [quote(m._meta.db_table) for m in model_list]
    if not names:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
        else:
            with transaction.atomic():
                for name in reversed(names):
                    cursor.execute(f"DELETE FROM {name}")  # noqa: S608 - a model's table name


def wipe_activity() -> None:
    """Empty the call log and audit tables the previous runs filled."""
    _truncate(activity_models())


# --- Loading -------------------------------------------------------------------


def _extra_columns(model: type[models.Model], columns: tuple[str, ...]) -> tuple[list[models.Field], list]:
    """Fields added to a model after this generator was written: filled with their
    default (or NULL), so the bench keeps working while the schema grows."""
    extra, values = [], []
    for f in model._meta.concrete_fields:
        if f.attname in columns:
            continue
        if f.has_default() and not callable(f.default):
            values.append(f.get_default())
        elif f.null:
            values.append(None)
        elif f.has_default():
            values.append(f.default)  # a callable: called per row below
        else:
            raise RuntimeError(
                f"the bench generator does not know {model.__name__}.{f.name} (no default, not null): "
                "add it to portal/bench/data.py"
            )
        extra.append(f)
    return extra, values


def _with_extras(rows: Iterable[tuple], values: list) -> Iterator[tuple]:
    if not values:
        yield from rows
        return
    callables = [i for i, value in enumerate(values) if callable(value)]
    for row in rows:
        extra = list(values)
        for i in callables:
            extra[i] = extra[i]()
        yield row + tuple(extra)


def _copy_postgresql(table: Table, fields: list[models.Field], rows: Iterable[tuple]) -> int:
    from psycopg.types.json import Jsonb

    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(table.model._meta.db_table)} ({names}) FROM STDIN"
    # Columns the generator already wrote as JSON text go in as text; extras become Jsonb.
    json_extras = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField) and i >= len(table.columns)]
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            if json_extras:
                row = tuple(Jsonb(v) if i in json_extras else v for i, v in enumerate(row))
            copy.write_row(row)
            count += 1
    return count


def _insert_batches(table: Table, fields: list[models.Field], rows: Iterable[tuple], batch: int = 500) -> int:
    """Multi-row INSERTs with values prepared by each field (SQLite and others)."""
    quote = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(quote(f.column) for f in fields)
    # Names from the models' metadata, values as parameters.
    head = f"INSERT INTO {quote(table.model._meta.db_table)} ({columns}) VALUES "  # noqa: S608
    preps = []
    for i, f in enumerate(fields):
        if isinstance(f, models.JSONField) and i < len(table.columns):
            preps.append(None)  # already JSON text
        else:
            preps.append(f)
    count = 0
    pending: list = []
    with connection.cursor() as cursor:

        def flush():
            if pending:
                n = len(pending) // len(fields)
                cursor.execute(head + ", ".join([placeholders] * n), pending)
                pending.clear()

        for row in rows:
            for f, value in zip(preps, row, strict=True):
                pending.append(value if f is None else f.get_db_prep_save(value, connection))
            count += 1
            if count % batch == 0:
                flush()
        flush()
    return count


def load(table: Table) -> int:
    by_attname = {f.attname: f for f in table.model._meta.concrete_fields}
    unknown = [c for c in table.columns if c not in by_attname]
    if unknown:
        raise RuntimeError(f"{table.model.__name__} has no column(s) {unknown}: update portal/bench/data.py")
    extra, values = _extra_columns(table.model, table.columns)
    fields = [by_attname[c] for c in table.columns] + extra
    rows = _with_extras(table.rows(), values)
    if connection.vendor == "postgresql":
        return _copy_postgresql(table, fields, rows)
    return _insert_batches(table, fields, rows)


def wipe() -> None:
    """Empty the generated tables (and what the benchmarks wrote)."""
    _truncate([*GENERATED_MODELS, *activity_models()])


def analyze() -> None:
    """Fresh statistics and, on PostgreSQL, a vacuumed visibility map, as autovacuum
    would leave a table in production (index-only scans depend on it)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for model in (*GENERATED_MODELS, *activity_models()):
                cursor.execute(f"VACUUM (ANALYZE) {quote(model._meta.db_table)}")
        elif connection.vendor == "sqlite":
            cursor.execute("ANALYZE")


def row_counts() -> dict[str, int]:
    return {model._meta.db_table: model.objects.count() for model in GENERATED_MODELS}


def expected_counts(rows: int) -> dict[str, int]:
    """What a previous generation of `rows` left (for --keep): results and kits are exact."""
    return {Result._meta.db_table: rows, KitRegistration._meta.db_table: rows + rows // UNSENT_SHARE}


def generate(*, rows: int, seed: int, staff_user_id: int | None, log: Callable[[str], None]) -> dict:
    """Wipe and refill the generated tables. Returns per-table rows and seconds."""
    started = time.perf_counter()
    now = math.floor(time.time())
    plan = make_plan(rows=rows, seed=seed, now=now)
    planned = time.perf_counter() - started
    log(f"  plan: {plan.patients:,} patients, {plan.orders:,} orders, {plan.kits:,} kits ({planned:.1f} s)")
    result_ct = ContentType.objects.get_for_model(Result).pk
    report: dict = {"tables": {}, "seed": seed, "plan_seconds": round(planned, 2)}
    wipe()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The data are consistent by construction: skip the per-row foreign key
            # triggers (superuser only; otherwise they run, only slower).
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = replica")
            except DatabaseError:  # not a superuser: load with the checks
                log("  (foreign key checks stay on: not a superuser)")
        for table in tables(plan, seed=seed, staff_user_id=staff_user_id, result_content_type_id=result_ct):
            t0 = time.perf_counter()
            count = load(table)
            seconds = time.perf_counter() - t0
            report["tables"][table.model._meta.db_table] = {"rows": count, "seconds": round(seconds, 2)}
            log(f"  {table.model._meta.db_table:<28} {count:>10,} rows  {seconds:6.1f} s")
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), list(GENERATED_MODELS)):
                cursor.execute(sql)
    t0 = time.perf_counter()
    analyze()
    report["analyze_seconds"] = round(time.perf_counter() - t0, 2)
    report["seconds"] = round(time.perf_counter() - started, 2)
    log(f"  analyze: {report['analyze_seconds']:.1f} s; generation in all: {report['seconds']:.1f} s")
    return report
