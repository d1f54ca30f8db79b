"""The bulk registration CSV: its columns, the template, and reading an uploaded file.

The format (one kit registration per row; the header names the columns, in any order,
case and surrounding spaces ignored):

    order_id       the lab's order id as the order pages show it ("Order 1234" -> 1234), or
                   "#" and the portal's own number for an order the lab has not accepted
                   yet ("Order #5 (not sent yet)" -> #5)
    first_name, last_name, email
    date_of_birth  YYYY-MM-DD, or MM/DD/YYYY as Excel writes US dates
    phone          a 10-digit US number in any common format
    gender         female, male or other
    street1, street2 (optional; the column may be left out), city,
    state          two letters, e.g. MA
    zipcode        5 digits or ZIP+4, as text (Excel drops leading zeros of numbers)

One shipping address per row: a patient with more addresses is registered with the
single registration form, or gets them added to their record. A row whose email and
date of birth match one existing patient is registered to that patient, with the
patient's stored addresses (as the single form does).

A column named `error` is ignored: it is the one the "rows to fix" download adds, so
that file can be corrected and uploaded as it is. A cell the download protected from
spreadsheet formulas (a leading apostrophe before = + - @) is read back without it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

COLUMNS = (
    "order_id",
    "first_name",
    "last_name",
    "email",
    "date_of_birth",
    "phone",
    "gender",
    "street1",
    "street2",
    "city",
    "state",
    "zipcode",
)
OPTIONAL_COLUMNS = frozenset({"street2"})
# Added by the "rows to fix" download; ignored when that file comes back.
ERROR_COLUMN = "error"

COLUMN_LABELS = {
    "order_id": "Order",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "date_of_birth": "Date of birth",
    "phone": "Phone",
    "gender": "Gender",
    "street1": "Street address",
    "street2": "Apartment, suite, etc.",
    "city": "City",
    "state": "State",
    "zipcode": "ZIP code",
}

# The template's example row. A row identical to it is skipped, so a file where staff
# forgot to delete it registers no "Jane Example".
EXAMPLE_ROW = {
    "order_id": "1234",
    "first_name": "Jane",
    "last_name": "Example",
    "email": "jane.example@example.com",
    "date_of_birth": "1985-04-12",
    "phone": "(617) 555-0123",
    "gender": "female",
    "street1": "123 Main St",
    "street2": "Apt 4",
    "city": "Cambridge",
    "state": "MA",
    "zipcode": "02139",
}

_FORMULA_PREFIXES = ("=", "+", "-", "@")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


class CsvRefused(Exception):
    """The file as a whole cannot be read: one message for staff, no row is kept."""


@dataclass
class ParsedRow:
    number: int
    values: dict[str, str]
    # Non-empty cells beyond the header's columns (a shifted row).
    extra_cells: int = 0


@dataclass
class ParsedFile:
    rows: list[ParsedRow] = field(default_factory=list)
    skipped_example: bool = False


def template_rows() -> tuple[list[str], list[list[str]]]:
    """The downloadable template: the header and one example row."""
    return list(COLUMNS), [[EXAMPLE_ROW[c] for c in COLUMNS]]


def _decode(data: bytes) -> str:
    if data.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        raise CsvRefused(
            "This is an Excel workbook, not a CSV file. In Excel choose File > Save As > "
            "“CSV UTF-8 (Comma delimited)” and upload that file."
        )
    if b"\x00" in data:
        raise CsvRefused("This is not a CSV file (it contains binary data). Upload the CSV saved from the template.")
    try:
        # utf-8-sig drops the byte order mark Excel writes at the start of “CSV UTF-8”.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvRefused(
            "This file is not UTF-8 text. In Excel choose “CSV UTF-8 (Comma delimited)” when saving "
            "(plain “CSV” uses another encoding and would garble names such as Zoë)."
        ) from None


def _header_name(cell: str) -> str:
    return "_".join(cell.strip().lower().split())


def _check_header(header: list[str]) -> list[str]:
    names = [_header_name(cell) for cell in header]
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        raise CsvRefused("The columns of this file are separated by semicolons or tabs; use commas (CSV UTF-8).")
    present = [n for n in names if n]
    repeated = sorted({n for n in present if present.count(n) > 1})
    missing = [c for c in COLUMNS if c not in names and c not in OPTIONAL_COLUMNS]
    extra = [n for n in present if n not in COLUMNS and n != ERROR_COLUMN]
    if not any(n in COLUMNS for n in names):
        raise CsvRefused(
            "The first row is not the template's header row (it names none of its columns). The first row must "
            f"name these columns: {', '.join(COLUMNS)}. Download the template to start from it."
        )
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    if extra:
        problems.append(f"unknown column{'s' if len(extra) > 1 else ''}: {', '.join(extra[:10])}")
    if repeated:
        problems.append(f"repeated column{'s' if len(repeated) > 1 else ''}: {', '.join(repeated)}")
    if problems:
        raise CsvRefused(
            "The header row does not match the template ("
            + "; ".join(problems)
            + f"). The first row must name these columns: {', '.join(COLUMNS)}. Download the template to start from it."
        )
    return names


def _unprotect(value: str) -> str:
    """Undo the apostrophe the portal's CSV downloads put before a formula-like cell."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_PREFIXES):
        return value[1:]
    return value


def parse_csv(data: bytes, *, max_rows: int) -> ParsedFile:
    """Read an uploaded CSV (UTF-8 with or without BOM, CRLF or LF line ends, quoted
    cells with commas, quotes and line breaks inside, as Excel writes them).

    Blank lines are skipped; a row is numbered as a spreadsheet numbers it (the header
    is row 1). Raises CsvRefused with one message when the file cannot be used."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise CsvRefused("The file is empty. Download the template, fill in one row per kit and upload it.")
        names = _check_header(header)
        parsed = ParsedFile()
        for index, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(parsed.rows) >= max_rows:
                raise CsvRefused(
                    f"The file has more than {max_rows:,} rows; upload at most {max_rows:,} rows at a time "
                    "(split it into several files)."
                )
            values = {name: _unprotect(cell) for name, cell in zip(names, cells, strict=False) if name in COLUMNS}
            extra = sum(1 for cell in cells[len(names) :] if cell.strip())
            if values == EXAMPLE_ROW and not extra:
                parsed.skipped_example = True
                continue
            parsed.rows.append(ParsedRow(index, values, extra))
    except csv.Error as exc:
        raise CsvRefused(f"This file could not be read as CSV ({exc}). Save it from Excel as CSV UTF-8.") from None
    if not parsed.rows:
        raise CsvRefused("The file has a header row but no kits. Fill in one row per kit below the header.")
    return parsed
