"""The results list's filters: status, ready date range, overdue, one search box."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.utils import timezone

from portal.core.states import Status
from portal.results.selectors import results_overdue_q, results_search

# More words than this in the search box are ignored (each word is one more join).
MAX_SEARCH_TERMS = 5


class ResultFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("ready_from"), cleaned.get("ready_to")
        if start and end and start > end:
            self.add_error("ready_to", "The end date must be on or after the start date.")
        return cleaned


def _start_of_day(day) -> datetime:
    """Midnight of `day` in the clinic's time zone, so "ready on May 3" means the clinic's May 3."""
    return timezone.make_aware(datetime.combine(day, time.min))


class ResultFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Search",
        method="filter_search",
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": "Name, email or kit id", "type": "search"}
        ),
    )
    status = django_filters.ChoiceFilter(
        choices=Status.choices,
        empty_label="Any status",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    ready_from = django_filters.DateFilter(
        label="Ready from",
        method="filter_ready_from",
        widget=forms.DateInput(attrs={"class": "form-control", "type": "date"}),
    )
    ready_to = django_filters.DateFilter(
        label="Ready to",
        method="filter_ready_to",
        widget=forms.DateInput(attrs={"class": "form-control", "type": "date"}),
    )
    overdue = django_filters.BooleanFilter(
        label="Overdue only",
        method="filter_overdue",
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )

    class Meta:
        form = ResultFilterForm
        fields: list[str] = []

    def filter_search(self, queryset, name, value):
        return results_search(queryset, value, max_terms=MAX_SEARCH_TERMS)

    def filter_ready_from(self, queryset, name, value):
        return queryset.filter(ready_at__gte=_start_of_day(value))

    def filter_ready_to(self, queryset, name, value):
        return queryset.filter(ready_at__lt=_start_of_day(value + timedelta(days=1)))

    def filter_overdue(self, queryset, name, value):
        # Unticked means "all", not "only the ones that are not overdue".
        return queryset.filter(results_overdue_q()) if value else queryset
