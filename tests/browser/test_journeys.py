"""Staff journeys in a real browser, one test each (see conftest.py).

The portal runs on pytest-django's live server with the sandbox as the lab; each
page the browser shows is checked with axe (serious or critical violations fail)
and for unlabelled form fields.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from portal.core.states import Status, Submission
from portal.kits.models import KitRegistration
from portal.kits.services import registration_create, registration_submit
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.orders.services import order_create, order_submit
from portal.patients.models import Patient
from portal.patients.services import AddressData, PatientData
from portal.results.models import Result
from portal.results.selectors import RESULTS_EXPORT_HEADER
from tests.factories import AddressFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADA = PatientData(
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    date_of_birth=dt.date(1970, 1, 1),
    phone="6175550123",
    gender="female",
)
HOME = AddressData(street1="1 Main St", city="Cambridge", state="MA", zipcode="02139")


def accepted_order(amount: str = "199.00") -> Order:
    """An order created at the sandbox lab, as the "New order" page does it."""
    order = order_submit(order_id=order_create(amount=Decimal(amount)).pk)
    assert order.submission_status == Submission.ACCEPTED, order.last_error
    return order


def registered_kit(order: Order, patient: PatientData = ADA) -> KitRegistration:
    registration = registration_create(order=order, patient_data=patient, addresses=[HOME])
    registration = registration_submit(registration_id=registration.pk)
    assert registration.submission_status == Submission.ACCEPTED, registration.last_error
    return registration


def nav_link(page, name: str):
    return page.get_by_role("navigation", name="Main navigation").get_by_role("link", name=name, exact=True)


def assert_error_next_to_field(page, field_id: str, message: str | re.Pattern) -> None:
    """The field's error is shown right below it, inside the field's own block, and a
    screen reader hears it with the field (aria-invalid, aria-describedby)."""
    field = page.locator(f"#{field_id}")
    error = page.locator(f"#div_{field_id} #{field_id}_error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(message)
    expect(field).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(rf"(^|\s){re.escape(field_id)}_error(\s|$)"))
    # "Next to": the message starts just below the field, in its column.
    field_box, error_box = field.bounding_box(), error.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 40, (field_id, field_box, error_box)
    assert abs(error_box["x"] - field_box["x"]) < 20, (field_id, field_box, error_box)


# --- signing in --------------------------------------------------------------------


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


def test_wrong_password_shows_an_error_then_the_lockout_page(portal, staff_user, password):
    page = portal.page
    limit = settings.AXES_FAILURE_LIMIT
    portal.goto("/accounts/login/")
    for attempt in range(1, limit):
        page.get_by_label("Username").fill(staff_user.username)
        page.get_by_label("Password").fill(f"wrong-password-{attempt}")
        portal.click_and_audit(page.get_by_role("button", name="Sign in"))
        expect(page.get_by_role("main")).to_contain_text("Please enter a correct username and password")
        # The username stays; the password is never sent back.
        expect(page.get_by_label("Username")).to_have_value(staff_user.username)
        expect(page.get_by_label("Password")).to_have_value("")
    page.get_by_label("Password").fill("still-wrong")
    portal.click_and_audit(page.get_by_role("button", name="Sign in"))
    expect(page.get_by_role("heading", name="Sign-in locked")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-in attempts")
    # Locked: even the right password does not get in now.
    portal.click_and_audit(page.get_by_role("link", name="Back to sign in"))
    portal.login(staff_user.username, password)
    expect(page.get_by_role("heading", name="Sign-in locked")).to_be_visible()
    expect(page.get_by_role("heading", name="Dashboard")).to_have_count(0)


# --- orders and kits ---------------------------------------------------------------


def test_create_an_order(portal, staff_user, password):
    page = portal.page
    portal.login(staff_user.username, password)
    portal.click_and_audit(nav_link(page, "Orders"))
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    portal.click_and_audit(page.get_by_role("link", name="New order").first)
    page.get_by_label("Amount (USD)").fill("249.50")
    portal.click_and_audit(page.get_by_role("button", name="Create order"))

    order = Order.objects.get()
    assert order.amount == Decimal("249.50") and order.submission_status == Submission.ACCEPTED
    assert portal.path == f"/orders/{order.pk}/"
    expect(page.get_by_role("alert")).to_contain_text(f"Order created at the lab: lab order id {order.upstream_id}")
    expect(page.get_by_role("link", name="Register a kit for this order").first).to_be_visible()
    # The list shows it.
    portal.click_and_audit(page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Orders"))
    expect(page.get_by_role("table", name="Orders")).to_contain_text(str(order.upstream_id))
    expect(page.get_by_role("table", name="Orders")).to_contain_text("249.50")


def fill_patient(page, *, first, last, email, dob, phone, gender):
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.get_by_label(re.compile(r"^\s*Email")).fill(email)
    page.get_by_label("Date of birth").fill(dob)
    page.get_by_label("Phone").fill(phone)
    page.get_by_label("Gender").select_option(gender)


def fill_address(page, index: int, *, street1, street2="", city, state, zipcode):
    prefix = f"#id_addresses-{index}-"
    page.locator(f"{prefix}street1").fill(street1)
    page.locator(f"{prefix}street2").fill(street2)
    page.locator(f"{prefix}city").fill(city)
    page.locator(f"{prefix}state").select_option(state)
    page.locator(f"{prefix}zipcode").fill(zipcode)


def open_registration_form(portal, order: Order) -> None:
    page = portal.page
    portal.goto(f"/orders/{order.pk}/")
    portal.click_and_audit(page.get_by_role("link", name="Register a kit for this order").first)
    expect(page.get_by_role("heading", name="Register a kit")).to_be_visible()


def test_register_a_kit_to_a_new_patient_with_two_addresses(portal, staff_user, password):
    page = portal.page
    order = accepted_order()
    portal.login(staff_user.username, password)
    open_registration_form(portal, order)

    fill_patient(
        page,
        first="Grace",
        last="Hopper",
        email="grace@example.com",
        dob="1976-12-09",
        phone="(617) 555-0199",
        gender="female",
    )
    fill_address(page, 0, street1="1 Main St", street2="Apt 4", city="Cambridge", state="MA", zipcode="02139")
    page.get_by_role("button", name="Add another address").click()
    expect(page.locator("#id_addresses-1-street1")).to_be_focused()
    portal.audit("registration form with two addresses")
    fill_address(page, 1, street1="200 Elm Street", city="Providence", state="RI", zipcode="02903-1234")
    portal.click_and_audit(page.get_by_role("button", name="Register kit"))

    registration = KitRegistration.objects.select_related("patient").get()
    assert portal.path == f"/kits/{registration.pk}/"
    assert registration.submission_status == Submission.ACCEPTED and registration.kit_id
    expect(page.get_by_role("alert")).to_contain_text(f"Kit registered at the lab: kit id {registration.kit_id}")
    patient = registration.patient
    assert (patient.first_name, patient.last_name, patient.phone) == ("Grace", "Hopper", "6175550199")
    addresses = list(patient.addresses.order_by("position").values_list("street1", "street2", "city", "zipcode"))
    assert addresses == [
        ("1 Main St", "Apt 4", "Cambridge", "02139"),
        ("200 Elm Street", "", "Providence", "02903-1234"),
    ]
    # The patient's page shows both addresses and the kit.
    portal.click_and_audit(page.get_by_role("link", name="Grace Hopper"))
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page.locator("address")).to_have_count(2)
    expect(page.get_by_role("table")).to_contain_text(registration.kit_id)


def test_register_a_kit_with_every_field_wrong_then_corrected(portal, staff_user, password):
    page = portal.page
    order = accepted_order()
    portal.login(staff_user.username, password)
    open_registration_form(portal, order)

    next_year = (timezone.localdate() + dt.timedelta(days=366)).isoformat()
    typed = {
        # An invisible character pasted with a name (zero-width space, right-to-left override).
        "id_first_name": "Gr\u200bace",
        "id_last_name": "Hopper\u202e",
        "id_email": "grace.example.com",
        "id_date_of_birth": next_year,
        "id_phone": "555-0199",
        "id_addresses-0-street1": "1 Main St\u200b",
        "id_addresses-0-street2": "Apt\u200b 4",
        "id_addresses-0-city": "Cambridge\u200b",
        "id_addresses-0-zipcode": "2139",
        "id_addresses-1-street1": "\u200b",
        "id_addresses-1-city": "Providence",
        "id_addresses-1-zipcode": "ABCDE",
    }
    page.get_by_role("button", name="Add another address").click()
    for field_id, value in typed.items():
        page.locator(f"#{field_id}").fill(value)
    # Gender and both states are left on "Choose…".
    portal.click_and_audit(page.get_by_role("button", name="Register kit"))

    assert not KitRegistration.objects.exists() and not Patient.objects.exists()
    expect(page.get_by_role("alert").first).to_contain_text("Please correct the errors below; nothing has been sent.")
    expected_errors = {
        "id_first_name": "First name contains an invisible control character",
        "id_last_name": "Last name contains an invisible control character",
        "id_email": "Enter a valid email address",
        "id_date_of_birth": "The date of birth must be in the past",
        "id_phone": "Enter a 10-digit US phone number",
        "id_gender": "Choose the patient's gender",
        "id_addresses-0-street1": "Street address contains an invisible control character",
        "id_addresses-0-street2": "Apartment, suite, etc. contains an invisible control character",
        "id_addresses-0-city": "City contains an invisible control character",
        "id_addresses-0-state": "Choose the state",
        "id_addresses-0-zipcode": "Enter a 5-digit ZIP code",
        "id_addresses-1-street1": "Street address contains an invisible control character",
        "id_addresses-1-state": "Choose the state",
        "id_addresses-1-zipcode": "Enter a 5-digit ZIP code",
    }
    for field_id, message in expected_errors.items():
        assert_error_next_to_field(page, field_id, message)
    # Nothing typed is lost: every field shows what was typed, both addresses are there.
    for field_id, value in typed.items():
        expect(page.locator(f"#{field_id}")).to_have_value(value)
    expect(page.locator("fieldset:visible", has=page.locator("[id$='-street1']"))).to_have_count(2)

    corrected = {
        "id_first_name": "Grace",
        "id_last_name": "Hopper",
        "id_email": "grace@example.com",
        "id_date_of_birth": "1976-12-09",
        "id_phone": "(617) 555-0199",
        "id_addresses-0-street1": "1 Main St",
        "id_addresses-0-street2": "Apt 4",
        "id_addresses-0-city": "Cambridge",
        "id_addresses-0-zipcode": "02139",
        "id_addresses-1-street1": "200 Elm Street",
        "id_addresses-1-zipcode": "02903",
    }
    for field_id, value in corrected.items():
        page.locator(f"#{field_id}").fill(value)
    page.locator("#id_gender").select_option("female")
    page.locator("#id_addresses-0-state").select_option("MA")
    page.locator("#id_addresses-1-state").select_option("RI")
    portal.click_and_audit(page.get_by_role("button", name="Register kit"))

    registration = KitRegistration.objects.select_related("patient").get()
    assert portal.path == f"/kits/{registration.pk}/"
    assert registration.submission_status == Submission.ACCEPTED
    expect(page.get_by_role("alert")).to_contain_text("Kit registered at the lab")
    assert registration.patient.email == "grace@example.com"
    assert registration.patient.addresses.count() == 2


FOCUSED_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "";
  if (el.id) return "#" + el.id;
  if (el.matches("[data-formset-add]")) return "add-address";
  return el.tagName.toLowerCase() + ":" + (el.textContent || "").trim().slice(0, 40);
}"""


def tab_to(page, target: str, *, within: int) -> list[str]:
    """Press Tab until `target` has the focus, at most `within` times; returns the
    elements passed on the way. Fails if the field cannot be reached that way."""
    passed = []
    for _ in range(within):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused == target:
            return passed
        passed.append(focused)
    raise AssertionError(f"{target} not reached with {within} Tab presses; focus went through {passed}")


def test_register_a_kit_with_the_keyboard_alone(portal, staff_user, password):
    """Tab to each field in order, type, and press Enter to submit: no mouse."""
    page = portal.page
    order = accepted_order()
    portal.login(staff_user.username, password)
    open_registration_form(portal, order)
    page.locator("body").focus()  # start from the top, as after a page load

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    tab_to(page, "#id_first_name", within=40)
    page.keyboard.type("Katherine")
    # Each field is the next Tab stop after the one before.
    steps = [
        ("#id_last_name", "Johnson", 1),
        ("#id_email", "katherine@example.com", 1),
        ("#id_phone", "757 555 0142", 1),
        ("#id_date_of_birth", "08261918", 1),  # the browser's mm/dd/yyyy segments
        ("#id_gender", "Female", 3),  # past the date's segments; typing picks the option
        ("#id_addresses-0-street1", "1 Langley Blvd", 1),
        ("#id_addresses-0-street2", "", 1),
        ("#id_addresses-0-city", "Hampton", 1),
        ("#id_addresses-0-state", "Virginia", 1),
        ("#id_addresses-0-zipcode", "23681", 1),
    ]
    for target, text, within in steps:
        tab_to(page, target, within=within)
        if text:
            page.keyboard.type(text)
    # A second address: the "Add another address" button, then focus is in its first field.
    tab_to(page, "add-address", within=3)
    page.keyboard.press("Enter")
    expect(page.locator("#id_addresses-1-street1")).to_be_focused()
    page.keyboard.type("4 Mercury Way")
    for target, text in (
        ("#id_addresses-1-street2", ""),
        ("#id_addresses-1-city", "Newport News"),
        ("#id_addresses-1-state", "Virginia"),
        ("#id_addresses-1-zipcode", "23602"),
    ):
        tab_to(page, target, within=1)
        if text:
            page.keyboard.type(text)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the form from its last field
    portal.audit()

    registration = KitRegistration.objects.select_related("patient").get()
    assert portal.path == f"/kits/{registration.pk}/", page.locator("main").inner_text()
    expect(page.get_by_role("alert")).to_contain_text("Kit registered at the lab")
    patient = registration.patient
    assert (patient.first_name, patient.last_name, patient.email) == ("Katherine", "Johnson", "katherine@example.com")
    assert (patient.date_of_birth, patient.gender, patient.phone) == (dt.date(1918, 8, 26), "female", "7575550142")
    assert list(patient.addresses.order_by("position").values_list("city", "state", "zipcode")) == [
        ("Hampton", "VA", "23681"),
        ("Newport News", "VA", "23602"),
    ]


def test_register_a_kit_to_an_existing_patient(portal, staff_user, password):
    page = portal.page
    order = accepted_order()
    patient = PatientFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    AddressFactory(patient=patient, street1="12 Analytical Row", city="Boston", state="MA", zipcode="02110")
    PatientFactory(first_name="Charles", last_name="Babbage", email="charles@example.com")
    portal.login(staff_user.username, password)
    open_registration_form(portal, order)

    page.get_by_label("Existing patient? Search by name or email").fill("lovelace")
    portal.click_and_audit(page.get_by_role("button", name="Search patients"))
    matches = page.get_by_role("table", name=re.compile("Patients matching"))
    expect(matches.get_by_role("row")).to_have_count(2)  # header + Ada
    expect(matches).to_contain_text("ada@example.com")
    expect(matches).not_to_contain_text("Babbage")
    portal.click_and_audit(matches.get_by_role("link", name="Use this patient"))

    chosen = page.get_by_role("region", name="Patient")
    expect(chosen).to_contain_text("Ada Lovelace")
    expect(chosen).to_contain_text("12 Analytical Row, Boston, MA 02110")
    expect(page.get_by_label("First name")).to_have_count(0)  # no new-patient fields
    portal.click_and_audit(page.get_by_role("button", name="Register kit"))

    registration = KitRegistration.objects.get()
    assert registration.patient_id == patient.pk and Patient.objects.count() == 2
    assert registration.submission_status == Submission.ACCEPTED
    assert portal.path == f"/kits/{registration.pk}/"
    expect(page.get_by_role("alert")).to_contain_text("Kit registered at the lab")
    expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()


# --- results -------------------------------------------------------------------------


def test_a_result_becomes_ready_after_a_poll_and_the_email_is_sent(portal, lab, staff_user, password):
    page = portal.page
    registration = registered_kit(accepted_order())
    result = Result.objects.get(registration=registration)
    portal.login(staff_user.username, password)

    portal.click_and_audit(nav_link(page, "Results"))
    portal.click_and_audit(page.get_by_role("link", name=registration.kit_id))
    assert portal.path == f"/results/{result.pk}/"
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Pending")
    expect(page.get_by_role("region", name="Emails to the patient")).to_contain_text("No email yet")

    call_command("poll_results", "--once")  # the lab has not finished yet
    page.reload()
    portal.audit("result detail, polled, still pending")
    expect(heading).to_contain_text("Pending")

    lab.clock.advance(91)  # the sandbox's lab finishes the kit
    result.refresh_from_db()
    Result.objects.filter(pk=result.pk).update(next_poll_at=timezone.now())  # due now, not in 5 minutes
    call_command("poll_results", "--once")
    page.reload()
    portal.audit("result detail, ready, email queued")
    expect(heading).to_contain_text("Ready")
    emails = page.get_by_role("region", name="Emails to the patient")
    expect(emails.get_by_role("table")).to_contain_text("Waiting to be sent")
    assert mail.outbox == []

    sent = portal.send_queued_emails()  # what the worker does with the queued task
    assert [n.status for n in sent] == [Notification.Status.SENT]
    page.reload()
    portal.audit("result detail, email sent")
    expect(emails.get_by_role("table")).to_contain_text("Sent")
    expect(emails.get_by_role("table")).to_contain_text("Automatic")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    assert "Lovelace" not in mail.outbox[0].subject + mail.outbox[0].body  # no PHI in the email


def results_fixture() -> dict[str, Result]:
    """Four results: two ready (one of them Ada's), one pending, one overdue."""
    now = timezone.now()

    def result(first, last, email, kit_id, registered_at=now, **kwargs):
        patient = PatientFactory(first_name=first, last_name=last, email=email)
        registration = RegistrationFactory(patient=patient, kit_id=kit_id, registered_at=registered_at)
        return ResultFactory(registration=registration, **kwargs)

    ready = {"status": Status.READY, "state": "ready", "next_poll_at": None}
    return {
        "ada": result("Ada", "Lovelace", "ada@example.com", "KITADA0001", ready_at=now, **ready),
        "grace": result("Grace", "Hopper", "grace@example.com", "KITGRC0002", ready_at=now, **ready),
        "alan": result("Alan", "Turing", "alan@example.com", "KITALN0003"),
        "late": result(
            "Edsger",
            "Dijkstra",
            "edsger@example.com",
            "KITEWD0004",
            registered_at=now - dt.timedelta(days=settings.RESULT_OVERDUE_AFTER + 5),
        ),
    }


def rows_of(page) -> list[str]:
    return page.get_by_role("table", name=re.compile("^Results")).locator("tbody tr").all_inner_texts()


def test_search_and_filter_the_results_list(portal, staff_user, password):
    page = portal.page
    results_fixture()
    portal.login(staff_user.username, password)
    portal.goto("/results/")
    assert len(rows_of(page)) == 4

    page.get_by_label("Search").fill("lovelace")
    portal.click_and_audit(page.get_by_role("button", name="Apply"))
    assert [row.split("\t")[0] for row in rows_of(page)] == ["KITADA0001"]

    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option(Status.READY.value)
    portal.click_and_audit(page.get_by_role("button", name="Apply"))
    assert sorted(row.split("\t")[0] for row in rows_of(page)) == ["KITADA0001", "KITGRC0002"]

    page.get_by_label("Status").select_option("")
    page.get_by_label("Overdue only").check()
    portal.click_and_audit(page.get_by_role("button", name="Apply"))
    assert [row.split("\t")[0] for row in rows_of(page)] == ["KITEWD0004"]
    expect(page.get_by_role("table", name=re.compile("^Results"))).to_contain_text("Overdue")

    page.get_by_label("Overdue only").uncheck()
    page.get_by_label("Search").fill("nobody-matches-this")
    portal.click_and_audit(page.get_by_role("button", name="Apply"))
    expect(page.get_by_text("No results match these filters.")).to_be_visible()

    portal.click_and_audit(page.get_by_role("link", name="Clear filters").first)
    assert portal.path == "/results/" and len(rows_of(page)) == 4


def test_export_the_results_list_as_csv(portal, staff_user, password):
    page = portal.page
    results = results_fixture()
    portal.login(staff_user.username, password)
    portal.goto(f"/results/?status={Status.READY.value}")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export these results as CSV").click()
    download = download_info.value
    assert re.fullmatch(r"results-\d{8}-\d{4}\.csv", download.suggested_filename)
    text = download.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(RESULTS_EXPORT_HEADER)
    assert len(rows) == 3  # the header and the two ready results: the export follows the filter
    exported = "\n".join(",".join(row) for row in rows[1:])
    for key in ("ada", "grace"):
        assert results[key].registration.kit_id in exported
    assert "KITALN0003" not in exported and "KITEWD0004" not in exported
    assert portal.path == f"/results/?status={Status.READY.value}"  # a download, not a new page


# --- access --------------------------------------------------------------------------


def test_a_staff_member_cannot_open_admin(portal, staff_user, password):
    page = portal.page
    assert not staff_user.is_staff
    portal.login(staff_user.username, password)
    expect(page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Admin")).to_have_count(0)

    for path in (f"/{settings.ADMIN_URL}", f"/{settings.ADMIN_URL}patients/patient/"):
        portal.goto(path)
        assert portal.path.startswith(f"/{settings.ADMIN_URL}login/"), portal.path
        expect(page.locator("body")).to_contain_text(
            f"You are authenticated as {staff_user.username}, but are not authorized to access this page"
        )
        expect(page.get_by_role("link", name=re.compile("Patients", re.IGNORECASE))).to_have_count(0)
