"""The bulk registration pages: template, upload, preview, confirm, progress, rows to fix."""

import csv
import io
import json

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.bulk.models import BulkRow, BulkUpload
from portal.bulk.services import bulk_upload_confirm, bulk_upload_create
from portal.bulk.tasks import bulk_submit_batch_task
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from tests.bulk.conftest import make_csv, row
from tests.bulk.lab import register_kits

pytestmark = pytest.mark.django_db

UPLOAD = reverse("bulk:upload")


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def csv_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))


def post_file(client, data: bytes, name: str = "kits.csv"):
    return client.post(UPLOAD, {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


@pytest.fixture
def uploaded(order, staff_user):
    """A preview: two good rows, one with a bad phone, one duplicate of the first."""
    data = make_csv([row(order, 1), row(order, 2), row(order, 3, phone="555-01"), row(order, 1)])
    return bulk_upload_create(file_name="kits.csv", data=data, created_by=staff_user)


# --- permissions -------------------------------------------------------------------


def _urls(upload) -> list[str]:
    return [
        UPLOAD,
        reverse("bulk:template"),
        reverse("bulk:detail", args=[upload.pk]),
        reverse("bulk:progress", args=[upload.pk]),
        reverse("bulk:rows_to_fix", args=[upload.pk]),
    ]


def test_anonymous_people_are_sent_to_sign_in(client, uploaded):
    for url in _urls(uploaded):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    response = client.post(reverse("bulk:confirm", args=[uploaded.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_people_without_a_role_are_refused(client, no_role_user, uploaded):
    client.force_login(no_role_user)
    for url in _urls(uploaded):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("bulk:confirm", args=[uploaded.pk])).status_code == 403
    assert client.post(reverse("bulk:cancel", args=[uploaded.pk])).status_code == 403
    assert not KitRegistration.objects.exists()


def test_clinic_staff_may_use_every_page(staff_client, uploaded):
    for url in _urls(uploaded):
        assert staff_client.get(url).status_code == 200, url


def test_the_navigation_links_to_bulk_upload_for_staff(staff_client):
    assert f'href="{UPLOAD}"' in staff_client.get(reverse("dashboard")).content.decode()


# --- template and upload -----------------------------------------------------------


def test_the_template_download_has_the_header_and_an_example_row(staff_client):
    response = staff_client.get(reverse("bulk:template"))
    assert response["Content-Disposition"] == 'attachment; filename="kit-registrations-template.csv"'
    header, example = csv_of(response)
    assert header[:3] == ["order_id", "first_name", "last_name"] and len(example) == len(header)


def test_uploading_the_template_as_is_says_there_are_no_kits(staff_client):
    data = b"".join(staff_client.get(reverse("bulk:template")).streaming_content)
    response = post_file(staff_client, data)
    assert response.status_code == 200
    assert "no kits" in response.content.decode()


def test_a_good_upload_shows_the_preview_and_registers_nothing(staff_client, order):
    response = post_file(staff_client, make_csv([row(order, 1), row(order, 2)], bom=True, newline="\r\n"))
    upload = BulkUpload.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("bulk:detail", args=[upload.pk])
    assert "patient1" not in response["Location"]  # no patient data in URLs
    page = staff_client.get(response["Location"]).content.decode()
    assert "Register 2 kits" in page
    assert "patient1@example.com" in page and "New patient" in page
    assert not KitRegistration.objects.exists()


def test_the_preview_shows_each_error_against_its_row_and_column(staff_client, uploaded):
    page = staff_client.get(reverse("bulk:detail", args=[uploaded.pk])).content.decode()
    # the "problems" tab is shown first when there are problems
    assert "Rows with problems" in page
    assert '<th scope="row">4</th>' in page
    error = '<div class="text-danger-emphasis"><span class="visually-hidden">Error: </span>'
    assert f'class="table-danger">555-01{error}' in page
    assert "Same order, email and date of birth as row 2." in page
    assert "Register 2 kits (skip the other rows)" in page
    valid_tab = staff_client.get(reverse("bulk:detail", args=[uploaded.pk]), {"show": "valid"}).content.decode()
    assert '<th scope="row">2</th>' in valid_tab and '<th scope="row">4</th>' not in valid_tab


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00binary", "kits.xlsx", "Excel workbook"),
        (b"\x00\x01\x02\xff\xfe", "kits.csv", "not a CSV file"),
        ("order_id,first_name\nZo\u00eb,x\n".encode("cp1252"), "kits.csv", "not UTF-8"),
        (make_csv([{"order_id": "1"}], header=["order_id", "name"]), "kits.csv", "missing columns"),
        (b"", "kits.csv", "The file is empty"),
    ],
)
def test_a_file_that_cannot_be_used_gets_one_message_not_an_error_page(staff_client, data, name, expected):
    response = post_file(staff_client, data, name)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not BulkUpload.objects.exists()


def test_an_oversized_file_is_refused_with_its_size(staff_client, order, settings):
    settings.BULK_MAX_BYTES = 1024
    response = post_file(staff_client, make_csv([row(order, n) for n in range(20)]))
    assert response.status_code == 200
    assert "The file is too large" in response.content.decode()
    assert not BulkUpload.objects.exists()


def test_too_many_rows_are_refused(staff_client, order, settings):
    settings.BULK_MAX_ROWS = 3
    response = post_file(staff_client, make_csv([row(order, n) for n in range(4)]))
    assert "more than 3 rows" in response.content.decode()


# --- confirm, progress, rows to fix ------------------------------------------------------


def test_confirm_registers_the_valid_rows_once(staff_client, uploaded, monkeypatch):
    monkeypatch.setattr(bulk_submit_batch_task, "delay", lambda ids: None)
    url = reverse("bulk:confirm", args=[uploaded.pk])
    response = staff_client.post(url)
    assert response.status_code == 302
    assert messages_of(response) == ["2 kit registrations saved; they are being sent to the lab."]
    again = staff_client.post(url)
    assert messages_of(again)[-1] == "This upload was confirmed already; its kits were not registered twice."
    assert KitRegistration.objects.count() == 2


def test_confirm_is_a_post(staff_client, uploaded):
    assert staff_client.get(reverse("bulk:confirm", args=[uploaded.pk])).status_code == 405


def test_cancel_deletes_the_rows(staff_client, uploaded):
    response = staff_client.post(reverse("bulk:cancel", args=[uploaded.pk]))
    assert response["Location"] == UPLOAD
    assert not BulkRow.objects.exists()
    assert "cancelled" in staff_client.get(reverse("bulk:detail", args=[uploaded.pk])).content.decode()


def test_the_whole_journey_with_the_lab_refusing_one_row(
    staff_client, staff_user, order, partner, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        bulk_submit_batch_task, "delay", lambda ids: bulk_submit_batch_task.apply(args=[ids], throw=True)
    )
    register_kits(partner, reject_emails={"patient3@example.com"})
    rows = [row(order, n) for n in range(1, 18)] + [
        row(order, 18, phone="555"),
        row(order, 19, date_of_birth="19/04/1985"),
        row(order, 20, state="PR"),
    ]
    response = post_file(staff_client, make_csv(rows))
    upload = BulkUpload.objects.get()
    assert (upload.valid_count, upload.invalid_count) == (17, 3)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("bulk:confirm", args=[upload.pk]))

    progress = staff_client.get(reverse("bulk:progress", args=[upload.pk]))
    assert progress["Content-Type"] == "application/json"
    assert "no-cache" in progress["Cache-Control"] or "no-store" in progress["Cache-Control"]
    data = json.loads(progress.content)
    assert (data["total"], data["submitted"], data["failed"], data["pending"], data["done"]) == (17, 16, 1, 0, True)
    assert "example.com" not in progress.content.decode()  # counts only

    page = staff_client.get(response["Location"]).content.decode()
    assert 'src="/static/js/bulk_progress.js"' in page
    assert "data-bulk-progress" in page and "Rejected by the lab" in page

    to_fix = csv_of(staff_client.get(reverse("bulk:rows_to_fix", args=[upload.pk])))
    assert to_fix[0][-1] == "error"
    assert [line[3] for line in to_fix[1:]] == [
        "patient3@example.com",
        "patient18@example.com",
        "patient19@example.com",
        "patient20@example.com",
    ]
    assert "phone_number is not reachable" in to_fix[1][-1]

    # Staff fix the four rows in the downloaded file and upload it as it is.
    fixes = {"patient3@example.com": {"phone": "(617) 555-0177"}, "patient18@example.com": {"phone": "6175550188"}}
    fixes["patient19@example.com"] = {"date_of_birth": "04/19/1985"}
    fixes["patient20@example.com"] = {"state": "RI"}
    header = to_fix[0]
    fixed_rows = []
    for line in to_fix[1:]:
        values = dict(zip(header, line, strict=True))
        values.update(fixes[values["email"]])
        fixed_rows.append(values)
    response = post_file(staff_client, make_csv(fixed_rows, header=header, bom=True), "rows-to-fix.csv")
    fixed = BulkUpload.objects.latest("pk")
    assert (fixed.valid_count, fixed.invalid_count, fixed.correction_count) == (4, 0, 1)
    partner.mock.reset()
    partner.mock.get(f"{partner.auth}/v1/token", json={"token": "t"})
    register_kits(partner)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("bulk:confirm", args=[fixed.pk]))

    assert KitRegistration.objects.count() == 20
    assert set(KitRegistration.objects.values_list("submission_status", flat=True)) == {Submission.ACCEPTED}

    # And the first file uploaded again registers nothing.
    post_file(staff_client, make_csv(rows))
    again = BulkUpload.objects.latest("pk")
    assert (again.valid_count, again.duplicate_count, again.invalid_count) == (0, 17, 3)


def test_rows_to_fix_are_safe_to_open_in_a_spreadsheet(staff_client, order):
    upload = bulk_upload_create(file_name="x.csv", data=make_csv([row(order, 1, first_name="=HYPERLINK(1)")]))
    assert upload.invalid_count == 0  # a name may start with "=": it is stored as typed...
    upload = bulk_upload_create(file_name="x.csv", data=make_csv([row(order, 1, city="=cmd|' /C calc'!A0", phone="")]))
    lines = csv_of(staff_client.get(reverse("bulk:rows_to_fix", args=[upload.pk])))
    assert lines[1][COLUMN("city")] == "'=cmd|' /C calc'!A0"  # ...but never written out as a formula


def COLUMN(name: str) -> int:
    from portal.bulk.csvfile import COLUMNS

    return COLUMNS.index(name)


def test_the_progress_of_a_preview_is_empty(staff_client, uploaded):
    data = staff_client.get(reverse("bulk:progress", args=[uploaded.pk])).json()
    assert data["status"] == "preview" and data["total"] == 0


def test_the_upload_page_lists_recent_uploads(staff_client, uploaded):
    bulk_upload_confirm(upload_id=uploaded.pk)
    page = staff_client.get(UPLOAD).content.decode()
    assert f'href="{reverse("bulk:detail", args=[uploaded.pk])}"' in page and "kits.csv" in page


def test_reads_of_the_rows_are_recorded_without_patient_data(staff_client, staff_user, uploaded):
    from portal.audit.models import PhiAccess

    staff_client.get(reverse("bulk:detail", args=[uploaded.pk]), {"show": "all"})
    b"".join(staff_client.get(reverse("bulk:rows_to_fix", args=[uploaded.pk])).streaming_content)
    listed, exported = PhiAccess.objects.filter(model="bulk.bulkrow").order_by("created_at", "id")
    assert (listed.actor, listed.action, listed.object_count) == (staff_user, "list", 4)
    assert (exported.action, exported.object_count) == ("export", 1)
    assert "example.com" not in str(listed.object_ids) + listed.object_ids_text


def test_a_large_confirmed_upload_says_its_rows_are_being_saved(staff_client, order, monkeypatch):
    from portal.bulk import services

    monkeypatch.setattr(services, "INLINE_ROWS", 1)
    monkeypatch.setattr("portal.bulk.tasks.bulk_register_rows_task.delay", lambda upload_id: None)
    upload = bulk_upload_create(file_name="x.csv", data=make_csv([row(order, 1), row(order, 2)]))
    response = staff_client.post(reverse("bulk:confirm", args=[upload.pk]))
    assert messages_of(response)[-1].startswith("2 kit registrations are being saved in the background")
    page = staff_client.get(reverse("bulk:detail", args=[upload.pk])).content.decode()
    assert "Being saved" in page and "Resume saving" not in page
    BulkUpload.objects.filter(pk=upload.pk).update(updated_at=upload.updated_at.replace(year=2020))
    assert (
        "Resume saving the remaining rows"
        in staff_client.get(reverse("bulk:detail", args=[upload.pk])).content.decode()
    )
    assert staff_client.get(reverse("bulk:progress", args=[upload.pk])).json()["saving"] == 2
