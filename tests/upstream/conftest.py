"""Fixtures for the upstream client's tests: a fresh client and cache per test,
the partner mocked with `responses`, and a clock that only moves when slept on."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache

from portal.upstream.client import EverlywellClient, reset_client
from portal.upstream.types import AddressIn, OrderIn, RegistrationIn, UserIn
from tests.sandbox_fixtures import FakeClock

API = "https://secure.everlywell.test/aapi"
AUTH = "https://auth.everlywell.test/api"
TOKEN_URL = f"{AUTH}/v1/token"
ORDERS_URL = f"{API}/v2/orders/"


@pytest.fixture(autouse=True)
def _fresh_client_and_cache():
    cache.clear()
    reset_client()
    yield
    reset_client()
    cache.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


class SleepRecorder:
    """Records the waits the client asks for, and moves the fake clock instead."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def sleeps(clock) -> SleepRecorder:
    return SleepRecorder(clock)


@pytest.fixture
def upstream(clock, sleeps) -> EverlywellClient:
    """The client under test (URLs and credentials from the test settings)."""
    client = EverlywellClient(clock=clock, sleep=sleeps)
    yield client
    client.close()


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def token(mocked):
    """The auth host issues an opaque (non-JWT) token."""
    return mocked.get(TOKEN_URL, json={"token": "opaque-token-1"})


PATIENT = {
    "email": "jane.roe@example.org",
    "first_name": "Janet",
    "last_name": "Roewaldt",
    "dob": datetime.date(1984, 7, 9),
    "phone": "(617) 555-0123",
    "gender": "female",
}
ADDRESS = {"street1": "77 Massachusetts Ave", "city": "Cambridge", "state": "MA", "zipcode": "02139"}


def a_registration(**user_overrides) -> RegistrationIn:
    user = UserIn(**{**PATIENT, **user_overrides})
    return RegistrationIn(user=user, addresses=(AddressIn(**ADDRESS),))


def an_order(amount: str = "199.00") -> OrderIn:
    return OrderIn(amount=Decimal(amount))
