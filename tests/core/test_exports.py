import csv
import io

import pytest

from portal.core.exports import csv_response, safe_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("O'Brien", "O'Brien"),
        ("Zoë", "Zoë"),
        (None, ""),
        (42, "42"),
    ],
)
def test_formula_cells_are_neutralised(value, expected):
    assert safe_cell(value) == expected


def test_csv_response_streams_parsable_rows():
    response = csv_response("x.csv", ["name", "note"], iter([["Nguyễn", "=cmd"], ["李小龍", "ok"]]))
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["name", "note"], ["Nguyễn", "'=cmd"], ["李小龍", "ok"]]
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
