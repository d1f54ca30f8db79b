"""The real client against the real sandbox over HTTP on 127.0.0.1: the contract
both sides implement, end to end. The sandbox's clock moves only when told to."""

from __future__ import annotations

import datetime
import re
import socket
import threading
from decimal import Decimal

import pytest

from portal.upstream.client import get_client
from portal.upstream.errors import (
    UpstreamAuthFailed,
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from portal.upstream.models import UpstreamCall
from portal.upstream.types import AddressIn, OrderIn, RegistrationIn, UserIn
from tests.upstream.conftest import a_registration

pytestmark = pytest.mark.django_db


def test_the_whole_flow_from_token_to_a_ready_result(sandbox_server, settings):
    sandbox_server.configure(settings)
    client = get_client()

    token = client.issue_token()
    assert token.value.count(".") == 2  # a JWT, whose exp the client read
    assert token.expires_at == pytest.approx(sandbox_server.clock() + 3600, abs=1)

    order = client.create_order(OrderIn(amount=Decimal("199.00")))
    assert order.amount == Decimal("199.0")
    assert client.get_order(order.id).state == "processing"
    sandbox_server.clock.advance(60)
    assert client.get_order(order.id).state == "shipped"

    registration = client.register_kit(order.id, a_registration())
    assert registration.state == "registered"  # the sandbox answers "registred"
    assert re.fullmatch(r"[0-9a-f]{10}", registration.kit_id)
    assert isinstance(registration.user_id, int)

    # NOTES.md point 15: the result id is the registration id.
    seen = []
    for _ in range(10):
        result = client.get_result(registration.id)
        seen.append(result.state)
        if result.state == "ready":
            break
        sandbox_server.clock.advance(30)
    assert seen == ["awaiting_sample", "awaiting_sample", "processing", "ready"]

    # One token served the whole flow (issue_token above is the explicit extra one).
    assert sandbox_server.stats()["token_requests"] == 2
    assert UpstreamCall.objects.filter(outcome="ok").count() == 10


def test_every_fifth_result_passes_through_a_state_the_portal_does_not_know(sandbox_server):
    client = sandbox_server.client()
    order = client.create_order(OrderIn(amount=Decimal("10.00")))
    registrations = [client.register_kit(order.id, a_registration()) for _ in range(5)]
    fifth = registrations[4]
    assert fifth.id % 5 == 0

    sandbox_server.clock.advance(70)  # between 3/4 of 90 s and 90 s

    assert client.get_result(fifth.id).state == "quality_review"
    assert client.get_result(registrations[0].id).state == "processing"
    sandbox_server.clock.advance(20)
    assert client.get_result(fifth.id).state == "ready"


def test_the_same_email_gets_the_same_user_id(sandbox_server):
    client = sandbox_server.client()
    order = client.create_order(OrderIn(amount=Decimal("10.00")))

    first = client.register_kit(order.id, a_registration())
    second = client.register_kit(order.id, a_registration(email="JANE.ROE@example.org"))
    other = client.register_kit(order.id, a_registration(email="someone@example.org"))

    assert first.user_id == second.user_id != other.user_id


def test_an_expired_token_is_refreshed_on_the_401_and_the_call_succeeds(start_sandbox, settings):
    sandbox = start_sandbox(token_lifetime=5)
    client = sandbox.client()
    order = client.create_order(OrderIn(amount=Decimal("5.00")))

    sandbox.clock.advance(10)  # the sandbox now finds the cached token expired

    assert client.get_order(order.id).id == order.id
    assert sandbox.stats()["token_requests"] == 2


def test_wrong_credentials_are_auth_failed(sandbox_server):
    client = sandbox_server.client(client_secret="wrong")

    with pytest.raises(UpstreamAuthFailed):
        client.get_order(1)


def test_unknown_ids_are_not_found(sandbox_server):
    client = sandbox_server.client()

    with pytest.raises(UpstreamNotFound):
        client.get_order(404)
    with pytest.raises(UpstreamNotFound):
        client.get_result(404)
    with pytest.raises(UpstreamNotFound) as caught:
        client.register_kit(404, a_registration())
    assert caught.value.partner_message == "invoice not found"


def test_data_the_sandbox_refuses_is_rejected_with_its_message(sandbox_server):
    client = sandbox_server.client()
    order = client.create_order(OrderIn(amount=Decimal("5.00")))
    no_at = RegistrationIn(
        user=UserIn(
            email="not-an-email",
            first_name="A",
            last_name="B",
            dob=datetime.date(1990, 1, 1),
            phone="6175550123",
            gender="f",
        ),
        addresses=(AddressIn(street1="1 Main St", city="Boston", state="MA", zipcode="02110"),),
    )

    with pytest.raises(UpstreamRejected) as caught:
        client.register_kit(order.id, no_at)

    assert caught.value.status == 422
    assert caught.value.partner_message == "user.email is required and must be a string containing @"


def test_injected_503s_are_retried_then_unavailable(start_sandbox):
    sandbox = start_sandbox(error_rate=1.0, error_codes=(503,))
    sleeps = []
    client = sandbox.client(sleep=sleeps.append)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.get_result(1)

    assert caught.value.retry_after == 1.0
    assert sleeps == [1.0, 1.0, 1.0]
    assert sandbox.stats()["token_requests"] == 4


def test_a_post_refused_with_429_is_retried_and_creates_one_order(start_sandbox):
    sandbox = start_sandbox()
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        sandbox.options.error_rate = 0.0  # the partner recovers

    client = sandbox.client(sleep=sleep)
    first = client.create_order(OrderIn(amount=Decimal("1.00")))  # caches the token
    sandbox.options.error_rate = 1.0
    sandbox.options.error_codes = (429,)

    order = client.create_order(OrderIn(amount=Decimal("9.99")))

    assert waits == [1.0]
    assert order.id == first.id + 1
    assert sandbox.server.store.get_order(order.id)["amount"] == "9.99"
    assert sandbox.server.store.get_order(order.id + 1) is None


def test_the_reference_trailing_comma_body_is_a_protocol_error(start_sandbox):
    sandbox = start_sandbox()
    client = sandbox.client()
    order = client.create_order(OrderIn(amount=Decimal("5.00")))
    sandbox.options.malformed_rate = 1.0

    with pytest.raises(UpstreamProtocolError):
        client.get_order(order.id)


def test_a_post_whose_answer_times_out_is_outcome_unknown_and_sent_once(start_sandbox, settings):
    release = threading.Event()
    sandbox = start_sandbox(sleep=lambda seconds: release.wait(5))
    client = sandbox.client()
    client.create_order(OrderIn(amount=Decimal("1.00")))  # caches the token
    sandbox.options.latency_ms = 1  # from now on every answer waits for `release`
    settings.EVERLYWELL_READ_TIMEOUT = 0.05

    with pytest.raises(UpstreamOutcomeUnknown):
        client.create_order(OrderIn(amount=Decimal("5.00")))

    release.set()
    assert sandbox.stats()["requests"] == 3  # the token, the first order, one POST of the second
    # The partner did apply it: exactly why the caller must review, not resend.
    pause = threading.Event()
    for _ in range(500):  # the sandbox's handler finishes in its own thread
        if sandbox.server.store.get_order(2):
            break
        pause.wait(0.01)
    assert sandbox.server.store.get_order(2)["amount"] == "5.00"


def test_connection_refused_is_retried_even_for_a_post_then_unavailable(settings):
    from portal.upstream.client import EverlywellClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sleeps = []
    client = EverlywellClient(
        api_url=f"http://127.0.0.1:{closed_port}/aapi",
        auth_url=f"http://127.0.0.1:{closed_port}/api",
        sleep=sleeps.append,
    )
    from django.core.cache import cache

    from portal.upstream.tokens import TOKEN_KEY

    cache.set(TOKEN_KEY, {"value": "t", "expires_at": 4e9, "refresh_at": 4e9})

    with pytest.raises(UpstreamUnavailable):
        client.create_order(OrderIn(amount=Decimal("5.00")))
    assert len(sleeps) == 3
    with pytest.raises(UpstreamUnavailable):
        client.get_order(1)


def test_twenty_concurrent_callers_cause_one_token_request(start_sandbox):
    sandbox = start_sandbox(latency_ms=20)
    client = sandbox.client()
    order = sandbox.server.store.create_order(amount="1.00", now=sandbox.clock())
    callers = 20
    barrier = threading.Barrier(callers)
    failures = []

    def call():
        barrier.wait()
        try:
            client.get_order(order["id"])
        except Exception as exc:  # asserted below
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert failures == []
    assert sandbox.stats() == {"token_requests": 1, "requests": callers + 1, "faults": 0}
