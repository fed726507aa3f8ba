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
from tests.qc.conftest import enter


def test_overdue_results_are_flagged_once_per_test_and_person(make_batch, qc_analyst, qc_reviewer, qp):
    batch = make_batch()  # completed a day ago: same-day tests (turnaround 0) are overdue

    first = results_overdue_flag.delay().get()
    second = results_overdue_flag.delay().get()

    overdue = {"viability", "cd3", "endotoxin", "gram"}  # turnaround 0 days, no result yet
    assert first["alerts_created"] == len(overdue) * 3  # two QC analysts and the QP
    assert second["alerts_created"] == 0
    assert {a.key.split(":")[2] for a in Alert.objects.filter(recipient=qp)} == {
        str(batch.specification_pin.specification.tests.get(code=c).pk) for c in overdue}
    assert AuditEvent.objects.filter(object_type="qc.alert").count() == len(overdue) * 3


def test_a_result_recorded_in_time_is_not_flagged(make_batch, qc_analyst):
    batch = make_batch()
    for code in ("viability", "cd3", "endotoxin", "gram"):
        enter(batch, code, qc_analyst)

    assert results_overdue_flag.delay().get()["alerts_created"] == 0


def test_results_not_yet_due_are_not_flagged(make_batch, qc_analyst):
    make_batch()
    tomorrow_morning = timezone.now() - dt.timedelta(days=1)  # the day the batch was completed

    from qc.services.results import results_overdue_flag as flag

    assert flag(now=tomorrow_morning)["alerts_created"] == 0


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
