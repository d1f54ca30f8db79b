import csv
import io

import pytest

from portal.core.exports import ROWS_PER_CHUNK, csv_response, safe_cell


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


def test_a_long_export_is_sent_in_chunks_of_rows_as_they_are_read():
    read = []

    def rows():
        for n in range(ROWS_PER_CHUNK * 2 + 1):
            read.append(n)
            yield [f"row {n}", n]

    chunks = iter(csv_response("x.csv", ["name", "n"], rows()).streaming_content)
    first = next(chunks).decode("utf-8-sig")
    # The first chunk went out before the source was read to the end (memory stays flat).
    assert len(read) == ROWS_PER_CHUNK
    assert first.splitlines()[:2] == ["name,n", "row 0,0"]
    rest = [chunk.decode("utf-8") for chunk in chunks]
    lines = (first + "".join(rest)).splitlines()
    last = ROWS_PER_CHUNK * 2
    assert len(rest) == 2 and len(lines) == last + 2 and lines[-1] == f"row {last},{last}"
