from django.conf import settings
from django.db import models
from django.utils import timezone


class PhiAccess(models.Model):
    """One read of patient data by a person: who, when, what kind of page, which
    records (by id), from where. Written by `portal.audit.services.phi_access_record`.

    It holds ids, never patient data: no names, emails, search terms or URLs (the
    URL *name* is kept, e.g. "patients:detail"; the filters by their names only).
    Nobody edits or deletes these rows: admins read them in a read-only admin.
    """

    class Action(models.TextChoices):
        VIEW = "view", "Viewed a record"
        LIST = "list", "Listed records"
        SEARCH = "search", "Searched records"
        EXPORT = "export", "Exported records"
        ADMIN_VIEW = "admin_view", "Opened a record in admin"

    created_at = models.DateTimeField("time", default=timezone.now, db_index=True, editable=False)
    # PROTECT: a person who has read patient data keeps their account (deactivate it).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    model = models.CharField("record type", max_length=100, help_text='e.g. "patients.patient"')
    object_ids = models.JSONField("record ids", default=list, help_text="The ids shown or exported (this part).")
    # ",12,34," of the same ids, so admins can search "who saw record 34" on any database.
    object_ids_text = models.TextField(blank=True, editable=False)
    object_count = models.PositiveIntegerField("records", default=0, help_text="All records of this read.")
    # A large export is recorded in parts of at most IDS_PER_ROW ids.
    part = models.PositiveIntegerField(default=1)
    parts = models.PositiveIntegerField(default=1)
    url_name = models.CharField("page", max_length=200, blank=True)
    filters = models.JSONField(default=list, blank=True, help_text="Names of the filters used, never their values.")
    client_ip = models.GenericIPAddressField("client address", null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "PHI access"
        verbose_name_plural = "PHI accesses"
        indexes = [
            models.Index(fields=["actor", "-created_at"], name="phiaccess_actor_time"),
            models.Index(fields=["model", "-created_at"], name="phiaccess_model_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.object_count} {self.model} ({self.created_at:%Y-%m-%d %H:%M})"
