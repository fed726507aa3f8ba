"""Starting states for the benchmarks: a site with people, a product, a one-step
master batch record and batches in process, reached the way a site reaches them
(services for the people and the start of manufacturing; rows for the recipe and the
order chain, as tests/batches/conftest.py does)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from batches.isbt128 import next_din
from batches.models import (
    Batch,
    Donation,
    MasterBatchRecord,
    MbrStatus,
    Order,
    Patient,
    Product,
    RegulatoryPathway,
    StageDefinition,
    StepDefinition,
)
from batches.services.execution import batch_start
from carmfg.accounts.models import Role
from carmfg.accounts.services import membership_set_roles, site_create, user_create
from qc.models import Specification, SpecStatus, TestDefinition
from qc.spec_data import ARI_0001_LIKE, definition_rows

PASSWORD = "bench-" + uuid.uuid4().hex


@dataclass
class World:
    site: Any
    technician: Any
    product: Product
    mbr: MasterBatchRecord
    step: StepDefinition
    tag: str
    made: int = 0


def world_create(*, technicians: int = 1, repeatable: bool = False) -> tuple[World, list]:
    """A fresh site (its own audit chain) with ``technicians`` technicians; returns the
    world and the list of technicians (the first is ``world.technician``)."""
    tag = uuid.uuid4().hex[:6]
    site = site_create(actor=None, code=f"w{tag}", name=f"Bench unit {tag}", time_zone="UTC",
                       facility_identification_number=f"B{int(tag, 16) % 10000:04d}")
    people = []
    for i in range(technicians):
        user = user_create(actor=None, username=f"tech{i}-{tag}", full_name=f"Bench Technician {i}",
                           email=f"tech{i}@bench.invalid", password=PASSWORD)
        membership_set_roles(actor=None, user=user, site=site, roles=[Role.TECHNICIAN])
        people.append(user)
    product = Product.objects.create(site=site, code="cd19-cart", name="Anti-CD19 CAR-T",
                                     pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S1234")
    spec = Specification.objects.create(
        site=site, product=product, version=1, status=SpecStatus.EFFECTIVE, effective_at=timezone.now(),
        **{k: v for k, v in ARI_0001_LIKE.items() if k != "tests"},
    )
    TestDefinition.objects.bulk_create(TestDefinition(specification=spec, **row) for row in definition_rows())
    mbr = MasterBatchRecord.objects.create(site=site, product=product, version=1, title="Bench MBR",
                                           status=MbrStatus.EFFECTIVE, effective_at=timezone.now())
    stage = StageDefinition.objects.create(mbr=mbr, order=1, code="expansion", name="Expansion")
    step = StepDefinition.objects.create(
        stage=stage, order=1, code="viable_count", title="Viable cell count", kind="value", unit="%",
        decimal_places=1, action_min=Decimal("50"), action_max=Decimal("100"), repeatable=repeatable,
    )
    return World(site=site, technician=people[0], product=product, mbr=mbr, step=step, tag=tag), people


def batches_in_process(world: World, n: int) -> list[Batch]:
    """``n`` batches of the world's product, started through ``batch_start``."""
    out = []
    site = world.site
    today = dt.date(2026, 3, 2)
    for _ in range(n):
        world.made += 1
        i = world.made
        patient = Patient.objects.create(
            site=site, pseudonym=f"PT-{i:05d}", initials="KM", birth_year=1980, hospital_record_number=f"H{i}",
            wristband_code=f"WB-{world.tag}-{i}", weight_kg=Decimal("70.0"), weight_measured_on=today)
        order = Order.objects.create(
            site=site, number=f"ORD-{i:05d}", patient=patient, product=world.product, indication="B-ALL",
            treating_physician="Dr. A", target_dose_cells_per_kg=Decimal("1000000"), planned_collection_date=today)
        din = next_din(site.facility_identification_number, 2026, i)
        donation = Donation.objects.create(site=site, order=order, din=din.din13, check_character=din.check)
        batch = Batch.objects.create(site=site, number=f"B-{i:05d}", order=order, donation=donation,
                                     product=world.product, mbr=world.mbr, created_at=timezone.now())
        out.append(batch_start(actor=world.technician, batch=batch, expected_version=batch.version))
    return out
