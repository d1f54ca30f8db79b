import csv
import datetime as dt
import io

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from portal.core.states import Status
from portal.notifications.models import Notification
from portal.results.models import Result
from tests.factories import NotificationFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db

LIST = reverse("results:list")
EXPORT = reverse("results:export")


def ready_result(**kwargs) -> Result:
    return ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now(), next_poll_at=None, **kwargs)


def result_for(*, first="Jane", last="Doe", email="jane@example.com", kit_id="KIT0000001", **kwargs) -> Result:
    patient = PatientFactory(first_name=first, last_name=last, email=email)
    return ResultFactory(registration=RegistrationFactory(patient=patient, kit_id=kit_id), **kwargs)


def url_or_none(name: str, *args) -> str | None:
    """Pages of the patients, kits and orders apps, when they are installed."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def rows_of(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text)))


# --- access -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["results:list", "results:export"])
def test_anonymous_user_is_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_user_cannot_see_a_result(client):
    result = ResultFactory()
    response = client.get(reverse("results:detail", args=[result.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("results:list", "get"),
        ("results:export", "get"),
        ("results:detail", "get"),
        ("results:refresh", "post"),
        ("results:resend", "post"),
    ],
)
def test_user_without_permission_gets_403(client, no_role_user, name, method):
    result = ready_result()
    client.force_login(no_role_user)
    url = reverse(name, args=[result.pk]) if name not in ("results:list", "results:export") else reverse(name)
    assert getattr(client, method)(url).status_code == 403
    assert Notification.objects.count() == 0


def test_buttons_only_accept_post(staff_client):
    result = ready_result()
    assert staff_client.get(reverse("results:refresh", args=[result.pk])).status_code == 405
    assert staff_client.get(reverse("results:resend", args=[result.pk])).status_code == 405


# --- list ---------------------------------------------------------------------------


def test_list_shows_results_newest_first_with_patient_and_badges(staff_client):
    older = result_for(last="Older", kit_id="KITOLD0001")
    Result.objects.filter(pk=older.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    newer = result_for(last="Newer", kit_id="KITNEW0001", status=Status.READY, state="ready", ready_at=timezone.now())
    NotificationFactory(result=newer, status=Notification.Status.SENT)
    response = staff_client.get(LIST)
    assert response.status_code == 200
    assert list(response.context["results"]) == [newer, older]
    html = response.content.decode()
    assert html.index("KITNEW0001") < html.index("KITOLD0001")
    assert "Newer, Jane" in html and "text-bg-success" in html
    assert "<title>Results" in html and 'aria-label="Breadcrumb"' in html
    assert 'href="/results/"' in html  # the nav link


def test_list_has_an_empty_state_that_says_what_happens_next(staff_client):
    response = staff_client.get(LIST)
    assert b"There are no results yet" in response.content


def test_no_match_says_so_and_offers_to_clear(staff_client):
    result_for(last="Doe")
    response = staff_client.get(LIST, {"q": "Nobody"})
    assert b"No results match these filters" in response.content


@pytest.mark.parametrize("query", ["Zyzzyva", "zyzz", "special@clinic.test", "KITFIND001", "kitfind", "Jane Zyzzyva"])
def test_search_by_last_name_email_or_kit_id(staff_client, query):
    wanted = result_for(last="Zyzzyva", email="special@clinic.test", kit_id="KITFIND001")
    result_for(last="Other", email="other@example.com", kit_id="KITNOPE001")
    response = staff_client.get(LIST, {"q": query})
    assert list(response.context["results"]) == [wanted]


def test_search_by_first_name(staff_client):
    wanted = result_for(first="Quentin", last="Same", kit_id="KITQ000001")
    result_for(first="Alice", last="Same", kit_id="KITA000001")
    assert list(staff_client.get(LIST, {"q": "quentin"}).context["results"]) == [wanted]


def test_filter_by_status(staff_client):
    ready = ready_result()
    ResultFactory()
    response = staff_client.get(LIST, {"status": "ready"})
    assert list(response.context["results"]) == [ready]


def test_filter_by_ready_date_range_in_the_clinic_time_zone(staff_client, settings):
    settings.TIME_ZONE = "America/Chicago"
    chicago = dt.timezone(dt.timedelta(hours=-5))  # CDT in June
    # 23:30 in Chicago on June 3 is already June 4 in UTC: it must count as June 3.
    late_june_3 = ready_result()
    Result.objects.filter(pk=late_june_3.pk).update(ready_at=dt.datetime(2025, 6, 3, 23, 30, tzinfo=chicago))
    june_5 = ready_result()
    Result.objects.filter(pk=june_5.pk).update(ready_at=dt.datetime(2025, 6, 5, 10, 0, tzinfo=chicago))
    ResultFactory()  # pending, never ready
    response = staff_client.get(LIST, {"ready_from": "2025-06-03", "ready_to": "2025-06-03"})
    assert list(response.context["results"]) == [late_june_3]
    response = staff_client.get(LIST, {"ready_from": "2025-06-04"})
    assert list(response.context["results"]) == [june_5]


def test_a_reversed_date_range_is_explained_and_selects_nothing(staff_client):
    ready_result()
    params = {"ready_from": "2025-06-05", "ready_to": "2025-06-01"}
    response = staff_client.get(LIST, params)
    assert b"The end date must be on or after the start date." in response.content
    assert list(response.context["results"]) == []
    assert len(rows_of(staff_client.get(EXPORT, params))) == 1  # the header only, not every result


def test_reads_of_results_are_recorded_as_phi_access(staff_client, staff_user):
    from portal.audit.models import PhiAccess

    results = [ResultFactory(), ResultFactory()]
    staff_client.get(LIST, {"q": "Jane"})
    staff_client.get(reverse("results:detail", args=[results[0].pk]))
    rows_of(staff_client.get(EXPORT))
    accesses = list(PhiAccess.objects.order_by("id").values_list("actor", "action", "model", "object_ids", "filters"))
    ids = sorted(r.pk for r in results)
    assert [(a, act, m, sorted(o), f) for a, act, m, o, f in accesses] == [
        (staff_user.pk, "search", "results.result", ids, ["q"]),
        (staff_user.pk, "view", "results.result", [results[0].pk], []),
        (staff_user.pk, "export", "results.result", ids, []),
    ]


def test_overdue_results_get_a_badge_and_a_filter(staff_client, settings):
    settings.RESULT_OVERDUE_AFTER = 10
    late = ResultFactory(registration=RegistrationFactory(registered_at=timezone.now() - dt.timedelta(days=11)))
    ResultFactory()  # registered today
    ResultFactory(  # old but ready: not overdue
        registration=RegistrationFactory(registered_at=timezone.now() - dt.timedelta(days=30)),
        status=Status.READY,
        state="ready",
        ready_at=timezone.now(),
    )
    response = staff_client.get(LIST, {"overdue": "on"})
    assert list(response.context["results"]) == [late]
    assert b">Overdue</span>" in response.content
    assert len(staff_client.get(LIST).context["results"]) == 3


def test_list_paginates_by_50(staff_client):
    for _ in range(51):
        ResultFactory()
    first = staff_client.get(LIST)
    assert len(first.context["results"]) == 50
    assert b"Page 1 of 2" in first.content
    second = staff_client.get(LIST, {"page": 2})
    assert len(second.context["results"]) == 1


def _make_results(n: int) -> None:
    for i in range(n):
        result = ResultFactory()
        if i % 2:
            NotificationFactory(result=result)


@pytest.mark.parametrize("rows", [1, 50])
def test_list_runs_a_constant_number_of_queries(staff_client, django_assert_num_queries, rows):
    _make_results(rows)
    staff_client.get(LIST)  # warm the session and the content-type cache
    # session, user, 2 permission lookups (user's and group's), the page's ids with the
    # count (a search), its rows, the PHI access row, and the session's sliding timeout
    # saved (savepoint, update, release)
    with django_assert_num_queries(10):
        response = staff_client.get(LIST, {"q": "Jane"})
    assert len(response.context["results"]) == rows


# --- CSV export ------------------------------------------------------------------------


def test_export_streams_the_filtered_list_as_csv(staff_client):
    wanted = result_for(
        last="Export",
        email="export@example.com",
        kit_id="KITEXP0001",
        status=Status.READY,
        state="ready",
        ready_at=timezone.now(),
    )
    NotificationFactory(result=wanted, status=Notification.Status.SENT)
    result_for(last="Hidden", email="hidden@example.com", kit_id="KITHID0001")
    response = staff_client.get(EXPORT, {"q": "export"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = rows_of(response)
    assert rows[0] == [
        "Kit id",
        "Result id",
        "Lab state",
        "Status",
        "Ready at",
        "Patient last name",
        "Patient first name",
        "Patient email",
        "Email to patient",
    ]
    assert len(rows) == 2
    kit_id, result_id, state, status, ready_at, last, first, email, notification = rows[1]
    assert (kit_id, result_id, state, status) == ("KITEXP0001", str(wanted.upstream_id), "ready", "Ready")
    assert ready_at.startswith(str(timezone.localdate().year))
    assert (last, first, email, notification) == ("Export", "Jane", "export@example.com", "Sent")


def test_export_neutralises_spreadsheet_formulas(staff_client):
    result_for(last='=HYPERLINK("http://evil")', first="+1+2", email="x@example.com", kit_id="@SUM(A1)")
    rows = rows_of(staff_client.get(EXPORT))
    _, _, _, _, _, last, first, _, _ = rows[1]
    assert rows[1][0] == "'@SUM(A1)"
    assert last == '\'=HYPERLINK("http://evil")'
    assert first == "'+1+2"


def test_export_link_keeps_the_filters(staff_client):
    result_for()
    response = staff_client.get(LIST, {"q": "Doe", "status": "pending", "page": "1"})
    assert 'href="/results/export.csv?q=Doe&amp;status=pending"' in response.content.decode()


# --- detail ------------------------------------------------------------------------------


def test_detail_shows_patient_kit_state_timeline_and_notifications(staff_client, staff_user):
    from portal.results.services import result_apply_state

    result = result_for(last="Detail", kit_id="KITDET0001")
    result_apply_state(result_id=result.pk, state="received", raw={})
    result_apply_state(result_id=result.pk, state="ready", raw={})
    notification = result.notifications.get()
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.FAILED, attempts=5, last_error="SMTPException: could not hand the email"
    )
    response = staff_client.get(reverse("results:detail", args=[result.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Jane Detail" in html and "KITDET0001" in html
    assert "<code>ready</code>" in html and "received" in html
    assert [c.new_state for c in response.context["timeline"]] == ["received", "ready"]
    assert "Failed - resend possible" in html and "SMTPException: could not hand the email" in html
    assert response.context["can_resend"] is True
    registration = result.registration
    for name, pk, text in (
        ("patients:detail", registration.patient_id, "Jane Detail"),
        ("kits:detail", registration.pk, "KITDET0001"),
        ("orders:detail", registration.order_id, str(registration.order)),
    ):
        url = url_or_none(name, pk)
        assert (f'<a href="{url}">{text}</a>' if url else text) in html


def test_detail_of_a_pending_result_disables_resend(staff_client):
    result = ResultFactory()
    response = staff_client.get(reverse("results:detail", args=[result.pk]))
    assert response.context["can_resend"] is False
    assert b"No email yet" in response.content and b"No change of state recorded yet" in response.content


def test_detail_of_an_unknown_result_is_404(staff_client):
    assert staff_client.get(reverse("results:detail", args=[999999])).status_code == 404


def test_refresh_asks_the_lab_and_shows_the_new_state(staff_client, staff_user, partner):
    result = ResultFactory()
    partner.get_result(result.upstream_id, state="processing")
    response = staff_client.post(reverse("results:refresh", args=[result.pk]), follow=True)
    assert response.redirect_chain == [(reverse("results:detail", args=[result.pk]), 302)]
    assert "Result refreshed from the lab: processing (In progress)." in response.content.decode()
    result.refresh_from_db()
    assert (result.state, result.status) == ("processing", Status.IN_PROGRESS)
    change = response.context["timeline"][-1]
    assert change.actor == staff_user and change.source == "staff"


@pytest.mark.parametrize(("status", "error_class"), [(503, "UpstreamUnavailable"), (404, "UpstreamNotFound")])
def test_refresh_failure_is_a_message_and_the_page_still_works(staff_client, partner, status, error_class):
    result = ResultFactory()
    partner.get_result(result.upstream_id, status=status, json={"error": "nope"})
    response = staff_client.post(reverse("results:refresh", args=[result.pk]), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The lab could not be asked about this result just now" in html
    assert "alert-danger" in html
    result.refresh_from_db()
    assert result.last_error_class == error_class
    assert error_class in html  # shown as the last error on the page


def test_resend_creates_a_recorded_notification(staff_client, staff_user, django_capture_on_commit_callbacks):
    result = ready_result()
    NotificationFactory(result=result, status=Notification.Status.SENT)
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(reverse("results:resend", args=[result.pk]), follow=True)
    assert "The email will be sent again. The resend is recorded." in response.content.decode()
    resend = Notification.objects.get(result=result, is_resend=True)
    assert resend.requested_by == staff_user
    assert resend.recipient == result.registration.patient.email
    assert len(callbacks) == 1  # the send is enqueued after commit


def test_resend_of_a_pending_result_is_refused(staff_client):
    result = ResultFactory()
    response = staff_client.post(reverse("results:resend", args=[result.pk]), follow=True)
    assert "only be sent again once the result is ready" in response.content.decode()
    assert not Notification.objects.exists()


def test_double_click_on_resend_queues_one_email(staff_client):
    result = ready_result()
    staff_client.post(reverse("results:resend", args=[result.pk]))
    response = staff_client.post(reverse("results:resend", args=[result.pk]), follow=True)
    assert "already on its way" in response.content.decode()
    assert Notification.objects.filter(result=result, is_resend=True).count() == 1


def test_search_by_lab_result_id_is_exact(staff_client):
    wanted = result_for(last="Exact", kit_id="KITEXACT01", upstream_id=987654)
    result_for(last="Partial", kit_id="KITPART001", upstream_id=9876540)
    assert list(staff_client.get(LIST, {"q": "987654"}).context["results"]) == [wanted]


def test_only_the_late_result_has_the_overdue_badge_in_the_full_list(staff_client, settings):
    settings.RESULT_OVERDUE_AFTER = 10
    ResultFactory(registration=RegistrationFactory(registered_at=timezone.now() - dt.timedelta(days=11)))
    ResultFactory()
    ResultFactory(
        registration=RegistrationFactory(registered_at=timezone.now() - dt.timedelta(days=30)),
        status=Status.FAILED,
        state="failed",
    )
    content = staff_client.get(LIST).content.decode()
    assert content.count(">Overdue</span>") == 1


def test_a_one_or_two_letter_word_matches_a_whole_name_or_kit_id(staff_client):
    wanted = result_for(first="Mei", last="Li", email="mei@example.com", kit_id="KITLI00001")
    result_for(first="Alice", last="Williams", email="alice@example.com", kit_id="KITAW00001")
    kit = result_for(first="Jo", last="March", email="jo@example.com", kit_id="K7")
    assert list(staff_client.get(LIST, {"q": "Li"}).context["results"]) == [wanted]
    assert list(staff_client.get(LIST, {"q": "k7"}).context["results"]) == [kit]
