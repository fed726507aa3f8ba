"""The demo of `make run` leaves signed batch records a newcomer can open at once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from batches.models import BatchState
from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus
from qc.verification import verify_record
from tests.qc.record_fixtures import (  # noqa: F401
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

pytestmark = pytest.mark.django_db


def test_demo_has_a_provisionally_and_a_finally_released_batch_with_their_signed_records(record_settings):
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())

    records = {(d.batch.state, d.purpose): d for d in BatchRecordDocument.objects.select_related("batch")}
    provisional = records[(BatchState.PROVISIONALLY_RELEASED, DocumentPurpose.CERTIFICATION_PROVISIONAL)]
    final = records[(BatchState.RELEASED, DocumentPurpose.CERTIFICATION_FINAL)]
    for document in (provisional, final):
        assert document.status == DocumentStatus.DONE, document.failure_reason
        with document.file.open("rb") as fh:
            verdict = verify_record(fh.read())
        assert verdict.ok, verdict.problems
    assert not BatchRecordDocument.objects.exclude(status=DocumentStatus.DONE).exists()
