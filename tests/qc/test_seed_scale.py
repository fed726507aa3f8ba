"""seed_scale: bulk scale data that looks like a site's history and keeps the audit chains valid."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batches.models import Batch, BatchState, Deviation, StepRecord
from carmfg.accounts.models import Site
from carmfg.audit.models import AuditEvent
from carmfg.audit.verification import verify_chain
from carmfg.esign.models import Signature
from qc.models import BatchSpecification, Certification, TestResult


def test_tiny_scale_fills_every_state_and_keeps_every_chain_intact(db):
    out = io.StringIO()
    call_command("seed_scale", "--batches", "40", "--audit-events", "2000", "--sites", "2", "--prefix", "t", stdout=out)
    sites = list(Site.objects.filter(code__in=["t01", "t02"]))
    assert len(sites) == 2
    batches = Batch.objects.filter(site__in=sites)
    assert batches.count() == 40
    assert {b.site_id for b in batches} == {s.pk for s in sites}
    assert BatchSpecification.objects.filter(batch__in=batches).count() == 40
    assert batches.filter(state=BatchState.RELEASED).exists()
    assert batches.filter(state=BatchState.IN_PROCESS).exists()
    assert StepRecord.objects.filter(batch__in=batches).exists()
    assert TestResult.objects.filter(batch__in=batches).exists()
    assert Certification.objects.filter(batch__in=batches).exists()
    # On hold batches always carry their deviation.
    assert Deviation.objects.filter(batch__in=batches.filter(state=BatchState.ON_HOLD)).count() >= batches.filter(
        state=BatchState.ON_HOLD).count()
    # Every step record is signed by its performer, and every signature points at its SIGN event.
    records = StepRecord.objects.filter(batch__in=batches)
    signed = Signature.objects.filter(object_id__in=[str(pk) for pk in records.values_list("pk", flat=True)])
    assert signed.filter(meaning="performed").count() == records.count()
    assert all(sig.audit_event.object_id == sig.object_id for sig in signed.select_related("audit_event")[:50])
    assert AuditEvent.objects.filter(chain__in=[s.pk for s in sites]).count() == 2000
    for site in sites:
        report = verify_chain(site.pk)
        assert report.ok, report.problems
        assert report.count > 900
    call_command("verify_audit_chain", stdout=io.StringIO())


def test_existing_sites_are_never_overwritten(db):
    call_command("seed_scale", "--batches", "2", "--audit-events", "0", "--sites", "1", "--prefix", "u",
                 stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exist"):
        call_command("seed_scale", "--batches", "2", "--audit-events", "0", "--sites", "1", "--prefix", "u",
                     stdout=io.StringIO())


def test_refused_on_production(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("seed_scale", "--batches", "1", "--sites", "1", stdout=io.StringIO())
