"""Master batch records: versions, two-person approval, effectiveness, pinning."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from batches.demo_mbr import label_scan, shipped_mbr_data
from batches.exceptions import NotReady
from batches.models import LimitResult, MasterBatchRecord, MbrStatus, StepDefinition, StepKind
from batches.progress import load_plan
from batches.services.execution import step_record
from batches.services.mbr import (
    mbr_approval_state,
    mbr_approve,
    mbr_clone,
    mbr_load,
    mbr_make_effective,
    mbr_problem_phrases,
    mbr_step_add,
    mbr_step_update,
)
from carmfg.accounts.models import Role
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SegregationOfDuties, SignatureRefused
from carmfg.esign.models import Meaning, Signature
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused, StaleRecord
from tests.conftest import PASSWORD


@pytest.fixture
def draft(product, site_admin):
    return mbr_load(actor=site_admin, product=product, data=shipped_mbr_data())


def _approve_both(mbr, site_admin, qp):
    mbr.refresh_from_db()
    mbr_approve(actor=site_admin, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision)
    mbr.refresh_from_db()
    mbr_approve(actor=qp, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision)
    mbr.refresh_from_db()
    return mbr


def test_shipped_recipe_has_every_stage_of_a_car_t_process_and_every_kind_of_step(draft):
    stages = [s.code for s in draft.stages.all()]
    kinds = set(StepDefinition.objects.filter(stage__mbr=draft).values_list("kind", flat=True))

    assert stages == ["intake", "selection_activation", "transduction", "expansion", "harvest_formulation",
                      "labelling", "qc_sampling"]
    assert kinds == set(StepKind.values)
    assert draft.status == MbrStatus.DRAFT
    assert [problem.message for problem in mbr_problem_phrases(draft)] == []


def test_a_draft_needs_both_a_site_admin_and_a_qp_approval(draft, site_admin, qp):
    mbr_approve(actor=site_admin, mbr=draft, password=PASSWORD, expected_revision=draft.revision)
    draft.refresh_from_db()
    assert draft.status == MbrStatus.DRAFT

    mbr_approve(actor=qp, mbr=draft, password=PASSWORD, expected_revision=draft.revision)
    draft.refresh_from_db()

    assert draft.status == MbrStatus.APPROVED
    state = mbr_approval_state(draft)
    assert {sig.signer_id for sig in state.values()} == {site_admin.pk, qp.pk}
    assert {sig.meaning for sig in state.values()} == {Meaning.APPROVED}


def test_one_person_holding_both_roles_cannot_approve_twice(product, make_user):
    both = make_user("boss", roles=[Role.SITE_ADMIN, Role.QUALIFIED_PERSON], site=product.site)
    mbr = mbr_load(actor=both, product=product, data=shipped_mbr_data())
    mbr_approve(actor=both, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision, role=Role.SITE_ADMIN)

    with pytest.raises(SegregationOfDuties):
        mbr_approve(actor=both, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision, role=Role.QUALIFIED_PERSON)
    mbr.refresh_from_db()
    assert mbr.status == MbrStatus.DRAFT


def test_changing_a_draft_voids_an_approval_already_signed(draft, site_admin, qp):
    mbr_approve(actor=site_admin, mbr=draft, password=PASSWORD, expected_revision=draft.revision)
    draft.refresh_from_db()
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")

    mbr_step_update(actor=site_admin, step=step, expected_revision=draft.revision, reason="ARI-0001: ≥ 75 %",
                    action_min="75")
    draft.refresh_from_db()
    mbr_approve(actor=qp, mbr=draft, password=PASSWORD, expected_revision=draft.revision)
    draft.refresh_from_db()

    assert mbr_approval_state(draft)[Role.SITE_ADMIN] is None
    assert draft.status == MbrStatus.DRAFT
    assert Signature.objects.filter(signer=site_admin, voided_at__isnull=False).exists()


def test_technicians_and_qps_cannot_edit_a_recipe(draft, technician, qp):
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")
    for person in (technician, qp):
        with pytest.raises(PermissionRefused):
            mbr_step_update(actor=person, step=step, expected_revision=draft.revision, reason="x", action_min="10")


def test_a_technician_cannot_approve_a_recipe(draft, technician):
    with pytest.raises(PermissionRefused):
        mbr_approve(actor=technician, mbr=draft, password=PASSWORD, expected_revision=draft.revision)


def test_a_wrong_password_refuses_the_approval_and_is_audited(draft, qp):
    with pytest.raises(SignatureRefused):
        mbr_approve(actor=qp, mbr=draft, password="wrong-password-1", expected_revision=draft.revision)

    assert AuditEvent.objects.filter(action=Action.SIGN_REFUSED, actor=qp).exists()
    assert not Signature.objects.filter(signer=qp).exists()


def test_an_approved_recipe_can_no_longer_be_edited(draft, site_admin, qp):
    _approve_both(draft, site_admin, qp)
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")

    with pytest.raises(InvalidTransition, match="only a draft"):
        mbr_step_update(actor=site_admin, step=step, expected_revision=draft.revision, reason="x", action_min="60")


def test_a_draft_edit_from_a_stale_form_is_refused(draft, site_admin):
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")
    opened_at = draft.revision
    mbr_step_update(actor=site_admin, step=step, expected_revision=opened_at, reason="first edit", alert_min="85")

    with pytest.raises(StaleRecord):
        mbr_step_update(actor=site_admin, step=step, expected_revision=opened_at, reason="second edit", alert_min="82")


def test_limits_out_of_order_are_refused(draft, site_admin):
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")
    with pytest.raises(InvalidInput, match="in order"):
        mbr_step_update(actor=site_admin, step=step, expected_revision=draft.revision, reason="x",
                        action_min="90", alert_min="80")


def test_a_calculation_from_a_later_step_keeps_the_recipe_from_approval(draft, site_admin, qp):
    stage = draft.stages.get(code="intake")
    mbr_step_add(actor=site_admin, stage=stage, expected_revision=draft.revision, code="early_moi", kind="calculation",
                 title="MOI too early", calculation="moi", unit="TU/cell",
                 calculation_inputs={"titer_tu_per_ml": "lot:vector_lot:titer", "volume_ml": "step:vector_volume_ml",
                                     "viable_cells": "step:cells_at_transduction"})
    draft.refresh_from_db()

    with pytest.raises(NotReady, match="not an earlier"):
        mbr_approve(actor=qp, mbr=draft, password=PASSWORD, expected_revision=draft.revision)


def test_only_an_approved_recipe_becomes_effective(draft, qp):
    with pytest.raises(InvalidTransition):
        mbr_make_effective(actor=qp, mbr=draft)


def test_making_a_version_effective_supersedes_the_one_in_force(shipped_mbr, site_admin, qp):
    v2 = mbr_clone(actor=site_admin, mbr=shipped_mbr, change_summary="Harvest viability alert at 85 %")
    _approve_both(v2, site_admin, qp)

    mbr_make_effective(actor=qp, mbr=v2)

    shipped_mbr.refresh_from_db()
    v2.refresh_from_db()
    assert (shipped_mbr.status, v2.status) == (MbrStatus.SUPERSEDED, MbrStatus.EFFECTIVE)
    assert MasterBatchRecord.objects.filter(product=v2.product, status=MbrStatus.EFFECTIVE).count() == 1
    assert v2.version == shipped_mbr.version + 1


def test_a_clone_copies_every_stage_and_step(shipped_mbr, site_admin):
    v2 = mbr_clone(actor=site_admin, mbr=shipped_mbr, change_summary="Next version")

    def content(mbr):
        return [(s.stage.code, s.definition_content()) for s in StepDefinition.objects.filter(stage__mbr=mbr)
                .select_related("stage").order_by("stage__order", "order")]

    assert content(v2) == content(shipped_mbr)
    assert v2.based_on == shipped_mbr
    assert v2.status == MbrStatus.DRAFT


def test_a_new_version_never_changes_a_running_batch(shipped_mbr, started_batch, site_admin, qp, technician):
    batch = started_batch
    v2 = mbr_clone(actor=site_admin, mbr=shipped_mbr, change_summary="Stricter apheresis volume")
    volume_v2 = StepDefinition.objects.get(stage__mbr=v2, code="apheresis_volume_ml")
    mbr_step_update(actor=site_admin, step=volume_v2, expected_revision=v2.revision, reason="stricter",
                    alert_min="300", action_min="250")
    v2.refresh_from_db()
    mbr_step_add(actor=site_admin, stage=v2.stages.get(code="intake"), expected_revision=v2.revision,
                 code="extra_check", kind="instruction", title="A step only version 2 has")
    _approve_both(v2, site_admin, qp)
    mbr_make_effective(actor=qp, mbr=v2)

    batch.refresh_from_db()
    plan = load_plan(batch)
    assert batch.mbr_id == shipped_mbr.pk
    assert "extra_check" not in plan.by_code
    # 212 mL is within version 1's limits (alert ≥ 100 mL), though not within version 2's.
    bag = label_scan(batch, "apheresis_bag", actor=technician)
    steps: list[tuple[str, dict[str, Any]]] = [("line_clearance", {}), ("apheresis_bag_scan", {"scanned_code": bag}),
                                              ("bsc", {"equipment_code": "BSC-02"}), ("cell_counter", {"equipment_code": "NC-200-1"})]
    for code, inputs in steps:
        state = load_plan(batch).by_code[code]
        step_record(actor=technician, batch=batch, definition=state.definition, password=PASSWORD,
                    expected_occurrence=1, **inputs)
    volume = load_plan(batch).by_code["apheresis_volume_ml"]
    record = step_record(actor=technician, batch=batch, definition=volume.definition, password=PASSWORD,
                         expected_occurrence=1, value="212.0", unit="mL")

    assert record.definition.stage.mbr_id == shipped_mbr.pk
    assert record.limit_result == LimitResult.WITHIN
    assert record.value == Decimal("212.0")
