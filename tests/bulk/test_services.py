"""Storing a preview, confirming it (once), sending in batches, cancelling."""

import datetime as dt

import pytest

from portal.bulk import services
from portal.bulk.csvfile import CsvRefused
from portal.bulk.models import BulkRow, BulkUpload
from portal.bulk.selectors import bulk_rows_to_fix, bulk_upload_progress
from portal.bulk.services import (
    BulkUploadError,
    bulk_register_rows,
    bulk_submit_batch,
    bulk_upload_cancel,
    bulk_upload_confirm,
    bulk_upload_create,
    row_idempotency_key,
)
from portal.bulk.tasks import bulk_register_rows_task, bulk_submit_batch_task
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.patients.models import Address, Patient
from tests.bulk.conftest import make_csv, row
from tests.bulk.lab import register_kits
from tests.factories import OrderFactory, PatientFactory, RegistrationFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 1)


def preview(rows, user=None, **kwargs):
    return bulk_upload_create(file_name="kits.csv", data=make_csv(rows, **kwargs), created_by=user, today=TODAY)


@pytest.fixture
def send_inline(monkeypatch):
    """Run the batch task in this process when it is enqueued (as a worker would)."""
    sent = []

    def delay(ids):
        sent.append(list(ids))
        bulk_submit_batch_task.apply(args=[ids], throw=True)

    monkeypatch.setattr(bulk_submit_batch_task, "delay", delay)
    return sent


def test_a_preview_stores_every_row_with_its_outcome_and_the_counts(order, staff_user):
    PatientFactory(email="patient2@example.com", date_of_birth=dt.date(1985, 4, 12))
    upload = preview([row(order, 1), row(order, 2), row(order, 3, phone="x"), row(order, 1)], user=staff_user)
    assert upload.status == BulkUpload.Status.PREVIEW
    assert (upload.row_count, upload.valid_count, upload.invalid_count, upload.duplicate_count) == (4, 2, 1, 1)
    assert upload.matched_count == 1 and upload.created_by == staff_user
    rows = list(upload.rows.order_by("row_number"))
    assert [r.outcome for r in rows] == ["valid", "valid", "invalid", "duplicate"]
    assert rows[2].errors == {"phone": "A phone number contains digits only, e.g. (617) 555-0123."}
    assert rows[0].values["email"] == "patient1@example.com"  # as typed, in the database only
    assert not KitRegistration.objects.exists()  # nothing registered before staff confirm


def test_a_file_over_the_size_limit_is_refused(order, settings):
    settings.BULK_MAX_BYTES = 100
    with pytest.raises(CsvRefused, match="too large"):
        preview([row(order, 1), row(order, 2)])
    assert not BulkUpload.objects.exists()


def test_a_file_over_the_row_limit_is_refused(order, settings):
    settings.BULK_MAX_ROWS = 2
    with pytest.raises(CsvRefused, match="more than 2 rows"):
        preview([row(order, n) for n in range(3)])


def test_confirm_saves_every_valid_row_at_once_and_sends_them_in_batches(
    order, staff_user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.BULK_BATCH_SIZE = 2
    enqueued = []
    monkeypatch.setattr(bulk_submit_batch_task, "delay", enqueued.append)
    existing = PatientFactory(email="patient4@example.com", date_of_birth=dt.date(1985, 4, 12))
    upload = preview([row(order, n) for n in range(5)] + [row(order, 9, phone="x")])
    with django_capture_on_commit_callbacks() as callbacks:
        upload = bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
        assert enqueued == []  # only once the registrations are committed
    for callback in callbacks:
        callback()
    assert upload.status == BulkUpload.Status.CONFIRMED and upload.confirmed_by == staff_user
    assert upload.registered_count == 5
    registrations = KitRegistration.objects.filter(bulk_rows__upload=upload)
    assert [len(batch) for batch in enqueued] == [2, 2, 1]  # 5 registrations in batches of 2
    assert sorted(pk for batch in enqueued for pk in batch) == sorted(registrations.values_list("pk", flat=True))
    assert registrations.count() == 5
    assert set(registrations.values_list("submission_status", flat=True)) == {Submission.QUEUED}
    assert registrations.filter(patient=existing).count() == 1  # attached, not duplicated
    assert Patient.objects.count() == 5 and Address.objects.count() == 4
    first = upload.rows.get(row_number=2)
    assert first.outcome == BulkRow.Outcome.REGISTERED
    assert first.registration.idempotency_key == row_idempotency_key(upload_id=upload.pk, row_number=2)
    assert first.registration.created_by == staff_user


def test_a_second_confirm_registers_nothing_twice(order, staff_user):
    upload = preview([row(order, 1), row(order, 2)])
    bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    with pytest.raises(BulkUploadError, match="confirmed already"):
        bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    assert KitRegistration.objects.count() == 2 and Patient.objects.count() == 2


def test_reuploading_the_same_file_registers_nothing_twice(order, staff_user):
    rows = [row(order, 1), row(order, 2), row(order, 3, zipcode="2139")]
    first = preview(rows)
    bulk_upload_confirm(upload_id=first.pk, actor=staff_user)

    rows[2]["zipcode"] = "02139"  # fixed
    again = preview(rows)
    assert (again.valid_count, again.duplicate_count) == (1, 2)
    duplicates = again.rows.filter(outcome=BulkRow.Outcome.DUPLICATE)
    assert {r.registration_id for r in duplicates} == set(KitRegistration.objects.values_list("pk", flat=True))
    bulk_upload_confirm(upload_id=again.pk, actor=staff_user)
    assert KitRegistration.objects.count() == 3 and Patient.objects.count() == 3


def test_two_previews_of_one_file_confirmed_one_after_the_other_register_once(order, staff_user):
    a = preview([row(order, 1), row(order, 2)])
    b = preview([row(order, 1), row(order, 2)])
    bulk_upload_confirm(upload_id=a.pk, actor=staff_user)
    b = bulk_upload_confirm(upload_id=b.pk, actor=staff_user)  # duplicates are checked again on confirm
    assert (b.registered_count, b.duplicate_count, b.valid_count) == (0, 2, 0)
    assert KitRegistration.objects.count() == 2 and Patient.objects.count() == 2


def test_a_new_patient_with_kits_on_two_orders_is_created_once(order, staff_user):
    other = OrderFactory()
    upload = preview([row(order, 1), row(other, 1)])
    bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    assert KitRegistration.objects.count() == 2 and Patient.objects.count() == 1


def test_confirm_of_a_cancelled_upload_is_refused(order, staff_user):
    upload = preview([row(order, 1)])
    bulk_upload_cancel(upload_id=upload.pk, actor=staff_user)
    with pytest.raises(BulkUploadError, match="cancelled"):
        bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    assert not KitRegistration.objects.exists()


def test_cancel_deletes_the_rows_and_keeps_the_counts(order, staff_user):
    upload = bulk_upload_cancel(upload_id=preview([row(order, 1)]).pk, actor=staff_user)
    assert upload.status == BulkUpload.Status.CANCELLED and upload.row_count == 1
    assert not BulkRow.objects.exists()
    with pytest.raises(BulkUploadError):
        bulk_upload_cancel(upload_id=upload.pk, actor=staff_user)


def test_the_lab_accepts_all_but_one_and_the_refused_row_can_be_downloaded(
    order, staff_user, partner, send_inline, django_capture_on_commit_callbacks, settings
):
    settings.BULK_BATCH_SIZE = 2
    register_kits(partner, reject_emails={"patient2@example.com"})
    upload = preview([row(order, n) for n in range(4)] + [row(order, 7, phone="1")])
    with django_capture_on_commit_callbacks(execute=True):
        upload = bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    assert len(send_inline) == 2
    progress = bulk_upload_progress(upload=upload)
    assert progress == {
        "total": 4,
        "saving": 0,
        "submitted": 3,
        "failed": 1,
        "retrying": 0,
        "waiting_for_order": 0,
        "pending": 0,
        "done": True,
    }
    assert len(partner.calls_to("/registration", "POST")) == 4
    to_fix = list(bulk_rows_to_fix(upload=upload))
    assert [r[3] for r in to_fix] == ["patient2@example.com", "patient7@example.com"]
    assert "phone_number is not reachable" in to_fix[0][-1]
    assert to_fix[1][-1].startswith("phone: ")

    # the batch task delivered twice (a worker died after sending) sends nothing again
    registration_ids = list(upload.rows.exclude(registration=None).values_list("registration_id", flat=True))
    assert bulk_submit_batch(registration_ids=registration_ids) == {"accepted": 3, "rejected": 1}
    assert len(partner.calls_to("/registration", "POST")) == 4


def test_a_row_the_lab_rejected_is_corrected_by_uploading_it_again(order, staff_user, partner):
    register_kits(partner, reject_emails={"patient1@example.com"})
    first = preview([row(order, 1)])
    bulk_upload_confirm(upload_id=first.pk, actor=staff_user)
    registration = KitRegistration.objects.get()
    bulk_submit_batch(registration_ids=[registration.pk])
    registration.refresh_from_db()
    assert registration.submission_status == Submission.REJECTED

    partner.mock.reset()
    partner.mock.get(f"{partner.auth}/v1/token", json={"token": "t"})
    register_kits(partner)
    fixed = preview([row(order, 1, phone="(617) 555-0199")])
    assert (fixed.valid_count, fixed.correction_count) == (1, 1)
    bulk_upload_confirm(upload_id=fixed.pk, actor=staff_user)
    bulk_submit_batch(registration_ids=[registration.pk])
    registration.refresh_from_db()
    assert KitRegistration.objects.count() == 1  # the same registration, corrected
    assert registration.submission_status == Submission.ACCEPTED
    assert registration.patient.phone == "6175550199"


def test_registrations_of_an_order_not_accepted_yet_wait_for_it(staff_user, partner):
    waiting = OrderFactory(upstream_id=None, submission_status=Submission.QUEUED)
    upload = preview([row(f"#{waiting.pk}", 1)])
    upload = bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    bulk_submit_batch(registration_ids=[KitRegistration.objects.get().pk])
    assert not partner.calls_to("/registration")
    progress = bulk_upload_progress(upload=upload)
    assert (progress["pending"], progress["waiting_for_order"], progress["done"]) == (1, 1, False)


def test_a_long_batch_hands_the_rest_to_a_new_task(order, partner, monkeypatch):
    register_kits(partner)
    registrations = [RegistrationFactory(order=order, upstream_id=None, kit_id=None, submission_status="queued")]
    registrations += [
        RegistrationFactory(order=order, upstream_id=None, kit_id=None, submission_status="queued") for _ in range(3)
    ]
    handed_over = []
    monkeypatch.setattr(bulk_submit_batch_task, "delay", handed_over.append)
    ticks = iter([0, 5, 11])  # started, then before the 2nd and the 3rd registration
    counts = bulk_submit_batch(
        registration_ids=[r.pk for r in registrations], budget_seconds=10, clock=lambda: next(ticks)
    )
    assert counts == {"accepted": 2, "deferred": 2}
    assert handed_over == [[registrations[2].pk, registrations[3].pk]]


def test_a_large_file_is_saved_in_the_background_a_chunk_at_a_time(
    order, staff_user, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "INLINE_ROWS", 3)
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    handed_over, sent = [], []
    monkeypatch.setattr(bulk_register_rows_task, "delay", handed_over.append)
    monkeypatch.setattr(bulk_submit_batch_task, "delay", sent.append)
    existing = PatientFactory(email="patient3@example.com", date_of_birth=dt.date(1985, 4, 12))
    upload = preview([row(order, n) for n in range(5)] + [row(OrderFactory(), 1)])
    with django_capture_on_commit_callbacks(execute=True):
        upload = bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    assert handed_over == [upload.pk]  # more than INLINE_ROWS: saved by a task
    assert upload.status == BulkUpload.Status.CONFIRMED and upload.registered_count == 0
    progress = bulk_upload_progress(upload=upload)
    assert (progress["total"], progress["saving"], progress["pending"], progress["done"]) == (6, 6, 6, False)

    # The task was lost: confirming again hands the rows to a new one, and registers nothing twice.
    with django_capture_on_commit_callbacks(execute=True):
        bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)
    assert handed_over == [upload.pk, upload.pk]

    with django_capture_on_commit_callbacks(execute=True):
        assert bulk_register_rows(upload_id=upload.pk) == 6
        assert bulk_register_rows(upload_id=upload.pk) == 0  # a second task finds nothing left
    upload.refresh_from_db()
    assert (upload.registered_count, upload.valid_count) == (6, 6)
    assert [len(batch) for batch in sent] == [2, 2, 2]  # one batch per saved chunk
    registrations = KitRegistration.objects.filter(bulk_rows__upload=upload)
    assert registrations.count() == 6 and registrations.filter(patient=existing).count() == 1
    assert Patient.objects.count() == 5  # patient1 on two orders is one patient, across chunks
    assert registrations.first().created_by == staff_user
    assert bulk_upload_progress(upload=upload)["saving"] == 0
    with pytest.raises(BulkUploadError, match="confirmed already"):
        bulk_upload_confirm(upload_id=upload.pk, actor=staff_user)


def test_saving_a_large_file_hands_over_to_a_new_task_after_its_budget(order, staff_user, monkeypatch):
    monkeypatch.setattr(services, "INLINE_ROWS", 0)
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    handed_over = []
    monkeypatch.setattr(bulk_register_rows_task, "delay", handed_over.append)
    monkeypatch.setattr(bulk_submit_batch_task, "delay", lambda ids: None)
    upload = bulk_upload_confirm(upload_id=preview([row(order, n) for n in range(5)]).pk, actor=staff_user)
    ticks = iter([0, 5, 11])
    assert bulk_register_rows(upload_id=upload.pk, budget_seconds=10, clock=lambda: next(ticks)) == 4
    assert handed_over == [upload.pk]
    assert KitRegistration.objects.count() == 4
