"""The daily audit-chain check as a task (run in-process here; the round trip through
Redis and a real worker is in test_celery_integration.py)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from carmfg.audit.models import Action, ChainHead
from carmfg.audit.services import audit_record
from carmfg.audit.tasks import audit_chain_verify
from carmfg.celery import app


def test_chain_check_is_scheduled_daily_by_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["audit-chain-verify-daily"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    schedule = entry["schedule"]  # a crontab firing at one minute of one hour, every day
    assert (len(schedule.hour), len(schedule.minute)) == (1, 1)
    assert schedule.day_of_week == set(range(7))
    assert schedule.day_of_month == set(range(1, 32))


def test_chain_check_covers_every_chain_and_reads_only(technician, site, other_site):
    with transaction.atomic():
        audit_record(actor=technician, action=Action.CREATE, site=site, object_type="tests.sample", object_id="1")
    heads_before = list(ChainHead.objects.values_list("chain", "seq", "hash"))

    first = audit_chain_verify.apply().get()
    second = audit_chain_verify.apply().get()

    assert first["ok"] is True
    assert {c["chain"] for c in first["chains"]} >= {0, site.pk, other_site.pk}
    assert first["chains"] == second["chains"]  # idempotent
    assert list(ChainHead.objects.values_list("chain", "seq", "hash")) == heads_before


def test_broken_chain_is_logged_as_an_error_and_reported(site, caplog):
    head = ChainHead.objects.get(chain=site.pk)
    ChainHead.objects.filter(chain=site.pk).update(seq=head.seq + 2)

    with caplog.at_level(logging.ERROR, logger="carmfg.audit.tasks"):
        summary = audit_chain_verify.apply(args=[[site.pk]]).get()

    assert summary["ok"] is False
    assert summary["chains"][0]["first_broken_seq"] == head.seq + 1
    assert any("BROKEN" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
