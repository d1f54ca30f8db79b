from django.conf import settings
from django.db import models
from django.db.models.functions import Upper

from portal.core.models import TimeStampedModel
from portal.patients.validators import US_STATES, format_phone


class Gender(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other / prefer not to say"


class Patient(TimeStampedModel):
    """A person a kit is registered to. Every field here is PHI."""

    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(max_length=254)
    date_of_birth = models.DateField()
    # Ten digits, no formatting (NOTES.md point 9); shown as (617) 555-0123.
    phone = models.CharField(max_length=10)
    gender = models.CharField(max_length=16, choices=Gender.choices)
    # The partner may map several local patients (same email) to one user: not unique.
    upstream_user_id = models.BigIntegerField(null=True, blank=True, db_index=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        indexes = [
            models.Index(fields=["last_name", "first_name", "id"], name="patient_by_name"),
            models.Index(Upper("last_name"), name="patient_last_name_upper"),
            models.Index(Upper("first_name"), name="patient_first_name_upper"),
            models.Index(fields=["email", "date_of_birth"]),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(phone__regex=r"^[0-9]{10}$"), name="patient_phone_10_digits"),
        ]

    def __str__(self) -> str:
        # Shown only on staff pages and admin; never used in logs.
        return f"{self.last_name}, {self.first_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def phone_display(self) -> str:
        return format_phone(self.phone)


class Address(models.Model):
    """One of a patient's addresses, in the order staff entered them."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="addresses")
    street1 = models.CharField("Street address", max_length=255)
    street2 = models.CharField("Apartment, suite, etc.", max_length=255, blank=True)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=2, choices=US_STATES)
    # Text, so 02139 keeps its leading zero (NOTES.md point 10).
    zipcode = models.CharField("ZIP code", max_length=10)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["patient", "position", "id"]
        verbose_name_plural = "addresses"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(zipcode__regex=r"^[0-9]{5}(-[0-9]{4})?$"), name="address_zip_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.street1}, {self.city}, {self.state} {self.zipcode}"
