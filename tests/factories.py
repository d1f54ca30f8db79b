"""factory_boy factories for the portal's records (deterministic, no network)."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from portal.core.states import Status, Submission
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.patients.models import Address, Patient
from portal.results.models import Result


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    first_name = "Jane"
    last_name = factory.Sequence(lambda n: f"Testerson{n}")
    email = factory.Sequence(lambda n: f"jane{n}@example.com")
    date_of_birth = dt.date(1985, 4, 12)
    phone = "6175550123"
    gender = "female"


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    patient = factory.SubFactory(PatientFactory)
    street1 = "123 Main St"
    city = "Cambridge"
    state = "MA"
    zipcode = "02139"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    amount = Decimal("199.00")
    upstream_id = factory.Sequence(lambda n: 1000 + n)
    state = "processing"
    status = Status.IN_PROGRESS
    submission_status = Submission.ACCEPTED


class RegistrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KitRegistration
        skip_postgeneration_save = True

    order = factory.SubFactory(OrderFactory)
    patient = factory.SubFactory(PatientFactory)
    upstream_id = factory.Sequence(lambda n: 5000 + n)
    kit_id = factory.Sequence(lambda n: f"KIT{n:07d}")
    state = "registered"
    submission_status = Submission.ACCEPTED
    registered_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def with_address(obj, create, extracted, **kwargs):
        if create and not obj.patient.addresses.exists():
            AddressFactory(patient=obj.patient)


class ResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Result

    registration = factory.SubFactory(RegistrationFactory)
    upstream_id = factory.SelfAttribute("registration.upstream_id")
    state = "awaiting_sample"
    status = Status.PENDING
    next_poll_at = factory.LazyFunction(timezone.now)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    result = factory.SubFactory(ResultFactory)
    recipient = factory.SelfAttribute("result.registration.patient.email")
    template = "notifications/results_ready"
