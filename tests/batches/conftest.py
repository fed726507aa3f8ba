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
    StageDefinition,
    StepDefinition,
)
from carmfg.accounts.services import profile_language_set
from tests.fixtures.products import cd19_product, other_site_product


@pytest.fixture
def product(site):
    return cd19_product(site)


@pytest.fixture
def other_product(other_site):
    return other_site_product(other_site)


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


# --- manufacturing execution: shipped recipe, lots, equipment, batches -------------------------
# Starting states only. The recipe, lots and equipment go through their services (as at a
# site); the patient → order → donation → batch rows are made directly until the intake
# service can create batches.


@pytest.fixture
def shipped_mbr(product, site_admin, qp):
    """The shipped CD19 recipe, approved by the site admin and the QP, and effective."""
    from batches.demo_mbr import load_shipped_mbr
    from tests.conftest import PASSWORD

    return load_shipped_mbr(product=product, admin=site_admin, qp=qp, password=PASSWORD)


@pytest.fixture
def demo_materials(site, site_admin, qp):
    """The demo's lots (released, one expired, one in quarantine) and equipment (one overdue)."""
    from batches.demo_mbr import load_demo_materials
    from tests.conftest import PASSWORD

    load_demo_materials(site=site, admin=site_admin, qp=qp, password=PASSWORD)


@pytest.fixture
def make_batch(db):
    """A planned batch of ``product`` pinned to ``mbr`` (default: the effective one)."""
    import datetime as dt

    from batches.isbt128 import next_din
    from batches.models import Batch, Donation, Order, Patient
    from batches.selectors import mbr_effective_for

    counter = {"n": 0}

    def make(product, *, mbr=None, weight_kg="68.0", target_cells_per_kg="1000000"):
        counter["n"] += 1
        n, site = counter["n"], product.site
        today = dt.date(2026, 3, 2)
        patient = Patient.objects.create(
            site=site, pseudonym=f"PT-{n:04d}", initials="KM", birth_year=1987, hospital_record_number=f"HRN-{n}",
            wristband_code=f"WB-{n:06d}", weight_kg=Decimal(weight_kg), weight_measured_on=today)
        order = Order.objects.create(
            site=site, number=f"ORD-{site.code.upper()}-{n:04d}", patient=patient, product=product,
            indication="Relapsed B-ALL", treating_physician="Dr. A. Ivanova",
            target_dose_cells_per_kg=Decimal(target_cells_per_kg), planned_collection_date=today)
        din = next_din(site.facility_identification_number, 2026, n)
        donation = Donation.objects.create(site=site, order=order, din=din.din13, check_character=din.check)
        pinned = mbr or mbr_effective_for(product)
        assert pinned is not None, "the product needs an effective MBR"
        return Batch.objects.create(
            site=site, number=f"B-{site.code.upper()}-2026-{n:04d}", order=order, donation=donation, product=product,
            mbr=pinned, created_at=timezone.now())

    return make


@pytest.fixture
def started_batch(shipped_mbr, demo_materials, make_batch, technician):
    """A batch of the shipped recipe, started by the technician (in process, no step recorded
    yet), with the demo's lots and equipment on site."""
    from batches.services.execution import batch_start

    batch = make_batch(shipped_mbr.product)
    return batch_start(actor=technician, batch=batch, expected_version=batch.version)


@pytest.fixture
def russian_client(client_for):
    """``russian_client(user)``: a client logged in as ``user``, who chose Russian in their
    profile (pages and messages in Russian; what is stored stays English)."""

    def make(user):
        profile_language_set(actor=user, language="ru")
        return client_for(user)

    return make
