"""Each operation against the partner mocked with `responses`: the request the
partner receives, and what the caller gets back or what it can catch."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
import requests
import responses
import urllib3

from portal.upstream.client import EverlywellClient, get_client, reset_client
from portal.upstream.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from portal.upstream.types import UpstreamOrder, UpstreamRegistration, UpstreamResult
from tests.upstream.conftest import API, ORDERS_URL, TOKEN_URL, a_registration, an_order

pytestmark = pytest.mark.django_db


def test_issue_token_uses_basic_auth_on_the_auth_host(upstream, mocked, clock):
    mocked.get(TOKEN_URL, json={"token": "opaque-token-1"})

    token = upstream.issue_token()

    assert token.value == "opaque-token-1"
    assert token.expires_at == clock() + 3600  # not a JWT: EVERLYWELL_TOKEN_LIFETIME
    sent = mocked.calls[0].request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"test-client:test-client-secret").decode()


def test_create_order_posts_the_amount_with_two_decimals(upstream, mocked, token):
    mocked.post(ORDERS_URL, status=201, json={"id": 41, "amount": 199.00})

    order = upstream.create_order(an_order("199"))

    assert order == UpstreamOrder(id=41, state=None, amount=Decimal("199.0"), raw={})
    sent = mocked.calls[1].request
    assert sent.body == b'{"amount": 199.00}'
    assert sent.headers["Authorization"] == "Bearer opaque-token-1"
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"


def test_get_order_returns_its_state(upstream, mocked, token):
    mocked.get(f"{API}/v2/orders/41", json={"id": 41, "state": "processing"})

    assert upstream.get_order(41).state == "processing"


def test_register_kit_sends_the_reference_body_and_normalises_registred(upstream, mocked, token):
    mocked.post(
        f"{API}/v1/kits/41/registration",
        status=201,
        json={"id": 7, "state": "registred", "kit_id": "1a2b3c4d5e", "user_id": 3},
    )

    registration = upstream.register_kit(41, a_registration())

    assert registration == UpstreamRegistration(id=7, state="registered", kit_id="1a2b3c4d5e", user_id=3, raw={})
    body = json.loads(mocked.calls[1].request.body)
    assert body["user"]["dob"] == 458179200000
    assert body["user"]["phone_number"] == 6175550123
    assert body["addresses"][0]["zipcode"] == 2139
    assert body["addresses"][0]["street2"] == ""


def test_register_kit_sends_dob_in_seconds_and_zip_as_text_when_configured(upstream, mocked, token, settings):
    settings.EVERLYWELL_DOB_UNIT = "s"
    settings.EVERLYWELL_ZIP_AS_STRING = True
    mocked.post(f"{API}/v1/kits/41/registration", status=201, json={"id": 7, "state": "registred", "kit_id": "a"})

    assert upstream.register_kit(41, a_registration()).user_id is None

    body = json.loads(mocked.calls[1].request.body)
    assert body["user"]["dob"] == 458179200
    assert body["addresses"][0]["zipcode"] == "02139"


def test_get_result_keeps_an_unknown_state(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/7", json={"id": 7, "state": "quality_review"})

    assert upstream.get_result(7) == UpstreamResult(id=7, state="quality_review", raw={})


def test_the_token_is_cached_and_shared_between_calls(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/7", json={"id": 7, "state": "ready"})

    upstream.get_result(7)
    upstream.get_result(7)
    EverlywellClient(sleep=lambda s: None).get_result(7)  # another "process" sharing the cache

    assert token.call_count == 1


def test_a_404_is_not_found_with_the_partner_message(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/999", status=404, json={"error": "result not found"})

    with pytest.raises(UpstreamNotFound) as caught:
        upstream.get_result(999)

    assert caught.value.status == 404
    assert caught.value.partner_message == "result not found"
    assert not caught.value.retryable


def test_a_422_is_rejected_with_the_partner_message_kept_out_of_str(upstream, mocked, token):
    mocked.post(
        f"{API}/v1/kits/41/registration",
        status=422,
        json={"error": "user.email jane.roe@example.org is already registered"},
    )

    with pytest.raises(UpstreamRejected) as caught:
        upstream.register_kit(41, a_registration())

    assert caught.value.partner_message == "user.email jane.roe@example.org is already registered"
    assert "jane" not in str(caught.value)
    assert str(caught.value) == "the partner rejected register_kit (HTTP 422)"
    assert len(mocked.calls) == 2  # a rejection is never repeated


def test_a_rejection_message_never_contains_our_request_body(upstream, mocked, token):
    mocked.post(f"{API}/v1/kits/41/registration", status=400, body="Bad Request")

    with pytest.raises(UpstreamRejected) as caught:
        upstream.register_kit(41, a_registration())

    assert caught.value.partner_message == "Bad Request"


@pytest.mark.parametrize("body", ['{"id": 7, "state": "ready",}', "<html><body>Welcome</body></html>"])
def test_a_get_answered_with_a_body_that_is_not_json_is_a_protocol_error(upstream, mocked, token, body):
    mocked.get(f"{API}/v1/results/7", body=body, content_type="text/html")

    with pytest.raises(UpstreamProtocolError) as caught:
        upstream.get_result(7)

    assert caught.value.retryable


def test_a_post_accepted_with_an_unusable_answer_is_outcome_unknown(upstream, mocked, token):
    # The order exists upstream but we cannot link it: never "try again".
    mocked.post(ORDERS_URL, status=201, body='{"id": 41, "amount": 199.00,}')

    with pytest.raises(UpstreamOutcomeUnknown, match="accepted"):
        upstream.create_order(an_order())


def test_a_redirect_is_not_followed(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/7", status=302, headers={"Location": "https://elsewhere.test/"})

    with pytest.raises(UpstreamProtocolError, match="302"):
        upstream.get_result(7)
    assert len(mocked.calls) == 2


def test_wrong_credentials_are_auth_failed(upstream, mocked):
    mocked.get(TOKEN_URL, status=401, json={"error": "invalid client"})

    with pytest.raises(UpstreamAuthFailed) as caught:
        upstream.get_result(7)

    assert not caught.value.retryable
    assert len(mocked.calls) == 1


def test_missing_credentials_are_auth_failed_without_a_request(upstream, mocked, settings):
    settings.EVERLYWELL_CLIENT_SECRET = ""

    with pytest.raises(UpstreamAuthFailed, match="not set"):
        upstream.issue_token()
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("bad_id", [0, -1, "7", None, True])
def test_ids_in_paths_must_be_positive_integers(upstream, bad_id):
    with pytest.raises(ValueError, match="positive integers"):
        upstream.get_result(bad_id)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (requests.exceptions.InvalidURL("no"), UpstreamError),
        (requests.exceptions.ChunkedEncodingError("cut"), UpstreamUnavailable),
        (requests.exceptions.ContentDecodingError("gzip"), UpstreamUnavailable),
        (urllib3.exceptions.ProtocolError("odd"), UpstreamUnavailable),
        (ConnectionResetError(104, "reset"), UpstreamUnavailable),
    ],
)
def test_no_transport_exception_escapes(upstream, mocked, token, failure, expected):
    for _ in range(4):
        mocked.get(f"{API}/v1/results/7", body=failure)

    with pytest.raises(expected):
        upstream.get_result(7)


def test_a_misconfigured_url_is_not_retried(upstream, mocked, settings, sleeps):
    settings.EVERLYWELL_AUTH_URL = "auth.everlywell.test/api"  # no scheme

    with pytest.raises(UpstreamError, match="misconfigured"):
        upstream.get_result(7)
    assert sleeps.calls == []


def test_settings_are_read_at_call_time(upstream, mocked, settings):
    settings.EVERLYWELL_API_URL = "https://other.everlywell.test/aapi/"
    mocked.get(TOKEN_URL, json={"token": "t"})
    mocked.get("https://other.everlywell.test/aapi/v1/results/7", json={"id": 7, "state": "ready"})

    assert upstream.get_result(7).state == "ready"


def test_get_client_is_one_per_process_and_resettable():
    first = get_client()
    assert get_client() is first
    reset_client()
    assert get_client() is not first


def test_the_pool_fits_the_configured_concurrency(settings):
    settings.EVERLYWELL_CONCURRENCY = 12
    reset_client()
    adapter = get_client().session.get_adapter("https://secure.everlywell.test/")
    assert adapter._pool_maxsize >= 12


def test_the_client_uses_the_configured_timeouts(upstream, mocked, token, settings):
    settings.EVERLYWELL_CONNECT_TIMEOUT = 1.5
    settings.EVERLYWELL_READ_TIMEOUT = 9.0
    mocked.get(f"{API}/v1/results/7", json={"id": 7, "state": "ready"})

    upstream.get_result(7)

    assert mocked.calls[1].request.req_kwargs["timeout"] == (1.5, 9.0)


@responses.activate
def test_the_module_level_responses_decorator_works_too(clock):
    responses.get(TOKEN_URL, json={"token": "t"})
    responses.get(f"{API}/v2/orders/5", json={"id": 5, "state": "shipped"})

    assert EverlywellClient(clock=clock).get_order(5).state == "shipped"
