"""Recording a step costs a fixed number of queries, and what it returns is what was stored.

``step_record`` does not read back the record it inserted nor the batch it locked
(issue #10): the record it returns and the caller's batch must still say exactly what
the database says, and the performer's signature must cover the stored content.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from batches.models import Batch, BatchState, StepRecord
from batches.progress import load_plan
from batches.services.execution import batch_start, step_record
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.services import signable_hash
from tests.conftest import PASSWORD

# Step definition (outside the transaction), axes failures and the user (password check),
# batch lock, the plan (recipe, records, their signatures), savepoint + insert + release,
# two audit events (head lock, insert, head update each), the record's active signatures,
# signature insert: 18; plus the start and end of the transaction (savepoints inside the
# test's own transaction). It was 25 before issue #10: the record, its batch and its site
# were read back after the insert, and the caller's batch after the commit (which dropped
# its cached site, read again by the next call).
STEP_RECORD_QUERIES = 20


@pytest.fixture
def batch(small_mbr, make_batch, technician):
    batch = make_batch(small_mbr.product, mbr=small_mbr)
    return batch_start(actor=technician, batch=batch, expected_version=batch.version)


def _record(batch, code, actor, **inputs):
    state = load_plan(batch).by_code[code]
    return step_record(actor=actor, batch=batch, definition=state.definition, password=PASSWORD,
                       expected_occurrence=state.next_occurrence, **inputs)


def test_recording_a_value_step_takes_a_fixed_number_of_queries(batch, technician, django_assert_num_queries):
    _record(batch, "line_clearance", technician)
    state = load_plan(batch).by_code["viability_day0"]

    with django_assert_num_queries(STEP_RECORD_QUERIES):
        step_record(actor=technician, batch=batch, definition=state.definition, password=PASSWORD,
                    expected_occurrence=1, value="92.5", unit="%")


def test_the_returned_record_is_what_was_stored_and_its_signature_covers_it(batch, technician):
    _record(batch, "line_clearance", technician)

    saved = _record(batch, "viability_day0", technician, value="92.5", unit="%")

    stored = StepRecord.objects.get(pk=saved.pk)
    assert saved.value == stored.value == Decimal("92.500000")
    assert str(saved.value) == str(stored.value)
    assert saved.signable_content() == stored.signable_content()
    assert saved.batch_id == batch.pk
    assert saved.batch.number == batch.number
    signature = Signature.objects.get(object_id=str(saved.pk), meaning=Meaning.PERFORMED)
    assert signature.content_hash == signable_hash(stored)
    created = AuditEvent.objects.get(action=Action.CREATE, object_type="batches.steprecord", object_id=str(saved.pk))
    assert created.changes["value"] == "92.500000"
    assert created.root_id == str(batch.pk)


def test_the_callers_batch_is_current_after_a_critical_step_puts_it_on_hold(batch, technician):
    _record(batch, "line_clearance", technician)
    version = batch.version

    saved = _record(batch, "viability_day0", technician, value="65.0", unit="%", confirmed=True,
                    comment="Counted twice")

    stored = Batch.objects.get(pk=batch.pk)
    assert stored.state == BatchState.ON_HOLD
    assert (batch.state, batch.version, batch.state_before_hold) == (stored.state, stored.version,
                                                                     stored.state_before_hold)
    assert batch.version == version + 1
    assert saved.deviation is not None
    assert saved.deviation.batch_id == batch.pk
