"""Bulk uploads in admin: read-only, one changelist query count whatever the rows."""

import pytest
from django.urls import reverse

from portal.bulk.models import BulkRow, BulkUpload
from portal.bulk.services import bulk_upload_create
from tests.bulk.conftest import make_csv, row

pytestmark = pytest.mark.django_db


def test_admins_read_uploads_and_rows_but_cannot_add_or_change_them(admin_client_, order, admin_user):
    upload = bulk_upload_create(
        file_name="kits.csv", data=make_csv([row(order, 1), row(order, 2, phone="x")]), created_by=admin_user
    )
    first = upload.rows.order_by("row_number").first()
    for model in (BulkUpload, BulkRow):
        opts = model._meta
        assert admin_client_.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
        assert admin_client_.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    page = admin_client_.get(reverse("admin:bulk_bulkrow_change", args=[first.pk]))
    assert page.status_code == 200 and "patient1@example.com" in page.content.decode()
    response = admin_client_.post(reverse("admin:bulk_bulkrow_change", args=[first.pk]), {"outcome": "registered"})
    assert response.status_code == 403
    # deleting an upload deletes its rows (patient data), nothing else
    admin_client_.post(reverse("admin:bulk_bulkupload_delete", args=[upload.pk]), {"post": "yes"})
    assert not BulkRow.objects.exists()
