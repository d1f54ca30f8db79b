import csv
import io
import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.core.states import Status, Submission
from portal.kits.models import KitRegistration
from portal.orders.models import Order
from portal.patients.models import Address, Patient
from portal.results.models import Result
from tests.factories import AddressFactory, OrderFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def csv_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(body)))


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def form_data(*addresses, key=None, **patient) -> dict:
    """The POST of the registration form: a new patient and their addresses."""
    addresses = addresses or ({"street1": "1 Main St", "city": "Cambridge", "state": "MA", "zipcode": "02139"},)
    data = {
        "idempotency_key": key or str(uuid.uuid4()),
        "first_name": "Jane",
        "last_name": "O'Brien",
        "email": "jane@example.com",
        "date_of_birth": "1980-01-02",
        "phone": "(617) 555-0123",
        "gender": "female",
        **patient,
        "addresses-TOTAL_FORMS": str(len(addresses)),
        "addresses-INITIAL_FORMS": "0",
        "addresses-MIN_NUM_FORMS": "1",
        "addresses-MAX_NUM_FORMS": "10",
    }
    for i, address in enumerate(addresses):
        for field in ("street1", "street2", "city", "state", "zipcode", "DELETE"):
            if field in address or field != "DELETE":
                data[f"addresses-{i}-{field}"] = address.get(field, "")
    return data


@pytest.fixture
def order():
    return OrderFactory(upstream_id=321)


def register_url(order) -> str:
    return reverse("orders:register_kit", args=[order.pk])


# --- Access -------------------------------------------------------------------


def test_anonymous_users_are_sent_to_login(client, order):
    registration = RegistrationFactory(order=order)
    urls = [
        register_url(order),
        reverse("kits:list"),
        reverse("kits:export"),
        reverse("kits:lookup") + "?kit_id=x",
        reverse("kits:detail", args=[registration.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    for name in ("kits:retry", "kits:review"):
        response = client.post(reverse(name, args=[registration.pk]))
        assert response["Location"].startswith(reverse("login")), name
    assert client.post(register_url(order), form_data())["Location"].startswith(reverse("login"))
    assert not Patient.objects.exclude(pk=registration.patient_id).exists()


def test_users_without_the_permission_get_403(client, no_role_user, order):
    registration = RegistrationFactory(order=order)
    client.force_login(no_role_user)
    for url in (
        register_url(order),
        reverse("kits:list"),
        reverse("kits:export"),
        reverse("kits:lookup") + "?kit_id=" + registration.kit_id,
        reverse("kits:detail", args=[registration.pk]),
    ):
        assert client.get(url).status_code == 403, url
    for name in ("kits:retry", "kits:review"):
        assert client.post(reverse(name, args=[registration.pk])).status_code == 403, name
    assert client.post(register_url(order), form_data()).status_code == 403
    assert KitRegistration.objects.count() == 1


# --- The registration form ----------------------------------------------------


def test_form_renders_labels_an_idempotency_key_and_the_formset_script(staff_client, order):
    response = staff_client.get(register_url(order))
    assert response.status_code == 200 and response.context["title"] == "Register a kit"
    content = response.content.decode()
    key = response.context["form"]["idempotency_key"].value()
    assert f'name="idempotency_key" value="{key}"' in content
    for field in ("first_name", "last_name", "email", "date_of_birth", "phone", "gender"):
        assert f'for="id_{field}"' in content, field
    for field in ("street1", "street2", "city", "state", "zipcode"):
        assert f'for="id_addresses-0-{field}"' in content, field
    assert 'type="date"' in content and '<option value="MA">Massachusetts</option>' in content
    assert 'name="addresses-TOTAL_FORMS"' in content and "<template data-formset-empty>" in content
    assert "addresses-__prefix__-street1" in content
    assert '<script src="/static/js/formset.js"></script>' in content
    # No inline script or event handler: the Content-Security-Policy forbids them.
    assert content.count("<script") == 2 and " onclick=" not in content


def test_new_patient_with_two_addresses_is_registered(staff_client, staff_user, partner, order):
    partner.register_kit(321, id=88, kit_id="ab12cd34ef", user_id=9)
    data = form_data(
        {"street1": "1 Main St", "city": "Cambridge", "state": "MA", "zipcode": "02139"},
        {"street1": "2 Elm St", "street2": "Suite 4", "city": "Boston", "state": "MA", "zipcode": "021101234"},
    )
    response = staff_client.post(register_url(order), data)
    registration = KitRegistration.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("kits:detail", args=[registration.pk])
    assert messages_of(response) == ["Kit registered at the lab: kit id ab12cd34ef."]
    assert (registration.kit_id, registration.submission_status, registration.created_by) == (
        "ab12cd34ef",
        Submission.ACCEPTED,
        staff_user,
    )
    patient = registration.patient
    assert (patient.first_name, patient.last_name, patient.phone) == ("Jane", "O'Brien", "6175550123")
    assert [(a.street1, a.street2, a.zipcode) for a in patient.addresses.all()] == [
        ("1 Main St", "", "02139"),
        ("2 Elm St", "Suite 4", "02110-1234"),
    ]
    assert Result.objects.filter(registration=registration).exists()


def test_a_removed_address_row_is_ignored(staff_client, partner, order):
    partner.register_kit(321)
    data = form_data(
        {"street1": "1 Main St", "city": "Cambridge", "state": "MA", "zipcode": "02139"},
        {"street1": "", "city": "half typed", "state": "", "zipcode": "", "DELETE": "on"},
    )
    response = staff_client.post(register_url(order), data)
    assert response.status_code == 302
    assert list(Address.objects.values_list("street1", flat=True)) == ["1 Main St"]


def test_at_least_one_address_is_required(staff_client, order):
    data = form_data({"street1": "1 Main St", "city": "Cambridge", "state": "MA", "zipcode": "02139", "DELETE": "on"})
    response = staff_client.post(register_url(order), data)
    assert response.status_code == 200
    assert "Enter at least one address." in response.content.decode()
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("first_name", "", "First name is required."),
        ("last_name", "x" * 101, "Last name has at most 100 characters (it has 101)."),
        ("email", "jane@@x.com", "Enter a valid email address, e.g. jane@example.com."),
        ("phone", "617-555-0123 x12", "Enter the phone number without an extension."),
        ("phone", "123-456-7890", "This is not a valid US number"),
        ("date_of_birth", "2001-02-29", "Enter a real date, e.g. 1985-04-12 (YYYY-MM-DD) or 04/12/1985."),
        ("date_of_birth", "1899-12-31", "The date of birth cannot be before 1900."),
        ("gender", "", "Choose the patient&#x27;s gender (the lab requires it)."),
        ("addresses-0-zipcode", "2139", "Enter a 5-digit ZIP code or ZIP+4, e.g. 02139 or 02139-4307."),
        ("addresses-0-state", "PR", "Kits can be shipped to the 50 states and DC only"),
        ("addresses-0-city", "", "City is required."),
        ("addresses-0-street1", "1 Main\x00St", "Street address contains an invisible control character."),
    ],
)
def test_each_error_is_shown_next_to_its_field_with_everything_typed_kept(staff_client, order, field, typed, message):
    data = form_data(
        {"street1": "77 Unusual Rd", "street2": "Flat 9", "city": "Somerville", "state": "MA", "zipcode": "02143"},
        first_name="Zoë",
        last_name="Nguyễn",
        email="zoe@example.com",
        phone="(617) 555-0199",
        date_of_birth="1970-07-07",
        gender="other",
    )
    data[field] = typed
    response = staff_client.post(register_url(order), data)
    assert response.status_code == 200
    content = response.content.decode()
    assert message in content
    errors = (
        response.context["form"].errors if not field.startswith("addresses") else response.context["formset"][0].errors
    )
    assert errors[field.removeprefix("addresses-0-")]
    # Everything else typed is still there.
    for name, value in data.items():
        if name in (field, "gender", "addresses-0-state", "idempotency_key") or "FORMS" in name or not value:
            continue  # the error's own field; dropdowns (no value="..."); hidden and management fields
        assert f'value="{value}"' in content, name
    if field != "gender":
        assert '<option value="other" selected>' in content
    if field != "addresses-0-state":
        assert '<option value="MA" selected>' in content
    assert f'value="{data["idempotency_key"]}"' in content
    assert not KitRegistration.objects.exists() and not Patient.objects.exists()


def test_lab_rejection_is_shown_on_the_form_and_the_fix_updates_the_same_record(staff_client, partner, order):
    key = str(uuid.uuid4())
    partner.register_kit(321, status=422, json={"error": "phone_number is not reachable"})
    response = staff_client.post(register_url(order), form_data(key=key, phone="617-555-0100"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "The lab refused this registration" in content and "phone_number is not reachable" in content
    assert 'value="617-555-0100"' in content and 'value="O&#x27;Brien"' in content
    assert f'value="{key}"' in content
    registration = KitRegistration.objects.get()
    assert registration.submission_status == Submission.REJECTED

    partner.mock.reset()
    partner.mock.get(f"{partner.auth}/v1/token", json={"token": "t"})
    partner.register_kit(321, id=5, kit_id="fixed12345")
    response = staff_client.post(register_url(order), form_data(key=key, phone="617-555-0199"))
    assert response.status_code == 302
    assert KitRegistration.objects.get().pk == registration.pk and Patient.objects.count() == 1
    assert Patient.objects.get().phone == "6175550199"
    assert messages_of(response) == ["Kit registered at the lab: kit id fixed12345."]


def test_lab_down_keeps_the_registration_and_warns(staff_client, partner, order):
    partner.register_kit(321, status=503, headers={"Retry-After": "0"})
    response = staff_client.post(register_url(order), form_data())
    registration = KitRegistration.objects.get()
    assert response["Location"] == reverse("kits:detail", args=[registration.pk])
    assert registration.submission_status == Submission.FAILED
    assert Patient.objects.get().last_name == "O'Brien"
    assert messages_of(response) == ["Saved. The lab could not be reached; the portal will retry automatically."]
    page = staff_client.get(response["Location"]).content.decode()
    assert "Submission failed - retry" in page and "Retry submission" in page


def test_lab_down_without_retry_hint_marks_it_for_review(staff_client, partner, order):
    partner.register_kit(321, status=503)
    response = staff_client.post(register_url(order), form_data())
    assert KitRegistration.objects.get().submission_status == Submission.NEEDS_REVIEW
    assert "needs review" in messages_of(response)[0]
    page = staff_client.get(response["Location"]).content.decode()
    assert "Confirm not registered at the lab" in page


def test_registration_against_an_order_not_accepted_yet_waits(staff_client, partner):
    order = Order.objects.create(amount=Decimal("9.00"))
    response = staff_client.post(register_url(order), form_data())
    assert KitRegistration.objects.get().submission_status == Submission.QUEUED
    assert "sent as soon as it is" in messages_of(response)[0]
    assert not partner.calls_to("/registration")


def test_rejected_order_cannot_take_registrations(staff_client):
    order = Order.objects.create(amount=Decimal("9.00"), submission_status=Submission.REJECTED)
    response = staff_client.get(register_url(order))
    assert response["Location"] == reverse("orders:detail", args=[order.pk])
    assert "kits cannot be registered against it" in messages_of(response)[0]


def test_double_submit_creates_one_registration_and_one_patient(staff_client, partner, order):
    partner.register_kit(321, kit_id="once000001")
    data = form_data()
    first = staff_client.post(register_url(order), data)
    second = staff_client.post(register_url(order), data)
    assert first["Location"] == second["Location"]
    assert KitRegistration.objects.count() == 1 and Patient.objects.count() == 1
    assert len(partner.calls_to("/registration", "POST")) == 1


def test_patient_search_lists_matches_with_a_use_this_patient_choice(staff_client, order):
    jane = PatientFactory(first_name="Jane", last_name="Doe", email="jane.doe@example.com")
    PatientFactory(first_name="John", last_name="Smith", email="john@example.com")
    response = staff_client.get(register_url(order), {"patient_q": "jane doe"})
    content = response.content.decode()
    assert [p.pk for p in response.context["matches"]] == [jane.pk]
    assert f'href="{register_url(order)}?patient={jane.pk}">Use this patient</a>' in content
    assert "Smith" not in content
    response = staff_client.get(register_url(order), {"patient_q": "nobody"})
    assert "No patient matches" in response.content.decode()


def test_existing_patient_is_registered_with_their_stored_addresses(staff_client, partner, order):
    patient = PatientFactory(first_name="Ada", last_name="Lovelace")
    AddressFactory(patient=patient, street1="12 Analytical Way")
    response = staff_client.get(register_url(order), {"patient": patient.pk})
    content = response.content.decode()
    assert "Ada Lovelace" in content and "12 Analytical Way" in content
    assert 'name="first_name"' not in content and 'name="addresses-TOTAL_FORMS"' not in content
    assert f'name="patient" value="{patient.pk}"' in content

    partner.register_kit(321, kit_id="ada0000001")
    key = response.context["form"]["idempotency_key"].value()
    response = staff_client.post(register_url(order), {"idempotency_key": key, "patient": patient.pk})
    registration = KitRegistration.objects.get()
    assert response["Location"] == reverse("kits:detail", args=[registration.pk])
    assert registration.patient == patient and Patient.objects.count() == 1
    sent = json.loads(partner.calls_to("/registration", "POST")[0].request.body)
    assert [a["street1"] for a in sent["addresses"]] == ["12 Analytical Way"]


def test_a_patient_that_no_longer_exists_is_refused(staff_client, order):
    response = staff_client.post(register_url(order), {"idempotency_key": str(uuid.uuid4()), "patient": "99999"})
    assert response.status_code == 200
    assert "That patient no longer exists; search for the patient again." in response.content.decode()
    assert not KitRegistration.objects.exists()


def test_script_in_a_name_is_stored_as_typed_and_shown_escaped(staff_client, partner, order):
    partner.register_kit(321, kit_id="xss0000001")
    staff_client.post(register_url(order), form_data(first_name="<script>alert(1)</script>"))
    registration = KitRegistration.objects.get()
    assert registration.patient.first_name == "<script>alert(1)</script>"
    content = staff_client.get(reverse("kits:detail", args=[registration.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content and "<script>alert(1)" not in content
    content = staff_client.get(reverse("kits:list")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content and "<script>alert(1)" not in content


# --- List, detail and actions ---------------------------------------------------


def test_empty_list_says_what_to_do_next(staff_client):
    response = staff_client.get(reverse("kits:list"))
    assert response.context["title"] == "Kit registrations"
    assert "No kits registered yet" in response.content.decode()


def test_list_search_by_kit_id_and_filter_by_submission(staff_client):
    wanted = RegistrationFactory(kit_id="ABC123XYZ")
    RegistrationFactory(kit_id="OTHER00001")
    failed = RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.FAILED)
    response = staff_client.get(reverse("kits:list"), {"q": " abc123 "})
    assert [r.pk for r in response.context["registrations"]] == [wanted.pk]
    response = staff_client.get(reverse("kits:list"), {"submission_status": "failed"})
    assert [r.pk for r in response.context["registrations"]] == [failed.pk]
    assert "(not registered yet)" in response.content.decode()
    response = staff_client.get(reverse("kits:list"), {"q": "nothing"})
    assert "No kit registrations match these filters." in response.content.decode()


def test_list_paginates(staff_client):
    RegistrationFactory.create_batch(51)
    response = staff_client.get(reverse("kits:list"))
    assert len(response.context["registrations"]) == 50
    assert len(staff_client.get(reverse("kits:list"), {"page": 2}).context["registrations"]) == 1


def test_list_runs_a_constant_number_of_queries(staff_client):
    ResultFactory()
    one = count_queries(staff_client, reverse("kits:list"))
    ResultFactory.create_batch(30)
    RegistrationFactory.create_batch(19)
    assert KitRegistration.objects.count() == 50
    assert count_queries(staff_client, reverse("kits:list")) == one


def test_detail_shows_order_patient_state_result_and_timeline(staff_client, partner, order):
    partner.register_kit(321, id=90, kit_id="det0000001")
    staff_client.post(register_url(order), form_data())
    registration = KitRegistration.objects.get()
    response = staff_client.get(reverse("kits:detail", args=[registration.pk]))
    assert response.status_code == 200 and response.context["title"] == "Kit det0000001"
    content = response.content.decode()
    assert "<code>det0000001</code>" in content
    assert reverse("orders:detail", args=[order.pk]) in content
    assert reverse("patients:detail", args=[registration.patient_id]) in content
    assert "<code>registered</code>" in content and "Accepted by the lab" in content
    assert "→ <code>registered</code>" in content
    assert "Pending" in content  # the result's status, linked to the result page
    assert reverse("results:detail", args=[registration.result.pk]) in content


def test_detail_shows_the_last_error(staff_client):
    registration = RegistrationFactory(
        upstream_id=None, kit_id=None, submission_status=Submission.REJECTED, last_error="The lab said: bad zip"
    )
    content = staff_client.get(reverse("kits:detail", args=[registration.pk])).content.decode()
    assert "The lab said: bad zip" in content and "Retry submission" in content


def test_retry_sends_a_failed_registration_again(staff_client, partner):
    registration = RegistrationFactory(
        order__upstream_id=400, upstream_id=None, kit_id=None, submission_status=Submission.FAILED
    )
    partner.register_kit(400, id=401, kit_id="retry00001")
    response = staff_client.post(reverse("kits:retry", args=[registration.pk]))
    registration.refresh_from_db()
    assert (registration.submission_status, registration.kit_id) == (Submission.ACCEPTED, "retry00001")
    assert messages_of(response) == ["Kit registered at the lab: kit id retry00001."]


def test_retry_of_an_accepted_registration_is_refused(staff_client):
    registration = RegistrationFactory()
    response = staff_client.post(reverse("kits:retry", args=[registration.pk]))
    assert "Only a registration whose submission failed or was rejected" in messages_of(response)[0]


def test_review_confirmation_queues_it_again(staff_client, staff_user):
    registration = RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.NEEDS_REVIEW)
    url = reverse("kits:review", args=[registration.pk])
    response = staff_client.post(url, follow=True)
    assert "Tick the box to confirm the lab has no such registration." in response.content.decode()
    registration.refresh_from_db()
    assert registration.submission_status == Submission.NEEDS_REVIEW
    response = staff_client.post(url, {"confirmed_absent": "yes"})
    registration.refresh_from_db()
    assert registration.submission_status == Submission.QUEUED
    assert messages_of(response)[0].startswith("Queued to be sent to the lab again")
    assert "Confirmed not registered at the lab" in staff_client.get(response["Location"]).content.decode()


# --- Kit lookup -----------------------------------------------------------------


def test_lookup_opens_the_registration_trimmed_and_case_insensitive(staff_client):
    registration = RegistrationFactory(kit_id="1a2B3c4D5e")
    response = staff_client.get(reverse("kits:lookup"), {"kit_id": "  1A2B3C4D5E \n"})
    assert response["Location"] == reverse("kits:detail", args=[registration.pk])


def test_lookup_of_an_unknown_kit_goes_back_with_an_error(staff_client):
    RegistrationFactory(kit_id="KNOWN00001")
    back = "http://testserver" + reverse("orders:list") + "?status=pending"
    response = staff_client.get(reverse("kits:lookup"), {"kit_id": "KNOWN"}, headers={"referer": back})
    assert response["Location"] == back
    assert messages_of(response) == ["No kit registration with that kit id."]
    response = staff_client.get(reverse("kits:lookup"), {"kit_id": ""}, headers={"referer": "https://evil.example/"})
    assert response["Location"] == reverse("kits:list")
    page = staff_client.get(reverse("kits:lookup"), {"kit_id": "nope"}, follow=True).content.decode()
    assert "No kit registration with that kit id." in page


# --- CSV export -------------------------------------------------------------------


def test_export_is_filtered_and_neutralises_formulas(staff_client):
    patient = PatientFactory(first_name='=HYPERLINK("http://evil","x")', last_name="+cmd|' /C calc'!A0")
    kept = RegistrationFactory(patient=patient, kit_id="EXP0000001")
    ResultFactory(registration=kept, status=Status.READY, ready_at=kept.created_at)
    RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.FAILED, last_error="-2+3")
    response = staff_client.get(reverse("kits:export"), {"submission_status": "accepted"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = csv_of(response)
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Kit id"] == "EXP0000001" and row["Submission"] == "Accepted by the lab"
    assert row["Patient first name"] == '\'=HYPERLINK("http://evil","x")'
    assert row["Patient last name"] == "'+cmd|' /C calc'!A0"
    assert row["Result status"] == "ready"
    rows = csv_of(staff_client.get(reverse("kits:export"), {"submission_status": "failed"}))
    assert dict(zip(rows[0], rows[1], strict=True))["Last error"] == "'-2+3"
    assert len(csv_of(staff_client.get(reverse("kits:export"), {"q": "EXP00"}))) == 2


def test_picking_an_existing_patient_needs_the_view_patient_permission(client, order, django_user_model, password):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username="registrar", password=password)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_kitregistration", "add_patient", "use_staff_site"])
    )
    client.force_login(user)
    patient = PatientFactory(first_name="Hidden", last_name="Person")
    content = client.get(register_url(order), {"patient": patient.pk, "patient_q": "hidden"}).content.decode()
    assert "Hidden" not in content and 'name="first_name"' in content
    response = client.post(register_url(order), {"idempotency_key": str(uuid.uuid4()), "patient": patient.pk})
    assert response.status_code == 403
    assert not KitRegistration.objects.exists()


def test_staff_link_a_needs_review_registration_to_the_lab(staff_client):
    registration = RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.NEEDS_REVIEW)
    page = staff_client.get(reverse("kits:detail", args=[registration.pk]))
    assert b"Link to the lab" in page.content
    response = staff_client.post(
        reverse("kits:review", args=[registration.pk]),
        {"action": "link", "upstream_id": "777", "kit_id": "ff00ee11dd"},
        follow=True,
    )
    assert b"Linked to the lab" in response.content
    registration.refresh_from_db()
    assert registration.submission_status == Submission.ACCEPTED and registration.kit_id == "ff00ee11dd"
    assert Result.objects.filter(registration=registration, upstream_id=777).exists()
