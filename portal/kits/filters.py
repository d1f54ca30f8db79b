"""Search and filters of the kit registrations list (and of its CSV export)."""

from __future__ import annotations

import django_filters
from django import forms

from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.kits.selectors import kit_id_match_q

SELECT = forms.Select(attrs={"class": "form-select"})


class RegistrationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Kit id",
        method="filter_kit_id",
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": "Kit id or part of it", "autocomplete": "off"}
        ),
    )
    submission_status = django_filters.ChoiceFilter(
        label="Submission", choices=Submission.choices, empty_label="Any submission status", widget=SELECT
    )

    class Meta:
        model = KitRegistration
        fields = ["q", "submission_status"]

    def filter_kit_id(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(kit_id_match_q(value)) if value else queryset
