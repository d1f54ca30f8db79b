"""Nothing that identifies a patient, and no secret, reaches the logs or the call
log: a whole flow is run with every logger at DEBUG and the output searched."""

from __future__ import annotations

import base64
import logging
from decimal import Decimal

import pytest

from portal.upstream.errors import UpstreamProtocolError, UpstreamRejected
from portal.upstream.models import UpstreamCall
from portal.upstream.tokens import TOKEN_KEY
from portal.upstream.types import OrderIn
from tests.upstream.conftest import API, a_registration

pytestmark = pytest.mark.django_db

PATIENT_DATA = [
    # name
    "Janet",
    "Roewaldt",
    # email
    "jane.roe@example.org",
    "jane.roe",
    # phone, in every format it may take
    "(617) 555-0123",
    "617-555-0123",
    "617.555.0123",
    "6175550123",
    "555-0123",
    # date of birth, as a date and as sent (ms and s)
    "1984-07-09",
    "07/09/1984",
    "458179200",
    # address
    "77 Massachusetts Ave",
    "Massachusetts",
    "Cambridge",
]


def everything_logged(caplog) -> str:
    """Messages, arguments and extra fields of every record."""
    return "\n".join(f"{record.getMessage()} {vars(record)!r}" for record in caplog.records)


def everything_in_the_call_log() -> str:
    return "\n".join(repr(row) for row in UpstreamCall.objects.values_list())


def assert_absent(text: str, needles: list[str]) -> None:
    found = [needle for needle in needles if needle.lower() in text.lower()]
    assert found == [], f"found in the logs: {found}"


def test_a_whole_flow_logs_no_patient_data_token_or_credentials(start_sandbox, settings, caplog):
    sandbox = start_sandbox(quiet=False)  # the sandbox's access log is searched too
    sandbox.configure(settings)
    caplog.set_level(logging.DEBUG)  # the root logger: urllib3, requests, django, ours
    from portal.upstream.client import get_client

    client = get_client()
    order = client.create_order(OrderIn(amount=Decimal("199.00")))
    client.get_order(order.id)
    registration = client.register_kit(order.id, a_registration())
    sandbox.clock.advance(90)
    assert client.get_result(registration.id).state == "ready"
    # And the failure paths: a refusal, and the reference's trailing-comma body.
    with pytest.raises(UpstreamRejected):
        client.register_kit(order.id, a_registration(email="no-at-sign"))
    sandbox.options.malformed_rate = 1.0
    with pytest.raises(UpstreamProtocolError):
        client.get_result(registration.id)

    token = client._tokens.cache.get(TOKEN_KEY)["value"]
    basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    secrets = [token, token.split(".")[1], basic, sandbox.client_secret]
    logged = everything_logged(caplog)
    assert "upstream register_kit POST /v1/kits/{invoice_id}/registration" in logged
    assert '"POST /aapi/v1/kits/1/registration HTTP/1.1" 201' in logged  # the sandbox's access log
    assert_absent(logged, [*PATIENT_DATA, "no-at-sign", *secrets])
    assert_absent(everything_in_the_call_log(), [*PATIENT_DATA, "no-at-sign", *secrets])


def test_a_partner_message_echoing_patient_data_is_not_logged(upstream, mocked, token, caplog):
    caplog.set_level(logging.DEBUG)
    mocked.post(
        f"{API}/v1/kits/41/registration",
        status=422,
        json={"error": "user jane.roe@example.org (Janet Roewaldt, 6175550123) already registered"},
    )

    with pytest.raises(UpstreamRejected) as caught:
        upstream.register_kit(41, a_registration())

    assert "jane.roe@example.org" in caught.value.partner_message  # for staff, on the record
    assert_absent(everything_logged(caplog), [*PATIENT_DATA, "opaque-token-1"])
    assert_absent(everything_in_the_call_log(), PATIENT_DATA)
