"""A whole batch of the shipped recipe, executed through the services from intake to
awaiting release: every stage, values, lots, equipment, calculations, signatures."""

from __future__ import annotations

from decimal import Decimal

from batches.demo_mbr import run_good_steps
from batches.models import BatchState, LimitResult, StepKind, StepRecord
from batches.progress import load_plan
from batches.services.deviations import open_blocking_deviations
from batches.services.execution import batch_complete, batch_start
from tests.conftest import PASSWORD


def test_a_demo_batch_runs_end_to_end_and_awaits_release(shipped_mbr, demo_materials, make_batch, technician, verifier):
    batch = make_batch(shipped_mbr.product, weight_kg="68.0", target_cells_per_kg="1000000")
    batch_start(actor=technician, batch=batch, expected_version=batch.version)

    run_good_steps(batch=batch, technician=technician, verifier=verifier, password=PASSWORD)
    plan = load_plan(batch)

    # every stage, every step, signed by its performer and verified by a second person where required
    assert [s.stage.code for s in plan.stages] == ["intake", "selection_activation", "transduction", "expansion",
                                                   "harvest_formulation", "labelling", "qc_sampling"]
    assert plan.completion_problems() == []
    for state in plan.steps:
        assert state.count >= 1, state.definition.code
        for rec in state.records:
            assert rec.performed is not None
            assert rec.performed.signature.signer == technician
            if state.definition.requires_verification:
                assert rec.verified is not None
                assert rec.verified.signature.signer == verifier
    assert {s.definition.kind for s in plan.steps} == set(StepKind.values)
    assert plan.by_code["daily_viable_cells"].count == 8  # days 3 to 10

    def value(code):
        return StepRecord.objects.get(batch=batch, definition__code=code)

    # calculations, worked by hand:
    assert value("moi").value == Decimal("5.00")                    # 2.5e8 TU/mL × 2.00 mL / 1.0e8 cells
    assert value("fold_expansion").value == Decimal("24.0")         # 2.4e9 on day 10 / 1.0e8 seeded
    assert value("population_doublings").value == Decimal("4.58")   # log2(24)
    assert value("car_positive_cells").value == Decimal("840000000")  # 2.4e9 × 35 %
    dose = value("dose")
    assert dose.value == Decimal("1000000")                         # target reached: 1.2e7/kg achievable
    assert dose.calculation_outputs["dose_cells_total"] == "68000000"  # 1e6/kg × 68 kg
    assert value("fractions").calculation_outputs["cells"] == ["6800000", "20400000", "40800000"]  # 10/30/60 %
    fill = value("fill_volumes")
    assert fill.calculation_outputs["volumes_ml"] == ["6.8", "20.4", "40.8"]  # at 1.0e6 CAR+ cells/mL
    assert fill.value == Decimal("68.0")
    assert all(r.limit_result in (LimitResult.WITHIN, LimitResult.NONE)
               for r in StepRecord.objects.filter(batch=batch))
    assert value("vector_lot").material_lot.lot_number == "LV-CD19-023"
    assert value("cell_processor").equipment.asset_id == "PRODIGY-01"
    assert value("apheresis_bag_scan").value_text == f"{batch.donation.din} · AB-1"
    assert [r.value_text for r in StepRecord.objects.filter(batch=batch, definition__code="final_bag_scan")
            .order_by("occurrence")] == [f"{batch.donation.din} · FP-{n}" for n in (1, 2, 3)]

    batch.refresh_from_db()
    batch_complete(actor=technician, batch=batch, expected_version=batch.version)
    batch.refresh_from_db()
    assert batch.state == BatchState.AWAITING_RELEASE
    assert batch.completed_at is not None
    assert open_blocking_deviations(batch) == []
