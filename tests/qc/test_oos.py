"""OOS investigations: phase I (laboratory error → invalidate and retest) or phase II."""

from __future__ import annotations

import pytest

from batches.exceptions import NotReady
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import InvalidInput, StaleRecord
from qc.checklist import OK, release_checklist
from qc.models import (
    CertificationKind,
    OosPhase1Conclusion,
    OosStatus,
    ResultEvaluation,
    ResultStatus,
)
from qc.services.oos import oos_phase1_conclude, oos_phase2_conclude
from tests.conftest import PASSWORD
from tests.qc.conftest import FAILING, enter, requirement_state, review


@pytest.fixture
def failing(make_batch, qc_analyst):
    batch = make_batch()
    return enter(batch, "viability", qc_analyst, outcome=FAILING)


def phase1(investigation, actor, conclusion, notes="Pipette calibration checked"):
    return oos_phase1_conclude(actor=actor, investigation=investigation, conclusion=conclusion, notes=notes,
                               password=PASSWORD, expected_version=investigation.version)


def test_a_failing_result_opens_an_investigation_linked_to_a_deviation(failing):
    investigation = failing.oos

    assert investigation.status == OosStatus.PHASE_1
    assert investigation.deviation.batch_id == failing.batch_id
    assert "Viability" in investigation.deviation.title


def test_a_laboratory_error_invalidates_the_result_and_allows_a_retest(failing, qc_analyst, qc_reviewer):
    investigation = phase1(failing.oos, qc_reviewer, OosPhase1Conclusion.LAB_ERROR,
                           notes="Wrong dilution factor applied in the counting sheet")

    failing.refresh_from_db()
    assert investigation.status == OosStatus.CLOSED
    assert failing.status == ResultStatus.INVALIDATED
    assert "Wrong dilution factor" in failing.invalidation_reason
    assert [v.signature.meaning for v in signatures_for_record(investigation) if v.is_valid] == [Meaning.REVIEWED]
    retest = review(enter(failing.batch, "viability", qc_analyst), qc_reviewer)
    assert retest.retest_of_id == failing.pk
    assert retest.evaluation == ResultEvaluation.PASS
    assert requirement_state(failing.batch, "viability") == "passing"
    # The original's voided entry signature is the invalidation, not a defect of the record.
    assert release_checklist(failing.batch, kind=CertificationKind.PROVISIONAL).item("signatures").status == OK


def test_no_laboratory_error_confirms_the_result_and_opens_phase_two(failing, qc_reviewer):
    investigation = phase1(failing.oos, qc_reviewer, OosPhase1Conclusion.NO_LAB_ERROR)

    failing.refresh_from_db()
    assert investigation.status == OosStatus.PHASE_2
    assert failing.status == ResultStatus.ENTERED
    investigation = oos_phase2_conclude(actor=qc_reviewer, investigation=investigation,
                                        notes="Expansion curve flat from day 6", conclusion="Product out of specification",
                                        password=PASSWORD, expected_version=investigation.version)
    assert investigation.status == OosStatus.CLOSED
    assert investigation.closed_at is not None
    assert [v.signature.meaning for v in signatures_for_record(investigation) if v.is_valid] == [Meaning.REVIEWED]


def test_the_analyst_who_entered_the_result_does_not_conclude_its_investigation(failing, qc_analyst):
    with pytest.raises(SegregationOfDuties):
        phase1(failing.oos, qc_analyst, OosPhase1Conclusion.LAB_ERROR)


def test_phase_one_needs_notes_and_a_known_conclusion(failing, qc_reviewer):
    with pytest.raises(InvalidInput, match="Phase I notes"):
        phase1(failing.oos, qc_reviewer, OosPhase1Conclusion.NO_LAB_ERROR, notes="")
    with pytest.raises(InvalidInput, match="Conclusion"):
        phase1(failing.oos, qc_reviewer, "maybe")


def test_phase_two_cannot_conclude_before_phase_one(failing, qc_reviewer):
    with pytest.raises(NotReady, match="not phase II"):
        oos_phase2_conclude(actor=qc_reviewer, investigation=failing.oos, notes="n", conclusion="c",
                            password=PASSWORD, expected_version=1)


def test_a_stale_conclusion_is_refused(failing, qc_reviewer):
    with pytest.raises(StaleRecord):
        oos_phase1_conclude(actor=qc_reviewer, investigation=failing.oos, conclusion=OosPhase1Conclusion.NO_LAB_ERROR,
                            notes="n", password=PASSWORD, expected_version=7)
