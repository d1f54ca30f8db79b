"""The sandbox's HTTP server: routing, auth, faults; the answers come from `handle`.

`SandboxServer.handle()` is a plain function of (method, path, headers, body) so it
can be read and tested without sockets; `_Handler` only adapts http.server to it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from portal.sandbox import schedule, validation
from portal.sandbox.options import SandboxOptions
from portal.sandbox.store import Store

logger = logging.getLogger("portal.sandbox")

MAX_BODY = 1_000_000
TOKEN_PATH = "/api/v1/token"  # noqa: S105 (a URL path)
STATS_PATH = "/__sandbox/stats"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/v1/token$"), "issue_token"),
    ("POST", re.compile(r"^/aapi/v2/orders/$"), "create_order"),
    ("GET", re.compile(r"^/aapi/v2/orders/(\d+)$"), "get_order"),
    ("POST", re.compile(r"^/aapi/v1/kits/(\d+)/registration$"), "register_kit"),
    ("GET", re.compile(r"^/aapi/v1/results/(\d+)$"), "get_result"),
    ("GET", re.compile(r"^/__sandbox/stats$"), "stats"),
]

Answer = tuple[int, dict[str, str], bytes]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SandboxServer:
    """The partner stand-in. `clock` is injectable so tests can move time."""

    def __init__(
        self,
        options: SandboxOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options or SandboxOptions()
        if not self.options.allow_external and not is_loopback(self.options.host):
            raise ValueError(
                f"refusing to listen on {self.options.host!r}: the sandbox is for this machine only "
                "(pass --allow-external to override)"
            )
        self.clock = clock
        self._sleep = sleep
        self.store = Store(self.options.db_path)
        # Faults and kit ids; reproducible with a seed, never used for security.
        self._rng = random.Random(self.options.seed)  # noqa: S311
        self._lock = threading.Lock()
        self._stats = {"token_requests": 0, "requests": 0, "faults": 0}
        server_class = _IPv6Server if ":" in self.options.host else _Server
        self.httpd = server_class((self.options.host.strip("[]"), self.options.port), _Handler)
        self.httpd.sandbox = self
        self._thread: threading.Thread | None = None
        self._serving = False

    # --- Lifecycle --------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        host = self.options.host
        return f"http://[{host.strip('[]')}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._serving = True
        self.httpd.serve_forever(poll_interval=0.05)

    def start(self) -> SandboxServer:
        """Serve from a background thread (tests)."""
        self._serving = True
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._serving:  # shutdown() would wait forever for a loop that never ran
            self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.store.close()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    # --- Requests ---------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Answer one request (headers keyed in lower case)."""
        path = path.split("?", 1)[0]
        route, args = _match(method, path)
        if route == "stats":
            return _json(200, self.stats())
        with self._lock:
            self._stats["requests"] += 1
            if route == "issue_token":
                self._stats["token_requests"] += 1
        if route is None:
            return _error(404, "not found")
        if route == "method_not_allowed":
            return _error(405, "method not allowed")
        if self.options.latency_ms > 0:
            self._sleep(self.options.latency_ms / 1000)
        fault = self._injected_fault()
        if fault:
            return fault
        if route == "issue_token":
            return self._issue_token(headers)
        if not self._bearer_ok(headers):
            return _error(401, "missing, invalid or expired token", {"WWW-Authenticate": "Bearer"})
        operation = getattr(self, f"_{route}")
        ids = [int(arg) for arg in args]
        if method == "POST":
            try:
                data = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return _error(400, "the body must be JSON")
            answer = operation(*ids, data)
        else:
            answer = operation(*ids)
        if method == "GET" and answer[0] == 200 and self._chance(self.options.malformed_rate):
            return _malformed(answer)
        return answer

    def _injected_fault(self) -> Answer | None:
        if not self._chance(self.options.error_rate):
            return None
        with self._lock:
            code = self._rng.choice(self.options.error_codes)
            self._stats["faults"] += 1
        extra = {"Retry-After": "1"} if code in (429, 503) else {}
        return _error(code, "injected fault", extra)

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    # --- Auth -------------------------------------------------------------------

    def _issue_token(self, headers: dict[str, str]) -> Answer:
        if not self._basic_ok(headers.get("authorization", "")):
            return _error(401, "invalid client credentials", {"WWW-Authenticate": 'Basic realm="sandbox"'})
        now = self.clock()
        claims = {
            "sub": self.options.client_id,
            "iat": int(now),
            "exp": int(now + self.options.token_lifetime),
            "jti": uuid.uuid4().hex,
        }
        return _json(200, {"token": jwt.encode(claims, self.options.signing_key, algorithm="HS256")})

    def _basic_ok(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(client_id, self.options.client_id) & hmac.compare_digest(
            secret, self.options.client_secret
        )

    def _bearer_ok(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            # Times are checked against the sandbox's clock (which tests move), not PyJWT's.
            claims = jwt.decode(
                token.strip(),
                self.options.signing_key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return False
        exp = claims.get("exp")
        return claims.get("sub") == self.options.client_id and isinstance(exp, int) and exp > self.clock()

    # --- Operations ---------------------------------------------------------------

    def _create_order(self, body: Any) -> Answer:
        error = validation.order_error(body)
        if error:
            return _error(422, error)
        amount = f"{Decimal(str(body['amount'])):.2f}"
        order = self.store.create_order(amount=amount, now=self.clock())
        return _json(201, {"id": order["id"], "amount": float(amount)})

    def _get_order(self, order_id: int) -> Answer:
        order = self.store.get_order(order_id)
        if not order:
            return _error(404, "order not found")
        state = schedule.order_state(
            created_at=order["created_at"], now=self.clock(), ship_after=self.options.order_ship_after
        )
        return _json(200, {"id": order_id, "state": state})

    def _register_kit(self, invoice_id: int, body: Any) -> Answer:
        if not self.store.get_order(invoice_id):
            return _error(404, "invoice not found")
        error = validation.registration_error(body)
        if error:
            return _error(422, error)
        with self._lock:
            kit_id = f"{self._rng.getrandbits(40):010x}"
        registration = self.store.create_registration(
            invoice_id=invoice_id, email=body["user"]["email"], kit_id=kit_id, now=self.clock()
        )
        if registration is None:
            return _error(404, "invoice not found")
        return _json(
            201,
            # "registred" (sic), as the reference answers (NOTES.md point 12).
            {"id": registration["id"], "state": "registred", "kit_id": kit_id, "user_id": registration["user_id"]},
        )

    def _get_result(self, result_id: int) -> Answer:
        registration = self.store.get_registration(result_id)
        if not registration:
            return _error(404, "result not found")
        state = schedule.result_state(
            result_id=result_id,
            created_at=registration["created_at"],
            now=self.clock(),
            ready_after=self.options.result_ready_after,
        )
        return _json(200, {"id": result_id, "state": state})


def _match(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
    path_known = False
    for route_method, pattern, name in _ROUTES:
        found = pattern.match(path)
        if found:
            if route_method == method:
                return name, found.groups()
            path_known = True
    return ("method_not_allowed" if path_known else None), ()


def _json(status: int, payload: dict, extra: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(extra or {})}, json.dumps(payload).encode()


def _error(status: int, message: str, extra: dict[str, str] | None = None) -> Answer:
    return _json(status, {"error": message}, extra)


def _malformed(answer: Answer) -> Answer:
    """The reference's Get Result example, trailing comma included: `{"id": 1, "state": "ready",}`."""
    status, headers, body = answer
    return status, headers, body[:-1] + b",}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: SandboxServer

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (its read timeout) is business as usual here.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        logger.exception("sandbox: error while answering a request")


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the partner's load balancer would
    server_version = "PortalSandbox/1.0"
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    # Headers and body leave in separate writes; without TCP_NODELAY each answer
    # would wait for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            status, headers, body = _error(413 if length > MAX_BODY else 400, "bad Content-Length")
            self.close_connection = True
        else:
            raw = self.rfile.read(length) if length else b""
            lowered = {key.lower(): value for key, value in self.headers.items()}
            status, headers, body = self.server.sandbox.handle(self.command, self.path, lowered, raw)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args) -> None:
        # Request line and status only: no headers (credentials), no bodies.
        if not self.server.sandbox.options.quiet:
            logger.info("%s %s", self.address_string(), fmt % args)
