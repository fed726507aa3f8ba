"""Alerts: overdue results flagged daily (once per test and person); e-mails sent once."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import mail
from django.utils import timezone

from carmfg.audit.models import AuditEvent
from qc.alerts_tasks import notification_email_send, results_overdue_flag
from qc.models import Alert, NotificationEmail
from qc.services.alerts import notification_email_queue
from qc.services.results import results_overdue_flag as flag
from tests.qc.conftest import enter

TWO_DAYS_LATER = dt.timedelta(days=2)


def test_overdue_results_are_flagged_once_per_test_and_person(make_batch, qc_analyst, qc_reviewer, qp):
    batch = make_batch()  # completed now: tests of 0 and 1 day turnaround are overdue in two days
    later = timezone.now() + TWO_DAYS_LATER

    first = flag(now=later)
    second = flag(now=later)

    overdue = {"viability", "cd3", "car_pos", "endotoxin", "gram", "mycoplasma"}
    assert first["alerts_created"] == len(overdue) * 3  # two QC analysts and the QP
    assert second["alerts_created"] == 0
    tests = batch.specification_pin.specification.tests
    assert {a.key for a in Alert.objects.filter(recipient=qp)} == {
        f"overdue:{batch.pk}:{tests.get(code=c).pk}" for c in overdue}
    assert AuditEvent.objects.filter(object_type="qc.alert").count() == len(overdue) * 3


def test_a_result_recorded_in_time_is_not_flagged(make_batch, qc_analyst):
    batch = make_batch()
    for code in ("viability", "cd3", "car_pos", "endotoxin", "gram", "mycoplasma"):
        enter(batch, code, qc_analyst)

    assert flag(now=timezone.now() + TWO_DAYS_LATER)["alerts_created"] == 0


def test_results_not_yet_due_are_not_flagged(make_batch, qc_analyst):
    make_batch()

    assert flag(now=timezone.now())["alerts_created"] == 0


def test_the_daily_task_runs_the_check(make_batch):
    make_batch()

    assert results_overdue_flag.delay().get() == {"batches_checked": 1, "alerts_created": 0}


def test_the_overdue_check_runs_daily_from_celery_beat():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "qc.alerts_tasks.results_overdue_flag" in tasks


def test_an_email_is_sent_once_even_if_the_job_runs_twice(site, qp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        email = notification_email_queue(actor=qp, site=site, to="dr@test.invalid", subject="Late result",
                                         body="Batch B-1: sterility growth")
    notification_email_send.delay(email.pk).get()

    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.sent_at is not None
    assert email.attempts == 1


def test_a_mail_server_failure_is_kept_on_the_record(site, qp, settings):
    settings.EMAIL_BACKEND = "tests.qc.test_alerts.BrokenBackend"
    email = NotificationEmail.objects.create(site=site, to="dr@test.invalid", subject="s", body="b",
                                             created_at=timezone.now())

    assert notification_email_send.delay(email.pk).get() == "not sent"

    email.refresh_from_db()
    assert email.sent_at is None
    assert email.attempts == 1
    assert "refused" in email.last_error


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("connection refused")
