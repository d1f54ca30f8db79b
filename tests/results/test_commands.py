import pytest
from django.core.management import CommandError, call_command

from portal.core.states import Status
from portal.notifications.models import Notification
from tests.factories import OrderFactory, ResultFactory

pytestmark = pytest.mark.django_db


def test_poll_results_once_moves_due_results(partner, capsys):
    result = ResultFactory()
    partner.get_result(result.upstream_id, state="ready")
    call_command("poll_results", "--once")
    result.refresh_from_db()
    assert result.status == Status.READY
    assert "polled=1" in capsys.readouterr().out


def test_sync_result_and_sync_order(partner, capsys):
    result = ResultFactory()
    order = OrderFactory()
    partner.get_result(result.upstream_id, state="processing")
    partner.get_order(order.upstream_id, state="shipped")
    call_command("sync_result", str(result.pk))
    call_command("sync_order", str(order.pk))
    out = capsys.readouterr().out
    assert "status=in_progress" in out and "state='shipped'" in out


def test_sync_result_reports_an_unreachable_lab(partner):
    result = ResultFactory()
    partner.get_result(result.upstream_id, status=404, json={})
    with pytest.raises(CommandError, match="UpstreamNotFound"):
        call_command("sync_result", str(result.pk))


def test_resend_notification_is_recorded(staff_user, django_capture_on_commit_callbacks):
    result = ResultFactory(status=Status.READY, state="ready", ready_at="2026-01-01T00:00:00Z", next_poll_at=None)
    with django_capture_on_commit_callbacks():
        call_command("resend_notification", str(result.pk), "--by", staff_user.username)
    notification = Notification.objects.get(result=result)
    assert notification.is_resend and notification.requested_by == staff_user


def test_resend_refuses_a_result_that_is_not_ready(staff_user):
    result = ResultFactory()
    with pytest.raises(CommandError, match="ready"):
        call_command("resend_notification", str(result.pk), "--by", staff_user.username)
