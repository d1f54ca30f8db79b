from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Send a result's 'results ready' email again (recorded as a resend)."

    def add_arguments(self, parser):
        parser.add_argument("result_id", type=int)
        parser.add_argument("--by", required=True, help="Username of the person asking for the resend.")

    def handle(self, *args, result_id, by, **options):
        from portal.core.states import Status
        from portal.notifications.services import ResendRefused, notification_resend
        from portal.results.models import Result

        result = Result.objects.select_related("registration__patient").filter(pk=result_id).first()
        if result is None:
            raise CommandError(f"No result with id {result_id}.")
        if result.status != Status.READY:
            raise CommandError("Only a ready result's email can be resent.")
        user = get_user_model().objects.filter(username=by).first()
        if user is None:
            raise CommandError(f"No user {by!r}.")
        try:
            notification = notification_resend(result=result, requested_by=user)
        except ResendRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"notification {notification.pk} queued (resend of result {result.pk})")
