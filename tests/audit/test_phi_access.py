"""Every read of patient data is recorded in PhiAccess: who, when, which page (its
URL name), which records (ids) and from where; and a row holds no patient data."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.db import DatabaseError
from django.test import Client, RequestFactory
from django.urls import reverse

from portal.audit import services
from portal.audit.models import PhiAccess
from portal.audit.services import phi_access_record
from portal.kits.models import KitRegistration
from portal.patients.models import Patient
from portal.results.models import Result
from tests.factories import (
    AddressFactory,
    NotificationFactory,
    PatientFactory,
    RegistrationFactory,
    ResultFactory,
)

pytestmark = pytest.mark.django_db

# A patient whose every detail is easy to find if it leaked into an audit row.
PHI = {
    "first_name": "Zebulon",
    "last_name": "Quixotehart",
    "email": "zeb.quixote@example.org",
    "date_of_birth": dt.date(1961, 3, 5),
    "phone": "6175550188",
}
STREET = "99 Ossington Way"
PHI_TEXTS = [
    "Zebulon", "Quixotehart", "zeb.quixote", "6175550188", "555-0188", "1961-03-05", "03/05/1961", "Ossington",
]  # fmt: skip


@pytest.fixture
def kit():
    """A kit registered to the patient above, with its result and its email."""
    patient = PatientFactory(**PHI)
    AddressFactory(patient=patient, street1=STREET)
    registration = RegistrationFactory(patient=patient, with_address=False)
    result = ResultFactory(registration=registration, upstream_id=registration.upstream_id)
    NotificationFactory(result=result)
    return registration


@pytest.fixture
def nurse(staff_user):
    """Clinic staff in a browser of their own (`staff_client` and `admin_client_` share one)."""
    browser = Client()
    browser.force_login(staff_user)
    return browser


def read(**filters) -> PhiAccess:
    return PhiAccess.objects.filter(**filters).get()


def everything_recorded() -> str:
    return "\n".join(repr(row) for row in PhiAccess.objects.values())


# --- the staff pages ----------------------------------------------------------------------------

STAFF_READS = [
    # (URL name, args of the URL from the kit, query, action, model, ids from the kit)
    ("patients:list", None, "", "list", Patient, lambda k: [k.patient_id]),
    ("patients:list", None, "?q=Quixotehart", "search", Patient, lambda k: [k.patient_id]),
    ("patients:detail", lambda k: [k.patient_id], "", "view", Patient, lambda k: [k.patient_id]),
    ("kits:list", None, "", "list", KitRegistration, lambda k: [k.pk]),
    ("kits:list", None, "?q=" + "KIT", "search", KitRegistration, lambda k: [k.pk]),
    ("kits:detail", lambda k: [k.pk], "", "view", KitRegistration, lambda k: [k.pk]),
    ("kits:export", None, "", "export", KitRegistration, lambda k: [k.pk]),
    ("results:list", None, "", "list", Result, lambda k: [k.result.pk]),
    ("results:list", None, "?q=Quixotehart", "search", Result, lambda k: [k.result.pk]),
    ("results:detail", lambda k: [k.result.pk], "", "view", Result, lambda k: [k.result.pk]),
    ("results:export", None, "?status=pending", "export", Result, lambda k: [k.result.pk]),
    ("orders:detail", lambda k: [k.order_id], "", "list", KitRegistration, lambda k: [k.pk]),
    ("orders:register_kit", lambda k: [k.order_id], "?patient_q=Quixotehart", "search", Patient,
     lambda k: [k.patient_id]),
]  # fmt: skip


@pytest.mark.parametrize(("url_name", "args", "query", "action", "model", "ids"), STAFF_READS)
def test_each_staff_page_showing_patient_data_records_the_read(
    staff_client, staff_user, kit, url_name, args, query, action, model, ids
):
    response = staff_client.get(reverse(url_name, args=args(kit) if args else None) + query, REMOTE_ADDR="192.0.2.9")
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)

    assert response.status_code == 200
    row = read(url_name=url_name)
    assert row.actor == staff_user
    assert row.action == action
    assert row.model == model._meta.label_lower
    assert row.object_ids == ids(kit)
    assert row.object_count == len(ids(kit))
    assert row.client_ip == "192.0.2.9"
    assert row.created_at is not None


def test_a_row_holds_ids_never_patient_data_or_search_terms(staff_client, kit):
    for url_name, args, query, *_ in STAFF_READS:
        staff_client.get(reverse(url_name, args=args(kit) if args else None) + query)

    assert PhiAccess.objects.count() == len(STAFF_READS)
    recorded = everything_recorded()
    for text in [*PHI_TEXTS, "patient_q=", "q=Quixote"]:
        assert text.lower() not in recorded.lower(), text
    searches = PhiAccess.objects.filter(action="search")
    assert {tuple(row.filters) for row in searches} == {("q",), ("patient_q",)}  # the names, not the terms


def test_the_dashboard_records_the_results_and_kits_it_names(staff_client, kit):
    from django.utils import timezone

    Result.objects.filter(pk=kit.result.pk).update(status="ready", state="ready", ready_at=timezone.now())
    failed = RegistrationFactory(submission_status="failed", upstream_id=None, kit_id=None)

    assert staff_client.get(reverse("dashboard")).status_code == 200

    results, kits = PhiAccess.objects.filter(url_name="dashboard").order_by("id")
    assert (results.model, results.object_ids) == ("results.result", [kit.result.pk])
    assert (kits.model, kits.object_ids) == ("kits.kitregistration", [failed.pk])


def test_an_export_records_every_exported_id_in_parts(staff_client, monkeypatch):
    monkeypatch.setattr(services, "IDS_PER_ROW", 2)
    registrations = RegistrationFactory.create_batch(5)

    response = staff_client.get(reverse("kits:export") + "?submission_status=accepted")
    b"".join(response.streaming_content)

    rows = list(PhiAccess.objects.order_by("part"))
    assert [(row.part, row.parts, row.object_count) for row in rows] == [(1, 3, 5), (2, 3, 5), (3, 3, 5)]
    assert sorted(pk for row in rows for pk in row.object_ids) == sorted(r.pk for r in registrations)
    assert {tuple(row.filters) for row in rows} == {("submission_status",)}


def test_an_empty_page_is_recorded_too(staff_client):
    staff_client.get(reverse("patients:list") + "?q=nobody")

    row = read(url_name="patients:list")
    assert (row.action, row.object_ids, row.object_count) == ("search", [], 0)


def test_no_page_is_shown_when_its_read_cannot_be_recorded(staff_client, kit, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(PhiAccess.objects, "bulk_create", broken)

    with pytest.raises(DatabaseError):
        staff_client.get(reverse("patients:detail", args=[kit.patient_id]))


def test_the_address_recorded_is_the_one_the_lockout_trusts(rf, staff_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.66, 203.0.113.7")
    request.user = staff_user

    (row,) = phi_access_record(request=request, action="view", model=Patient, ids=[7])

    assert row.client_ip == "203.0.113.7"
    assert row.url_name == ""  # a request that no URL resolved


def test_filter_names_are_kept_only_when_they_look_like_ours(rf, staff_user):
    request = rf.get("/", {"status": "ready", "q": "", "page": "2", "Jane Doe <jane@x.com>": "1", "ready_from": "x"})
    request.user = staff_user

    (row,) = phi_access_record(request=request, action="list", model=Result, ids=[])

    assert row.filters == ["ready_from", "status"]
    assert row.action == "list"  # an empty search term is no search


# --- Django admin ---------------------------------------------------------------------------


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


ADMIN_RECORDS = {
    "patient": lambda kit: kit.patient,
    "address": lambda kit: kit.patient.addresses.get(),
    "kitregistration": lambda kit: kit,
    "result": lambda kit: kit.result,
    "notification": lambda kit: kit.result.notifications.get(),
}


@pytest.mark.parametrize("name", sorted(ADMIN_RECORDS))
def test_admin_change_views_record_the_record_opened(admin_client_, admin_user, kit, name):
    obj = ADMIN_RECORDS[name](kit)

    response = admin_client_.get(change_url(obj))

    assert response.status_code == 200
    row = read(action="admin_view")
    assert (row.actor, row.model, row.object_ids) == (admin_user, obj._meta.label_lower, [obj.pk])
    assert row.url_name == f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change"


@pytest.mark.parametrize("name", sorted(ADMIN_RECORDS))
def test_admin_changelists_record_the_rows_shown(admin_client_, kit, name):
    obj = ADMIN_RECORDS[name](kit)

    admin_client_.get(changelist_url(type(obj)))
    admin_client_.get(changelist_url(type(obj)) + "?q=Quixotehart")

    listed, searched = PhiAccess.objects.order_by("id")
    assert (listed.action, listed.object_ids) == ("list", [obj.pk])
    assert searched.action == "search" and searched.filters == ["q"]
    assert "Quixotehart" not in everything_recorded()


def test_a_saved_admin_change_is_not_a_read(admin_client_, kit):
    data = {
        "patient": kit.patient_id, "street1": "1 New St", "street2": "", "city": "Boston", "state": "MA",
        "zipcode": "02118", "position": "0",
    }  # fmt: skip
    address = kit.patient.addresses.get()

    response = admin_client_.post(change_url(address), data)

    assert response.status_code == 302
    assert not PhiAccess.objects.exists()


def test_opening_a_change_trail_entry_is_a_read_too(admin_client_, kit):
    from auditlog.models import LogEntry

    entry = LogEntry.objects.get_for_object(kit.patient).first()

    assert admin_client_.get(change_url(entry)).status_code == 200
    assert read(action="admin_view").model == "auditlog.logentry"


# --- the PhiAccess admin: read-only, filterable, searchable by record id ------------------------


def test_admins_read_and_filter_the_access_log(admin_client_, nurse, staff_user, kit):
    nurse.get(reverse("patients:detail", args=[kit.patient_id]))
    url = changelist_url(PhiAccess)

    for query in (
        f"?actor__id__exact={staff_user.pk}",
        "?action__exact=view",
        "?model__exact=patients.patient",
        "?created_at__gte=2000-01-01+00:00:00%2B00:00",
        f"?q={kit.patient_id}",
    ):
        response = admin_client_.get(url + query)
        assert response.status_code == 200, query
        assert response.context["cl"].result_count == 1, query
    assert admin_client_.get(url + "?q=999999").context["cl"].result_count == 0
    assert admin_client_.get(url + "?q=Quixotehart").context["cl"].result_count == 0


def test_nobody_adds_changes_or_deletes_audit_rows_in_admin(admin_user, django_user_model):
    from auditlog.models import LogEntry

    superuser = django_user_model.objects.create_superuser("root", password="a-long-test-password-42")
    for model in (PhiAccess, LogEntry):
        model_admin = admin.site._registry[model]
        for user in (admin_user, superuser):
            request = RequestFactory().get("/")
            request.user = user
            assert model_admin.has_view_permission(request), (model, user)
            assert not model_admin.has_add_permission(request), (model, user)
            assert not model_admin.has_change_permission(request), (model, user)
            assert not model_admin.has_delete_permission(request), (model, user)
            assert model_admin.get_actions(request) == {}


def test_the_admin_pages_refuse_to_add_change_or_delete(admin_client_, nurse, kit):
    nurse.get(reverse("patients:detail", args=[kit.patient_id]))
    row = PhiAccess.objects.get()
    from auditlog.models import LogEntry

    entry = LogEntry.objects.first()
    for obj in (row, entry):
        prefix = f"admin:{obj._meta.app_label}_{obj._meta.model_name}"
        assert admin_client_.get(reverse(f"{prefix}_add")).status_code == 403
        assert admin_client_.post(reverse(f"{prefix}_change", args=[obj.pk]), {}).status_code == 403
        assert admin_client_.post(reverse(f"{prefix}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    assert PhiAccess.objects.filter(pk=row.pk).exists() and LogEntry.objects.filter(pk=entry.pk).exists()


def test_clinic_staff_cannot_read_either_trail(staff_client, staff_user):
    from auditlog.models import LogEntry

    assert not staff_user.has_perm("audit.view_phiaccess")
    assert not staff_user.has_perm("auditlog.view_logentry")
    for model in (PhiAccess, LogEntry):
        response = staff_client.get(changelist_url(model))
        assert response.status_code == 302 and "/login/" in response.url  # the admin's sign-in page


def test_admins_hold_the_permissions_to_read_both_trails(admin_user):
    assert admin_user.has_perm("audit.view_phiaccess")
    assert admin_user.has_perm("auditlog.view_logentry")
