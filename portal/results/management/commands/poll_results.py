import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Poll the lab for results that are due (what Celery beat runs), now."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one poll cycle and exit.")
        parser.add_argument("--interval", type=int, default=None, help="Seconds between cycles when looping.")

    def handle(self, *args, once=False, interval=None, **options):
        from portal.results.tasks import results_poll_task

        interval = interval or settings.RESULT_POLL_INTERVAL
        while True:
            totals = results_poll_task.run()
            self.stdout.write(
                "poll cycle: claimed={claimed} polled={polled} failed={failed} became_ready={became_ready}".format(
                    **totals
                )
            )
            if once:
                return
            time.sleep(interval)
