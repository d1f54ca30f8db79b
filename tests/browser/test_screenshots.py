"""Screenshots for the README, taken from the running portal (`make screenshots`
writes them to docs/screenshots/; in the test suite they go to a temporary folder,
so this code keeps working).

The data comes from the real flows against the sandbox lab (orders, kits, a poll,
the emails), plus a few records made directly for the dashboard's "Needs
attention" list (an overdue result, a failed submission).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from portal.core.states import Status, Submission
from portal.kits.models import KitRegistration
from portal.kits.services import registration_create, registration_submit
from portal.orders.models import Order
from portal.orders.services import order_create, order_submit
from portal.patients.services import AddressData, PatientData
from portal.results.models import Result
from tests.factories import OrderFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PATIENTS = [
    ("Ada", "Lovelace", "1970-01-01", ("12 Analytical Row", "Boston", "MA", "02110")),
    ("Grace", "Hopper", "1976-12-09", ("200 Elm Street", "Providence", "RI", "02903")),
    ("Alan", "Turing", "1962-06-23", ("7 Enigma Ct", "Cambridge", "MA", "02139")),
    ("Katherine", "Johnson", "1958-08-26", ("1 Langley Blvd", "Hampton", "VA", "23681")),
    ("Edsger", "Dijkstra", "1980-05-11", ("3 Shortest Path", "Austin", "TX", "78701")),
]


def _patient(first: str, last: str, dob: str) -> PatientData:
    return PatientData(
        first_name=first,
        last_name=last,
        email=f"{first.lower()}.{last.lower()}@example.com",
        date_of_birth=dt.date.fromisoformat(dob),
        phone="6175550123",
        gender="other",
    )


def _clinic_data(lab) -> Result:
    """Orders, kits and results as a clinic has them after a few days; returns a
    result that became ready and whose email was sent."""
    orders = [order_submit(order_id=order_create(amount=Decimal(a)).pk) for a in ("199.00", "249.50", "89.00")]
    registrations = []
    for n, (first, last, dob, address) in enumerate(PATIENTS):
        if n == 3:
            lab.clock.advance(91)  # the first three kits are done at the lab by now
        registration = registration_create(
            order=orders[n % 2],
            patient_data=_patient(first, last, dob),
            addresses=[AddressData(**dict(zip(("street1", "city", "state", "zipcode"), address, strict=True)))],
        )
        registrations.append(registration_submit(registration_id=registration.pk))
    call_command("poll_results", "--once")
    # Spread over the last days, as a clinic's week looks (the sandbox answers at once).
    # The first kit's result became ready just now (its page is shown, email and all).
    now = timezone.now()
    days = dt.timedelta(days=1)
    spread = [
        (3.2 * days, None),
        (7.1 * days, 3.8 * days),
        (5.3 * days, 2.2 * days),
        (3 * days, None),
        (2 * days, None),
    ]
    for registration, (registered_ago, ready_ago) in zip(registrations, spread, strict=True):
        KitRegistration.objects.filter(pk=registration.pk).update(registered_at=now - registered_ago)
        if ready_ago:
            Result.objects.filter(registration=registration).update(ready_at=now - ready_ago)
    # Records for "Needs attention": a result overdue at the lab, an order the lab did not answer.
    overdue = RegistrationFactory(
        patient=PatientFactory(first_name="Barbara", last_name="Liskov", email="barbara@example.com"),
        kit_id="KIT7Q2M9X4",
        registered_at=timezone.now() - dt.timedelta(days=14),
    )
    ResultFactory(registration=overdue, state="processing", status=Status.IN_PROGRESS)
    OrderFactory(
        upstream_id=None,
        state="",
        status=Status.PENDING,
        submission_status=Submission.FAILED,
        last_error="The lab could not be reached (connection timed out); the portal retries automatically.",
    )
    return Result.objects.get(registration=registrations[0])


def _email_page(message) -> str:
    """The email's HTML body with its envelope (subject, from, to) above it."""
    body = next(content for content, mimetype in message.alternatives if mimetype == "text/html")
    envelope = (
        '<header style="font-family: Arial, sans-serif; font-size: 14px; color: #212529; '
        'border-bottom: 1px solid #dee2e6; padding: 0 0 12px; margin: 0 0 16px; max-width: 560px;">'
        f"<div><strong>Subject:</strong> {html.escape(message.subject)}</div>"
        f"<div><strong>From:</strong> {html.escape(message.from_email)}</div>"
        f"<div><strong>To:</strong> {html.escape(', '.join(message.to))}</div></header>"
    )
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + envelope, body, count=1)


def test_screenshots(portal, lab, staff_user, password, screenshots_dir, tmp_path):
    out = screenshots_dir or tmp_path
    out.mkdir(parents=True, exist_ok=True)
    page = portal.page
    ready = _clinic_data(lab)
    sent = portal.send_queued_emails()
    assert sent and len(mail.outbox) == len(sent)
    portal.login(staff_user.username, password)

    def shot(name: str) -> None:
        page.mouse.move(0, 0)  # no hover effects
        page.screenshot(path=str(out / f"{name}.png"))

    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    shot("dashboard")

    portal.goto("/orders/")
    expect(page.get_by_role("table", name="Orders").locator("tbody tr")).to_have_count(Order.objects.count())
    shot("orders")

    order = Order.objects.filter(submission_status=Submission.ACCEPTED).order_by("pk").first()
    portal.goto(f"/orders/{order.pk}/register/")
    page.get_by_label("First name").fill("Grace")
    page.get_by_label(re.compile(r"^\s*Email")).fill("grace.example.com")
    page.get_by_label("Phone").fill("555-0199")
    page.get_by_label("Date of birth").fill((timezone.localdate() + dt.timedelta(days=30)).isoformat())
    page.locator("#id_addresses-0-street1").fill("200 Elm Street")
    page.locator("#id_addresses-0-zipcode").fill("2903")
    portal.click_and_audit(page.get_by_role("button", name="Register kit"))
    expect(page.get_by_text("Please correct the errors below")).to_be_visible()
    page.get_by_role("heading", name="Register a kit").scroll_into_view_if_needed()
    shot("kit-registration-errors")

    portal.goto(f"/results/{ready.pk}/")
    expect(page.get_by_role("region", name="Emails to the patient")).to_contain_text("Sent")
    shot("result-detail")

    # The email in a tab of its own (about:blank): the portal's CSP would block its inline styles.
    email_tab = page.context.new_page()
    patient_email = ready.registration.patient.email
    email_tab.set_content(_email_page(next(m for m in mail.outbox if m.to == [patient_email])))
    portal.axe.check(email_tab, label="the results-ready email")
    email_tab.screenshot(path=str(out / "email.png"))

    for name in ("dashboard", "orders", "kit-registration-errors", "result-detail", "email"):
        assert (out / f"{name}.png").stat().st_size > 5_000, name
