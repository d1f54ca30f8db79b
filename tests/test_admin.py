"""Django admin: changelists without N+1, partner fields read-only and escaped,
and actions that call the same services as the staff pages (the lab mocked)."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.core.models import StateChange
from portal.core.states import Move, Status, Submission, record_state_change
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.patients.models import Patient
from portal.results.models import Result
from tests.factories import (
    AddressFactory,
    NotificationFactory,
    OrderFactory,
    PatientFactory,
    RegistrationFactory,
    ResultFactory,
)

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def run_action(client, model, action: str, objs, **extra):
    data = {"action": action, "index": "0", "_selected_action": [o.pk for o in objs], **extra}
    return client.post(changelist(model), data, follow=True)


# --- changelists: one query count whatever the number of rows -------------------------


def _state_change(admin_user):
    result = ResultFactory()
    record_state_change(result, Move("pending", "ready", "pending", "ready"), source="staff", actor=admin_user)


MAKERS = {
    "patient": (Patient, lambda admin_user: AddressFactory().patient),
    "address": (AddressFactory._meta.model, lambda admin_user: AddressFactory()),
    "order": (Order, lambda admin_user: OrderFactory(created_by=admin_user)),
    "kitregistration": (KitRegistration, lambda admin_user: RegistrationFactory(created_by=admin_user)),
    "result": (Result, lambda admin_user: NotificationFactory().result),
    "notification": (Notification, lambda admin_user: NotificationFactory(is_resend=True, requested_by=admin_user)),
    "statechange": (StateChange, _state_change),
}


def _count_queries(client, url) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_changelist_runs_the_same_number_of_queries_for_1_and_50_rows(admin_client_, admin_user, name):
    model, make = MAKERS[name]
    url = changelist(model)
    make(admin_user)
    admin_client_.get(url)  # warm the session, content types and the site's caches
    one, response = _count_queries(admin_client_, url)
    assert len(response.context["cl"].result_list) == 1
    for _ in range(49):
        make(admin_user)
    fifty, response = _count_queries(admin_client_, url)
    assert len(response.context["cl"].result_list) == 50
    assert fifty == one, f"{name}: {one} queries at 1 row, {fifty} at 50"


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_changelist_search_and_filters_work(admin_client_, admin_user, name):
    model, make = MAKERS[name]
    make(admin_user)
    # a word on integer id fields must not crash the search
    assert admin_client_.get(changelist(model), {"q": "abc 12"}).status_code == 200


def test_clinic_staff_cannot_use_the_admin(staff_client):
    response = staff_client.get(changelist(Order))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_records_made_by_the_portal_cannot_be_added_in_admin(admin_client_):
    for model in (Order, KitRegistration, Result, Notification, StateChange):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
        assert admin_client_.get(url).status_code == 403, model


def test_state_history_is_read_only(admin_client_, admin_user):
    _state_change(admin_user)
    row = StateChange.objects.get()
    response = admin_client_.post(change(row), {"note": "changed"})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.note == ""
    assert admin_client_.get(change(row)).status_code == 200  # but it can be looked at


def test_sent_orders_cannot_be_deleted_but_unsent_mistakes_can(admin_client_):
    sent = OrderFactory()
    mistake = OrderFactory(upstream_id=None, state="", submission_status=Submission.QUEUED)
    delete = f"admin:{Order._meta.app_label}_order_delete"
    assert admin_client_.get(reverse(delete, args=[sent.pk])).status_code == 403
    assert admin_client_.post(reverse(delete, args=[mistake.pk]), {"post": "yes"}).status_code == 302
    assert not Order.objects.filter(pk=mistake.pk).exists()


# --- read-only partner fields and the raw payload ----------------------------------------


@pytest.mark.parametrize("factory", [OrderFactory, RegistrationFactory, ResultFactory])
def test_raw_payload_is_pretty_printed_and_escaped(admin_client_, factory):
    obj = factory(raw_payload={"x": XSS, "id": 7})
    response = admin_client_.get(change(obj))
    html = response.content.decode()
    assert response.status_code == 200
    assert XSS not in html
    assert "&quot;x&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in html
    assert '<pre class="raw-payload">{\n  &quot;id&quot;: 7,' in html


def test_partner_fields_are_read_only(admin_client_):
    order = OrderFactory(amount="10.00")
    form = admin_client_.get(change(order)).context["adminform"].form
    assert set(form.fields) == set()  # amount was sent to the lab; everything else is the lab's
    registration = RegistrationFactory()
    form = admin_client_.get(change(registration)).context["adminform"].form
    assert not {"kit_id", "upstream_id", "state", "submission_status", "result_upstream_id"} & set(form.fields)
    result = ResultFactory()
    form = admin_client_.get(change(result)).context["adminform"].form
    assert not {"upstream_id", "state", "status", "raw_payload"} & set(form.fields)


def test_patient_admin_normalises_the_phone_number(admin_client_):
    patient = PatientFactory()
    data = {
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "email": patient.email,
        "date_of_birth": "1985-04-12",
        "phone": "(617) 555-0199",
        "gender": "female",
        "addresses-TOTAL_FORMS": "0",
        "addresses-INITIAL_FORMS": "0",
        "addresses-MIN_NUM_FORMS": "0",
        "addresses-MAX_NUM_FORMS": "1000",
    }
    response = admin_client_.post(change(patient), data)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.phone == "6175550199"
    response = admin_client_.post(change(patient), {**data, "phone": "555-0199"})
    assert response.status_code == 200
    assert "10-digit US phone number" in response.content.decode()


# --- actions call the services ---------------------------------------------------------------


def test_order_refresh_action_reports_successes_and_failures(admin_client_, admin_user, partner):
    good = OrderFactory(state="processing", status=Status.IN_PROGRESS)
    down = OrderFactory()
    unsent = OrderFactory(upstream_id=None, state="", status=Status.PENDING, submission_status=Submission.QUEUED)
    partner.get_order(good.upstream_id, state="shipped")
    partner.get_order(down.upstream_id, status=503, json={"error": "busy"})
    response = run_action(admin_client_, Order, "refresh_from_upstream", [good, down, unsent])
    texts = messages_of(response)
    assert "Refreshed 1 order(s) from the lab." in texts
    problems = next(t for t in texts if t.startswith("2 did not go through"))
    assert str(down) in problems and "not been accepted by the lab yet" in problems
    good.refresh_from_db()
    assert good.state == "shipped"
    assert StateChange.objects.filter(object_id=good.pk, actor=admin_user, new_state="shipped").exists()


def test_order_retry_submission_action_sends_the_failed_order(admin_client_, partner):
    failed = OrderFactory(upstream_id=None, state="", status=Status.PENDING, submission_status=Submission.FAILED)
    accepted = OrderFactory()
    partner.create_order(id=4242)
    partner.get_order(4242, state="created")
    response = run_action(admin_client_, Order, "retry_submission", [failed, accepted])
    texts = messages_of(response)
    assert "Sent 1 order(s) to the lab again; the lab accepted them." in texts
    assert any("Only an order whose submission failed" in t for t in texts)
    failed.refresh_from_db()
    assert (failed.upstream_id, failed.submission_status) == (4242, Submission.ACCEPTED)
    assert len(partner.calls_to("/v2/orders/", "POST")) == 1


def test_registration_retry_submission_action(admin_client_, partner):
    registration = RegistrationFactory(
        upstream_id=None, kit_id=None, state="", submission_status=Submission.FAILED, registered_at=None
    )
    partner.register_kit(registration.order.upstream_id, id=9911, kit_id="RETRIED001")
    response = run_action(admin_client_, KitRegistration, "retry_submission", [registration])
    assert "Sent 1 kit registration(s) to the lab again; the lab accepted them." in messages_of(response)
    registration.refresh_from_db()
    assert (registration.kit_id, registration.submission_status) == ("RETRIED001", Submission.ACCEPTED)


def test_set_result_id_asks_for_the_id_then_sets_it(admin_client_, admin_user):
    registration = RegistrationFactory()
    data = {"action": "set_result_id", "index": "0", "_selected_action": [registration.pk]}
    page = admin_client_.post(changelist(KitRegistration), data)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="result_upstream_id"' in html and f'value="{registration.upstream_id}"' in html
    assert '<label for="id_result_upstream_id"' in html
    response = admin_client_.post(
        changelist(KitRegistration),
        {"action": "set_result_id", "_selected_action": [registration.pk], "apply": "1", "result_upstream_id": "8800"},
        follow=True,
    )
    assert any("result id set to 8800" in t for t in messages_of(response))
    registration.refresh_from_db()
    assert registration.result_upstream_id == 8800
    result = Result.objects.get(registration=registration)
    assert result.upstream_id == 8800 and result.next_poll_at is not None


def test_set_result_id_refuses_an_id_of_another_result(admin_client_):
    taken = ResultFactory()
    registration = RegistrationFactory()
    response = admin_client_.post(
        changelist(KitRegistration),
        {
            "action": "set_result_id",
            "_selected_action": [registration.pk],
            "apply": "1",
            "result_upstream_id": str(taken.upstream_id),
        },
    )
    assert response.status_code == 200
    assert "already belongs to another kit" in response.content.decode()
    assert not Result.objects.filter(registration=registration).exists()


def test_set_result_id_needs_exactly_one_registration(admin_client_):
    regs = [RegistrationFactory(), RegistrationFactory()]
    response = run_action(admin_client_, KitRegistration, "set_result_id", regs)
    assert "Select exactly one kit registration to set its result id." in messages_of(response)


def test_result_refresh_action(admin_client_, admin_user, partner):
    ok = ResultFactory()
    missing = ResultFactory()
    partner.get_result(ok.upstream_id, state="ready")
    partner.get_result(missing.upstream_id, status=404, json={})
    response = run_action(admin_client_, Result, "refresh_from_upstream", [ok, missing])
    texts = messages_of(response)
    assert "Refreshed 1 result(s) from the lab." in texts
    assert any(t.startswith("1 did not go through") and str(missing) in t for t in texts)
    ok.refresh_from_db()
    missing.refresh_from_db()
    assert ok.status == Status.READY and ok.notifications.count() == 1
    assert missing.last_error_class == "UpstreamNotFound"


def test_result_resend_action_records_a_resend_only_for_ready_results(admin_client_, admin_user):
    ready = ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now(), next_poll_at=None)
    pending = ResultFactory()
    response = run_action(admin_client_, Result, "resend_email", [ready, pending])
    texts = messages_of(response)
    assert "The email will be sent again for 1 result(s). The resend is recorded." in texts
    assert any("not ready yet" in t for t in texts)
    resend = Notification.objects.get()
    assert (resend.result, resend.is_resend, resend.requested_by) == (ready, True, admin_user)


def test_notification_resend_action(admin_client_, admin_user):
    result = ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now(), next_poll_at=None)
    failed = NotificationFactory(result=result, status=Notification.Status.FAILED)
    response = run_action(admin_client_, Notification, "resend_email", [failed])
    assert "The email will be sent again for 1 result(s). The resend is recorded." in messages_of(response)
    assert Notification.objects.filter(result=result, is_resend=True, requested_by=admin_user).count() == 1


def test_overdue_filter_in_result_admin(admin_client_, settings):
    settings.RESULT_OVERDUE_AFTER = 10
    late = ResultFactory(registration=RegistrationFactory(registered_at=timezone.now() - dt.timedelta(days=12)))
    ResultFactory()
    response = admin_client_.get(changelist(Result), {"overdue": "yes"})
    assert list(response.context["cl"].result_list) == [late]


def test_patient_admin_records_what_the_admin_was_shown(admin_client_, admin_user):
    from portal.audit.models import PhiAccess

    patient = AddressFactory().patient
    admin_client_.get(changelist(Patient))
    admin_client_.get(change(patient))
    accesses = list(PhiAccess.objects.order_by("id").values_list("actor", "action", "model", "object_ids"))
    assert accesses == [
        (admin_user.pk, "list", "patients.patient", [patient.pk]),
        (admin_user.pk, "admin_view", "patients.patient", [patient.pk]),
    ]


@pytest.mark.parametrize("query", ["KITADMIN01", "kitadmin", "Admin-Searched", "searched@example", "424242"])
def test_result_admin_search_finds_by_kit_patient_or_lab_id(admin_client_, query):
    patient = PatientFactory(last_name="Admin-Searched", email="searched@example.com")
    wanted = ResultFactory(registration=RegistrationFactory(patient=patient, kit_id="KITADMIN01"), upstream_id=424242)
    ResultFactory(registration=RegistrationFactory(kit_id="KITOTHER01"), upstream_id=4242420)
    response = admin_client_.get(changelist(Result), {"q": query})
    assert list(response.context["cl"].result_list) == [wanted]


def test_result_admin_filters_by_last_error_from_fixed_choices(admin_client_):
    failing = ResultFactory(last_error_class="UpstreamNotFound", last_error="The lab does not know this id.")
    ResultFactory()
    page = admin_client_.get(changelist(Result))
    assert "UpstreamUnavailable" in page.content.decode()  # offered before any result had that error
    for value in ("UpstreamNotFound", "any"):
        response = admin_client_.get(changelist(Result), {"last_error_class": value})
        assert list(response.context["cl"].result_list) == [failing]


def test_result_admin_filters_by_creation_date(admin_client_):
    old = ResultFactory()
    Result.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    recent = ResultFactory()
    since = str(timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=7))
    response = admin_client_.get(changelist(Result), {"created_at__gte": since})
    assert list(response.context["cl"].result_list) == [recent]


def test_big_table_changelists_write_the_same_action_checkbox_as_django(admin_client_):
    from django.contrib import admin as django_admin

    from portal.results.admin import ResultAdmin

    result = ResultFactory()
    model_admin = ResultAdmin(Result, django_admin.site)
    assert model_admin.action_checkbox(result) == django_admin.ModelAdmin.action_checkbox(model_admin, result)
    page = admin_client_.get(changelist(Result)).content.decode()
    assert f'name="_selected_action" value="{result.pk}" class="action-select"' in page
    assert 'id="action-toggle"' in page


@pytest.mark.parametrize(
    ("url_name", "params"),
    [
        ("admin:audit_phiaccess_changelist", {"model": "results.result"}),
        ("admin:core_statechange_changelist", {"new_status": "ready"}),
    ],
)
def test_audit_and_history_changelists_filter_from_fixed_choices(admin_client_, admin_user, url_name, params):
    from portal.audit.models import PhiAccess

    result = ResultFactory()
    record_state_change(result, Move("processing", "ready", Status.IN_PROGRESS, Status.READY), source="sync")
    record_state_change(result, Move("", "processing", Status.PENDING, Status.IN_PROGRESS), source="sync")
    PhiAccess.objects.create(actor=admin_user, action="view", model="results.result", object_count=1)
    PhiAccess.objects.create(actor=admin_user, action="view", model="patients.patient", object_count=1)
    url = reverse(url_name)
    with CaptureQueriesContext(connection) as queries:
        admin_client_.get(url)
    # The tables grow by a row a page view or a state change: no filter lists its choices from them.
    assert not any("DISTINCT" in q["sql"] for q in queries.captured_queries)
    (row,) = admin_client_.get(url, params).context["cl"].result_list
    assert (getattr(row, "model", None) or row.new_status) in ("results.result", "ready")
