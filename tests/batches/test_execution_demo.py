"""The demo of `make run` is made through the services, and leaves what the screenshots show."""

from __future__ import annotations

from batches.demo_mbr import seed_manufacturing_demo
from batches.models import ApheresisIntake, Batch, BatchState, DeviationSource
from batches.progress import load_plan
from carmfg.audit.models import Action, AuditEvent
from tests.conftest import PASSWORD


def test_the_demo_leaves_a_batch_mid_expansion_made_through_intake(product, technician, verifier, qp, site_admin,
                                                                   coordinator):
    seed_manufacturing_demo(site=product.site, password=PASSWORD, log=lambda *_: None)

    growing, at_activation, planned = Batch.objects.filter(site=product.site).order_by("number")
    assert ApheresisIntake.objects.filter(donation=growing.donation).exists()
    plan = load_plan(growing)
    assert plan.next_step is not None
    assert (plan.next_step.definition.code, plan.next_step.next_occurrence) == ("daily_viable_cells", 5)
    deviation = growing.deviations.get()
    assert deviation.source == DeviationSource.OUT_OF_LIMIT
    assert deviation.capa
    assert AuditEvent.objects.filter(action=Action.BLOCKED, object_id=str(growing.pk)).exists()  # the expired lot
    next_at_activation = load_plan(at_activation).next_step
    assert next_at_activation is not None
    assert next_at_activation.definition.code == "transact"
    assert planned.state == BatchState.PLANNED

    seed_manufacturing_demo(site=product.site, password=PASSWORD, log=lambda *_: None)
    assert Batch.objects.filter(site=product.site).count() == 3  # idempotent
