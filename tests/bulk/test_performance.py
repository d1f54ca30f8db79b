"""A 5,000-row file previews in under 10 seconds, with a fixed number of queries.

Prints the measured time (run with `-s` to see it):
    .venv/bin/pytest -q -s tests/bulk/test_performance.py
"""

import datetime as dt
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.bulk.models import BulkUpload
from portal.kits.models import KitRegistration
from portal.patients.models import Patient
from tests.bulk.conftest import make_csv, row
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

ROWS = 5000
LIMIT_SECONDS = 10.0


def test_a_5000_row_file_previews_in_under_10_seconds(staff_client, settings):
    settings.BULK_MAX_ROWS = ROWS
    orders = [OrderFactory() for _ in range(5)]
    # A clinic with history: 2,000 patients, 1,000 of them registered on these orders already.
    patients = Patient.objects.bulk_create(
        Patient(
            first_name="Old",
            last_name=f"Patient{n}",
            email=f"patient{n}@example.com",
            date_of_birth=dt.date(1985, 4, 12),
            phone="6175550123",
            gender="female",
        )
        for n in range(2000)
    )
    KitRegistration.objects.bulk_create(
        KitRegistration(order=orders[n % 5], patient=patients[n], submission_status="accepted", upstream_id=n + 1)
        for n in range(1000)
    )
    rows = [row(orders[n % 5], n) for n in range(ROWS)]
    for n in range(0, ROWS, 50):  # 2% with errors
        rows[n]["phone"] = "555"
    data = make_csv(rows, bom=True, newline="\r\n")
    assert len(data) <= settings.BULK_MAX_BYTES

    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.post(
            reverse("bulk:upload"), {"file": SimpleUploadedFile("big.csv", data, content_type="text/csv")}
        )
    uploaded = time.perf_counter()
    assert response.status_code == 302, response.content.decode()[:2000]
    sql = [q["sql"] for q in queries.captured_queries]
    page = staff_client.get(response["Location"])
    elapsed = time.perf_counter() - started
    assert page.status_code == 200

    upload = BulkUpload.objects.get()
    print(
        f"\nbulk preview of {ROWS} rows on {connection.vendor}: {elapsed:.2f} s "
        f"(upload and check {uploaded - started:.2f} s, preview page {elapsed - (uploaded - started):.2f} s; "
        f"{len(sql)} queries for the upload)"
    )
    assert upload.row_count == ROWS
    assert upload.invalid_count == ROWS // 50
    assert upload.duplicate_count == 1000 - 20  # registered before (rows with errors aside)
    assert upload.matched_count == 1000 - 20
    assert elapsed < LIMIT_SECONDS
    # One query for each lookup whatever the number of rows; storing the rows is batched.
    for table in ("orders_order", "patients_patient", "kits_kitregistration"):
        assert sum(1 for q in sql if q.startswith("SELECT") and f'FROM "{table}"' in q) == 1, table
    assert sum(1 for q in sql if q.startswith('INSERT INTO "bulk_bulkrow"')) <= ROWS / 90
