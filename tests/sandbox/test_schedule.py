"""The sandbox's documented state schedule."""

from __future__ import annotations

import pytest

from portal.sandbox.schedule import order_state, result_state


@pytest.mark.parametrize(("elapsed", "state"), [(0, "processing"), (59.9, "processing"), (60, "shipped")])
def test_orders_ship_after_the_configured_delay(elapsed, state):
    assert order_state(created_at=1000, now=1000 + elapsed, ship_after=60) == state


@pytest.mark.parametrize(
    ("elapsed", "state"),
    [(0, "awaiting_sample"), (44, "awaiting_sample"), (45, "processing"), (80, "processing"), (90, "ready")],
)
def test_results_wait_for_the_sample_then_process_then_are_ready(elapsed, state):
    assert result_state(result_id=1, created_at=0, now=elapsed, ready_after=90) == state


@pytest.mark.parametrize(
    ("elapsed", "state"),
    [(44, "awaiting_sample"), (60, "processing"), (67.5, "quality_review"), (89, "quality_review"), (90, "ready")],
)
def test_every_fifth_result_goes_through_quality_review(elapsed, state):
    assert result_state(result_id=10, created_at=0, now=elapsed, ready_after=90) == state
