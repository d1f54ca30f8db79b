"""Two-factor authentication (TOTP): always for admins, for clinic staff when
REQUIRE_2FA_FOR_STAFF is on; enrolment in the portal; admin needs a verified session."""

import re
import urllib.parse

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.admin_site import PortalAdminSite
from tests.accounts.helpers import totp_code, wrong_totp_code

pytestmark = pytest.mark.django_db

VERIFY = "/accounts/2fa/verify/"
SETUP = "/accounts/2fa/setup/"


@pytest.fixture
def admin_device(admin_user):
    return TOTPDevice.objects.create(user=admin_user, name="Phone", confirmed=True)


def _sign_in(client, username, password, next_url=None):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("login"), data)


def test_urls_are_where_the_issue_says():
    assert reverse("two_factor_verify") == VERIFY
    assert reverse("two_factor_setup") == SETUP


def test_admin_with_an_app_is_asked_for_a_code_after_the_password(client, admin_device, password):
    response = _sign_in(client, "boss", password)
    assert response.status_code == 302
    assert response["Location"] == f"{VERIFY}?next=%2F"


def test_admin_without_an_app_is_sent_to_enrolment(client, admin_user, password):
    response = _sign_in(client, "boss", password, next_url="/admin/")
    assert response["Location"] == f"{SETUP}?next=%2Fadmin%2F"


def test_until_verified_every_page_leads_to_the_code_step(client, admin_device, password):
    _sign_in(client, "boss", password)
    for path in ("/", "/admin/", "/admin/accounts/user/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(VERIFY), path
    # ...except the pages that must stay open.
    assert client.get(VERIFY).status_code == 200
    assert client.get(reverse("healthz")).status_code == 200
    assert not client.get("/static/css/portal.css").get("Location", "").startswith(VERIFY)
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_right_code_opens_the_portal_and_admin(client, admin_device, password):
    _sign_in(client, "boss", password)
    key_after_password = client.session.session_key
    response = client.post(VERIFY, {"token": totp_code(admin_device), "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session.session_key != key_after_password  # new key after the second factor
    assert client.get("/admin/").status_code == 200
    assert client.get("/").status_code == 200


def test_code_typed_with_a_space_is_accepted(client, admin_device, password):
    _sign_in(client, "boss", password)
    code = totp_code(admin_device)
    response = client.post(VERIFY, {"token": f"{code[:3]} {code[3:]}"})
    assert response.status_code == 302


def test_wrong_code_is_refused_with_a_message_and_further_guesses_are_slowed(client, admin_device, password):
    _sign_in(client, "boss", password)
    response = client.post(VERIFY, {"token": wrong_totp_code(admin_device)})
    assert response.status_code == 200
    assert "That code is not right." in response.content.decode()
    assert client.get("/").status_code == 302

    # Straight after a wrong code even the right one waits (django-otp's growing delay).
    response = client.post(VERIFY, {"token": totp_code(admin_device)})
    assert "Too many wrong codes. Wait" in response.content.decode()
    assert client.get("/").status_code == 302


def test_a_code_is_accepted_only_once(client, admin_device, password):
    code = totp_code(admin_device)
    _sign_in(client, "boss", password)
    assert client.post(VERIFY, {"token": code}).status_code == 302
    client.post(reverse("logout"))
    _sign_in(client, "boss", password)
    response = client.post(VERIFY, {"token": code})
    assert response.status_code == 200
    assert "That code is not right." in response.content.decode()


def test_letters_are_a_field_error(client, admin_device, password):
    _sign_in(client, "boss", password)
    response = client.post(VERIFY, {"token": "12ab56"})
    assert response.status_code == 200
    assert "Enter the 6 digits your app shows." in response.content.decode()


def test_verify_ignores_a_next_url_on_another_site(client, admin_device, password):
    _sign_in(client, "boss", password)
    response = client.post(VERIFY, {"token": totp_code(admin_device), "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_enrolment_shows_the_secret_as_text_uri_and_qr_code_then_confirms(client, admin_user, password):
    _sign_in(client, "boss", password)
    page = client.get(SETUP, {"next": "/admin/"})
    assert page.status_code == 200
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=admin_user)
    assert not device.confirmed
    assert "otpauth://totp/" in html and "issuer=" in html
    secret = re.search(r'<code[^>]*id="totp-secret">([A-Z2-7 ]+)</code>', html).group(1)
    assert "".join(secret.split()) in page.context["otpauth_uri"]
    qr = re.search(r'<img[^>]*src="(data:image/svg\+xml[^"]+)"[^>]*alt="QR code of the setup key"', html)
    assert qr and "<svg" in urllib.parse.unquote(qr.group(1))  # an image, no inline markup
    assert re.search(r'<label\s+for="id_token"', html)  # the field is labelled

    # Reloading keeps the same secret (the app may have been scanned already).
    assert client.get(SETUP).context["otpauth_uri"] == page.context["otpauth_uri"]

    response = client.post(SETUP, {"token": wrong_totp_code(device)})
    assert "That code is not right." in response.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # no waiting in tests
    response = client.post(SETUP, {"token": totp_code(device), "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    follow = client.get("/admin/")
    assert follow.status_code == 200
    assert "Two-factor authentication is on for your account." in [str(m) for m in follow.context["messages"]]


def test_enrolled_person_cannot_enrol_a_second_app_with_the_password_alone(client, admin_device, password):
    _sign_in(client, "boss", password)
    response = client.get(SETUP)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=admin_device.user).count() == 1


def test_staff_sign_in_with_password_only_when_2fa_for_staff_is_off(client, staff_user, password, settings):
    settings.REQUIRE_2FA_FOR_STAFF = False
    response = _sign_in(client, "nurse", password)
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_staff_need_2fa_when_it_is_on(client, staff_user, password, settings):
    settings.REQUIRE_2FA_FOR_STAFF = True
    response = _sign_in(client, "nurse", password)
    assert response["Location"].startswith(SETUP)
    assert client.get("/").status_code == 302


def test_staff_2fa_defaults_on_in_production_and_off_when_debugging():
    from tests.accounts.helpers import PRODUCTION_ENV, manage

    show = "from django.conf import settings as s; print('2FA', s.REQUIRE_2FA_FOR_STAFF)"
    production = manage("shell", "-c", show, env=PRODUCTION_ENV)
    assert production.returncode == 0, production.stderr
    assert "2FA True" in production.stdout
    debugging = manage("shell", "-c", show, env={"DJANGO_DEBUG": "True"})
    assert debugging.returncode == 0, debugging.stderr
    assert "2FA False" in debugging.stdout


def test_superuser_without_is_staff_still_needs_2fa(client, django_user_model, password):
    root = django_user_model.objects.create_superuser(username="root", password=password)
    django_user_model.objects.filter(pk=root.pk).update(is_staff=False)
    response = _sign_in(client, "root", password)
    assert response["Location"].startswith(SETUP)


def test_admin_site_refuses_an_unverified_admin_by_itself(admin_user, admin_device):
    """Even without the 2FA middleware, admin is closed to a session without a second factor."""
    site = PortalAdminSite()
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    admin_user.is_verified = lambda: False
    assert site.has_permission(request) is False
    admin_user.is_verified = lambda: True
    assert site.has_permission(request) is True
    request.user = AnonymousUser()
    assert site.has_permission(request) is False


def test_the_default_admin_site_is_the_portal_one():
    from django.contrib import admin

    assert isinstance(admin.site._wrapped if hasattr(admin.site, "_wrapped") else admin.site, PortalAdminSite)


def test_admins_can_remove_a_lost_app_so_the_person_enrols_again(admin_client_, staff_user):
    device = TOTPDevice.objects.create(user=staff_user, name="Lost phone", confirmed=True)
    response = admin_client_.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
