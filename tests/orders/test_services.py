import uuid
from decimal import Decimal

import pytest
import requests

from portal.core.models import StateChange
from portal.core.states import Status, Submission
from portal.orders.models import Order
from portal.orders.services import (
    OrderError,
    order_create,
    order_refresh,
    order_resolve_review,
    order_retry_submission,
    order_submit,
    orders_sync_due,
)
from tests.factories import OrderFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


def test_same_idempotency_key_creates_one_order(staff_user):
    key = uuid.uuid4()
    first = order_create(amount=Decimal("199.00"), created_by=staff_user, idempotency_key=key)
    second = order_create(amount=Decimal("199.00"), created_by=staff_user, idempotency_key=key)
    assert first.pk == second.pk
    assert Order.objects.count() == 1


def test_submit_stores_the_lab_id_and_accepts(partner):
    partner.create_order(id=42)
    order = order_create(amount=Decimal("199.00"))
    order = order_submit(order_id=order.pk)
    assert order.submission_status == Submission.ACCEPTED
    assert order.upstream_id == 42
    assert order.next_sync_at is not None
    body = partner.calls_to("/v2/orders/", "POST")[0].request.body
    assert b'"amount": 199.00' in body or b'"amount": 199.0' in body


def test_submit_when_lab_is_down_keeps_the_order_marked_retryable(partner):
    partner.create_order(status=503, headers={"Retry-After": "0"})
    order = order_submit(order_id=order_create(amount=Decimal("10.00")).pk)
    assert order.submission_status == Submission.FAILED
    assert order.last_error_class == "UpstreamUnavailable"
    assert Order.objects.filter(pk=order.pk).exists()


def test_post_read_timeout_marks_for_review_and_never_posts_twice(partner):
    partner.create_order(body=requests.exceptions.ReadTimeout("slow"))
    order = order_submit(order_id=order_create(amount=Decimal("10.00")).pk)
    assert order.submission_status == Submission.NEEDS_REVIEW
    assert len(partner.calls_to("/v2/orders/", "POST")) == 1
    # A retry request does not resend an order whose outcome is unknown.
    with pytest.raises(OrderError):
        order_retry_submission(order_id=order.pk)
    order_submit(order_id=order.pk)
    assert len(partner.calls_to("/v2/orders/", "POST")) == 1


def test_rejected_order_keeps_the_partners_message(partner):
    partner.create_order(status=422, json={"error": "amount must be positive"})
    order = order_submit(order_id=order_create(amount=Decimal("10.00")).pk)
    assert order.submission_status == Submission.REJECTED
    assert "amount must be positive" in order.last_error


def test_submit_twice_sends_once(partner):
    partner.create_order(id=7)
    order = order_create(amount=Decimal("10.00"))
    order_submit(order_id=order.pk)
    order_submit(order_id=order.pk)
    assert len(partner.calls_to("/v2/orders/", "POST")) == 1


def test_refresh_maps_state_and_records_the_timeline(partner, staff_user):
    order = OrderFactory(state="processing", status=Status.IN_PROGRESS)
    partner.get_order(order.upstream_id, state="delivered")
    order = order_refresh(order_id=order.pk, actor=staff_user)
    assert (order.state, order.status) == ("delivered", Status.COMPLETED)
    change = StateChange.objects.get(object_id=order.pk)
    assert (change.old_state, change.new_state, change.actor) == ("processing", "delivered", staff_user)


def test_stale_read_never_moves_an_order_backwards(partner):
    order = OrderFactory(state="delivered", status=Status.COMPLETED)
    partner.get_order(order.upstream_id, state="processing")
    order = order_refresh(order_id=order.pk)
    assert order.status == Status.COMPLETED and order.state == "delivered"


def test_unknown_order_state_is_kept_and_shown(partner):
    order = OrderFactory(state="processing", status=Status.IN_PROGRESS)
    partner.get_order(order.upstream_id, state="on_hold")
    order = order_refresh(order_id=order.pk)
    assert (order.state, order.status) == ("on_hold", Status.UNKNOWN)
    assert order.needs_attention


def test_accepting_an_order_sends_its_waiting_registrations(partner, django_capture_on_commit_callbacks):
    order = Order.objects.create(amount=Decimal("5.00"))
    RegistrationFactory(order=order, upstream_id=None, kit_id=None, submission_status=Submission.QUEUED)
    partner.create_order(id=99)
    with django_capture_on_commit_callbacks() as callbacks:
        order_submit(order_id=order.pk)
    assert len(callbacks) == 1


def test_review_with_a_lab_id_links_the_order(staff_user):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    order = order_resolve_review(order_id=order.pk, actor=staff_user, upstream_id=555)
    assert order.submission_status == Submission.ACCEPTED and order.upstream_id == 555


def test_review_without_a_lab_id_queues_it_again(staff_user, django_capture_on_commit_callbacks):
    order = Order.objects.create(amount=Decimal("5.00"), submission_status=Submission.NEEDS_REVIEW)
    with django_capture_on_commit_callbacks() as callbacks:
        order = order_resolve_review(order_id=order.pk, actor=staff_user, upstream_id=None)
    assert order.submission_status == Submission.QUEUED
    assert len(callbacks) == 1


def test_sync_due_refreshes_each_due_order_once(partner):
    from django.utils import timezone

    due = OrderFactory(next_sync_at=timezone.now())
    OrderFactory(next_sync_at=None)
    partner.get_order(due.upstream_id, state="shipped")
    assert orders_sync_due() == 1
    assert orders_sync_due() == 0
    due.refresh_from_db()
    assert due.state == "shipped"
