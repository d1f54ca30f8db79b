"""The partner's JSON both ways: each quirk of the reference as NOTES.md settles it."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest

from portal.upstream import payloads
from portal.upstream.errors import UpstreamProtocolError
from portal.upstream.types import AddressIn, OrderIn, RegistrationIn
from tests.upstream.conftest import ADDRESS, a_registration


def test_amount_is_a_json_number_with_two_decimals():
    assert payloads.dumps(payloads.order_body(OrderIn(amount=Decimal("199")))) == b'{"amount": 199.00}'
    assert json.loads(payloads.dumps(payloads.order_body(OrderIn(amount=Decimal("12.5"))))) == {"amount": 12.5}


@pytest.mark.parametrize("amount", ["0", "-1.00", "10.001", "NaN", "Infinity"])
def test_an_amount_the_partner_cannot_take_is_refused_before_sending(amount):
    with pytest.raises(ValueError, match="amount"):
        payloads.order_body(OrderIn(amount=Decimal(amount)))


def test_dob_is_epoch_milliseconds_of_midnight_utc_by_default():
    assert payloads.dob_value(datetime.date(1984, 7, 9)) == 458179200000


def test_dob_is_epoch_seconds_when_configured(settings):
    settings.EVERLYWELL_DOB_UNIT = "s"
    assert payloads.dob_value(datetime.date(1984, 7, 9)) == 458179200
    assert payloads.dob_value(datetime.date(1950, 1, 1)) == -631152000


@pytest.mark.parametrize("phone", ["(617) 555-0123", "617.555.0123", "6175550123", "+1 617 555 0123"])
def test_phone_is_sent_as_the_int_of_its_ten_digits(phone):
    assert payloads.phone_value(phone) == 6175550123


@pytest.mark.parametrize("phone", ["555-0123", "(617) 555-01234", ""])
def test_a_phone_that_is_not_ten_digits_is_refused(phone):
    with pytest.raises(ValueError, match="10-digit"):
        payloads.phone_value(phone)


def test_zip_is_the_int_of_its_five_digits_by_default_losing_the_leading_zero():
    assert payloads.zipcode_value("02139") == 2139
    assert payloads.zipcode_value("02139-4307") == 2139


def test_zip_is_sent_as_stored_when_configured(settings):
    settings.EVERLYWELL_ZIP_AS_STRING = True
    assert payloads.zipcode_value("02139") == "02139"
    assert payloads.zipcode_value("02139-4307") == "02139-4307"


@pytest.mark.parametrize("zipcode", ["2139", "02139-43", "ABCDE"])
def test_a_malformed_zip_is_refused(zipcode):
    with pytest.raises(ValueError, match="zipcode"):
        payloads.zipcode_value(zipcode)


def test_registration_body_has_the_reference_shape_and_street2_defaults_to_empty():
    body = payloads.registration_body(a_registration())
    assert body == {
        "user": {
            "email": "jane.roe@example.org",
            "first_name": "Janet",
            "last_name": "Roewaldt",
            "dob": 458179200000,
            "phone_number": 6175550123,
            "gender": "female",
        },
        "addresses": [
            {"street1": "77 Massachusetts Ave", "street2": "", "city": "Cambridge", "state": "MA", "zipcode": 2139}
        ],
    }


def test_a_registration_needs_an_address():
    registration = RegistrationIn(user=a_registration().user, addresses=())
    with pytest.raises(ValueError, match="address"):
        payloads.registration_body(registration)


def test_inputs_do_not_show_patient_data_in_their_repr():
    text = repr(a_registration()) + repr(AddressIn(**ADDRESS))
    for secret in ("jane", "Janet", "Roewaldt", "617", "1984", "Massachusetts", "02139"):
        assert secret not in text


@pytest.mark.parametrize("state", ["registred", "registered"])
def test_registred_and_registered_are_the_same_state(state):
    data = {"id": 3, "state": state, "kit_id": "1a2b3c4d5e", "user_id": 9}
    assert payloads.parse_registration(data).state == "registered"


def test_an_unknown_state_is_kept_verbatim():
    assert payloads.parse_result({"id": 4, "state": "quality_review"}).state == "quality_review"
    assert payloads.parse_order({"id": 4, "state": "on_hold"}, state_required=True).state == "on_hold"


def test_the_reference_trailing_comma_body_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError, match="not valid JSON"):
        payloads.loads(b'{\n    "id": 1,\n    "state": "ready",\n}')


@pytest.mark.parametrize("body", [b"<html><body>Bad gateway</body></html>", b"[1, 2]", b"\xff\xfe", b""])
def test_a_body_that_is_not_a_json_object_is_a_protocol_error(body):
    with pytest.raises(UpstreamProtocolError):
        payloads.loads(body)


@pytest.mark.parametrize(
    "data",
    [
        {"state": "ready"},
        {"id": "1", "state": "ready"},
        {"id": 1.0, "state": "ready"},
        {"id": True, "state": "ready"},
        {"id": 1},
        {"id": 1, "state": 7},
        {"id": 1, "state": ""},
    ],
)
def test_missing_or_mistyped_fields_are_protocol_errors(data):
    with pytest.raises(UpstreamProtocolError):
        payloads.parse_result(payloads.loads(json.dumps(data).encode()))


def test_an_answer_about_another_id_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError, match="not the id asked for"):
        payloads.parse_result({"id": 5, "state": "ready"}, expected_id=4)


def test_a_registration_without_kit_id_or_with_a_text_user_id_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError, match="kit_id"):
        payloads.parse_registration({"id": 1, "state": "registred", "user_id": 1})
    with pytest.raises(UpstreamProtocolError, match="user_id"):
        payloads.parse_registration({"id": 1, "state": "registred", "kit_id": "ab", "user_id": "1"})


def test_order_amounts_are_read_as_decimals():
    order = payloads.parse_order(payloads.loads(b'{"id": 1, "amount": 199.00}'), state_required=False)
    assert order.amount == Decimal("199.00")
    assert order.state is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": "zipcode must be an int"}', "zipcode must be an int"),
        (b'{"message": "bad"}', "bad"),
        (b'{"errors": {"user": ["email is invalid"]}}', "user: email is invalid"),
        (b"Service refused\n\n   the request", "Service refused the request"),
    ],
)
def test_the_partner_message_is_extracted_for_staff(body, expected):
    assert payloads.partner_message(body) == expected


def test_the_partner_message_is_truncated():
    assert len(payloads.partner_message(b"x" * 5000)) == 300


def test_an_overlong_kit_id_is_a_protocol_error():
    from portal.upstream import payloads
    from portal.upstream.errors import UpstreamProtocolError

    with pytest.raises(UpstreamProtocolError, match="64"):
        payloads.parse_registration({"id": 1, "state": "registred", "kit_id": "k" * 65, "user_id": 1})
