"""HTTP to the partner: one pooled session, timeouts, and the retry rules.

The rules differ by method, because the partner documents no idempotency keys
(NOTES.md point 16):

- GET is safe to repeat: retried on connection errors, timeouts, 429 and 5xx.
- POST is repeated only when the request surely did not arrive: the connection
  was never made (refused, DNS failure, connect timeout), or the partner said
  "not now" (429, or 503 with `Retry-After`). After a read timeout, a dropped
  connection, a 500/502/504 or a bare 503, it may have been applied:
  `UpstreamOutcomeUnknown` is raised at once, and it is never sent twice.

Waits use exponential backoff with full jitter, or the partner's `Retry-After`
(seconds or an HTTP-date) capped by `EVERLYWELL_RETRY_AFTER_CAP`, within at most
`EVERLYWELL_MAX_RETRIES` retries and `EVERLYWELL_RETRY_BUDGET` seconds in all.
urllib3's own `Retry` is not used: it cannot express the POST rules.
"""

from __future__ import annotations

import email.utils
import http.client
import math
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from portal.upstream.errors import UpstreamError, UpstreamOutcomeUnknown, UpstreamUnavailable

BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
USER_AGENT = "clinic-lab-portal (+upstream client)"
_SECONDS_RE = re.compile(r"^\d{1,10}(\.\d+)?$")
# Jitter spreads retries of many workers apart; it needs no cryptographic randomness.
_jitter = random.Random()  # noqa: S311


@dataclass
class CallState:
    """What one logical call has seen so far, for its log line and call-log row."""

    attempts: int = 0
    status: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    budget: float
    retry_after_cap: float
    timeout: tuple[float, float]

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_retries=max(0, settings.EVERLYWELL_MAX_RETRIES),
            budget=max(0.0, settings.EVERLYWELL_RETRY_BUDGET),
            retry_after_cap=max(0.0, settings.EVERLYWELL_RETRY_AFTER_CAP),
            timeout=(settings.EVERLYWELL_CONNECT_TIMEOUT, settings.EVERLYWELL_READ_TIMEOUT),
        )

    @property
    def patience(self) -> float:
        """The longest one call may take, all attempts and waits included."""
        connect, read = self.timeout
        return self.budget + connect + read


def build_session(pool_size: int) -> requests.Session:
    """A session whose connection pools hold `pool_size` connections per host, so
    `EVERLYWELL_CONCURRENCY` calls in flight reuse connections instead of opening new ones."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP-date; None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS_RE.match(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def surely_not_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached the partner: the connection was
    never established (refused, DNS failure, connect timeout).

    requests wraps urllib3's errors (ConnectionError(MaxRetryError(reason=...))),
    so the chain of causes is walked; every urllib3 error raised before a connection
    exists is a ConnectTimeoutError (NewConnectionError, NameResolutionError).
    """
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, requests.exceptions.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
            return True
        pending.extend([error.__cause__, getattr(error, "reason", None), *error.args])
    return False


class Transport:
    """Sends one request with the retry rules above; raises only `UpstreamError`s."""

    # Exceptions a request can raise that mean "no usable answer" (requests wraps
    # most; the others are listed so that none can escape the client).
    _TRANSPORT_ERRORS = (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        OSError,
    )

    _CONFIGURATION_ERRORS = (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidHeader,
    )

    def __init__(
        self,
        session: requests.Session,
        *,
        concurrency: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.session = session
        self._clock = clock
        self._sleep = sleep
        # Calls in flight from this process at once: the partner is never flooded.
        self._slots = threading.BoundedSemaphore(concurrency)

    def send(
        self,
        method: str,
        url: str,
        *,
        state: CallState,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """Send until an answer that is not retryable, or raise. Returns 2xx-4xx
        responses (except 429) for the caller to interpret."""
        policy = RetryPolicy.from_settings()
        repeatable = method.upper() == "GET"
        started = self._clock()
        retry = 0
        while True:
            state.attempts += 1
            outcome = self._attempt(method, url, policy, state, headers, body, auth, repeatable)
            if isinstance(outcome, requests.Response):
                return outcome
            if retry >= policy.max_retries:
                raise outcome.error
            if outcome.retry_after is not None:
                delay = min(outcome.retry_after, policy.retry_after_cap)
            else:
                delay = _jitter.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2**retry))
            if self._clock() - started + delay > policy.budget:
                raise outcome.error
            retry += 1
            self._sleep(delay)

    def _attempt(self, method, url, policy, state, headers, body, auth, repeatable) -> requests.Response | _Retry:
        """One attempt: a response to interpret, or a `_Retry` (the error to raise if
        no retry follows). Raises `UpstreamOutcomeUnknown` when a POST must not be repeated."""
        if not self._slots.acquire(timeout=policy.patience):
            return _Retry(UpstreamUnavailable("too many calls to the partner in flight in this process"))
        try:
            response = self.session.request(
                method,
                url,
                headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                data=body,
                auth=auth,
                timeout=policy.timeout,
                allow_redirects=False,
            )
        except self._CONFIGURATION_ERRORS as exc:
            # Nothing was sent, and trying again cannot help: a setting is wrong.
            raise UpstreamError(f"the partner's URL or headers are misconfigured ({type(exc).__name__})") from None
        except self._TRANSPORT_ERRORS as exc:
            kind = type(exc).__name__
            if not repeatable and not surely_not_sent(exc):
                raise UpstreamOutcomeUnknown(
                    f"no answer from the partner ({kind}) after the request may have been sent; not repeated"
                ) from None
            return _Retry(UpstreamUnavailable(f"could not reach the partner ({kind})"))
        finally:
            self._slots.release()

        status = response.status_code
        state.status = status
        if status != 429 and status < 500:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
        if not repeatable and not (status == 429 or (status == 503 and retry_after is not None)):
            raise UpstreamOutcomeUnknown(
                f"the partner answered HTTP {status}: the request may have been applied; not repeated",
                status=status,
            )
        error = UpstreamUnavailable(
            f"the partner is unavailable (HTTP {status})", status=status, retry_after=retry_after
        )
        return _Retry(error, retry_after)


@dataclass(frozen=True)
class _Retry:
    error: UpstreamError
    retry_after: float | None = None
