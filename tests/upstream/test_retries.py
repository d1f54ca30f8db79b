"""Retry rules: GETs retried with backoff and Retry-After; a POST repeated only
when it surely did not arrive. Waits go to the injected sleep, never real time."""

from __future__ import annotations

import email.utils

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from portal.upstream.errors import UpstreamOutcomeUnknown, UpstreamUnavailable
from portal.upstream.transport import BACKOFF_BASE, BACKOFF_MAX, parse_retry_after, surely_not_sent
from tests.upstream.conftest import API, ORDERS_URL, a_registration, an_order

pytestmark = pytest.mark.django_db

RESULT_URL = f"{API}/v1/results/7"
REGISTRATION_URL = f"{API}/v1/kits/41/registration"
READY = {"id": 7, "state": "ready"}
CREATED = {"id": 41, "amount": 199.00}


def connection_refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens: the request never left."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, ORDERS_URL, reason))


def dns_failure() -> requests.exceptions.ConnectionError:
    import socket

    reason = NameResolutionError("secure.everlywell.test", None, socket.gaierror(-2, "Name or service not known"))
    return requests.exceptions.ConnectionError(MaxRetryError(None, ORDERS_URL, reason))


def connection_dropped() -> requests.exceptions.ConnectionError:
    """The partner closed the connection after we sent the request."""
    import http.client

    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection"))
    )


def posts_to(mocked, url: str) -> int:
    return sum(1 for call in mocked.calls if call.request.method == "POST" and call.request.url == url)


# --- GET ---------------------------------------------------------------------------


def test_503_then_success(upstream, mocked, token, sleeps):
    mocked.get(RESULT_URL, status=503)
    mocked.get(RESULT_URL, json=READY)

    assert upstream.get_result(7).state == "ready"
    assert len(sleeps.calls) == 1
    assert 0 <= sleeps.calls[0] <= BACKOFF_BASE  # full jitter of the first backoff


def test_backoff_grows_exponentially_with_full_jitter(upstream, mocked, token, sleeps, settings):
    settings.EVERLYWELL_MAX_RETRIES = 6
    settings.EVERLYWELL_RETRY_BUDGET = 1000
    for _ in range(7):
        mocked.get(RESULT_URL, status=502)

    with pytest.raises(UpstreamUnavailable):
        upstream.get_result(7)

    assert len(sleeps.calls) == 6
    for retry, delay in enumerate(sleeps.calls):
        assert 0 <= delay <= min(BACKOFF_MAX, BACKOFF_BASE * 2**retry)


def test_429_with_retry_after_seconds_is_honoured(upstream, mocked, token, sleeps):
    mocked.get(RESULT_URL, status=429, headers={"Retry-After": "7"})
    mocked.get(RESULT_URL, json=READY)

    assert upstream.get_result(7).state == "ready"
    assert sleeps.calls == [7.0]


def test_429_with_retry_after_as_an_http_date_is_honoured(upstream, mocked, token, sleeps, clock):
    mocked.get(RESULT_URL, status=429, headers={"Retry-After": email.utils.formatdate(clock() + 12, usegmt=True)})
    mocked.get(RESULT_URL, json=READY)

    upstream.get_result(7)

    assert sleeps.calls == [12.0]


def test_a_huge_retry_after_is_capped(upstream, mocked, token, sleeps, settings):
    settings.EVERLYWELL_RETRY_AFTER_CAP = 20
    mocked.get(RESULT_URL, status=429, headers={"Retry-After": "86400"})
    mocked.get(RESULT_URL, json=READY)

    upstream.get_result(7)

    assert sleeps.calls == [20.0]


def test_retries_exhausted_is_unavailable_with_the_partner_hint(upstream, mocked, token, sleeps, settings):
    settings.EVERLYWELL_MAX_RETRIES = 2
    for _ in range(3):
        mocked.get(RESULT_URL, status=429, headers={"Retry-After": "3"})

    with pytest.raises(UpstreamUnavailable) as caught:
        upstream.get_result(7)

    assert caught.value.retry_after == 3.0
    assert caught.value.status == 429
    assert caught.value.retryable
    assert sleeps.calls == [3.0, 3.0]
    assert sum(1 for c in mocked.calls if c.request.url == RESULT_URL) == 3


def test_the_total_budget_stops_retrying_before_the_retry_count(upstream, mocked, token, sleeps, settings):
    settings.EVERLYWELL_MAX_RETRIES = 10
    settings.EVERLYWELL_RETRY_BUDGET = 10
    for _ in range(11):
        mocked.get(RESULT_URL, status=503, headers={"Retry-After": "4"})

    with pytest.raises(UpstreamUnavailable) as caught:
        upstream.get_result(7)

    assert sleeps.calls == [4.0, 4.0]  # a third wait would pass 10 s
    assert caught.value.retry_after == 4.0


@pytest.mark.parametrize("failure", [connection_refused, dns_failure, requests.exceptions.ReadTimeout])
def test_a_get_is_retried_on_connection_failures_then_unavailable(upstream, mocked, token, sleeps, failure):
    for _ in range(4):
        mocked.get(RESULT_URL, body=failure())

    with pytest.raises(UpstreamUnavailable) as caught:
        upstream.get_result(7)

    assert len(sleeps.calls) == 3  # EVERLYWELL_MAX_RETRIES
    assert caught.value.retry_after is None
    assert "could not reach" in str(caught.value)


def test_a_get_recovers_after_a_connection_failure(upstream, mocked, token):
    mocked.get(RESULT_URL, body=dns_failure())
    mocked.get(RESULT_URL, json=READY)

    assert upstream.get_result(7).state == "ready"


def test_the_token_request_is_retried_like_any_get(upstream, mocked, sleeps):
    mocked.get(f"{upstream.auth_url}/v1/token", status=503)
    mocked.get(f"{upstream.auth_url}/v1/token", json={"token": "t"})
    mocked.get(RESULT_URL, json=READY)

    assert upstream.get_result(7).state == "ready"


# --- POST --------------------------------------------------------------------------


def test_a_post_read_timeout_is_outcome_unknown_and_sent_only_once(upstream, mocked, token, sleeps):
    mocked.post(ORDERS_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    mocked.post(ORDERS_URL, status=201, json=CREATED)

    with pytest.raises(UpstreamOutcomeUnknown) as caught:
        upstream.create_order(an_order())

    assert posts_to(mocked, ORDERS_URL) == 1
    assert sleeps.calls == []
    assert not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_post_answered_500_502_504_is_outcome_unknown(upstream, mocked, token, status):
    mocked.post(REGISTRATION_URL, status=status)
    mocked.post(REGISTRATION_URL, status=201, json={"id": 1, "state": "registred", "kit_id": "k"})

    with pytest.raises(UpstreamOutcomeUnknown) as caught:
        upstream.register_kit(41, a_registration())

    assert caught.value.status == status
    assert posts_to(mocked, REGISTRATION_URL) == 1


def test_a_post_whose_connection_dropped_after_sending_is_outcome_unknown(upstream, mocked, token):
    mocked.post(ORDERS_URL, body=connection_dropped())

    with pytest.raises(UpstreamOutcomeUnknown):
        upstream.create_order(an_order())
    assert posts_to(mocked, ORDERS_URL) == 1


def test_a_bare_503_to_a_post_is_outcome_unknown(upstream, mocked, token):
    # NOTES.md point 16 repeats a POST on "503 with Retry-After" only: a bare 503
    # may come from a gateway that had already passed the request on.
    mocked.post(ORDERS_URL, status=503)

    with pytest.raises(UpstreamOutcomeUnknown):
        upstream.create_order(an_order())
    assert posts_to(mocked, ORDERS_URL) == 1


@pytest.mark.parametrize(
    "first",
    [
        {"status": 503, "headers": {"Retry-After": "1"}},
        {"status": 429, "headers": {"Retry-After": "2"}},
        {"status": 429},
        {"body": connection_refused()},
        {"body": dns_failure()},
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
    ],
    ids=["503-retry-after", "429-retry-after", "429", "refused", "dns", "connect-timeout"],
)
def test_a_post_that_surely_did_not_arrive_is_retried(upstream, mocked, token, first):
    mocked.post(ORDERS_URL, **first)
    mocked.post(ORDERS_URL, status=201, json=CREATED)

    assert upstream.create_order(an_order()).id == 41
    assert posts_to(mocked, ORDERS_URL) == 2


def test_a_post_that_never_gets_through_is_unavailable_not_unknown(upstream, mocked, token):
    for _ in range(4):
        mocked.post(ORDERS_URL, body=connection_refused())

    with pytest.raises(UpstreamUnavailable):
        upstream.create_order(an_order())
    assert posts_to(mocked, ORDERS_URL) == 4


# --- Helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        ("soon", None),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=1_800_000_000.0) == expected


def test_errors_are_classified_by_whether_the_request_can_have_arrived():
    assert surely_not_sent(connection_refused())
    assert surely_not_sent(dns_failure())
    assert surely_not_sent(requests.exceptions.ConnectTimeout())
    assert not surely_not_sent(connection_dropped())
    assert not surely_not_sent(requests.exceptions.ReadTimeout())
    assert not surely_not_sent(requests.exceptions.ChunkedEncodingError())
