from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Refresh one result from the lab now, by the portal's result id."

    def add_arguments(self, parser):
        parser.add_argument("result_id", type=int)

    def handle(self, *args, result_id, **options):
        from portal.results.models import Result
        from portal.results.services import result_refresh
        from portal.upstream.errors import UpstreamError

        if not Result.objects.filter(pk=result_id).exists():
            raise CommandError(f"No result with id {result_id}.")
        try:
            result = result_refresh(result_id=result_id)
        except UpstreamError as exc:
            raise CommandError(f"The lab did not answer: {type(exc).__name__}: {exc}") from exc
        self.stdout.write(f"result {result.pk}: state={result.state!r} status={result.status}")
