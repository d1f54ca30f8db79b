"""The checks the sandbox makes on request bodies: the reference's tables, as types.

Each returns None when the body is acceptable, else a message naming the field
(never its value), which the sandbox answers with 422 {"error": message}.
"""

from __future__ import annotations

import math
from typing import Any


def order_error(body: Any) -> str | None:
    """Create Order: `amount` is a positive number (a Double)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    amount = body.get("amount")
    if not _is_number(amount) or not math.isfinite(amount) or amount <= 0:
        return "amount is required and must be a positive number"
    return None


def registration_error(body: Any) -> str | None:
    """Create Kit Registration: the User and Address tables of the reference."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    user = body.get("user")
    if not isinstance(user, dict):
        return "user is required and must be an object"
    email = user.get("email")
    if not isinstance(email, str) or "@" not in email:
        return "user.email is required and must be a string containing @"
    for name in ("first_name", "last_name", "gender"):
        if not _is_text(user.get(name)):
            return f"user.{name} is required and must be a non-empty string"
    if not _is_int(user.get("dob")):
        return "user.dob is required and must be an integer"
    phone = user.get("phone_number")
    if not _is_int(phone) or not 1_000_000_000 <= phone <= 9_999_999_999:
        return "user.phone_number is required and must be an integer of 10 digits"
    addresses = body.get("addresses")
    if not isinstance(addresses, list) or not addresses:
        return "addresses is required and must be a non-empty list"
    for index, address in enumerate(addresses):
        error = _address_error(address, f"addresses[{index}]")
        if error:
            return error
    return None


def _address_error(address: Any, where: str) -> str | None:
    if not isinstance(address, dict):
        return f"{where} must be an object"
    for name in ("street1", "city", "state"):
        if not _is_text(address.get(name)):
            return f"{where}.{name} is required and must be a non-empty string"
    if "street2" in address and not isinstance(address["street2"], str):
        return f"{where}.street2 must be a string"
    zipcode = address.get("zipcode")
    if not (_is_int(zipcode) or _is_text(zipcode)):
        return f"{where}.zipcode is required and must be an integer or a string"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
