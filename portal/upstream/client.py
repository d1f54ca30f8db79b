"""The client for the lab partner's API. Use `get_client()`.

    client = get_client()
    order = client.create_order(OrderIn(amount=Decimal("199.00")))
    registration = client.register_kit(order.id, RegistrationIn(user=..., addresses=(...,)))
    result = client.get_result(result_id)

Every method returns typed values (`types`) or raises an `UpstreamError`
(`errors`); no `requests`, `urllib3` or `json` exception escapes. The retry
rules live in `transport`, the token cache in `tokens`, the JSON in `payloads`,
the log line and call-log row in `calllog`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings

from portal.upstream import payloads
from portal.upstream.calllog import Call, tracked
from portal.upstream.errors import (
    UpstreamAuthFailed,
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamProtocolError,
    UpstreamRejected,
)
from portal.upstream.tokens import TokenCache, token_expiry
from portal.upstream.transport import RetryPolicy, Transport, build_session
from portal.upstream.types import (
    OrderIn,
    RegistrationIn,
    Token,
    UpstreamOrder,
    UpstreamRegistration,
    UpstreamResult,
)

# Path templates, exactly as the reference writes them (NOTES.md point 3). The
# templates, not the filled-in paths, are what logs and the call log show.
TOKEN_PATH = "/v1/token"  # noqa: S105 (a URL path, not a secret)
ORDERS_PATH = "/v2/orders/"
ORDER_PATH = "/v2/orders/{order_id}"
REGISTRATION_PATH = "/v1/kits/{invoice_id}/registration"
RESULT_PATH = "/v1/results/{result_id}"


class EverlywellClient:
    """One instance per process (see `get_client`); safe to share between threads.

    Arguments left as None come from settings, read at call time, and the Django
    cache; `clock` and `sleep` are injectable so tests never wait for real.
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        auth_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        cache=None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_url = api_url
        self._auth_url = auth_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._owns_session = session is None
        concurrency = settings.EVERLYWELL_CONCURRENCY
        self.session = session or build_session(pool_size=concurrency)
        self._transport = Transport(self.session, concurrency=concurrency, clock=clock, sleep=sleep)
        self._tokens = TokenCache(fetch=self.issue_token, cache=cache, clock=clock, sleep=sleep)

    # --- Configuration, read at call time -------------------------------------

    @property
    def api_url(self) -> str:
        return (self._api_url or settings.EVERLYWELL_API_URL).rstrip("/")

    @property
    def auth_url(self) -> str:
        return (self._auth_url or settings.EVERLYWELL_AUTH_URL).rstrip("/")

    def _credentials(self) -> tuple[str, str]:
        client_id = self._client_id if self._client_id is not None else settings.EVERLYWELL_CLIENT_ID
        secret = self._client_secret if self._client_secret is not None else settings.EVERLYWELL_CLIENT_SECRET
        return client_id, secret

    # --- Operations -------------------------------------------------------------

    def issue_token(self) -> Token:
        """Ask the auth host for a new bearer token (Basic auth). Other methods use
        the shared cached token instead; this always makes a request."""
        with tracked("issue_token", "GET", TOKEN_PATH) as call:
            client_id, secret = self._credentials()
            if not client_id or not secret:
                raise UpstreamAuthFailed("EVERLYWELL_CLIENT_ID and EVERLYWELL_CLIENT_SECRET are not set")
            response = self._transport.send("GET", self.auth_url + TOKEN_PATH, state=call, auth=(client_id, secret))
            if response.status_code in (401, 403):
                raise UpstreamAuthFailed(
                    f"the partner refused our client credentials (HTTP {response.status_code})",
                    status=response.status_code,
                )
            value = payloads.parse_token(self._json(response, operation="issue_token", method="GET"))
            expires_at = token_expiry(value, now=self._clock(), default_lifetime=settings.EVERLYWELL_TOKEN_LIFETIME)
            return Token(value=value, expires_at=expires_at)

    def create_order(self, order: OrderIn) -> UpstreamOrder:
        """Create an order (`POST /v2/orders/`). May raise `UpstreamOutcomeUnknown`."""
        body = payloads.order_body(order)
        with tracked("create_order", "POST", ORDERS_PATH) as call:
            data = self._api(call, "POST", ORDERS_PATH, body=body)
            created = _created(payloads.parse_order, data, state_required=False)
            call.object_id = str(created.id)
            return created

    def get_order(self, order_id: int) -> UpstreamOrder:
        """An order and its upstream state (`GET /v2/orders/<id>`)."""
        order_id = _path_id(order_id)
        with tracked("get_order", "GET", ORDER_PATH, order_id) as call:
            data = self._api(call, "GET", ORDER_PATH.format(order_id=order_id))
            return payloads.parse_order(data, expected_id=order_id, state_required=True)

    def register_kit(self, invoice_id: int, registration: RegistrationIn) -> UpstreamRegistration:
        """Register a kit to a patient against an order (`POST /v1/kits/<invoice_id>/registration`).

        May raise `UpstreamOutcomeUnknown`; raises `ValueError` (before sending
        anything) when the phone or ZIP cannot be put in the partner's format.
        """
        invoice_id = _path_id(invoice_id)
        body = payloads.registration_body(registration)
        with tracked("register_kit", "POST", REGISTRATION_PATH, invoice_id) as call:
            data = self._api(call, "POST", REGISTRATION_PATH.format(invoice_id=invoice_id), body=body)
            return _created(payloads.parse_registration, data)

    def get_result(self, result_id: int) -> UpstreamResult:
        """A result and its state (`GET /v1/results/<id>`); "ready" is final."""
        result_id = _path_id(result_id)
        with tracked("get_result", "GET", RESULT_PATH, result_id) as call:
            data = self._api(call, "GET", RESULT_PATH.format(result_id=result_id))
            return payloads.parse_result(data, expected_id=result_id)

    # --- Plumbing ---------------------------------------------------------------

    def _api(self, call: Call, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        """Call the API with the shared bearer token; on a 401, refresh it once and
        try once more (a 401 means the request was not applied, so even a POST may
        be repeated)."""
        policy = RetryPolicy.from_settings()
        margin = settings.EVERLYWELL_TOKEN_REFRESH_MARGIN
        data = payloads.dumps(body) if body is not None else None
        token = self._tokens.get(margin=margin, patience=policy.patience)
        response = self._send_with(token, call, method, path, data)
        if response.status_code == 401:
            token = self._tokens.get(margin=margin, patience=policy.patience, rejected=token.value)
            response = self._send_with(token, call, method, path, data)
            if response.status_code == 401:
                raise UpstreamAuthFailed("the partner refused a freshly issued token (HTTP 401)", status=401)
        return self._json(response, operation=call.operation, method=method)

    def _send_with(self, token: Token, call: Call, method: str, path: str, data: bytes | None):
        headers = {"Authorization": f"Bearer {token.value}"}
        return self._transport.send(method, self.api_url + path, state=call, headers=headers, body=data)

    @staticmethod
    def _json(response: requests.Response, *, operation: str, method: str) -> dict[str, Any]:
        """The body of a 2xx answer, or the error its status code means."""
        status = response.status_code
        if 200 <= status < 300:
            if method == "POST":
                return _created(payloads.loads, response.content)
            return payloads.loads(response.content)
        if status == 404:
            raise UpstreamNotFound(
                f"the partner does not know this id ({operation}, HTTP 404)",
                status=status,
                partner_message=payloads.partner_message(response.content),
            )
        if 400 <= status < 500:
            raise UpstreamRejected(
                f"the partner rejected {operation} (HTTP {status})",
                status=status,
                partner_message=payloads.partner_message(response.content),
            )
        # 1xx/3xx: nothing the contract allows (redirects are not followed).
        if method == "POST":
            raise UpstreamOutcomeUnknown(f"unexpected HTTP {status} to {operation}; not repeated", status=status)
        raise UpstreamProtocolError(f"unexpected HTTP {status} to {operation}", status=status)

    def close(self) -> None:
        """Close the pooled connections (only if this client created the session)."""
        if self._owns_session:
            self.session.close()


def _created(parse, data, **kwargs):
    """Parse the 2xx answer to a POST. The record exists upstream by now: if its
    answer is unreadable, the caller cannot link it, so the outcome counts as
    unknown (never "try again", which would create a duplicate)."""
    try:
        return parse(data, **kwargs)
    except UpstreamProtocolError as exc:
        raise UpstreamOutcomeUnknown(f"the partner accepted the request but its answer is unusable: {exc}") from None


def _path_id(value: int) -> int:
    """Ids go into URL paths: only positive integers may."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("upstream ids are positive integers")
    return value


# --- One client per process ---------------------------------------------------

_client: EverlywellClient | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


def get_client() -> EverlywellClient:
    """The process's client, built from settings on first use. A forked child
    (Celery prefork, gunicorn) builds its own, so no pooled socket is shared."""
    global _client, _client_pid
    pid = os.getpid()
    client = _client
    if client is not None and _client_pid == pid:
        return client
    with _client_lock:
        if _client is None or _client_pid != pid:
            _client = EverlywellClient()
            _client_pid = pid
        return _client


def reset_client() -> None:
    """Forget the process's client (tests; after changing settings that size the pool)."""
    global _client, _client_pid
    with _client_lock:
        if _client is not None and _client_pid == os.getpid():
            _client.close()
        _client = None
        _client_pid = None
