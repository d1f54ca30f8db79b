"""Headers on every page: CSP, HSTS, nosniff, framing, referrer, and no caching of
pages shown to a signed-in person (they hold PHI)."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from portal.accounts.middleware import NoStoreForAuthenticatedMiddleware

pytestmark = pytest.mark.django_db


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


@pytest.fixture
def pages(client, staff_client):
    """A public page and a signed-in page."""
    from django.test import Client

    return [Client().get(reverse("login")), staff_client.get(reverse("dashboard"))]


def test_content_security_policy_on_every_page(pages):
    for response in pages:
        policy = _csp(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]


def test_csp_is_also_on_error_pages(staff_client):
    response = staff_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_pages_have_no_inline_script(pages, admin_client_):
    # With script-src 'self' an inline script would not run: none may be written.
    for response in [*pages, admin_client_.get("/admin/"), admin_client_.get("/admin/accounts/user/")]:
        html = response.content.decode()
        scripts = re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE)
        assert scripts, "the page loads Bootstrap's script"
        for tag in scripts:
            assert "src=" in tag, tag
        assert not re.search(r"\son[a-z]+\s*=", html, flags=re.IGNORECASE), "inline event handler"


def test_hsts_over_https_in_production_settings(client, settings):
    assert settings.SECURE_HSTS_SECONDS == 31536000  # the production default (DEBUG off)
    response = client.get(reverse("login"), secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_nosniff_framing_and_referrer_headers(pages):
    for response in pages:
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_are_never_stored(staff_client):
    response = staff_client.get(reverse("dashboard"))
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control


def test_login_page_is_never_stored(client):
    assert "no-store" in client.get(reverse("login"))["Cache-Control"]


def test_two_factor_pages_are_never_stored(client, admin_user, password):
    client.post(reverse("login"), {"username": "boss", "password": password})
    assert "no-store" in client.get(reverse("two_factor_setup"))["Cache-Control"]


def _through_middleware(user, response: HttpResponse) -> HttpResponse:
    request = RequestFactory().get("/export.csv")
    request.user = user
    return NoStoreForAuthenticatedMiddleware(lambda request: response)(request)


def test_a_cacheable_csv_for_a_signed_in_person_is_made_no_store(staff_user):
    response = HttpResponse("id\n1\n", content_type="text/csv")
    response["Cache-Control"] = "public, max-age=3600"
    cache_control = _through_middleware(staff_user, response)["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control
    assert "public" not in cache_control


def test_anonymous_responses_are_left_alone():
    response = HttpResponse("public", content_type="text/html")
    response["Cache-Control"] = "public, max-age=60"
    assert _through_middleware(AnonymousUser(), response)["Cache-Control"] == "public, max-age=60"


def _page_templates():
    from django.conf import settings

    root = settings.BASE_DIR / "templates"
    # Emails are not pages: mail clients need inline styles and no CSP applies.
    return [path for path in root.rglob("*.html") if "notifications" not in path.relative_to(root).parts]


def test_no_template_writes_inline_script_handlers_or_styles():
    """The CSP blocks inline scripts, event handlers and style attributes: a template
    that used one would silently lose it in the browser."""
    offenders = []
    for path in _page_templates():
        html = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
            if "src=" not in tag:
                offenders.append(f"{path.name}: inline <script>")
        if re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, flags=re.IGNORECASE):
            offenders.append(f"{path.name}: inline event handler")
        if re.search(r"<[a-z][^>]*\sstyle\s*=", html, flags=re.IGNORECASE) or "<style" in html.lower():
            offenders.append(f"{path.name}: inline style")
    assert offenders == []
