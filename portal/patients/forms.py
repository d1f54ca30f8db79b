"""Patient and address forms: every value goes through portal.patients.validators,
so the form, CSV import and admin accept and refuse the same things."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Layout, Row
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator

from portal.patients import validators
from portal.patients.models import Gender
from portal.patients.services import AddressData, PatientData

PATIENT_FIELDS = ("first_name", "last_name", "email", "date_of_birth", "phone", "gender")


class TextField(forms.CharField):
    """A CharField whose control characters (NUL included) are refused by our own
    validators, with one message for all of them, instead of Django's "Null characters"."""

    def __init__(self, *, label: str, max_length: int, required: bool = True, **kwargs):
        attrs = {"maxlength": str(max_length), **kwargs.pop("attrs", {})}
        kwargs.setdefault("widget", forms.TextInput(attrs=attrs))
        super().__init__(
            label=label,
            required=required,
            error_messages={"required": f"{label} is required."},
            **kwargs,
        )
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


def _helper(layout: Layout) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    helper.layout = layout
    helper.render_unmentioned_fields = True
    return helper


class PatientCleaning:
    """The checks and normalisation of a patient's fields, for the staff form and the
    admin's: "(617) 555-0123" is stored as ten digits, names without control characters."""

    def clean_first_name(self):
        return validators.clean_name(self.cleaned_data["first_name"], field="First name")

    def clean_last_name(self):
        return validators.clean_name(self.cleaned_data["last_name"], field="Last name")

    def clean_email(self):
        try:
            return validators.normalize_email(self.cleaned_data["email"])
        except ValidationError as exc:
            if exc.code == "invalid":
                raise ValidationError("Enter a valid email address, e.g. jane@example.com.", code="invalid") from exc
            raise

    def clean_date_of_birth(self):
        return validators.validate_date_of_birth(self.cleaned_data["date_of_birth"])

    def clean_phone(self):
        return validators.normalize_phone(self.cleaned_data["phone"])


class AddressCleaning:
    """The checks of an address's fields (no invisible control characters such as NUL
    or bidi overrides), for the staff form and the admin's."""

    def clean_street1(self):
        return validators.clean_text(self.cleaned_data["street1"], field="Street address", max_length=255)

    def clean_street2(self):
        return validators.clean_text(
            self.cleaned_data["street2"], field="Apartment, suite, etc.", max_length=255, required=False
        )

    def clean_city(self):
        return validators.clean_text(self.cleaned_data["city"], field="City", max_length=100)

    def clean_state(self):
        return validators.normalize_state(self.cleaned_data["state"])

    def clean_zipcode(self):
        return validators.normalize_zip(self.cleaned_data["zipcode"])


class PatientForm(PatientCleaning, forms.Form):
    """A new patient's details."""

    first_name = TextField(label="First name", max_length=100, attrs={"autocomplete": "off"})
    last_name = TextField(label="Last name", max_length=100, attrs={"autocomplete": "off"})
    email = forms.CharField(
        label="Email",
        error_messages={"required": "Enter the patient's email address."},
        widget=forms.EmailInput(attrs={"maxlength": "254", "autocomplete": "off"}),
        help_text="The lab sends the kit's instructions here; the clinic sends the results notice.",
    )
    date_of_birth = forms.DateField(
        label="Date of birth",
        input_formats=["%Y-%m-%d", "%m/%d/%Y"],
        error_messages={
            "required": "Enter the date of birth.",
            "invalid": "Enter a real date, e.g. 1985-04-12 (YYYY-MM-DD) or 04/12/1985.",
        },
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "off"}, format="%Y-%m-%d"),
    )
    phone = forms.CharField(
        label="Phone",
        error_messages={"required": "Enter the patient's phone number."},
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "off", "maxlength": "30"}),
        help_text="A 10-digit US number in any format, e.g. (617) 555-0123.",
    )
    gender = forms.ChoiceField(
        label="Gender",
        choices=[("", "Choose…"), *Gender.choices],
        error_messages={
            "required": "Choose the patient's gender (the lab requires it).",
            "invalid_choice": "Choose one of the listed options.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Layout(
                Row(Column("first_name", css_class="col-md-6"), Column("last_name", css_class="col-md-6")),
                Row(Column("email", css_class="col-md-6"), Column("phone", css_class="col-md-6")),
                Row(Column("date_of_birth", css_class="col-md-6"), Column("gender", css_class="col-md-6")),
            )
        )

    def patient_data(self) -> PatientData:
        return PatientData(**{name: self.cleaned_data[name] for name in PATIENT_FIELDS})


class AddressForm(AddressCleaning, forms.Form):
    street1 = TextField(label="Street address", max_length=255)
    street2 = TextField(label="Apartment, suite, etc. (optional)", max_length=255, required=False)
    city = TextField(label="City", max_length=100)
    # Text with a dropdown, so the validator (not the choice list) words the error:
    # "ma" is accepted as MA, a territory gets its own message.
    state = forms.CharField(
        label="State",
        error_messages={"required": "Choose the state."},
        widget=forms.Select(choices=[("", "Choose…"), *validators.US_STATES]),
    )
    zipcode = forms.CharField(
        label="ZIP code",
        error_messages={"required": "Enter the ZIP code."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "maxlength": "10", "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Layout(
                Row(Column("street1", css_class="col-md-7"), Column("street2", css_class="col-md-5")),
                Row(
                    Column("city", css_class="col-md-5"),
                    Column("state", css_class="col-md-4"),
                    Column(Field("zipcode"), css_class="col-md-3"),
                ),
            )
        )


class BaseAddressFormSet(forms.BaseFormSet):
    default_error_messages = {
        **forms.BaseFormSet.default_error_messages,
        "too_few_forms": "Enter at least one address.",
        "too_many_forms": "Enter at most %(num)d addresses.",
    }

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = "Remove this address"

    def addresses(self) -> list[AddressData]:
        """The addresses kept, in the order they were entered (blank added rows skipped)."""
        return [
            AddressData(**{k: v for k, v in form.cleaned_data.items() if k != "DELETE"})
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


AddressFormSet = forms.formset_factory(
    AddressForm,
    formset=BaseAddressFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=10,
    validate_max=True,
    can_delete=True,
)
ADDRESS_PREFIX = "addresses"
