from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Refresh one order from the lab now, by the portal's order id."

    def add_arguments(self, parser):
        parser.add_argument("order_id", type=int)

    def handle(self, *args, order_id, **options):
        from portal.orders.models import Order
        from portal.orders.services import OrderError, order_refresh
        from portal.upstream.errors import UpstreamError

        if not Order.objects.filter(pk=order_id).exists():
            raise CommandError(f"No order with id {order_id}.")
        try:
            order = order_refresh(order_id=order_id)
        except (OrderError, UpstreamError) as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        self.stdout.write(f"order {order.pk}: state={order.state!r} status={order.status}")
