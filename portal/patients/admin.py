from django import forms
from django.contrib import admin

from portal.audit.mixins import PhiAccessAdminMixin
from portal.core.admin import BigTableAdminMixin
from portal.patients.forms import AddressCleaning, PatientCleaning
from portal.patients.models import Address, Patient


class PatientAdminForm(PatientCleaning, forms.ModelForm):
    """The same normalisation as the staff form: "(617) 555-0123" is stored as ten digits."""

    # Longer than the stored ten digits, so a number typed with punctuation reaches clean_phone.
    phone = forms.CharField(max_length=20, help_text="Any common format, e.g. (617) 555-0123.")

    class Meta:
        model = Patient
        fields = ("first_name", "last_name", "email", "date_of_birth", "phone", "gender")


class AddressAdminForm(AddressCleaning, forms.ModelForm):
    """The same checks as the staff form: no invisible control characters (NUL, bidi overrides)."""

    class Meta:
        model = Address
        fields = ("patient", "street1", "street2", "city", "state", "zipcode", "position")


class AddressInline(admin.StackedInline):
    model = Address
    form = AddressAdminForm
    extra = 0
    fields = (("street1", "street2"), ("city", "state", "zipcode"), "position")


@admin.register(Patient)
class PatientAdmin(BigTableAdminMixin, PhiAccessAdminMixin, admin.ModelAdmin):
    form = PatientAdminForm
    inlines = [AddressInline]
    list_display = (
        "last_name",
        "first_name",
        "email",
        "date_of_birth",
        "phone_display",
        "gender",
        "upstream_user_id",
        "created_at",
    )
    # A fixed-choice date filter, not date_hierarchy (a DISTINCT over every row).
    list_filter = ("gender", ("created_at", admin.DateFieldListFilter))
    search_fields = ("last_name", "first_name", "email", "phone", "upstream_user_id__exact")
    readonly_fields = ("upstream_user_id", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": (("first_name", "last_name"), "email", "date_of_birth", "phone", "gender")}),
        ("Lab", {"fields": ("upstream_user_id",)}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    @admin.display(description="Phone", ordering="phone")
    def phone_display(self, obj: Patient) -> str:
        return obj.phone_display


@admin.register(Address)
class AddressAdmin(PhiAccessAdminMixin, admin.ModelAdmin):
    form = AddressAdminForm
    list_display = ("patient", "street1", "city", "state", "zipcode", "position")
    list_filter = ("state",)
    search_fields = ("patient__last_name", "patient__email", "street1", "city", "zipcode")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
