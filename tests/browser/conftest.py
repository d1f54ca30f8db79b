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
import re
from collections.abc import Iterator
from concurrent.futures import Future
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
# Playwright waits this long for an element, a navigation or an `expect` before failing.
TIMEOUT_MS = 10_000
FAILURES_DIR = Path(__file__).resolve().parents[2] / "var" / "browser-failures"


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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Remember whether the test body passed, for the `portal` fixture's teardown."""
    report = yield
    if report.when == "call":
        item.browser_call_passed = report.passed
    return report


@pytest.fixture(scope="package")
def chromium():
    """One Chromium for the browser tests; each test gets a fresh context (cookies,
    storage). Package scope: it stops as soon as the last browser test is done."""
    if MISSING:
        pytest.skip(MISSING)
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)

    # Playwright's sync API marks an event loop as running in this thread while it
    # is started. Two things follow for Django in the test's own code:
    # - it refuses ORM calls ("SynchronousOnlyOperation"): the test code is
    #   synchronous, so say so until Playwright stops;
    # - `connections` (an asgiref Local) would hand out new, context-local database
    #   connections instead of this thread's: on SQLite not the one the live server
    #   shares, and on any database one more connection that nobody closes. So the
    #   thread's connection objects are put there too.
    thread_connections = {alias: connections[alias] for alias in connections}
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    manager = sync_playwright().start()
    browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    for alias, connection in thread_connections.items():
        connections[alias] = connection
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


class InlineExecutor:
    """A ThreadPoolExecutor that runs each call at once, in the calling thread."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as a pool does
            future.set_exception(exc)
        return future


@pytest.fixture
def lab(start_sandbox, settings, monkeypatch):
    """The sandbox partner, the portal pointed at it. Results become ready 90 s
    (of the sandbox's own clock: `lab.clock.advance(91)`) after registration."""
    from django.db import connection

    if connection.vendor == "sqlite":
        # The poller calls the lab from a thread pool, and each call writes the call
        # log from its thread. On the in-memory SQLite test database those threads
        # share one database through table locks that do not wait ("database table
        # is locked"); a file database (WAL, busy timeout) and PostgreSQL wait. So on
        # SQLite the poll's lab calls run one after the other in the test's thread.
        monkeypatch.setattr("portal.results.services.ThreadPoolExecutor", InlineExecutor)
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
    # en-US: date fields take mm/dd/yyyy from the keyboard.
    context = chromium.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="en-US", accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def portal(request, browser_context, live_server, enqueued, lab) -> Iterator[Portal]:
    page = browser_context.new_page()
    axe = AxeAudit()
    tab = Portal(page, live_server.url, enqueued, axe)
    yield tab
    lesser = sorted({f"{v['id']} ({v['impact']}) on {label}" for label, found in axe.reports for v in found})
    if lesser:  # shown with -rP or -s; serious and critical ones have failed the test already
        print("axe findings below 'serious':\n  " + "\n  ".join(lesser))
    passed = getattr(request.node, "browser_call_passed", None)
    if passed is False:
        # What the browser showed when the test failed: var/browser-failures/<test>.png
        FAILURES_DIR.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(FAILURES_DIR / f"{name}.png"), full_page=True)
        except Exception as exc:  # a report, never a second failure
            print(f"could not save a screenshot of the failure: {exc}")
        else:
            print(f"screenshot of the failure: {FAILURES_DIR / f'{name}.png'}")
    if not passed:
        return
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
