"""Delete call-log rows older than a number of days (schedule it, e.g. daily)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.upstream.models import UpstreamCall


class Command(BaseCommand):
    help = "Delete upstream call-log rows older than --days (default 30)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days: int, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = UpstreamCall.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} upstream call(s) older than {days} day(s).")
