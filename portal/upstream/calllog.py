"""One log line and one `UpstreamCall` row per call to the partner.

Both carry the operation, method, path *template*, the id concerned, the last
HTTP status, the outcome, latency and attempts; never a body, a token, a
credential or patient data. Error text comes from `str(UpstreamError)`, which
is written to be free of patient data (see `errors`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction

from portal.upstream.errors import UpstreamError
from portal.upstream.transport import CallState

logger = logging.getLogger("portal.upstream")

ERROR_TEXT_LIMIT = 300


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

    try:
        # A savepoint, so a failed insert cannot break the caller's transaction.
        with transaction.atomic():
            UpstreamCall.objects.create(
                operation=call.operation,
                method=call.method,
                path=call.path,
                object_id=call.object_id[:40],
                status_code=call.status,
                outcome=outcome,
                latency_ms=latency_ms,
                attempts=call.attempts,
                error=error[:ERROR_TEXT_LIMIT],
            )
    except Exception as exc:  # any failure here (database down, no DB in this context) is not the caller's
        logger.warning("upstream: could not record the call in the call log (%s)", type(exc).__name__)
