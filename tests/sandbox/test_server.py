"""The sandbox over HTTP: the reference's paths, methods, status codes and JSON,
its auth, and its faults. Plain `requests`, so the contract is checked without
the portal's client in the way."""

from __future__ import annotations

import json

import jwt
import pytest
import requests

REGISTRATION = {
    "user": {
        "email": "test@email.com",
        "first_name": "Test",
        "last_name": "Testerson",
        "dob": 1476551410009,
        "phone_number": 5125557485,
        "gender": "male",
    },
    "addresses": [{"street1": "123 Test str", "street2": "", "city": "Austin", "state": "TX", "zipcode": 78701}],
}


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def get_token(http, sandbox) -> str:
    answer = http.get(f"{sandbox.auth_url}/v1/token", auth=(sandbox.client_id, sandbox.client_secret))
    assert answer.status_code == 200
    return answer.json()["token"]


@pytest.fixture
def bearer(http, sandbox_server) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(http, sandbox_server)}"}


def create_order(http, sandbox, bearer, amount=199.00) -> int:
    answer = http.post(f"{sandbox.api_url}/v2/orders/", json={"amount": amount}, headers=bearer)
    assert answer.status_code == 201
    return answer.json()["id"]


# --- Auth ----------------------------------------------------------------------------


def test_a_token_is_an_hs256_jwt_that_expires(http, sandbox_server):
    token = get_token(http, sandbox_server)

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["exp"] == int(sandbox_server.clock()) + 3600
    assert claims["sub"] == "sandbox-client"


@pytest.mark.parametrize("auth", [None, ("sandbox-client", "wrong"), ("someone", "sandbox-secret")])
def test_a_token_needs_the_right_basic_credentials(http, sandbox_server, auth):
    answer = http.get(f"{sandbox_server.auth_url}/v1/token", auth=auth)

    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid client credentials"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="],
)
def test_every_api_call_needs_a_valid_bearer_token(http, sandbox_server, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    answer = http.get(f"{sandbox_server.api_url}/v2/orders/1", headers=headers)

    assert answer.status_code == 401
    assert "error" in answer.json()


def test_a_token_signed_with_another_key_is_refused(http, sandbox_server):
    forged = jwt.encode({"sub": "sandbox-client", "exp": 4_000_000_000}, "x" * 32, algorithm="HS256")

    answer = http.get(f"{sandbox_server.api_url}/v2/orders/1", headers={"Authorization": f"Bearer {forged}"})

    assert answer.status_code == 401


def test_an_expired_token_is_refused_by_the_sandbox_clock(http, sandbox_server, bearer):
    order_id = create_order(http, sandbox_server, bearer)
    sandbox_server.clock.advance(3600)

    assert http.get(f"{sandbox_server.api_url}/v2/orders/{order_id}", headers=bearer).status_code == 401


# --- Orders -----------------------------------------------------------------------------


def test_orders_are_created_and_move_from_processing_to_shipped(http, sandbox_server, bearer):
    answer = http.post(f"{sandbox_server.api_url}/v2/orders/", data='{"amount": 199.00}', headers=bearer)
    assert answer.status_code == 201
    assert answer.json() == {"id": 1, "amount": 199.0}

    url = f"{sandbox_server.api_url}/v2/orders/1"
    assert http.get(url, headers=bearer).json() == {"id": 1, "state": "processing"}
    sandbox_server.clock.advance(60)
    assert http.get(url, headers=bearer).json() == {"id": 1, "state": "shipped"}


@pytest.mark.parametrize("body", [{}, {"amount": 0}, {"amount": -5}, {"amount": "199.00"}, {"amount": True}, []])
def test_an_order_needs_a_positive_amount(http, sandbox_server, bearer, body):
    answer = http.post(f"{sandbox_server.api_url}/v2/orders/", json=body, headers=bearer)

    assert answer.status_code == 422
    assert "error" in answer.json()


def test_a_body_that_is_not_json_is_a_400(http, sandbox_server, bearer):
    answer = http.post(f"{sandbox_server.api_url}/v2/orders/", data="amount=5", headers=bearer)

    assert answer.status_code == 400


def test_an_unknown_order_is_a_404(http, sandbox_server, bearer):
    assert http.get(f"{sandbox_server.api_url}/v2/orders/999", headers=bearer).status_code == 404


def test_paths_are_exactly_the_reference_ones(http, sandbox_server, bearer):
    api = sandbox_server.api_url
    assert http.post(f"{api}/v2/orders", json={"amount": 1}, headers=bearer).status_code == 404  # no slash
    assert http.post(f"{api}/v1/orders/", json={"amount": 1}, headers=bearer).status_code == 404
    assert http.get(f"{api}/v2/orders/", headers=bearer).status_code == 405


# --- Kit registrations and results ---------------------------------------------------------


def test_the_reference_example_registers_a_kit(http, sandbox_server, bearer):
    order_id = create_order(http, sandbox_server, bearer)

    answer = http.post(f"{sandbox_server.api_url}/v1/kits/{order_id}/registration", json=REGISTRATION, headers=bearer)

    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"id", "state", "kit_id", "user_id"}
    assert body["state"] == "registred"
    assert len(body["kit_id"]) == 10
    int(body["kit_id"], 16)


def test_a_registration_needs_a_known_invoice(http, sandbox_server, bearer):
    answer = http.post(f"{sandbox_server.api_url}/v1/kits/999/registration", json=REGISTRATION, headers=bearer)

    assert answer.status_code == 404
    assert answer.json() == {"error": "invoice not found"}


def _without(path: str) -> dict:
    body = json.loads(json.dumps(REGISTRATION))
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    del target[int(last) if last.isdigit() else last]
    return body


def _with(path: str, value) -> dict:
    body = _without(path)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = value
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_without("user"), "user is required"),
        (_without("user.email"), "user.email"),
        (_with("user.email", "not-an-email"), "user.email"),
        (_with("user.first_name", ""), "user.first_name"),
        (_without("user.last_name"), "user.last_name"),
        (_with("user.dob", "1984-07-09"), "user.dob"),
        (_with("user.dob", 1.5), "user.dob"),
        (_with("user.phone_number", "5125557485"), "user.phone_number"),
        (_with("user.phone_number", 5557485), "user.phone_number"),
        (_without("user.gender"), "user.gender"),
        (_with("addresses", []), "addresses"),
        (_without("addresses.0.street1"), "addresses[0].street1"),
        (_without("addresses.0.city"), "addresses[0].city"),
        (_with("addresses.0.state", 7), "addresses[0].state"),
        (_without("addresses.0.zipcode"), "addresses[0].zipcode"),
        (_with("addresses.0.zipcode", 2.5), "addresses[0].zipcode"),
        (_with("addresses.0.street2", None), "addresses[0].street2"),
    ],
)
def test_a_registration_is_validated_against_the_reference_tables(http, sandbox_server, bearer, body, message):
    order_id = create_order(http, sandbox_server, bearer)

    answer = http.post(f"{sandbox_server.api_url}/v1/kits/{order_id}/registration", json=body, headers=bearer)

    assert answer.status_code == 422
    assert message in answer.json()["error"]
    assert "Testerson" not in answer.text and "test@email.com" not in answer.text


@pytest.mark.parametrize("zipcode", ["02139", "02139-4307", 78701])
def test_a_zipcode_may_be_an_int_or_a_string(http, sandbox_server, bearer, zipcode):
    order_id = create_order(http, sandbox_server, bearer)
    body = _with("addresses.0.zipcode", zipcode)

    answer = http.post(f"{sandbox_server.api_url}/v1/kits/{order_id}/registration", json=body, headers=bearer)

    assert answer.status_code == 201


def test_a_result_id_is_its_registration_id_and_becomes_ready(http, sandbox_server, bearer):
    order_id = create_order(http, sandbox_server, bearer)
    registration = http.post(
        f"{sandbox_server.api_url}/v1/kits/{order_id}/registration", json=REGISTRATION, headers=bearer
    ).json()
    url = f"{sandbox_server.api_url}/v1/results/{registration['id']}"

    assert http.get(url, headers=bearer).json() == {"id": registration["id"], "state": "awaiting_sample"}
    sandbox_server.clock.advance(45)
    assert http.get(url, headers=bearer).json()["state"] == "processing"
    sandbox_server.clock.advance(45)
    assert http.get(url, headers=bearer).json()["state"] == "ready"


def test_an_unknown_result_is_a_404(http, sandbox_server, bearer):
    assert http.get(f"{sandbox_server.api_url}/v1/results/999", headers=bearer).status_code == 404


# --- Faults and stats ------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "retry_after"), [(429, "1"), (503, "1"), (500, None)])
def test_injected_errors_carry_retry_after_when_they_should(http, start_sandbox, code, retry_after):
    sandbox = start_sandbox(error_rate=1.0, error_codes=(code,))

    answer = http.get(f"{sandbox.auth_url}/v1/token", auth=(sandbox.client_id, sandbox.client_secret))

    assert answer.status_code == code
    assert answer.headers.get("Retry-After") == retry_after
    assert sandbox.stats()["faults"] == 1


def test_an_injected_error_on_a_post_applies_nothing(http, sandbox_server, bearer):
    sandbox_server.options.error_rate = 1.0

    answer = http.post(f"{sandbox_server.api_url}/v2/orders/", json={"amount": 5}, headers=bearer)

    assert answer.status_code in (500, 503, 429)
    assert sandbox_server.server.store.get_order(1) is None


def test_malformed_answers_have_the_reference_trailing_comma(http, sandbox_server, bearer):
    order_id = create_order(http, sandbox_server, bearer)
    sandbox_server.options.malformed_rate = 1.0

    answer = http.get(f"{sandbox_server.api_url}/v2/orders/{order_id}", headers=bearer)

    assert answer.status_code == 200
    assert answer.text == f'{{"id": {order_id}, "state": "processing",}}'
    with pytest.raises(ValueError):
        json.loads(answer.text)


def test_faults_are_reproducible_with_a_seed(http, start_sandbox):
    def codes(sandbox):
        url = f"{sandbox.auth_url}/v1/token"
        return [http.get(url, auth=(sandbox.client_id, sandbox.client_secret)).status_code for _ in range(20)]

    first = codes(start_sandbox(seed=42, error_rate=0.5))
    second = codes(start_sandbox(seed=42, error_rate=0.5))

    assert first == second
    assert set(first) - {200}  # some faults
    assert 200 in first


def test_latency_is_added_to_every_partner_call(http, start_sandbox):
    waits = []
    sandbox = start_sandbox(latency_ms=250, sleep=waits.append)

    http.get(f"{sandbox.auth_url}/v1/token", auth=(sandbox.client_id, sandbox.client_secret))

    assert waits == [0.25]


def test_stats_count_token_requests_and_all_partner_requests(http, sandbox_server, bearer):
    http.get(f"{sandbox_server.api_url}/v2/orders/1", headers=bearer)
    http.get(f"{sandbox_server.auth_url}/v1/token")  # refused, still counted

    stats = http.get(f"{sandbox_server.base_url}/__sandbox/stats").json()

    assert stats == {"token_requests": 2, "requests": 3, "faults": 0}
    assert sandbox_server.stats() == stats


def test_unknown_paths_are_404(http, sandbox_server):
    assert http.get(f"{sandbox_server.base_url}/").status_code == 404
    assert http.get(f"{sandbox_server.base_url}/admin/").json() == {"error": "not found"}
