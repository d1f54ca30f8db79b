"""Reading the uploaded CSV: encodings, line ends, Excel's quoting, the header, limits."""

import csv

import pytest

from portal.bulk.csvfile import COLUMNS, EXAMPLE_ROW, CsvRefused, parse_csv, template_rows
from tests.bulk.conftest import make_csv, row


def parse(data: bytes, max_rows: int = 100):
    return parse_csv(data, max_rows=max_rows)


def test_the_template_has_the_header_and_one_example_row():
    header, rows = template_rows()
    assert header == list(COLUMNS)
    assert len(rows) == 1 and len(rows[0]) == len(COLUMNS)


def test_a_good_file_is_read_with_spreadsheet_row_numbers():
    parsed = parse(make_csv([row("1", 1), row("1", 2)]))
    assert [r.number for r in parsed.rows] == [2, 3]
    assert parsed.rows[0].values["email"] == "patient1@example.com"


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bom_and_crlf_or_lf_are_all_read_the_same(bom, newline):
    parsed = parse(make_csv([row("1", 1, first_name="Zoë")], bom=bom, newline=newline))
    values = parsed.rows[0].values
    assert values["order_id"] == "1"  # the BOM is not glued to the first column's name
    assert values["first_name"] == "Zoë"
    assert values["zipcode"] == "02139"  # no stray \r at the end of the line


def test_excel_quoting_commas_quotes_and_line_breaks_inside_cells():
    data = make_csv(
        [row("1", 1, street1='12 "Old" Mill Rd, Unit 3', street2="Building A\r\nBack door"), row("1", 2)],
        quoting=csv.QUOTE_ALL,
        newline="\r\n",
    )
    parsed = parse(data)
    assert parsed.rows[0].values["street1"] == '12 "Old" Mill Rd, Unit 3'
    assert parsed.rows[0].values["street2"] == "Building A\r\nBack door"
    assert [r.number for r in parsed.rows] == [2, 3]  # a line break inside a cell is not a new row


def test_header_names_ignore_case_spaces_and_order():
    header = [f"  {c.upper().replace('_', ' ')} " for c in reversed(COLUMNS)]
    values = row("1", 1)
    data = make_csv([], header=header) + (",".join(values[c] for c in reversed(COLUMNS)) + "\n").encode()
    parsed = parse(data)
    assert parsed.rows[0].values == {c: values[c] for c in COLUMNS}


def test_street2_column_may_be_left_out():
    header = [c for c in COLUMNS if c != "street2"]
    parsed = parse(make_csv([row("1", 1)], header=header))
    assert "street2" not in parsed.rows[0].values


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ([c for c in COLUMNS if c != "phone"], "missing column: phone"),
        ([c for c in COLUMNS if c not in ("phone", "email")], "missing columns: email, phone"),
        ([*COLUMNS, "notes"], "unknown column: notes"),
        ([*COLUMNS, "email"], "repeated column: email"),
        (["name", "dob", "address"], "not the template's header row"),
        (["4242", "Ada", "Lovelace"], "not the template's header row"),  # the header row was left out
    ],
)
def test_wrong_columns_get_one_clear_message(header, expected):
    with pytest.raises(CsvRefused) as caught:
        parse(make_csv([row("1", 1)], header=header))
    assert expected in str(caught.value)
    assert "order_id, first_name, last_name" in str(caught.value)  # says what the header must be
    assert "Lovelace" not in str(caught.value)  # a data row is not echoed back as column names


def test_the_error_column_of_the_rows_to_fix_download_is_ignored():
    parsed = parse(make_csv([{**row("1", 1), "error": "phone: wrong"}], header=[*COLUMNS, "error"]))
    assert "error" not in parsed.rows[0].values


def test_cells_protected_from_formulas_by_our_downloads_are_read_back():
    parsed = parse(make_csv([row("1", 1, phone="'+1 617 555 0123", street2="'-")]))
    assert parsed.rows[0].values["phone"] == "+1 617 555 0123"
    assert parsed.rows[0].values["street2"] == "-"


def test_blank_lines_and_empty_rows_from_excel_are_skipped():
    data = make_csv([row("1", 1)]) + b"\n,,,,,,,,,,,\n\n" + make_csv([row("1", 2)]).split(b"\n", 1)[1]
    parsed = parse(data)
    assert [r.values["email"] for r in parsed.rows] == ["patient1@example.com", "patient2@example.com"]
    assert [r.number for r in parsed.rows] == [2, 6]  # row 6 in the spreadsheet too


def test_the_template_example_row_is_skipped():
    parsed = parse(make_csv([EXAMPLE_ROW, row("1", 1)]))
    assert parsed.skipped_example
    assert len(parsed.rows) == 1


def test_a_row_with_more_cells_than_columns_is_flagged():
    shifted = b"1,A,B,a@example.com,1985-04-12,6175550123,female,1 Main St,,Boston,MA,02139,extra\n"
    data = make_csv([row("1", 1)]) + shifted
    parsed = parse(data)
    assert parsed.rows[0].extra_cells == 0
    assert parsed.rows[1].extra_cells == 1


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (make_csv([]), "no kits"),
        ("order_id,first_name\nZo\u00eb".encode("cp1252"), "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Excel workbook"),
        (b"order_id;first_name;last_name\n1;a;b\n", "semicolons"),
    ],
)
def test_a_file_that_is_not_a_usable_csv_gets_one_message(data, expected):
    with pytest.raises(CsvRefused) as caught:
        parse(data)
    assert expected in str(caught.value)


def test_more_rows_than_allowed_are_refused():
    data = make_csv([row("1", n) for n in range(6)])
    assert len(parse(data, max_rows=6).rows) == 6
    with pytest.raises(CsvRefused, match="more than 5 rows"):
        parse(data, max_rows=5)
