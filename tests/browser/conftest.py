"""Browser tests: the real portal on pytest-django's live server, driven by Debian's
Chromium through Playwright (no browser download), with the sandbox as the lab.

    def test_something(portal, staff_user, password):
        page = portal.page
        portal.login(staff_user.username, password)
        portal.goto("/orders/")          # navigates and runs axe on the page

Every page a test visits must be audited with axe (`portal.goto`, `portal.audit`
or `portal.click_and_audit`); a page that was shown but never audited fails the
test at teardown, as does a Content-Security-Policy violation or a JavaScript
error on any page.

Tasks the web process would hand to Celery (sending an order, a registration, a
patient email) are recorded instead of published (`portal.enqueued`): the views
send orders and registrations themselves, the test runs `poll_results --once`,
and `portal.send_queued_emails()` calls the email service as the worker would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser.a11y import AxeAudit

CHROMIUM = os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium")
# The flags this machine needs: no sandbox as root, and no background traffic
# (the network is closed; Chromium would otherwise retry Google's hosts).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
# Playwright waits this long for an element or a navigation before failing.
TIMEOUT_MS = 10_000


def _missing_browser_reason() -> str | None:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright package (pip install -r requirements/dev.txt)"
    return None


MISSING = _missing_browser_reason()


def pytest_collection_modifyitems(config, items):
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=MISSING)
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium():
    """One Chromium for the whole run; each test gets a fresh context (cookies, storage)."""
    if MISSING:
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would then
    # refuse ORM calls from the test itself ("SynchronousOnlyOperation"). The test
    # code is synchronous, so tell Django so while the browser runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    manager = sync_playwright().start()
    browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
        manager.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Enqueued:
    """What the web process handed to Celery, by task: lists of record ids."""

    tasks: dict[str, list[int]] = field(default_factory=dict)

    def recorder(self, name: str):
        portal_enqueued = self

        class _Task:
            def delay(self, record_id, *args, **kwargs):
                portal_enqueued.tasks.setdefault(name, []).append(record_id)

            apply_async = None  # the portal only uses .delay(); fail loudly otherwise

        return _Task()

    def take(self, name: str) -> list[int]:
        return self.tasks.pop(name, [])


@pytest.fixture
def enqueued(monkeypatch) -> Enqueued:
    """Record the portal's `.delay()` calls instead of publishing them to a broker
    (no worker runs in browser tests; in CI's second pass the broker is a Redis
    that integration tests' workers read, so nothing may be left on it)."""
    record = Enqueued()
    for module, name in (
        ("portal.orders.tasks", "order_submit_task"),
        ("portal.kits.tasks", "registration_submit_task"),
        ("portal.notifications.tasks", "notification_send_task"),
    ):
        monkeypatch.setattr(f"{module}.{name}", record.recorder(name))
    return record


@pytest.fixture
def lab(start_sandbox, settings):
    """The sandbox partner, the portal pointed at it. Results become ready 90 s
    (of the sandbox's own clock: `lab.clock.advance(91)`) after registration."""
    sandbox = start_sandbox(result_ready_after=90)
    sandbox.configure(settings)
    return sandbox


class Portal:
    """A browser tab on the live portal, with the checks every journey makes."""

    def __init__(self, page, base_url: str, enqueued: Enqueued, axe: AxeAudit) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.enqueued = enqueued
        self.axe = axe
        self.shown: list[str] = []  # every document the tab committed to
        self.problems: list[str] = []  # CSP violations and JavaScript errors
        page.on("framenavigated", self._on_navigated)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"JavaScript error: {error}"))

    def _on_navigated(self, frame) -> None:
        if frame == self.page.main_frame and frame.url.startswith(self.base_url):
            self.shown.append(frame.url)

    def _on_console(self, message) -> None:
        text = message.text
        if message.type == "error" and "Content Security Policy" in text:
            self.problems.append(f"CSP violation on {self.page.url}: {text}")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def path(self) -> str:
        return self.page.url.removeprefix(self.base_url)

    def audit(self, label: str = "") -> None:
        """Run axe on the page as it is now; fails on serious or critical violations."""
        self.axe.check(self.page, label=label or self.path)

    def goto(self, path: str, *, audit: bool = True):
        response = self.page.goto(self.url(path))
        if audit:
            self.audit()
        return response

    def click_and_audit(self, locator) -> None:
        """Click something that loads a new page, wait for it, audit it."""
        with self.page.expect_navigation():
            locator.click()
        self.audit()

    def login(self, username: str, password: str, *, audit: bool = True) -> None:
        page = self.page
        self.goto("/accounts/login/", audit=audit)
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        if audit:
            self.audit()

    def logout(self) -> None:
        self.click_and_audit(self.page.get_by_role("button", name="Log out"))

    def send_queued_emails(self) -> list:
        """What the worker does with the queued notification tasks: send each email."""
        from portal.notifications.services import notification_send

        return [notification_send(notification_id=pk) for pk in self.enqueued.take("notification_send_task")]

    def unaudited(self) -> list[str]:
        return sorted({url for url in self.shown if url not in self.axe.audited_urls})


@pytest.fixture
def browser_context(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def portal(browser_context, live_server, enqueued, lab) -> Iterator[Portal]:
    page = browser_context.new_page()
    axe = AxeAudit()
    tab = Portal(page, live_server.url, enqueued, axe)
    yield tab
    problems = list(tab.problems)
    missed = tab.unaudited()
    if missed:
        problems.append("pages shown but never checked with axe: " + ", ".join(missed))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def screenshots_dir() -> Path | None:
    """Where `make screenshots` wants PNGs (PORTAL_SCREENSHOTS_DIR), or None."""
    value = os.environ.get("PORTAL_SCREENSHOTS_DIR")
    return Path(value) if value else None
