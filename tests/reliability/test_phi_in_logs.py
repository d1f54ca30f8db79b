"""A whole flow against the sandbox over HTTP, with every log line captured: staff
create an order, register a kit to a new patient, search for them, the poller
sees the result become ready, the patient's email is sent and resent. No log line
may carry the patient's data, the sandbox's JWT or the portal's Basic credentials,
and every task is enqueued with ids only.

The client-level version of this check (the client alone, and partner messages
that echo patient data) is tests/upstream/test_logging.py.
"""

from __future__ import annotations

import base64
import logging
import re
import shlex
import uuid
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.cache import cache
from django.urls import reverse

from portal.kits.models import KitRegistration
from portal.kits.tasks import registration_submit_task
from portal.notifications.models import Notification
from portal.notifications.tasks import notification_send_task
from portal.orders.models import Order
from portal.orders.tasks import order_submit_task
from portal.results.models import Result
from portal.results.tasks import results_poll_task
from portal.upstream.tokens import TOKEN_KEY
from tests.kits.test_views import form_data

pytestmark = pytest.mark.django_db

PATIENT = {
    "first_name": "Philomena",
    "last_name": "Quarrington",
    "email": "phil.quarrington@example.org",
    "date_of_birth": "1972-08-19",
    "phone": "(617) 555-0147",
    "gender": "female",
}
HOME = {"street1": "47 Ossington Avenue", "street2": "Unit 9", "city": "Somerville", "state": "MA", "zipcode": "02144"}
PHI = [
    "Philomena", "Quarrington", "phil.quarrington@example.org", "phil.quarrington",
    "6175550147", "(617) 555-0147", "617-555-0147", "617.555.0147", "555-0147",
    "1972-08-19", "08/19/1972", "8/19/1972", "19720819",
    "47 Ossington", "Ossington Avenue", "Unit 9",
]  # fmt: skip
TASKS = (order_submit_task, registration_submit_task, notification_send_task, results_poll_task)


@pytest.fixture
def sandbox_options():
    # The sandbox's own access log is captured too: the URLs the portal calls carry ids only.
    return {"quiet": False, "result_ready_after": 90}


@pytest.fixture
def every_log_line(caplog):
    """caplog at DEBUG on the root logger, and on the loggers that do not propagate to it."""
    caplog.set_level(logging.DEBUG)
    own = [logging.getLogger(name) for name in ("django", "django.request", "django.server", "celery", "celery.app")]
    for logger in own:
        logger.addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG, logger=logger.name)
    yield caplog
    for logger in own:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def enqueued():
    """Every `.delay()` of the portal's tasks, recorded instead of sent to a broker."""
    calls: list[tuple[str, tuple, dict]] = []
    patches = []
    for task in TASKS:

        def record(*args, _name=task.name, **kwargs):
            calls.append((_name, args, kwargs))

        patches.append(mock.patch.object(task, "delay", side_effect=record))
    for patch in patches:
        patch.start()
    yield calls
    for patch in patches:
        patch.stop()


def test_a_whole_flow_logs_no_patient_data_token_or_credentials(
    sandbox_server, settings, staff_client, every_log_line, enqueued, django_capture_on_commit_callbacks, mailoutbox
):
    sandbox_server.configure(settings)

    with django_capture_on_commit_callbacks(execute=True):
        # Staff create an order; the portal sends it to the lab at once.
        staff_client.post(reverse("orders:create"), {"idempotency_key": str(uuid.uuid4()), "amount": "199.00"})
        order = Order.objects.get()
        assert order.upstream_id is not None

        # Staff register a kit to a new patient; it is sent at once too.
        response = staff_client.post(reverse("orders:register_kit", args=[order.pk]), form_data(HOME, **PATIENT))
        assert response.status_code == 302
        registration = KitRegistration.objects.get()
        assert registration.kit_id

        # Staff look the patient up and open their pages; a mistyped address is a 404.
        staff_client.get(reverse("patients:list") + "?q=Quarrington")
        staff_client.get(reverse("patients:detail", args=[registration.patient_id]))
        staff_client.get(reverse("kits:detail", args=[registration.pk]))
        assert staff_client.get("/patients/999999/").status_code == 404

        # The lab finishes; beat's poll task sees the result ready.
        sandbox_server.clock.advance(91)
        results_poll_task.apply(throw=True)
    result = Result.objects.get()
    assert result.status == "ready"

    # The email task, enqueued on commit with the notification's id, sends it.
    assert Notification.objects.count() == 1
    for name, args, _ in list(enqueued):
        if name == notification_send_task.name:
            notification_send_task.apply(args=args, throw=True)
    assert len(mailoutbox) == 1

    # Staff open the result and resend the email.
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.get(reverse("results:detail", args=[result.pk]))
        staff_client.post(reverse("results:resend", args=[result.pk]))

    # Task arguments: ids only.
    assert {name for name, _, _ in enqueued} == {notification_send_task.name}
    assert len(enqueued) == 2
    for _, args, kwargs in enqueued:
        assert kwargs == {} and all(type(arg) is int for arg in args)
    assert sorted(args[0] for _, args, _ in enqueued) == sorted(Notification.objects.values_list("pk", flat=True))

    # Nothing of the patient, the token or the credentials in any log line.
    jwt = cache.get(TOKEN_KEY)["value"]  # the sandbox's token, shared through the cache
    basic = base64.b64encode(f"{settings.EVERLYWELL_CLIENT_ID}:{settings.EVERLYWELL_CLIENT_SECRET}".encode()).decode()
    secrets = [jwt, jwt.split(".")[1], jwt.split(".")[2], basic, settings.EVERLYWELL_CLIENT_SECRET]
    logged = "\n".join(f"{record.getMessage()} {vars(record)!r}" for record in every_log_line.records)
    assert "upstream register_kit POST /v1/kits/{invoice_id}/registration" in logged  # the flow was logged
    assert "POST /aapi/v1/kits/" in logged  # including the sandbox's access log
    assert "Not Found: /patients/999999/" in logged  # and Django's request log
    leaked = [text for text in [*PHI, *secrets] if text.lower() in logged.lower()]
    assert leaked == []


def test_the_web_servers_access_log_leaves_search_terms_out(settings):
    """Staff search with `?q=<name>`: gunicorn's access line (as the Procfile runs it)
    has the path only, neither the query string nor the referer."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    web = next(line for line in (settings.BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", web.removeprefix("web:"))  # ${PORT:-8000} -> 8000
    config = Config()
    for name, value in vars(config.parser().parse_args(shlex.split(command)[1:])).items():
        if value is not None and name in config.settings:
            config.set(name, value)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/patients/?q=Quarrington",
        "PATH_INFO": "/patients/",
        "QUERY_STRING": "q=Quarrington",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": "https://portal.example/patients/?q=Philomena",
    }
    response = SimpleNamespace(status="200 OK", sent=1234, headers=[])
    atoms = Logger(config).atoms(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=12))

    line = config.access_log_format % atoms
    assert '"GET /patients/" 200 1234 12ms' in line
    assert "Quarrington" not in line and "Philomena" not in line and "q=" not in line
