"""Deviations: raised, investigated, approved for use by a second person, closed by a QP."""

from __future__ import annotations

import pytest

from batches.exceptions import NotReady
from batches.models import DeviationClass, DeviationSource, DeviationStatus, MaterialLot
from batches.progress import load_plan
from batches.services.deviations import (
    deviation_approve_use,
    deviation_close,
    deviation_permitting,
    deviation_raise_manual,
    deviation_request_use,
    deviation_update,
    open_blocking_deviations,
)
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import InvalidInput, PermissionRefused, ReasonRequired, StaleRecord
from tests.conftest import PASSWORD


@pytest.fixture
def batch(started_batch):
    """The shared started batch of the shipped recipe (tests/batches/conftest.py)."""
    return started_batch


@pytest.fixture
def use_request(batch, technician):
    lot = MaterialLot.objects.get(barcode="LOT-TA-7318")
    definition = load_plan(batch).by_code["transact"].definition
    return deviation_request_use(actor=technician, batch=batch, definition=definition, material_lot=lot,
                                 justification="Only lot in stock")


def _investigate(deviation, actor, **values):
    return deviation_update(actor=actor, deviation=deviation, reason="Investigation", expected_version=deviation.version,
                            **values)


def test_a_use_request_names_exactly_one_lot_on_one_step_of_one_batch(use_request, batch):
    assert use_request.source == DeviationSource.MATERIAL
    assert use_request.status == DeviationStatus.OPEN
    assert use_request.permits["batch"] == batch.pk
    assert use_request.permits["step_code"] == "transact"
    assert use_request.classification == DeviationClass.MAJOR


def test_use_is_approved_only_by_a_qp(use_request, verifier, site_admin):
    for person in (verifier, site_admin):
        with pytest.raises(PermissionRefused):
            deviation_approve_use(actor=person, deviation=use_request, password=PASSWORD)


def test_the_person_who_raised_a_deviation_cannot_approve_it(batch, qp):
    lot = MaterialLot.objects.get(barcode="LOT-TA-7318")
    definition = load_plan(batch).by_code["transact"].definition
    own = deviation_request_use(actor=qp, batch=batch, definition=definition, material_lot=lot, justification="Urgent")

    with pytest.raises(SegregationOfDuties):
        deviation_approve_use(actor=qp, deviation=own, password=PASSWORD)
    own.refresh_from_db()
    assert own.status == DeviationStatus.OPEN


def test_a_deviation_that_asks_for_nothing_cannot_be_approved_for_use(batch, technician, qp):
    deviation = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                       title="Door left open", description="Airlock door open 2 min", batch=batch)

    with pytest.raises(NotReady, match="does not ask"):
        deviation_approve_use(actor=qp, deviation=deviation, password=PASSWORD)


def test_the_investigation_written_after_approval_keeps_the_approval_valid(use_request, technician, qp, batch):
    deviation_approve_use(actor=qp, deviation=use_request, password=PASSWORD)
    use_request.refresh_from_db()

    _investigate(use_request, technician, impact_assessment="None: potency within spec", root_cause="Stock planning",
                 capa="Reorder point raised")

    definition = load_plan(batch).by_code["transact"].definition
    lot = MaterialLot.objects.get(barcode="LOT-TA-7318")
    assert deviation_permitting(batch=batch, definition=definition, material_lot=lot) is not None
    approval = use_request.use_approval
    assert [v.status for v in signatures_for_record(approval)] == ["valid"]


def test_changing_what_was_asked_after_approval_withdraws_the_permission(use_request, technician, qp, batch):
    deviation_approve_use(actor=qp, deviation=use_request, password=PASSWORD)
    use_request.refresh_from_db()

    _investigate(use_request, technician, description="Only lot in stock; also for the next batch")

    use_request.refresh_from_db()
    definition = load_plan(batch).by_code["transact"].definition
    lot = MaterialLot.objects.get(barcode="LOT-TA-7318")
    assert use_request.status == DeviationStatus.OPEN
    assert deviation_permitting(batch=batch, definition=definition, material_lot=lot) is None


def test_a_major_deviation_closes_only_with_impact_root_cause_and_capa(use_request, technician, qp):
    with pytest.raises(NotReady, match="impact assessment, root cause, CAPA"):
        deviation_close(actor=qp, deviation=use_request, password=PASSWORD)

    deviation = _investigate(use_request, technician, impact_assessment="No impact on potency",
                             root_cause="Stock planning", capa="Reorder point raised")
    deviation_close(actor=qp, deviation=deviation, password=PASSWORD)

    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.CLOSED
    assert [(v.signature.meaning, v.status) for v in signatures_for_record(deviation)] == [(Meaning.CLOSED, "valid")]


def test_a_minor_deviation_closes_with_an_impact_assessment(batch, technician, qp):
    deviation = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                       title="Label printer jam", description="Reprinted one label", batch=batch)
    with pytest.raises(NotReady, match="impact assessment"):
        deviation_close(actor=qp, deviation=deviation, password=PASSWORD)

    deviation = _investigate(deviation, technician, impact_assessment="None: reprint reconciled")
    deviation_close(actor=qp, deviation=deviation, password=PASSWORD)


def test_only_a_qp_closes_a_deviation(batch, technician):
    deviation = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                       title="x", description="y", batch=batch)
    deviation = _investigate(deviation, technician, impact_assessment="None")

    with pytest.raises(PermissionRefused):
        deviation_close(actor=technician, deviation=deviation, password=PASSWORD)


def test_a_closed_deviation_cannot_be_edited(batch, technician, qp):
    deviation = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                       title="x", description="y", batch=batch)
    deviation = _investigate(deviation, technician, impact_assessment="None")
    deviation_close(actor=qp, deviation=deviation, password=PASSWORD)
    deviation.refresh_from_db()

    with pytest.raises(NotReady, match="closed"):
        _investigate(deviation, technician, capa="Late CAPA")


def test_open_major_and_critical_deviations_block_release_until_closed(batch, technician, qp):
    minor = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                   title="Minor", description="m", batch=batch)
    major = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MAJOR,
                                   title="Major", description="M", batch=batch)
    critical = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.CRITICAL,
                                      title="Critical", description="C", batch=batch)

    assert open_blocking_deviations(batch) == [major, critical]

    for deviation in (major, critical):
        deviation = _investigate(deviation, technician, impact_assessment="i", root_cause="r", capa="c")
        deviation_close(actor=qp, deviation=deviation, password=PASSWORD)
    assert open_blocking_deviations(batch) == []
    assert minor.status == DeviationStatus.OPEN


def test_an_investigation_edit_needs_a_reason_and_a_fresh_form(batch, technician, verifier):
    deviation = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                       title="x", description="y", batch=batch)
    with pytest.raises(ReasonRequired):
        deviation_update(actor=technician, deviation=deviation, reason="", expected_version=deviation.version,
                         root_cause="z")
    opened = deviation.version
    deviation_update(actor=verifier, deviation=deviation, reason="first", expected_version=opened, root_cause="z")

    with pytest.raises(StaleRecord):
        deviation_update(actor=technician, deviation=deviation, reason="second", expected_version=opened,
                         root_cause="w")


def test_auditors_and_administrators_do_not_raise_deviations(batch, auditor, site_admin):
    for person in (auditor, site_admin):
        with pytest.raises(PermissionRefused):
            deviation_raise_manual(actor=person, site=batch.site, classification=DeviationClass.MINOR, title="x",
                                   description="y", batch=batch)


def test_deviation_text_is_checked(batch, technician):
    for title, description in (("\x00", "y"), ("x", "y" * 20_000), ("", "y")):
        with pytest.raises(InvalidInput):
            deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MINOR,
                                   title=title, description=description, batch=batch)
    with pytest.raises(InvalidInput):
        deviation_raise_manual(actor=technician, site=batch.site, classification="catastrophic", title="x",
                               description="y", batch=batch)
