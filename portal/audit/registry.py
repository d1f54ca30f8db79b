"""The models whose every create, change and delete is recorded (django-auditlog),
in one place.

Each entry names the fields left out of the before/after: timestamps (the log
entry has its own), the poller's bookkeeping (poll counts, leases, next-poll
times), which change on every poll and say nothing about the record, and the
partner's last raw answer (`raw_payload`: the lab's words, kept on the record
itself; the state changes it caused are in the record's timeline). A save that
changes only those fields writes no entry.

Docs: https://django-auditlog.readthedocs.io/en/latest/usage.html
"""

from __future__ import annotations

from auditlog.registry import auditlog
from django.apps import apps

TIMESTAMPS = ["created_at", "updated_at"]

AUDITED: dict[str, list[str]] = {
    "patients.Patient": TIMESTAMPS,
    "patients.Address": [],
    "orders.Order": [*TIMESTAMPS, "last_synced_at", "next_sync_at", "raw_payload"],
    "kits.KitRegistration": [*TIMESTAMPS, "submitting_since", "raw_payload"],
    "results.Result": [*TIMESTAMPS, "last_polled_at", "next_poll_at", "poll_count", "claimed_until", "raw_payload"],
    "notifications.Notification": [*TIMESTAMPS, "sending_since"],
}


def register_audited_models() -> None:
    for label, excluded in AUDITED.items():
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(model, exclude_fields=excluded)
