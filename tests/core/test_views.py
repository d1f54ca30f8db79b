import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_user_is_sent_to_login(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_is_public_and_styled(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"bootstrap.min.css" in response.content
    assert b"cdn" not in response.content.lower()


def test_staff_member_logs_in_and_sees_dashboard(client, staff_user, password):
    response = client.post(reverse("login"), {"username": "nurse", "password": password}, follow=True)
    assert response.status_code == 200
    assert b"<h1" in response.content and b"Dashboard" in response.content


def test_wrong_password_shows_an_error(client, staff_user):
    response = client.post(reverse("login"), {"username": "nurse", "password": "wrong-password"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    # In an alert, so a screen reader announces it; the username typed is kept.
    assert re.search(rb'role="alert"><p class="mb-0">Please enter a correct username and password', response.content)
    assert b'value="nurse"' in response.content


def test_user_without_staff_role_gets_403(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(reverse("dashboard")).status_code == 403


def test_logout_ends_the_session(staff_client):
    response = staff_client.post(reverse("logout"))
    assert response.status_code == 302
    assert staff_client.get(reverse("dashboard")).status_code == 302


def test_clinic_staff_cannot_open_admin(staff_client):
    response = staff_client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_can_open_admin(admin_client_):
    assert admin_client_.get("/admin/").status_code == 200


def test_static_bootstrap_is_served_by_the_portal():
    from django.contrib.staticfiles import finders

    assert finders.find("bootstrap/css/bootstrap.min.css")
    assert finders.find("bootstrap/js/bootstrap.bundle.min.js")
