"""The kit registration form: a new patient's details, or an existing patient."""

from __future__ import annotations

from django import forms

from portal.orders.forms import IdempotencyKeyField
from portal.patients.forms import PATIENT_FIELDS, PatientForm
from portal.patients.models import Patient


class RegistrationForm(PatientForm):
    """With `patient` set (a patient picked by search) the patient's fields are
    dropped: the stored patient and their stored addresses are used as they are."""

    idempotency_key = IdempotencyKeyField()
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.all(),
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "That patient no longer exists; search for the patient again."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The template renders the hidden key and patient itself, once.
        self.helper.render_unmentioned_fields = False
        chosen = self.data.get("patient") if self.is_bound else self.initial.get("patient")
        self.for_existing_patient = bool(chosen)
        if self.for_existing_patient:
            for name in PATIENT_FIELDS:
                del self.fields[name]
            self.helper.layout = None
