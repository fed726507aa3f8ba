"""Starting states for QC and release tests.

``make_batch`` builds a batch that manufacturing has just finished (awaiting release):
patient, order, donation with its DIN, labels applied, receipt scanned, intake
accepted and a started batch are the starting state; every step of a small master
batch record is then recorded, signed and verified, the dose calculated and the
batch completed through the execution services. Everything QC and the QP do
afterwards goes through the services too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from batches.isbt128 import check_character
from batches.models import (
    ApheresisIntake,
    Batch,
    BatchState,
    ContainerType,
    CustodyEvent,
    CustodyStep,
    Donation,
    IntakeOutcome,
    Label,
    LabelStatus,
    MasterBatchRecord,
    MbrStatus,
    Order,
    Patient,
    StageDefinition,
    StepDefinition,
)
from batches.services.execution import batch_complete, step_record, step_verify
from qc.models import QualitativeResult, Specification, SpecStatus, TestDefinition, TestResult
from qc.selectors import batch_test_status
from qc.services.results import result_enter, result_review
from qc.spec_data import definition_rows
from tests.conftest import PASSWORD
from tests.fixtures.products import cd19_product, effective_specification, other_site_product

LONG_AGO = dt.timedelta(days=60)

# A passing result for each test of the ARI-0001-like specification: (value, unit) or qualitative.
PASSING = {
    "viability": ("85.0", "% of nucleated cells"),
    "cd3": ("92.0", "% of viable cells"),
    "car_pos": ("38.5", "% of CD3+"),
    "endotoxin": ("<0.25", "EU/mL"),
    "gram": QualitativeResult.CONFORMS,
    "mycoplasma": QualitativeResult.NOT_DETECTED,
    "sterility": QualitativeResult.NO_GROWTH,
    "vcn": ("2.10", "copies/transduced cell"),
    "ifng": ("1850", "pg/mL"),
}
FAILING = {
    "viability": ("55.0", "% of nucleated cells"),
    "sterility": QualitativeResult.GROWTH,
    "mycoplasma": QualitativeResult.DETECTED,
    "vcn": ("12.5", "copies/transduced cell"),
    "endotoxin": ("1.2", "EU/mL"),
}
PROVISIONAL_CODES = [row["code"] for row in definition_rows() if row["required_for_provisional"]]
LATE_CODES = [row["code"] for row in definition_rows() if not row["required_for_provisional"]]


def make_effective_specification(product, *, effective_at=None) -> Specification:
    """The shipped specification, in force for ``product`` since long before its batches."""
    return effective_specification(product, effective_at=effective_at or timezone.now() - LONG_AGO)


@pytest.fixture
def product(site):
    return cd19_product(site, spec_effective_at=timezone.now() - LONG_AGO)


@pytest.fixture
def other_product(other_site):
    return other_site_product(other_site, spec_effective_at=timezone.now() - LONG_AGO)


@pytest.fixture
def spec(product) -> Specification:
    return Specification.objects.get(product=product, status=SpecStatus.EFFECTIVE)


def make_mbr(product) -> MasterBatchRecord:
    mbr = MasterBatchRecord.objects.create(
        site=product.site, product=product, version=1, title="CD19 CAR-T closed-system MBR",
        status=MbrStatus.EFFECTIVE, effective_at=timezone.now() - LONG_AGO,
    )
    stage = StageDefinition.objects.create(mbr=mbr, order=1, code="harvest", name="Harvest & formulation")
    StepDefinition.objects.create(stage=stage, order=1, code="line_clearance", title="Line clearance",
                                  kind="instruction", requires_verification=True)
    StepDefinition.objects.create(stage=stage, order=2, code="harvest_car_pos", title="CAR+ viable cells at harvest",
                                  kind="value", unit="cells", critical=True)
    StepDefinition.objects.create(stage=stage, order=3, code="dose", title="Dose per kg", kind="calculation",
                                  calculation="dose_per_kg", unit="CAR+ cells/kg",
                                  calculation_inputs={"car_positive_cells": "step:harvest_car_pos",
                                                      "weight_kg": "patient:weight_kg",
                                                      "target_cells_per_kg": "order:target_dose_cells_per_kg"})
    StepDefinition.objects.create(stage=stage, order=4, code="qc_sampling", title="QC sampling", kind="sample",
                                  container_type=ContainerType.QC_SAMPLE,
                                  sample_tests=[row["code"] for row in definition_rows()])
    return mbr


@pytest.fixture
def mbr(product) -> MasterBatchRecord:
    return make_mbr(product)


@pytest.fixture
def make_batch(site, product, mbr, technician, verifier):
    """A batch just finished by manufacturing (see the module docstring). The rows up to
    a started batch are its starting state; its steps, their verification and its
    completion go through the execution services, as on the floor."""
    counter = {"n": 0}

    def make(*, harvest_car_cells: Decimal = Decimal("80000000"), target: Decimal = Decimal("1000000"),
             physician_email="dr.house@test.invalid", verify: bool = True) -> Batch:
        counter["n"] += 1
        n = counter["n"]
        now = timezone.now()
        patient = Patient.objects.create(
            site=site, pseudonym=f"PT-{n:04d}", initials="AB", birth_year=1980, hospital_record_number=f"HR{n}",
            wristband_code=f"WB{n:06d}", weight_kg=Decimal("70.0"), weight_measured_on=now.date(),
        )
        order = Order.objects.create(
            site=site, number=f"ORD-{n:04d}", patient=patient, product=product, indication="r/r B-ALL",
            treating_physician="Dr Gregory House", physician_email=physician_email, target_dose_cells_per_kg=target,
            planned_collection_date=(now - dt.timedelta(days=12)).date(),
        )
        din13 = f"{site.facility_identification_number}26{n:06d}"
        donation = Donation.objects.create(site=site, order=order, din=din13, check_character=check_character(din13))
        for code, kind in (("AB-1", ContainerType.APHERESIS_BAG), ("FP-1", ContainerType.FINAL_PRODUCT_BAG),
                           ("QC-1", ContainerType.QC_SAMPLE)):
            Label.objects.create(site=site, donation=donation, container_type=kind, container_code=code,
                                 status=LabelStatus.APPLIED, printed_by=technician, printed_at=now - dt.timedelta(days=11))
        CustodyEvent.objects.create(site=site, donation=donation, step=CustodyStep.RECEIPT, scanned_code=f"={din13}00",
                                    performed_by=technician, performed_at=now - dt.timedelta(days=11),
                                    location="GMP goods-in", temperature_c=Decimal("4.0"))
        ApheresisIntake.objects.create(
            site=site, donation=donation, collection_started_at=now - dt.timedelta(days=12, hours=4),
            collection_ended_at=now - dt.timedelta(days=12), received_at=now - dt.timedelta(days=11),
            transport_temperature_c=Decimal("4.0"), volume_ml=Decimal("250.0"), wbc_10e3_per_ul=Decimal("40.00"),
            cd3_cells_total=Decimal("3000000000"), bag_intact=True, label_scanned_code=f"={din13}00",
            meets_criteria=True, outcome=IntakeOutcome.ACCEPTED, recorded_by=technician,
            recorded_at=now - dt.timedelta(days=11),
        )
        batch = Batch.objects.create(
            site=site, number=f"B-T-{n:04d}", order=order, donation=donation, product=product, mbr=mbr,
            state=BatchState.IN_PROCESS, created_at=now - dt.timedelta(days=10), started_at=now - dt.timedelta(days=10),
        )
        inputs: dict[str, dict[str, Any]] = {"harvest_car_pos": {"value": str(harvest_car_cells), "unit": "cells"},
                  "qc_sampling": {"scanned_code": f"={din13}00/QC-1"}}  # the QC-1 label's DataMatrix
        for definition in StepDefinition.objects.filter(stage__mbr=mbr).order_by("stage__order", "order"):
            record = step_record(actor=technician, batch=batch, definition=definition, password=PASSWORD,
                                 expected_occurrence=1, **inputs.get(definition.code, {}))
            if definition.requires_verification and verify:
                step_verify(actor=verifier, record=record, password=PASSWORD, expected_version=record.version)
        if verify:
            batch.refresh_from_db()
            batch_complete(actor=technician, batch=batch, expected_version=batch.version)
        batch.refresh_from_db()
        return batch

    return make


def enter(batch, code: str, analyst, *, outcome: dict = PASSING, comment: str = "") -> TestResult:
    """Enter one result through the service, as the QC analyst would."""
    test = TestDefinition.objects.get(specification=batch.specification_pin.specification, code=code)
    given = outcome[code]
    if isinstance(given, tuple):
        return result_enter(actor=analyst, batch=batch, test=test, raw_value=given[0], unit=given[1],
                            password=PASSWORD, comment=comment)
    return result_enter(actor=analyst, batch=batch, test=test, qualitative=str(given), password=PASSWORD,
                        comment=comment)


def review(result: TestResult, reviewer) -> TestResult:
    result.refresh_from_db()
    return result_review(actor=reviewer, result=result, password=PASSWORD, expected_version=result.version)


def enter_and_review(batch, codes, analyst, reviewer, *, outcome: dict = PASSING) -> list[TestResult]:
    return [review(enter(batch, code, analyst, outcome=outcome), reviewer) for code in codes]


@pytest.fixture
def qc_passed(qc_analyst, qc_reviewer):
    """Enter and review passing results for the given tests (default: those required for
    provisional release)."""

    def run(batch, codes=None):
        return enter_and_review(batch, PROVISIONAL_CODES if codes is None else codes, qc_analyst, qc_reviewer)

    return run


def requirement_state(batch, key: str) -> str:
    return next(r.state for r in batch_test_status(batch).requirements if r.key == key)
