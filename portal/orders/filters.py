"""Search, filters and sort of the orders list (and of its CSV export)."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.validators import RegexValidator

from portal.core.states import Status, Submission
from portal.orders.models import Order

SELECT = forms.Select(attrs={"class": "form-select"})


class SortSelect(forms.Select):
    """The sort dropdown (django-filter wants a widget class here, not an instance)."""

    def __init__(self, attrs=None, choices=()):
        super().__init__({"class": "form-select", **(attrs or {})}, choices)


class StableOrderingFilter(django_filters.OrderingFilter):
    """The chosen sort, then newest first, so equal values keep a fixed order across pages."""

    def filter(self, qs, value):
        qs = super().filter(qs, value)
        return qs.order_by(*qs.query.order_by, "-created_at", "-id") if value else qs


class OrderFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Lab order id",
        method="filter_lab_id",
        validators=[RegexValidator(r"^#?\d{1,18}$", "Search by the lab's order id (digits only).")],
        widget=forms.TextInput(attrs={"class": "form-control", "inputmode": "numeric", "placeholder": "e.g. 10234"}),
    )
    status = django_filters.ChoiceFilter(
        label="Status", choices=Status.choices, empty_label="Any status", widget=SELECT
    )
    submission_status = django_filters.ChoiceFilter(
        label="Submission", choices=Submission.choices, empty_label="Any submission status", widget=SELECT
    )
    sort = StableOrderingFilter(
        label="Sort by",
        fields=(("created_at", "created"), ("amount", "amount"), ("status", "status")),
        field_labels={
            "created": "Oldest first",
            "-created": "Newest first",
            "amount": "Amount (low to high)",
            "-amount": "Amount (high to low)",
            "status": "Status (A-Z)",
            "-status": "Status (Z-A)",
        },
        empty_label="Newest first",
        widget=SortSelect,
    )

    class Meta:
        model = Order
        fields = ["q", "status", "submission_status", "sort"]

    def filter_lab_id(self, queryset, name, value):
        value = value.strip().lstrip("#")
        return queryset.filter(upstream_id=int(value)) if value else queryset
