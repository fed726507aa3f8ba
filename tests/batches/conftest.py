"""Starting states for batch tests: a product and an effective master batch record.

Later states (patients, orders, intake, batches, steps) are reached through the
services in each test, as a user would reach them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from batches.models import (
    MasterBatchRecord,
    MbrStatus,
    Product,
    RegulatoryPathway,
    StageDefinition,
    StepDefinition,
)
from qc.models import Specification, SpecStatus, TestDefinition
from qc.spec_data import ARI_0001_LIKE, definition_rows


def effective_specification(product):
    """Starting state: the shipped ARI-0001-like specification, effective for ``product``
    (every new batch pins the effective specification)."""
    spec = Specification.objects.create(
        site=product.site, product=product, version=1, status=SpecStatus.EFFECTIVE, effective_at=timezone.now(),
        **{k: v for k, v in ARI_0001_LIKE.items() if k != "tests"},
    )
    for row in definition_rows():
        TestDefinition.objects.create(specification=spec, **row)
    return spec


@pytest.fixture
def product(site):
    product = Product.objects.create(
        site=site, code="cd19-cart", name="Anti-CD19 CAR-T (ARI-0001-like)",
        pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S1234", fraction_percents=[10, 30, 60],
    )
    effective_specification(product)
    return product


@pytest.fixture
def other_product(other_site):
    product = Product.objects.create(site=other_site, code="cd19-cart", name="Anti-CD19 CAR-T",
                                     pathway=RegulatoryPathway.COMPOUNDING, product_code="S9999")
    effective_specification(product)
    return product


@pytest.fixture
def small_mbr(product):
    """A small effective MBR: one instruction, one value with limits, one verified step."""
    mbr = MasterBatchRecord.objects.create(
        site=product.site, product=product, version=1, title="CD19 CAR-T test MBR",
        status=MbrStatus.EFFECTIVE, effective_at=timezone.now(),
    )
    stage = StageDefinition.objects.create(mbr=mbr, order=1, code="activation", name="Selection & activation")
    StepDefinition.objects.create(stage=stage, order=1, code="line_clearance", title="Line clearance", kind="instruction")
    StepDefinition.objects.create(
        stage=stage, order=2, code="viability_day0", title="Viability at seeding", kind="value", unit="%",
        decimal_places=1, alert_min=Decimal("80"), action_min=Decimal("70"), action_max=Decimal("100"), critical=True,
    )
    StepDefinition.objects.create(stage=stage, order=3, code="seeding_check", title="Seeding verified",
                                  kind="instruction", requires_verification=True)
    return mbr
