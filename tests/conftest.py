"""Shared fixtures: users in each role, and a guard that blocks real network access.

Like zulip's test runner, any connection to a host that is not this machine fails
loudly, so a test can never reach the real lab partner by accident. Tests mock the
partner with `responses`; end-to-end tests use the sandbox on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket

import pytest

from portal.accounts.roles import ADMINS, CLINIC_STAFF

pytest_plugins = ["tests.partner", "tests.sandbox_fixtures"]

_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}  # noqa: S104
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if host not in _LOCAL_HOSTS:
        raise ConnectionRefusedError(f"tests may not reach the network (tried {host!r})")


def _guarded_connect(self, address):
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(self, address)
    return _real_connect_ex(self, address)


def pytest_collection_modifyitems(config, items):
    """Integration tests need real servers and a shared database: CI's second pass
    (RUN_INTEGRATION=1, PostgreSQL + Redis) runs them; the default pass skips them."""
    if os.environ.get("RUN_INTEGRATION") == "1":
        return
    skip = pytest.mark.skip(reason="needs RUN_INTEGRATION=1 with PostgreSQL and Redis (CI pass 2)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _block_network():
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture(autouse=True)
def _plain_static_files(settings, tmp_path_factory):
    """Tests run with DEBUG off but without `collectstatic`: serve unhashed files."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def password() -> str:
    return "a-long-test-password-42"


@pytest.fixture
def staff_user(db, password):
    from portal.accounts.services import user_create_in_role

    user, _ = user_create_in_role(username="nurse", role=CLINIC_STAFF, password=password)
    return user


@pytest.fixture
def admin_user(db, password):
    from portal.accounts.services import user_create_in_role

    user, _ = user_create_in_role(username="boss", role=ADMINS, password=password)
    return user


@pytest.fixture
def no_role_user(db, django_user_model, password):
    return django_user_model.objects.create_user(username="visitor", password=password)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def admin_client_(client, admin_user):
    """An admin signed in with password and second factor (admin requires both)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=admin_user, name="Test authenticator", confirmed=True)
    client.force_login(admin_user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
