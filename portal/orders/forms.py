"""Forms of the orders pages. They validate what staff typed; services do the rest."""

from __future__ import annotations

import uuid
from decimal import Decimal

from crispy_forms.helper import FormHelper
from django import forms

from portal.orders.models import Order

# The model's DecimalField(max_digits=10, decimal_places=2).
MAX_AMOUNT = Decimal("99999999.99")
# A BigIntegerField: the largest lab id the database can hold.
MAX_LAB_ID = 2**63 - 1


class AmountField(forms.DecimalField):
    """Dollars and cents: "199", "199.00" or "$199.00"; more than zero, at most 2 decimal places."""

    default_error_messages = {
        "required": "Enter the amount, e.g. 199.00.",
        "invalid": "Enter the amount as a number, e.g. 199.00 (no commas).",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Amount (USD)")
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "199.00"})
        )
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().removeprefix("$").strip()
        return super().to_python(value)

    def validate(self, value):
        super().validate(value)
        if value is None:
            return
        if value <= 0:
            raise forms.ValidationError("The amount must be more than 0.00.", code="min_value")
        if value != value.quantize(Decimal("0.01")):
            raise forms.ValidationError("Enter at most 2 decimal places (cents), e.g. 199.99.", code="decimal_places")
        if value > MAX_AMOUNT:
            raise forms.ValidationError("The amount is too large (at most 99,999,999.99).", code="max_value")

    def clean(self, value):
        value = super().clean(value)
        return value.quantize(Decimal("0.01")) if value is not None else None


class LabIdField(forms.IntegerField):
    default_error_messages = {
        "required": "Enter the lab's order id.",
        "invalid": "Enter the lab's order id (digits only).",
        "min_value": "Enter the lab's order id (a positive number).",
        "max_value": "This is not a lab order id (too long).",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Lab order id")
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_LAB_ID)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().lstrip("#")
        return super().to_python(value)


class IdempotencyKeyField(forms.CharField):
    """The hidden key rendered once per form: a double click or a resubmitted form
    sends the same key, and the service returns the record it made the first time.
    A missing or tampered key gets a fresh one (no protection, but no error either)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        try:
            return uuid.UUID(str(super().clean(value)))
        except ValueError:
            return uuid.uuid4()


def _helper() -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    return helper


class OrderCreateForm(forms.Form):
    idempotency_key = IdempotencyKeyField()
    amount = AmountField(help_text="The total price of the order, in dollars and cents.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class OrderImportForm(forms.Form):
    upstream_id = LabIdField(help_text="The id the lab gave the order (on its invoice or in its portal).")
    amount = AmountField(help_text="From the lab's invoice: the lab does not tell the portal an order's amount.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper()


class OrderReviewForm(forms.Form):
    """Settle an order whose submission outcome is unknown (order_resolve_review)."""

    LINK = "link"
    ABSENT = "absent"

    action = forms.ChoiceField(choices=[(LINK, "Link to lab order id"), (ABSENT, "Confirm it does not exist")])
    upstream_id = LabIdField(required=False, help_text="Only when the lab found the order.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") == self.LINK and not cleaned.get("upstream_id") and "upstream_id" not in self.errors:
            self.add_error("upstream_id", "Enter the lab's order id to link this order to it.")
        if cleaned.get("action") == self.ABSENT:
            cleaned["upstream_id"] = None
        return cleaned


class OrderChoiceForm(forms.Form):
    """Pick an accepted order to register a kit against (from a patient's page)."""

    order = forms.ModelChoiceField(
        queryset=Order.objects.none(),
        label="Order",
        empty_label="Choose an order…",
        error_messages={
            "required": "Choose the order to register the kit against.",
            "invalid_choice": "That order cannot take kit registrations; choose another.",
        },
    )

    def __init__(self, *args, orders=None, **kwargs):
        super().__init__(*args, **kwargs)
        if orders is not None:
            self.fields["order"].queryset = orders
        self.fields["order"].label_from_instance = lambda o: (
            f"Lab order {o.upstream_id} · {o.amount} · {o.state or '-'}"
        )
