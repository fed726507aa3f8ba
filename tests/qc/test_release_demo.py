"""The demo of `make run` shows the release pages in their typical states."""

from __future__ import annotations

import datetime as dt
import io

from django.core.management import call_command

from batches.models import BatchState
from batches.services.materials import site_today
from carmfg.accounts.models import Site
from qc.dashboard import collection_day
from qc.models import Alert, Certification, TestResult
from qc.selectors import release_queue_for_user


def test_the_demo_has_a_clean_batch_an_out_of_spec_one_and_a_late_failure(db, django_user_model):
    call_command("seed_demo", stdout=io.StringIO())

    site = Site.objects.get(code="msk")
    qp = django_user_model.objects.get(username="qp")
    rows = {row.batch.order.patient.initials: row for row in release_queue_for_user(qp, site=site)}
    assert rows["LN"].stage == "provisional"
    assert rows["LN"].exceptions == 0
    assert rows["LN"].outstanding == 0
    assert rows["RG"].failing == 1
    assert rows["EK"].stage == "final"
    assert rows["EK"].late_failure
    assert rows["EK"].batch.state == BatchState.ON_HOLD
    assert Alert.objects.filter(recipient=qp, acknowledged_at__isnull=True).exists()
    # Infused a week after apheresis: the dashboards show a plausible vein-to-vein time.
    assert collection_day(rows["EK"].batch) == site_today(site) - dt.timedelta(days=7)
    # The day the collection was recorded at intake counts, not the label's registration day.
    assert collection_day(rows["LN"].batch) == site_today(site) - dt.timedelta(days=9)
    counts = (TestResult.objects.count(), Certification.objects.count())

    call_command("seed_demo", stdout=io.StringIO())

    assert (TestResult.objects.count(), Certification.objects.count()) == counts
