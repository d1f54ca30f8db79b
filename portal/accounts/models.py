from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who signs in: clinic staff or an admin. One account per person."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        permissions = [("use_staff_site", "Can use the clinic staff site")]
