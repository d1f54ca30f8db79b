import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.core.states import Status, Submission
from tests.factories import AddressFactory, OrderFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def patient():
    patient = PatientFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com", phone="6175550123")
    AddressFactory(patient=patient, street1="12 Analytical Way", zipcode="02139")
    AddressFactory(patient=patient, street1="1 Engine St", street2="Unit 2", city="Boston", zipcode="02110-1234")
    return patient


def test_anonymous_users_are_sent_to_login(client, patient):
    order = OrderFactory()
    for url in (
        reverse("patients:list"),
        reverse("patients:detail", args=[patient.pk]),
        reverse("patients:register_kit", args=[patient.pk]) + f"?order={order.pk}",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_users_without_the_permission_get_403(client, no_role_user, patient):
    client.force_login(no_role_user)
    order = OrderFactory()
    for url in (
        reverse("patients:list"),
        reverse("patients:detail", args=[patient.pk]),
        reverse("patients:register_kit", args=[patient.pk]) + f"?order={order.pk}",
    ):
        assert client.get(url).status_code == 403, url


def test_empty_list_says_what_to_do_next(staff_client):
    response = staff_client.get(reverse("patients:list"))
    assert response.context["title"] == "Patients"
    content = response.content.decode()
    assert "No patients yet" in content and "Register a kit for this order" in content


def test_search_by_name_and_email(staff_client, patient):
    PatientFactory(first_name="Grace", last_name="Hopper", email="grace@navy.example")
    for query in ("ada", "LOVELACE", "ada lovelace", "ada@example", " Ada "):
        response = staff_client.get(reverse("patients:list"), {"q": query})
        assert [p.pk for p in response.context["patients"]] == [patient.pk], query
    response = staff_client.get(reverse("patients:list"), {"q": "nobody"})
    assert "No patient matches “nobody”" in response.content.decode()


def test_a_one_or_two_letter_word_matches_a_whole_name(staff_client):
    li = PatientFactory(first_name="Mei", last_name="Li", email="mei@example.com")
    PatientFactory(first_name="Alice", last_name="Williams", email="alice@example.com")
    wu = PatientFactory(first_name="Wu", last_name="Chen", email="chen@example.com")
    for query, wanted in (("li", [li]), ("LI mei", [li]), ("wu", [wu])):
        response = staff_client.get(reverse("patients:list"), {"q": query})
        assert [p.pk for p in response.context["patients"]] == [p.pk for p in wanted], query


def test_list_shows_contact_details_and_kit_counts(staff_client, patient):
    RegistrationFactory.create_batch(2, patient=patient)
    content = staff_client.get(reverse("patients:list")).content.decode()
    assert "Lovelace, Ada" in content and "ada@example.com" in content and "(617) 555-0123" in content
    assert '<td class="text-end">2</td>' in content
    assert '<th scope="col">Date of birth</th>' in content


def test_list_paginates(staff_client):
    PatientFactory.create_batch(51)
    assert len(staff_client.get(reverse("patients:list")).context["patients"]) == 50
    assert len(staff_client.get(reverse("patients:list"), {"page": "2"}).context["patients"]) == 1


def test_list_runs_a_constant_number_of_queries(staff_client):
    RegistrationFactory()
    one = count_queries(staff_client, reverse("patients:list"))
    RegistrationFactory.create_batch(49)
    assert count_queries(staff_client, reverse("patients:list")) == one


def test_detail_shows_contact_addresses_kits_and_results(staff_client, patient):
    accepted = OrderFactory(upstream_id=5150)
    pending = RegistrationFactory(patient=patient, order=accepted, kit_id="PENDING001")
    ready = RegistrationFactory(patient=patient, kit_id="READY00001")
    ResultFactory(registration=ready, status=Status.READY, state="ready", ready_at=ready.created_at)
    response = staff_client.get(reverse("patients:detail", args=[patient.pk]))
    assert response.status_code == 200 and response.context["title"] == "Ada Lovelace"
    content = response.content.decode()
    for text in ("ada@example.com", "(617) 555-0123", "Apr 12, 1985", "12 Analytical Way", "Unit 2", "02110-1234"):
        assert text in content, text
    assert content.index("12 Analytical Way") < content.index("1 Engine St")
    assert reverse("kits:detail", args=[pending.pk]) in content and "READY00001" in content
    assert "text-bg-success" in content and "Ready" in content
    assert reverse("results:detail", args=[ready.result.pk]) in content
    # "Register a kit": a select of accepted orders.
    assert f'<option value="{accepted.pk}">Lab order 5150' in content
    assert 'for="id_order"' in content


def test_detail_without_accepted_orders_says_what_to_do(staff_client, patient):
    from decimal import Decimal

    from portal.orders.models import Order

    Order.objects.create(amount=Decimal("1.00"), submission_status=Submission.QUEUED)
    content = staff_client.get(reverse("patients:detail", args=[patient.pk])).content.decode()
    assert 'first <a href="/orders/new/">create an order</a>' in content


def test_register_a_kit_goes_to_the_form_with_the_patient_picked(staff_client, patient):
    order = OrderFactory()
    response = staff_client.get(reverse("patients:register_kit", args=[patient.pk]), {"order": order.pk})
    assert response["Location"] == reverse("orders:register_kit", args=[order.pk]) + f"?patient={patient.pk}"
    page = staff_client.get(response["Location"]).content.decode()
    assert "Ada Lovelace" in page and "12 Analytical Way" in page


def test_register_a_kit_needs_an_accepted_order(staff_client, patient):
    from decimal import Decimal

    from portal.orders.models import Order

    queued = Order.objects.create(amount=Decimal("1.00"))
    response = staff_client.get(reverse("patients:register_kit", args=[patient.pk]), {"order": queued.pk})
    assert response["Location"] == reverse("patients:detail", args=[patient.pk])
    assert messages_of(response) == ["That order cannot take kit registrations; choose another."]
    response = staff_client.get(reverse("patients:register_kit", args=[patient.pk]))
    assert messages_of(response)[-1] == "Choose the order to register the kit against."


def test_missing_patient_is_404(staff_client):
    assert staff_client.get(reverse("patients:detail", args=[424242])).status_code == 404


def test_script_in_a_name_is_shown_escaped(staff_client):
    patient = PatientFactory(first_name="<script>alert(1)</script>", last_name="<img src=x onerror=alert(2)>")
    for url in (reverse("patients:detail", args=[patient.pk]), reverse("patients:list")):
        content = staff_client.get(url).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content, url
        assert "<script>alert(1)" not in content and "<img src=x" not in content, url
