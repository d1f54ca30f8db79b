"""Helpers for the bulk registration tests: CSV files as staff would upload them."""

from __future__ import annotations

import csv
import io

import pytest

from portal.bulk.csvfile import COLUMNS
from tests.factories import OrderFactory

GOOD = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "date_of_birth": "1985-04-12",
    "phone": "(617) 555-0123",
    "gender": "female",
    "street1": "12 Analytical Way",
    "street2": "",
    "city": "Boston",
    "state": "MA",
    "zipcode": "02139",
}


def row(order, n: int = 0, **overrides) -> dict[str, str]:
    """A valid row for `order` (an Order or an order_id text); `n` makes the patient distinct."""
    order_id = order if isinstance(order, str) else str(order.upstream_id)
    values = {**GOOD, "order_id": order_id, "email": f"patient{n}@example.com", "last_name": f"Lovelace{n}"}
    values.update(overrides)
    return values


def make_csv(
    rows: list[dict[str, str]],
    *,
    header=COLUMNS,
    bom: bool = False,
    newline: str = "\n",
    quoting: int = csv.QUOTE_MINIMAL,
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline, quoting=quoting)
    writer.writerow(header)
    for values in rows:
        writer.writerow([values.get(column, "") for column in header])
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


@pytest.fixture
def order(db):
    """An order the lab accepted (lab id 4242)."""
    return OrderFactory(upstream_id=4242)
