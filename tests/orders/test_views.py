import csv
import io
import uuid
from decimal import Decimal

import pytest
import requests
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.core.states import Status, Submission
from portal.orders.models import Order
from tests.factories import OrderFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def csv_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(body)))


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def order():
    return OrderFactory(upstream_id=4242, state="processing", status=Status.IN_PROGRESS)


# --- Access -------------------------------------------------------------------

GET_PAGES = ["orders:list", "orders:create", "orders:import", "orders:export"]
DETAIL_PAGES = ["orders:detail"]
POST_ACTIONS = ["orders:refresh", "orders:retry", "orders:review"]


def _urls(order):
    return [reverse(name) for name in GET_PAGES] + [reverse(name, args=[order.pk]) for name in DETAIL_PAGES]


def test_anonymous_users_are_sent_to_login(client, order):
    for url in _urls(order) + [reverse(name, args=[order.pk]) for name in POST_ACTIONS]:
        response = client.get(url) if url in _urls(order) else client.post(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_users_without_the_permission_get_403(client, no_role_user, order):
    client.force_login(no_role_user)
    for url in _urls(order):
        assert client.get(url).status_code == 403, url
    for name in POST_ACTIONS:
        assert client.post(reverse(name, args=[order.pk])).status_code == 403, name
    assert client.post(reverse("orders:create"), {"amount": "10"}).status_code == 403
    assert not Order.objects.exclude(pk=order.pk).exists()


def test_nav_shows_the_staff_links_and_the_kit_lookup(staff_client):
    content = staff_client.get(reverse("orders:list")).content.decode()
    for link in ("Orders", "Kits", "Patients"):
        assert f">{link}</a>" in content
    assert 'name="kit_id"' in content and 'action="/kits/lookup/"' in content
    assert '<label for="nav-kit-id" class="visually-hidden">Kit id</label>' in content


# --- List ---------------------------------------------------------------------


def test_empty_list_says_what_to_do_next(staff_client):
    response = staff_client.get(reverse("orders:list"))
    assert response.status_code == 200
    assert response.context["title"] == "Orders"
    content = response.content.decode()
    assert "No orders yet" in content
    assert f'href="{reverse("orders:create")}">New order</a>' in content
    assert 'aria-label="Breadcrumb"' in content


def test_list_shows_orders_with_badges(staff_client, order):
    content = staff_client.get(reverse("orders:list")).content.decode()
    assert "4242" in content
    assert "text-bg-info" in content and "In progress" in content
    assert "Accepted by the lab" in content
    assert '<th scope="col">Lab order id</th>' in content


def test_search_by_lab_order_id(staff_client, order):
    OrderFactory(upstream_id=777)
    response = staff_client.get(reverse("orders:list"), {"q": " 4242 "})
    assert [o.upstream_id for o in response.context["orders"]] == [4242]
    response = staff_client.get(reverse("orders:list"), {"q": "#777"})
    assert [o.upstream_id for o in response.context["orders"]] == [777]


def test_search_with_letters_says_what_it_expects(staff_client, order):
    response = staff_client.get(reverse("orders:list"), {"q": "abc"})
    assert list(response.context["orders"]) == []
    content = response.content.decode()
    assert "Search by the lab&#x27;s order id (digits only)." in content
    assert "import lab order" not in content


def test_no_match_offers_to_import_the_lab_order(staff_client, order):
    content = staff_client.get(reverse("orders:list"), {"q": "999"}).content.decode()
    assert "No orders match these filters." in content and "import lab order 999" in content


def test_filter_by_status_and_submission_status(staff_client, order):
    failed = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.FAILED)
    done = OrderFactory(state="delivered", status=Status.COMPLETED)
    response = staff_client.get(reverse("orders:list"), {"status": "completed"})
    assert [o.pk for o in response.context["orders"]] == [done.pk]
    response = staff_client.get(reverse("orders:list"), {"submission_status": "failed"})
    assert [o.pk for o in response.context["orders"]] == [failed.pk]


def test_sort_by_amount_and_status(staff_client):
    cheap = OrderFactory(amount=Decimal("5.00"), status=Status.PENDING)
    dear = OrderFactory(amount=Decimal("500.00"), status=Status.COMPLETED)
    response = staff_client.get(reverse("orders:list"), {"sort": "-amount"})
    assert [o.pk for o in response.context["orders"]] == [dear.pk, cheap.pk]
    response = staff_client.get(reverse("orders:list"), {"sort": "amount"})
    assert [o.pk for o in response.context["orders"]] == [cheap.pk, dear.pk]
    response = staff_client.get(reverse("orders:list"), {"sort": "status"})
    assert [o.pk for o in response.context["orders"]] == [dear.pk, cheap.pk]


def test_list_paginates_by_50_and_keeps_the_filters(staff_client):
    OrderFactory.create_batch(51, status=Status.PENDING)
    response = staff_client.get(reverse("orders:list"), {"status": "pending"})
    assert len(response.context["orders"]) == 50
    assert "?status=pending&amp;page=2" in response.content.decode()
    response = staff_client.get(reverse("orders:list"), {"status": "pending", "page": 2})
    assert len(response.context["orders"]) == 1


def test_list_runs_a_constant_number_of_queries(staff_client):
    RegistrationFactory(order=OrderFactory(created_by=None))
    one = count_queries(staff_client, reverse("orders:list"))
    for _ in range(49):
        RegistrationFactory(order=OrderFactory())
    assert Order.objects.count() == 50
    assert count_queries(staff_client, reverse("orders:list")) == one


# --- Create -------------------------------------------------------------------


def test_create_form_renders_a_hidden_idempotency_key(staff_client):
    response = staff_client.get(reverse("orders:create"))
    assert response.status_code == 200 and response.context["title"] == "New order"
    key = response.context["form"]["idempotency_key"].value()
    assert uuid.UUID(str(key))
    content = response.content.decode()
    assert f'type="hidden" name="idempotency_key" value="{key}"' in content
    assert 'for="id_amount" class="form-label' in content


def test_create_sends_the_order_and_shows_it(staff_client, staff_user, partner):
    partner.create_order(id=31)
    response = staff_client.post(reverse("orders:create"), {"amount": "199.00", "idempotency_key": str(uuid.uuid4())})
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("orders:detail", args=[order.pk])
    assert (order.upstream_id, order.amount, order.created_by) == (31, Decimal("199.00"), staff_user)
    assert order.submission_status == Submission.ACCEPTED
    assert messages_of(response) == ["Order created at the lab: lab order id 31."]


def test_amount_with_a_dollar_sign_is_accepted(staff_client, partner):
    partner.create_order(id=32)
    staff_client.post(reverse("orders:create"), {"amount": " $12.5 ", "idempotency_key": str(uuid.uuid4())})
    assert Order.objects.get().amount == Decimal("12.50")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the amount, e.g. 199.00."),
        ("abc", "Enter the amount as a number, e.g. 199.00 (no commas)."),
        ("1,000", "Enter the amount as a number, e.g. 199.00 (no commas)."),
        ("NaN", "Enter the amount as a number, e.g. 199.00 (no commas)."),
        ("0", "The amount must be more than 0.00."),
        ("-5.00", "The amount must be more than 0.00."),
        ("19.999", "Enter at most 2 decimal places (cents), e.g. 199.99."),
        ("100000000", "The amount is too large (at most 99,999,999.99)."),
    ],
)
def test_invalid_amount_is_refused_with_the_typed_value_kept(staff_client, typed, message):
    key = str(uuid.uuid4())
    response = staff_client.post(reverse("orders:create"), {"amount": typed, "idempotency_key": key})
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == [message]
    content = response.content.decode()
    assert f'value="{typed}"' in content if typed else 'name="amount"' in content
    assert f'value="{key}"' in content
    assert not Order.objects.exists()


def test_lab_down_keeps_the_order_and_warns(staff_client, partner):
    partner.create_order(status=503, headers={"Retry-After": "0"})
    response = staff_client.post(reverse("orders:create"), {"amount": "10.00", "idempotency_key": str(uuid.uuid4())})
    order = Order.objects.get()
    assert order.submission_status == Submission.FAILED and order.last_error_class == "UpstreamUnavailable"
    assert messages_of(response) == ["Saved. The lab could not be reached; the portal will retry automatically."]
    page = staff_client.get(response["Location"]).content.decode()
    assert "Submission failed - retry" in page and "Retry submission" in page


def test_unknown_outcome_keeps_the_order_for_review(staff_client, partner):
    partner.create_order(body=requests.exceptions.ReadTimeout("slow"))
    response = staff_client.post(reverse("orders:create"), {"amount": "10.00", "idempotency_key": str(uuid.uuid4())})
    order = Order.objects.get()
    assert order.submission_status == Submission.NEEDS_REVIEW
    assert "needs review" in messages_of(response)[0]
    page = staff_client.get(response["Location"]).content.decode()
    assert "Link to lab order id" in page and "Confirm it does not exist at the lab" in page


def test_lab_refusal_is_shown(staff_client, partner):
    partner.create_order(status=422, json={"error": "amount too small"})
    response = staff_client.post(reverse("orders:create"), {"amount": "1.00", "idempotency_key": str(uuid.uuid4())})
    assert Order.objects.get().submission_status == Submission.REJECTED
    assert "amount too small" in messages_of(response)[0]


def test_double_submit_creates_one_order_sent_once(staff_client, partner):
    partner.create_order(id=50)
    data = {"amount": "25.00", "idempotency_key": str(uuid.uuid4())}
    first = staff_client.post(reverse("orders:create"), data)
    second = staff_client.post(reverse("orders:create"), data)
    assert Order.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert len(partner.calls_to("/v2/orders/", "POST")) == 1


# --- Import -------------------------------------------------------------------


def test_import_mirrors_a_lab_order(staff_client, staff_user, partner):
    partner.get_order(9001, state="processing")
    response = staff_client.post(reverse("orders:import"), {"upstream_id": "9001", "amount": "49.00"})
    order = Order.objects.get(upstream_id=9001)
    assert response["Location"] == reverse("orders:detail", args=[order.pk])
    assert (order.amount, order.state, order.submission_status) == (Decimal("49.00"), "processing", "accepted")
    assert messages_of(response) == ["Lab order 9001 imported."]


def test_import_of_an_order_already_in_the_portal_opens_it(staff_client, order):
    response = staff_client.post(reverse("orders:import"), {"upstream_id": "4242", "amount": "49.00"})
    assert response["Location"] == reverse("orders:detail", args=[order.pk])
    assert messages_of(response) == ["Lab order 4242 is in the portal already."]


def test_import_of_an_unknown_lab_id_says_so(staff_client, partner):
    partner.get_order(9002, status=404, json={"error": "not found"})
    response = staff_client.post(reverse("orders:import"), {"upstream_id": "9002", "amount": "49.00"})
    assert response.status_code == 200
    assert response.context["form"].errors["upstream_id"] == ["The lab has no order with id 9002. Check the id."]
    assert not Order.objects.exists()


def test_import_when_the_lab_is_down_keeps_the_typed_values(staff_client, partner):
    partner.get_order(9003, status=503)
    response = staff_client.post(reverse("orders:import"), {"upstream_id": "9003", "amount": "49.00"})
    assert response.status_code == 200
    assert messages_of(response)[0].startswith("The lab could not be reached, so the order was not imported")
    content = response.content.decode()
    assert 'value="9003"' in content and 'value="49.00"' in content


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"upstream_id": "", "amount": "1"}, "upstream_id", "Enter the lab's order id."),
        ({"upstream_id": "12a", "amount": "1"}, "upstream_id", "Enter the lab's order id (digits only)."),
        ({"upstream_id": "0", "amount": "1"}, "upstream_id", "Enter the lab's order id (a positive number)."),
        (
            {"upstream_id": "99999999999999999999", "amount": "1"},
            "upstream_id",
            "This is not a lab order id (too long).",
        ),
        ({"upstream_id": "5", "amount": "0"}, "amount", "The amount must be more than 0.00."),
    ],
)
def test_import_validation(staff_client, data, field, message):
    response = staff_client.post(reverse("orders:import"), data)
    assert response.context["form"].errors[field] == [message]
    assert f'value="{data["upstream_id"]}"' in response.content.decode() or not data["upstream_id"]


# --- Detail and its actions ---------------------------------------------------


def test_detail_shows_state_timeline_and_registrations(staff_client, staff_user, partner, order):
    registration = RegistrationFactory(order=order, kit_id="KITABC")
    partner.get_order(order.upstream_id, state="shipped")
    staff_client.post(reverse("orders:refresh", args=[order.pk]))
    response = staff_client.get(reverse("orders:detail", args=[order.pk]))
    assert response.status_code == 200 and response.context["title"] == "Order 4242"
    content = response.content.decode()
    assert "<code>shipped</code>" in content and "In progress" in content and "Accepted by the lab" in content
    assert "<code>processing</code> → <code>shipped</code>" in content and "nurse" in content
    assert "KITABC" in content and reverse("kits:detail", args=[registration.pk]) in content
    assert "Register a kit for this order" in content and "Refresh now" in content
    assert "Retry submission" not in content


def test_detail_of_a_missing_order_is_404(staff_client):
    assert staff_client.get(reverse("orders:detail", args=[999])).status_code == 404


def test_refresh_stores_the_lab_state(staff_client, partner, order):
    partner.get_order(order.upstream_id, state="delivered")
    response = staff_client.post(reverse("orders:refresh", args=[order.pk]))
    assert response["Location"] == reverse("orders:detail", args=[order.pk])
    order.refresh_from_db()
    assert (order.state, order.status) == ("delivered", Status.COMPLETED)
    assert messages_of(response) == ["Refreshed from the lab: state “delivered”."]


def test_refresh_when_the_lab_is_down_shows_an_error_and_the_page_still_works(staff_client, partner, order):
    partner.get_order(order.upstream_id, status=503)
    response = staff_client.post(reverse("orders:refresh", args=[order.pk]), follow=True)
    assert response.status_code == 200
    content = response.content.decode()
    assert "The lab could not be reached; the order was not refreshed" in content
    assert "alert-danger" in content and "<code>processing</code>" in content


def test_refresh_of_an_order_not_accepted_yet_says_why(staff_client):
    order = Order.objects.create(amount=Decimal("5.00"))
    response = staff_client.post(reverse("orders:refresh", args=[order.pk]))
    assert "has not been accepted by the lab yet" in messages_of(response)[0]


def test_refresh_requires_post(staff_client, order):
    assert staff_client.get(reverse("orders:refresh", args=[order.pk])).status_code == 405


def test_retry_sends_a_failed_order_again(staff_client, partner):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.FAILED, last_error="down")
    partner.create_order(id=61)
    response = staff_client.post(reverse("orders:retry", args=[order.pk]))
    order.refresh_from_db()
    assert (order.submission_status, order.upstream_id) == (Submission.ACCEPTED, 61)
    assert messages_of(response) == ["Order created at the lab: lab order id 61."]


def test_retry_of_an_order_that_may_exist_is_refused(staff_client, partner):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    response = staff_client.post(reverse("orders:retry", args=[order.pk]))
    assert "Only an order whose submission failed or was rejected" in messages_of(response)[0]
    assert not partner.calls_to("/v2/orders/", "POST")


def test_review_links_to_the_lab_order(staff_client, staff_user):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    response = staff_client.post(reverse("orders:review", args=[order.pk]), {"action": "link", "upstream_id": "808"})
    order.refresh_from_db()
    assert (order.submission_status, order.upstream_id) == (Submission.ACCEPTED, 808)
    assert messages_of(response)[0].startswith("Linked to lab order 808.")
    assert "Linked to lab order 808 after review" in staff_client.get(response["Location"]).content.decode()


def test_review_confirming_absence_queues_it_again(staff_client):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    response = staff_client.post(reverse("orders:review", args=[order.pk]), {"action": "absent", "upstream_id": "1"})
    order.refresh_from_db()
    assert order.submission_status == Submission.QUEUED and order.upstream_id is None
    assert messages_of(response)[0].startswith("Queued to be sent to the lab again")


def test_review_link_needs_the_lab_id(staff_client):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    response = staff_client.post(reverse("orders:review", args=[order.pk]), {"action": "link", "upstream_id": ""})
    assert response.status_code == 200
    assert "Enter the lab&#x27;s order id to link this order to it." in response.content.decode()
    order.refresh_from_db()
    assert order.submission_status == Submission.NEEDS_REVIEW


def test_review_to_a_lab_id_of_another_order_is_refused(staff_client, order):
    other = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    response = staff_client.post(reverse("orders:review", args=[other.pk]), {"action": "link", "upstream_id": "4242"})
    assert response.status_code == 200
    assert "Lab order 4242 belongs to another order in the portal." in response.content.decode()


# --- CSV export ---------------------------------------------------------------


def test_export_streams_the_filtered_list_with_formulas_neutralised(staff_client, staff_user):
    OrderFactory(upstream_id=1, state='=HYPERLINK("http://evil")', status=Status.UNKNOWN, created_by=staff_user)
    Order.objects.create(amount=Decimal("7.50"), submission_status=Submission.FAILED, last_error="@SUM(1+1)")
    response = staff_client.get(reverse("orders:export"), {"status": "unknown"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = csv_of(response)
    assert rows[0][:4] == ["Portal id", "Lab order id", "Amount", "Lab state"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Lab state"] == '\'=HYPERLINK("http://evil")'
    assert (row["Lab order id"], row["Amount"], row["Status"], row["Created by"]) == (
        "1",
        "199.00",
        "Unknown state",
        "nurse",
    )

    rows = csv_of(staff_client.get(reverse("orders:export"), {"submission_status": "failed"}))
    assert dict(zip(rows[0], rows[1], strict=True))["Last error"] == "'@SUM(1+1)"
    assert len(csv_of(staff_client.get(reverse("orders:export")))) == 3
