"""End to end on a real broker: real Celery worker and beat processes, PostgreSQL,
Redis and the sandbox partner over HTTP. Runs in CI's second pass (RUN_INTEGRATION=1)."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from portal.core.states import Status, Submission
from portal.kits.models import KitRegistration
from portal.kits.services import registration_create, registration_submit
from portal.kits.tasks import registration_submit_task
from portal.notifications.models import Notification
from portal.orders.services import order_create, order_submit
from portal.patients.services import AddressData, PatientData
from portal.results.models import Result
from portal.results.tasks import results_poll_task
from tests.integration.workers import portal_env, start_beat, start_worker, wait_for, wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

READY_AFTER = 30


@pytest.fixture
def sandbox(start_sandbox, settings):
    sandbox = start_sandbox(result_ready_after=READY_AFTER)
    sandbox.configure(settings)
    return sandbox


@pytest.fixture(autouse=True)
def _empty_broker():
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs the Redis broker")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture
def processes():
    started = []
    yield started
    for process in started:
        process.stop()


def _patient(n: int) -> PatientData:
    return PatientData(
        first_name="Ada",
        last_name=f"Lovelace{n}",
        email=f"ada{n}@example.com",
        date_of_birth=dt.date(1970, 1, 1),
        phone="6175550123",
        gender="female",
    )


HOME = AddressData(street1="1 Main St", city="Cambridge", state="MA", zipcode="02139")


def _accepted_order():
    order = order_submit(order_id=order_create(amount=Decimal("199.00")).pk)
    assert order.submission_status == Submission.ACCEPTED
    return order


def _registered_results(count: int) -> list[Result]:
    order = _accepted_order()
    for n in range(count):
        registration = registration_create(order=order, patient_data=_patient(n), addresses=[HOME])
        registration_submit(registration_id=registration.pk)
    return list(Result.objects.all())


def _mails(mail_dir):
    """Every message Django's file backend wrote, as text.

    The backend names a file by the second and the id of its connection object, so two
    messages sent in the same second by connections that reuse a freed id share one file;
    each message in a file ends with a line of 79 dashes.
    """
    if not mail_dir.exists():
        return []
    messages = []
    for path in sorted(mail_dir.glob("*.log")):
        parts = path.read_text().split("-" * 79 + "\n")
        messages.extend(part for part in parts if part.strip())
    return messages


def test_worker_and_beat_take_a_kit_from_registration_to_exactly_one_email(sandbox, tmp_path, processes):
    mail_dir = tmp_path / "mail"
    env = portal_env(sandbox=sandbox, mail_dir=mail_dir)
    worker = start_worker(env, tmp_path, "w1")
    processes.append(worker)
    processes.append(start_beat(env, tmp_path))
    wait_until_ready(worker)

    order = _accepted_order()
    registration = registration_create(order=order, patient_data=_patient(1), addresses=[HOME])
    registration_submit_task.delay(registration.pk)  # the worker registers the kit at the lab
    wait_for(
        lambda: KitRegistration.objects.filter(pk=registration.pk, submission_status=Submission.ACCEPTED).exists(),
        what="the worker to register the kit",
    )
    result = Result.objects.get(registration=registration)
    wait_for(lambda: Result.objects.get(pk=result.pk).poll_count >= 1, what="beat's first poll")
    assert Result.objects.get(pk=result.pk).status == Status.PENDING

    sandbox.clock.advance(READY_AFTER + 1)  # the lab finishes the test
    wait_for(
        lambda: Notification.objects.filter(result=result, status=Notification.Status.SENT).exists(),
        what="the results-ready email to be sent",
    )
    polls_when_sent = Result.objects.get(pk=result.pk).poll_count
    wait_for(lambda: len(list(_mails(mail_dir))) >= 1, what="the mail file")
    # More beat cycles come and go: the result is final, nothing more is sent.
    time.sleep(3)
    assert Notification.objects.filter(result=result).count() == 1
    mails = _mails(mail_dir)
    assert len(mails) == 1
    text = mails[0]
    assert "To: ada1@example.com" in text and "Subject: Your lab results are ready" in text
    assert "Lovelace" not in text
    result.refresh_from_db()
    assert result.status == Status.READY and result.poll_count == polls_when_sent


def test_two_workers_and_duplicate_poll_tasks_poll_each_result_once_and_email_once(sandbox, tmp_path, processes):
    results = _registered_results(30)
    sandbox.clock.advance(READY_AFTER + 1)
    before = sandbox.stats()
    mail_dir = tmp_path / "mail"
    env = portal_env(sandbox=sandbox, mail_dir=mail_dir, POLL_BATCH_SIZE="10")
    workers = [start_worker(env, tmp_path, f"w{n}") for n in (1, 2)]
    processes.extend(workers)
    for worker in workers:
        wait_until_ready(worker)

    for _ in range(4):  # beat started twice, a redelivered task: four cycles at once
        results_poll_task.delay()
    wait_for(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == len(results),
        what="every result's email",
    )
    after = sandbox.stats()
    result_calls = (after["requests"] - before["requests"]) - (after["token_requests"] - before["token_requests"])
    assert result_calls == len(results)  # each result polled once
    assert Notification.objects.count() == len(results)
    assert len(_mails(mail_dir)) == len(results)
    assert all(r.poll_count == 1 for r in Result.objects.all())


def test_a_worker_killed_mid_batch_loses_nothing(start_sandbox, settings, tmp_path, processes):
    sandbox = start_sandbox(result_ready_after=READY_AFTER, latency_ms=400)
    sandbox.configure(settings)
    results = _registered_results(12)
    sandbox.clock.advance(READY_AFTER + 1)
    mail_dir = tmp_path / "mail"
    env = portal_env(
        sandbox=sandbox, mail_dir=mail_dir, EVERLYWELL_CONCURRENCY="1", POLL_BATCH_SIZE="50", POLL_CLAIM_SECONDS="3"
    )
    doomed = start_worker(env, tmp_path, "doomed", concurrency=1)
    processes.append(doomed)
    wait_until_ready(doomed)
    results_poll_task.delay()
    wait_for(
        lambda: Result.objects.filter(status=Status.READY).count() >= 2,
        what="the first worker to poll part of its batch",
    )
    doomed.kill()
    claimed_left = Result.objects.filter(claimed_until__isnull=False).exclude(status=Status.READY).count()
    assert claimed_left > 0  # the batch was cut short with rows still claimed

    rescuer = start_worker(env, tmp_path, "rescuer")
    processes.append(rescuer)
    processes.append(start_beat(env, tmp_path))
    wait_for(
        lambda: Result.objects.filter(status=Status.READY).count() == len(results),
        timeout=90,
        what="the next cycles to take over the claimed results",
    )
    wait_for(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == len(results),
        timeout=60,
        what="every email",
    )
    assert Notification.objects.count() == len(results)
