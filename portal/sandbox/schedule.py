"""How the sandbox's records move through states: a pure function of time
(see the package docstring for the schedule)."""

from __future__ import annotations

ORDER_STATES = ("processing", "shipped")
RESULT_STATES = ("awaiting_sample", "processing", "quality_review", "ready")


def order_state(*, created_at: float, now: float, ship_after: float) -> str:
    """ "processing", then "shipped" once `ship_after` seconds have passed."""
    return "shipped" if now - created_at >= ship_after else "processing"


def result_state(*, result_id: int, created_at: float, now: float, ready_after: float) -> str:
    """ "awaiting_sample", "processing", ("quality_review" for every 5th), then "ready"."""
    elapsed = now - created_at
    if elapsed >= ready_after:
        return "ready"
    if elapsed < ready_after / 2:
        return "awaiting_sample"
    if result_id % 5 == 0 and elapsed >= ready_after * 3 / 4:
        return "quality_review"  # a state the portal does not know (NOTES.md point 14)
    return "processing"
