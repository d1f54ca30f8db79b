"""One log line and one `UpstreamCall` row per call to the partner.

Both carry the operation, method, path *template*, the id concerned, the last
HTTP status, the outcome, latency and attempts; never a body, a token, a
credential or patient data. Error text comes from `str(UpstreamError)`, which
is written to be free of patient data (see `errors`).

Each row is inserted as the call ends, unless the caller collects them with
`buffered()`: the poller does, so its pool threads never touch the database and
the rows of a whole batch go in with one `bulk_create`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import transaction

from portal.upstream.errors import UpstreamError
from portal.upstream.transport import CallState

logger = logging.getLogger("portal.upstream")

ERROR_TEXT_LIMIT = 300


class CallBuffer:
    """Call-log rows kept in memory until `buffered()` ends; shared by the threads
    that make the calls, hence the lock."""

    def __init__(self) -> None:
        self._rows: list = []
        self._lock = threading.Lock()

    def add(self, row) -> None:
        with self._lock:
            self._rows.append(row)

    def take(self) -> list:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows


# A context variable, not a global, so only the code run inside `buffered()` is
# buffered (a web request in another thread still inserts its row at once). Pool
# threads do not inherit context variables: run their tasks in a copy of the
# caller's context (`contextvars.copy_context().run`).
_buffer: ContextVar[CallBuffer | None] = ContextVar("upstream_call_buffer", default=None)


@contextmanager
def buffered() -> Iterator[CallBuffer]:
    """Collect the call-log rows of the calls made in the block (and in threads
    running in a copy of its context) and insert them together when it ends,
    however it ends."""
    buffer = CallBuffer()
    reset = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(reset)
        _insert(buffer.take())


@dataclass
class Call(CallState):
    """A call in progress; the client fills in `object_id` when it learns it."""

    operation: str = ""
    method: str = ""
    path: str = ""
    object_id: str = ""
    started: float = field(default_factory=time.perf_counter)


@contextmanager
def tracked(operation: str, method: str, path: str, object_id: object = "") -> Iterator[Call]:
    """Time the block and, however it ends, log it and record it."""
    call = Call(operation=operation, method=method, path=path, object_id=str(object_id))
    try:
        yield call
    except UpstreamError as exc:
        _finish(call, outcome=type(exc).__name__, error=str(exc))
        raise
    except Exception as exc:
        # A bug inside the client or invalid input: still one line, named by class only.
        _finish(call, outcome="UpstreamError", error=f"unexpected {type(exc).__name__}")
        raise
    else:
        _finish(call, outcome="ok", error="")


def _finish(call: Call, *, outcome: str, error: str) -> None:
    latency_ms = max(0, round((time.perf_counter() - call.started) * 1000))
    logger.log(
        logging.INFO if outcome == "ok" else logging.WARNING,
        "upstream %s %s %s object_id=%s status=%s outcome=%s latency_ms=%d attempts=%d%s",
        call.operation,
        call.method,
        call.path,
        call.object_id or "-",
        call.status if call.status is not None else "-",
        outcome,
        latency_ms,
        call.attempts,
        f" error={error!r}" if error else "",
        extra={
            "upstream_operation": call.operation,
            "upstream_outcome": outcome,
            "upstream_status": call.status,
            "upstream_latency_ms": latency_ms,
            "upstream_attempts": call.attempts,
        },
    )
    _record(call, outcome=outcome, error=error, latency_ms=latency_ms)


def _record(call: Call, *, outcome: str, error: str, latency_ms: int) -> None:
    """Best effort: the call log must never break the call it describes."""
    from portal.upstream.models import UpstreamCall

    fields = {
        "operation": call.operation,
        "method": call.method,
        "path": call.path,
        "object_id": call.object_id[:40],
        "status_code": call.status,
        "outcome": outcome,
        "latency_ms": latency_ms,
        "attempts": call.attempts,
        "error": error[:ERROR_TEXT_LIMIT],
    }
    buffer = _buffer.get()
    if buffer is not None:
        # Unsaved: `created_at` is set now, when the call ends, not at the insert.
        buffer.add(UpstreamCall(**fields))
        return
    try:
        # A savepoint, so a failed insert cannot break the caller's transaction.
        with transaction.atomic():
            UpstreamCall.objects.create(**fields)
    except Exception as exc:  # any failure here (database down, no DB in this context) is not the caller's
        logger.warning("upstream: could not record the call in the call log (%s)", type(exc).__name__)


def _insert(rows: list) -> None:
    """Insert buffered rows; best effort, like `_record`."""
    if not rows:
        return
    from portal.upstream.models import UpstreamCall

    try:
        with transaction.atomic():
            UpstreamCall.objects.bulk_create(rows)
    except Exception as exc:  # never break the poll the rows describe
        logger.warning("upstream: could not record %d calls in the call log (%s)", len(rows), type(exc).__name__)
