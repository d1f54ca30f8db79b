"""The bearer token: cached for every process, refreshed early, by one caller at
a time, and refreshed once (never in a loop) when the API answers 401."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from django.core.cache import cache

from portal.upstream.client import EverlywellClient
from portal.upstream.errors import UpstreamAuthFailed
from portal.upstream.tokens import LOCK_KEY, TOKEN_KEY
from tests.upstream.conftest import API, TOKEN_URL, an_order

pytestmark = pytest.mark.django_db

RESULT_URL = f"{API}/v1/results/7"
READY = {"id": 7, "state": "ready"}


def a_jwt(exp: float, **claims) -> str:
    return jwt.encode({"exp": int(exp), **claims}, "the-partner-signing-key-we-never-see", algorithm="HS256")


def test_the_expiry_comes_from_the_jwt_exp_claim(upstream, mocked, clock):
    mocked.get(TOKEN_URL, json={"token": a_jwt(clock() + 900)})

    assert upstream.issue_token().expires_at == int(clock() + 900)


def test_a_token_that_is_not_a_jwt_lives_the_configured_lifetime(upstream, mocked, clock, settings):
    settings.EVERLYWELL_TOKEN_LIFETIME = 120
    mocked.get(TOKEN_URL, json={"token": "not.a-jwt"})

    assert upstream.issue_token().expires_at == clock() + 120


def test_the_token_is_refreshed_the_margin_before_it_expires(upstream, mocked, clock, settings):
    settings.EVERLYWELL_TOKEN_REFRESH_MARGIN = 60
    first = mocked.get(TOKEN_URL, json={"token": a_jwt(clock() + 600, n=1)})
    mocked.get(RESULT_URL, json=READY)

    upstream.get_result(7)
    clock.advance(539)
    upstream.get_result(7)
    assert first.call_count == 1
    clock.advance(1)  # 60 s before exp
    upstream.get_result(7)

    assert first.call_count == 2


def test_a_short_lived_token_is_refreshed_at_half_its_life_not_on_every_call(upstream, mocked, clock, settings):
    settings.EVERLYWELL_TOKEN_REFRESH_MARGIN = 60
    token = mocked.get(TOKEN_URL, json={"token": a_jwt(clock() + 30)})
    mocked.get(RESULT_URL, json=READY)

    for _ in range(5):
        upstream.get_result(7)
    clock.advance(15)
    upstream.get_result(7)

    assert token.call_count == 2


def test_the_token_lives_in_the_shared_cache_under_a_namespaced_key(upstream, mocked, token):
    mocked.get(RESULT_URL, json=READY)

    upstream.get_result(7)

    assert cache.get(TOKEN_KEY)["value"] == "opaque-token-1"


def test_a_401_refreshes_the_token_once_and_retries_the_call_once(upstream, mocked, clock):
    cache.set(TOKEN_KEY, {"value": "stale", "expires_at": clock() + 600, "refresh_at": clock() + 500})
    token = mocked.get(TOKEN_URL, json={"token": "fresh"})
    mocked.get(RESULT_URL, status=401, json={"error": "expired"})
    mocked.get(RESULT_URL, json=READY)

    assert upstream.get_result(7).state == "ready"

    sent = [c.request.headers["Authorization"] for c in mocked.calls if c.request.url == RESULT_URL]
    assert sent == ["Bearer stale", "Bearer fresh"]
    assert token.call_count == 1
    assert cache.get(TOKEN_KEY)["value"] == "fresh"


def test_a_post_answered_401_is_repeated_once_with_a_fresh_token(upstream, mocked, token):
    # A 401 means the partner did not apply the request: repeating it is safe.
    mocked.post(f"{API}/v2/orders/", status=401)
    mocked.post(f"{API}/v2/orders/", status=201, json={"id": 3, "amount": 10.00})

    assert upstream.create_order(an_order("10.00")).id == 3
    assert token.call_count == 2


def test_a_second_401_is_auth_failed_and_there_is_no_loop(upstream, mocked, token):
    api = mocked.get(RESULT_URL, status=401, json={"error": "nope"})

    with pytest.raises(UpstreamAuthFailed) as caught:
        upstream.get_result(7)

    assert api.call_count == 2
    assert token.call_count == 2
    assert caught.value.status == 401
    assert not caught.value.retryable


@pytest.mark.parametrize("cached", ["absent", "expired"])
def test_n_concurrent_callers_without_a_valid_token_cause_exactly_one_token_request(mocked, cached):
    if cached == "expired":
        past = time.time() - 10
        cache.set(TOKEN_KEY, {"value": "old", "expires_at": past, "refresh_at": past - 60}, timeout=60)
    callers = 20
    started = threading.Barrier(callers)
    issued = []

    def issue(request):
        issued.append(1)
        time.sleep(0.05)  # the partner is slow, so every caller arrives while it works
        return 200, {}, '{"token": "shared"}'

    mocked.add_callback("GET", TOKEN_URL, callback=issue)
    mocked.get(RESULT_URL, json=READY)
    client = EverlywellClient(sleep=lambda seconds: None)
    errors = []

    def call():
        started.wait()
        try:
            client.get_result(7)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert len(issued) == 1
    assert sum(1 for c in mocked.calls if c.request.url == RESULT_URL) == callers


def test_a_process_waits_for_the_refresh_another_process_is_doing(mocked, clock):
    """Another process holds the cache lock; this one polls the cache (with the
    injected sleep) and uses the token the other one stores, without asking."""
    token = mocked.get(TOKEN_URL, json={"token": "mine"})
    mocked.get(RESULT_URL, json=READY)
    cache.add(LOCK_KEY, "other-process", timeout=30)
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        clock.advance(seconds)
        if len(polls) == 3:  # the other process finishes its refresh
            cache.set(TOKEN_KEY, {"value": "theirs", "expires_at": clock() + 600, "refresh_at": clock() + 500})

    client = EverlywellClient(clock=clock, sleep=sleep)
    assert client.get_result(7).state == "ready"

    assert token.call_count == 0
    assert len(polls) == 3
    assert mocked.calls[-1].request.headers["Authorization"] == "Bearer theirs"


def test_a_lock_holder_that_never_delivers_does_not_block_forever(mocked, clock):
    token = mocked.get(TOKEN_URL, json={"token": "mine"})
    mocked.get(RESULT_URL, json=READY)
    cache.add(LOCK_KEY, "crashed-process", timeout=3600)

    client = EverlywellClient(clock=clock, sleep=clock.sleep)
    assert client.get_result(7).state == "ready"

    assert token.call_count == 1


class SharedCacheReads:
    """The shared cache, counting the reads of the token entry."""

    def __init__(self) -> None:
        self.token_reads = 0

    def get(self, key, *args, **kwargs):
        if key == TOKEN_KEY:
            self.token_reads += 1
        return cache.get(key, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(cache, name)


def test_the_shared_cache_is_read_again_only_when_the_token_is_due_for_refresh(mocked, clock, settings):
    settings.EVERLYWELL_TOKEN_REFRESH_MARGIN = 60
    token = mocked.get(TOKEN_URL, json={"token": a_jwt(clock() + 600)})
    mocked.get(RESULT_URL, json=READY)
    shared = SharedCacheReads()
    client = EverlywellClient(cache=shared, clock=clock, sleep=clock.sleep)

    client.get_result(7)
    reads_to_get_the_first_token = shared.token_reads
    for _ in range(50):
        client.get_result(7)
    clock.advance(539)
    client.get_result(7)

    assert shared.token_reads == reads_to_get_the_first_token
    assert token.call_count == 1

    clock.advance(1)  # refresh time: the shared cache decides, and the token is renewed
    client.get_result(7)
    assert shared.token_reads > reads_to_get_the_first_token
    assert token.call_count == 2


def _answer_401_to(revoked: set[str]):
    def answer(request):
        if request.headers["Authorization"].removeprefix("Bearer ") in revoked:
            return 401, {}, '{"error": "expired"}'
        return 200, {}, '{"id": 7, "state": "ready"}'

    return answer


def test_a_401_to_the_token_this_process_holds_still_refreshes_it(upstream, mocked):
    mocked.get(TOKEN_URL, json={"token": "first"})
    mocked.get(TOKEN_URL, json={"token": "second"})
    revoked = set()
    mocked.add_callback("GET", RESULT_URL, callback=_answer_401_to(revoked))
    upstream.get_result(7)  # with "first", which this process keeps...
    revoked.add("first")  # ...and the partner then revokes

    assert upstream.get_result(7).state == "ready"

    sent = [c.request.headers["Authorization"] for c in mocked.calls if c.request.url == RESULT_URL]
    assert sent == ["Bearer first", "Bearer first", "Bearer second"]
    assert sum(1 for c in mocked.calls if c.request.url == TOKEN_URL) == 2
    assert cache.get(TOKEN_KEY)["value"] == "second"


def test_a_401_takes_the_token_another_process_already_stored_without_a_token_request(upstream, mocked, clock):
    token = mocked.get(TOKEN_URL, json={"token": "first"})
    revoked = set()
    mocked.add_callback("GET", RESULT_URL, callback=_answer_401_to(revoked))
    upstream.get_result(7)
    revoked.add("first")
    # Another process met the 401 first and stored a new token.
    cache.set(TOKEN_KEY, {"value": "theirs", "expires_at": clock() + 600, "refresh_at": clock() + 500})

    assert upstream.get_result(7).state == "ready"

    sent = [c.request.headers["Authorization"] for c in mocked.calls if c.request.url == RESULT_URL]
    assert sent[-2:] == ["Bearer first", "Bearer theirs"]
    assert token.call_count == 1
