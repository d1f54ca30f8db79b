"""Typed values that cross the client's edge, in both directions.

Inputs carry the portal's own representation (text phone and ZIP, a `date` of
birth, a `Decimal` amount); `payloads` turns them into the partner's JSON. Fields
that identify a patient are left out of `repr()` so an accidental log line or
traceback does not print them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Token:
    """A bearer token and the epoch second at which it stops being valid."""

    value: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class OrderIn:
    """An order to create: the total price, > 0 with at most 2 decimal places."""

    amount: Decimal


@dataclass(frozen=True)
class UpstreamOrder:
    """An order as the partner describes it; `state` is verbatim (None on create)."""

    id: int
    state: str | None
    amount: Decimal | None
    raw: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class UserIn:
    """The patient a kit is registered to. `phone` is 10 digits as text."""

    email: str = field(repr=False)
    first_name: str = field(repr=False)
    last_name: str = field(repr=False)
    dob: datetime.date = field(repr=False)
    phone: str = field(repr=False)
    gender: str = field(repr=False)


@dataclass(frozen=True)
class AddressIn:
    """A patient's address. `zipcode` is text: "02139" or "02139-4307"."""

    street1: str = field(repr=False)
    city: str = field(repr=False)
    state: str = field(repr=False)
    zipcode: str = field(repr=False)
    street2: str = field(default="", repr=False)


@dataclass(frozen=True)
class RegistrationIn:
    """A kit registration: one user and one or more addresses."""

    user: UserIn = field(repr=False)
    addresses: tuple[AddressIn, ...] = field(repr=False)


@dataclass(frozen=True)
class UpstreamRegistration:
    """A kit registration as created upstream; `state` "registred" is normalised to "registered"."""

    id: int
    state: str
    kit_id: str
    user_id: int | None
    raw: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class UpstreamResult:
    """A result as the partner describes it; `state` is verbatim ("ready" is final)."""

    id: int
    state: str
    raw: dict = field(repr=False, compare=False)
