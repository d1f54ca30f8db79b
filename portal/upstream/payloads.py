"""The partner's JSON, both ways: our typed values to request bodies, response
bodies to typed values. Every quirk of the reference is settled here, in one
place, as ../shared/upstream/NOTES.md decides (the numbers below are its points).

Settings are read at call time, so a test can override them with `settings`.
"""

from __future__ import annotations

import calendar
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.upstream.errors import UpstreamProtocolError
from portal.upstream.types import (
    AddressIn,
    OrderIn,
    RegistrationIn,
    UpstreamOrder,
    UpstreamRegistration,
    UpstreamResult,
    UserIn,
)

CENT = Decimal("0.01")
_ZIP_RE = re.compile(r"^(\d{5})(?:-\d{4})?$")
# Point 12: the reference spells it "registred"; the fixed spelling is accepted too.
_STATE_ALIASES = {"registred": "registered"}

# --- Request bodies -----------------------------------------------------------
# Invalid input is a bug in the caller (forms validate first), so it raises
# ValueError before anything is sent. Messages name the field, never the value.


def order_body(order: OrderIn) -> dict[str, Any]:
    """Point 5: the amount as a JSON number with exactly 2 decimals (`199.00`)."""
    amount = order.amount
    try:
        valid = amount.is_finite() and amount > 0 and amount == amount.quantize(CENT)
    except (AttributeError, InvalidOperation):
        valid = False
    if not valid:
        raise ValueError("order amount must be a Decimal > 0 with at most 2 decimal places")
    return {"amount": amount.quantize(CENT)}


def registration_body(registration: RegistrationIn) -> dict[str, Any]:
    """The Create Kit Registration body: `{"user": {...}, "addresses": [...]}`."""
    if not registration.addresses:
        raise ValueError("a kit registration needs at least one address")
    return {
        "user": _user_body(registration.user),
        "addresses": [_address_body(address) for address in registration.addresses],
    }


def _user_body(user: UserIn) -> dict[str, Any]:
    return {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "dob": dob_value(user.dob),
        "phone_number": phone_value(user.phone),
        "gender": user.gender,
    }


def _address_body(address: AddressIn) -> dict[str, Any]:
    return {
        "street1": address.street1,
        # Point 11: optional, sent as "" when empty, as in the reference's example.
        "street2": address.street2 or "",
        "city": address.city,
        "state": address.state,
        "zipcode": zipcode_value(address.zipcode),
    }


def dob_value(dob) -> int:
    """Point 8: midnight UTC of the date as epoch milliseconds (default) or seconds.

    `EVERLYWELL_DOB_UNIT` is "ms" (the reference's example) or "s" (its table).
    """
    unit = settings.EVERLYWELL_DOB_UNIT
    if unit not in ("ms", "s"):
        raise ImproperlyConfigured('EVERLYWELL_DOB_UNIT must be "ms" or "s".')
    seconds = calendar.timegm((dob.year, dob.month, dob.day, 0, 0, 0))
    return seconds * 1000 if unit == "ms" else seconds


def phone_value(phone: str) -> int:
    """Point 9: the 10 digits of a NANP number as an int; "(617) 555-0123" -> 6175550123."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]  # a leading country code is not part of the 10 digits
    if len(digits) != 10:
        raise ValueError("phone must be a 10-digit US number")
    return int(digits)


def zipcode_value(zipcode: str) -> int | str:
    """Point 10: an int of the 5-digit part ("02139" -> 2139, the leading zero is lost),
    or the text as stored when `EVERLYWELL_ZIP_AS_STRING` is on."""
    text = (zipcode or "").strip()
    match = _ZIP_RE.match(text)
    if not match:
        raise ValueError("zipcode must be 5 digits or ZIP+4")
    if settings.EVERLYWELL_ZIP_AS_STRING:
        return text
    return int(match.group(1))


def dumps(body: Any) -> bytes:
    """JSON text of a request body, with `Decimal` written as a plain number
    keeping its places (`199.00`, which `json` alone would write as `199.0`)."""
    return _encode(body).encode("utf-8")


def _encode(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_encode(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value)


# --- Response bodies ----------------------------------------------------------


def loads(content: bytes) -> dict[str, Any]:
    """Parse a response body that must be a JSON object.

    Point 13: the reference's own example has a trailing comma; anything that is
    not strict JSON (or HTML from a proxy) is a protocol error, never a crash.
    Floats are read as `Decimal` so money keeps its places.
    """
    try:
        data = json.loads(content.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UpstreamProtocolError("the partner's answer is not valid JSON") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("the partner's answer is not a JSON object")
    return data


def parse_token(data: dict[str, Any]) -> str:
    """The token of an Issue Token answer: `{"token": "..."}`."""
    token = data.get("token")
    if not isinstance(token, str) or not token.strip():
        raise UpstreamProtocolError("the token answer has no token")
    return token.strip()


def parse_order(data: dict[str, Any], *, expected_id: int | None = None, state_required: bool) -> UpstreamOrder:
    """An order: `{"id", "amount"}` on create, `{"id", "state"}` on get."""
    order_id = _id(data, "id", expected=expected_id)
    state = _state(data) if state_required or data.get("state") is not None else None
    amount = data.get("amount")
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
            raise UpstreamProtocolError("the order's amount is not a number")
        amount = Decimal(amount)
    return UpstreamOrder(id=order_id, state=state, amount=amount, raw=data)


def parse_registration(data: dict[str, Any]) -> UpstreamRegistration:
    """A kit registration: `{"id", "state": "registred", "kit_id", "user_id"}`."""
    kit_id = data.get("kit_id")
    if not isinstance(kit_id, str) or not kit_id:
        raise UpstreamProtocolError("the registration has no kit_id")
    if len(kit_id) > 64:
        # Longer than the portal stores; after a POST this makes the outcome unknown.
        raise UpstreamProtocolError("the registration's kit_id is longer than 64 characters")
    user_id = _id(data, "user_id") if data.get("user_id") is not None else None
    return UpstreamRegistration(id=_id(data, "id"), state=_state(data), kit_id=kit_id, user_id=user_id, raw=data)


def parse_result(data: dict[str, Any], *, expected_id: int | None = None) -> UpstreamResult:
    """A result: `{"id", "state"}`; unknown states are kept verbatim (point 14)."""
    return UpstreamResult(id=_id(data, "id", expected=expected_id), state=_state(data), raw=data)


def _id(data: dict[str, Any], key: str, *, expected: int | None = None) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UpstreamProtocolError(f"the answer's {key!r} is missing or not an integer")
    if expected is not None and value != expected:
        raise UpstreamProtocolError(f"the answer's {key!r} is not the id asked for")
    return value


def _state(data: dict[str, Any]) -> str:
    """Points 6, 12, 14: any non-empty string is a state; only the typo is rewritten."""
    state = data.get("state")
    if not isinstance(state, str) or not state.strip():
        raise UpstreamProtocolError("the answer's 'state' is missing or not a string")
    state = state.strip()
    return _STATE_ALIASES.get(state, state)


def partner_message(content: bytes, limit: int = 300) -> str:
    """The partner's own explanation of a refusal, for staff: the JSON "error",
    "message" or "errors" field, else the start of the body as text."""
    text = ""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        for key in ("error", "message", "errors"):
            if data.get(key):
                text = _flatten(data[key])
                break
    if not text:
        text = content.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flatten(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value)
    return str(value)
