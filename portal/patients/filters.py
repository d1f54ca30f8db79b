"""Search of the patients list."""

from __future__ import annotations

import django_filters
from django import forms

from portal.patients.models import Patient
from portal.patients.selectors import patient_search


class PatientFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Name or email",
        method="filter_text",
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": "e.g. Jane Doe or jane@example.com", "autocomplete": "off"}
        ),
    )

    class Meta:
        model = Patient
        fields = ["q"]

    def filter_text(self, queryset, name, value):
        return patient_search(queryset, value)
