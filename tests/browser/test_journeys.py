"""Staff journeys in a real browser (see conftest.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_log_in_and_out(portal, staff_user, password):
    page = portal.page
    portal.goto("/")
    assert portal.path.startswith("/accounts/login/")
    portal.login(staff_user.username, password)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main navigation")).to_contain_text(staff_user.username)
    portal.logout()
    # Signed out: back on the sign-in page, and the staff pages are closed again.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    portal.goto("/results/")
    assert portal.path.startswith("/accounts/login/?next=/results/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
