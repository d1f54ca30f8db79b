"""Validation and normalisation of patient data, shared by forms, CSV import and admin.

Each function takes what a person typed and returns the value to store, or
raises ValidationError with a message written for clinic staff.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

# The 50 states and DC. Territories and military (APO/FPO) addresses are refused:
# the partner's reference names no shipping area, and kits are shipped to the
# patient, so the portal accepts only what a US lab partner surely serves.
US_STATES = [
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"), ("CA", "California"),
    ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"), ("DC", "District of Columbia"),
    ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"), ("ID", "Idaho"), ("IL", "Illinois"),
    ("IN", "Indiana"), ("IA", "Iowa"), ("KS", "Kansas"), ("KY", "Kentucky"), ("LA", "Louisiana"),
    ("ME", "Maine"), ("MD", "Maryland"), ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"),
    ("MS", "Mississippi"), ("MO", "Missouri"), ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"),
    ("NH", "New Hampshire"), ("NJ", "New Jersey"), ("NM", "New Mexico"), ("NY", "New York"),
    ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"), ("OK", "Oklahoma"), ("OR", "Oregon"),
    ("PA", "Pennsylvania"), ("RI", "Rhode Island"), ("SC", "South Carolina"), ("SD", "South Dakota"),
    ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"), ("VT", "Vermont"), ("VA", "Virginia"),
    ("WA", "Washington"), ("WV", "West Virginia"), ("WI", "Wisconsin"), ("WY", "Wyoming"),
]  # fmt: skip
US_STATE_CODES = frozenset(code for code, _ in US_STATES)
US_TERRITORIES = frozenset({"PR", "GU", "VI", "AS", "MP", "AA", "AE", "AP", "FM", "MH", "PW"})

_PHONE_EXTENSION = re.compile(r"(ext\.?|extension|x|#)\s*\d+\s*$", re.IGNORECASE)
_ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")
# Characters a person never means to type: C0/C1 controls and bidi overrides.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def normalize_phone(value: str) -> str:
    """A 10-digit North American number from any common format: "(617) 555-0123" -> "6175550123"."""
    text = (value or "").strip()
    if _PHONE_EXTENSION.search(text):
        raise ValidationError("Enter the phone number without an extension.", code="phone_extension")
    if re.search(r"[A-Za-z]", text):
        raise ValidationError("A phone number contains digits only, e.g. (617) 555-0123.", code="phone_letters")
    if re.search(r"[^\d\s().+\-]", text):
        raise ValidationError("Enter a phone number like (617) 555-0123.", code="phone_format")
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise ValidationError("Enter a 10-digit US phone number, e.g. (617) 555-0123.", code="phone_length")
    area, exchange = digits[:3], digits[3:6]
    if area[0] in "01" or exchange[0] in "01":
        raise ValidationError(
            "This is not a valid US number: the area code and the next three digits cannot start with 0 or 1.",
            code="phone_invalid",
        )
    if area[1:] == "11" or exchange[1:] == "11":
        raise ValidationError("This is not a valid US number (N11 codes such as 911 are service codes).")
    return digits


def format_phone(digits: str) -> str:
    """ "6175550123" -> "(617) 555-0123" for display."""
    if len(digits or "") != 10:
        return digits or ""
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def normalize_zip(value: str) -> str:
    """ZIP or ZIP+4 as text, leading zeros kept: "021394307" -> "02139-4307"."""
    match = _ZIP.match((value or "").strip())
    if not match:
        raise ValidationError("Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307.", code="zip")
    return f"{match[1]}-{match[2]}" if match[2] else match[1]


def normalize_state(value: str) -> str:
    code = (value or "").strip().upper()
    if code in US_TERRITORIES:
        raise ValidationError(
            "Kits can be shipped to the 50 states and DC only; territories and military addresses are not served.",
            code="state_territory",
        )
    if code not in US_STATE_CODES:
        raise ValidationError("Choose a US state (two letters, e.g. MA).", code="state")
    return code


def normalize_email(value: str) -> str:
    """Trimmed, domain lower-cased; refuses anything Django's validator refuses (CR/LF included)."""
    text = (value or "").strip()
    if len(text) > 254:
        raise ValidationError("An email address has at most 254 characters.", code="email_length")
    validate_email(text)
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_name(value: str, *, field: str = "Name") -> str:
    """Names are stored as typed (any script), trimmed, without invisible control characters."""
    text = unicodedata.normalize("NFC", (value or "").strip())
    if not text:
        raise ValidationError(f"{field} is required.", code="required")
    if len(text) > 100:
        raise ValidationError(f"{field} has at most 100 characters (it has {len(text)}).", code="max_length")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text):
        raise ValidationError(
            f"{field} contains an invisible control character; please retype it.", code="control_chars"
        )
    return text


def validate_date_of_birth(value: dt.date, *, today: dt.date | None = None) -> dt.date:
    today = today or timezone.localdate()
    if value >= today:
        raise ValidationError("The date of birth must be in the past.", code="dob_future")
    if value < dt.date(1900, 1, 1):
        raise ValidationError("The date of birth cannot be before 1900.", code="dob_too_old")
    min_age = settings.PATIENT_MIN_AGE
    if min_age:
        try:
            cutoff = today.replace(year=today.year - min_age)
        except ValueError:  # 29 February
            cutoff = today.replace(year=today.year - min_age, day=28)
        if value > cutoff:
            raise ValidationError(
                f"The patient must be at least {min_age} years old to use an at-home kit.", code="dob_minor"
            )
    return value


def clean_text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    """Free text such as a street or a city: trimmed, no control characters."""
    text = (value or "").strip()
    if not text:
        if required:
            raise ValidationError(f"{field} is required.", code="required")
        return ""
    if len(text) > max_length:
        raise ValidationError(f"{field} has at most {max_length} characters.", code="max_length")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text):
        raise ValidationError(f"{field} contains an invisible control character.", code="control_chars")
    return text
