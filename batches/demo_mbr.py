"""The shipped master batch record, and demo manufacturing data built through the services.

``batches/data/mbr_cd19_lv_closed_system.json`` is a typical lentiviral anti-CD19
CAR-T process on a closed automated system, written as data. It is loaded as a draft
through the same service as the editor, approved by a site administrator and a QP, and
made effective: a site reviews it against its own validated process before using it.

The demo lots, equipment and the batch left mid-expansion are also made through the
services (with real signatures), so the demo's audit trail is a real one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils.translation import gettext_noop

from batches.models import (
    Batch,
    BatchState,
    Equipment,
    MasterBatchRecord,
    MaterialLot,
    MbrStatus,
    Product,
    StepKind,
)
from batches.progress import load_plan
from batches.services.equipment import equipment_create
from batches.services.materials import material_lot_create, material_lot_release, site_today
from batches.services.mbr import mbr_approve, mbr_load, mbr_make_effective
from carmfg.accounts.models import Role

SHIPPED_MBR = Path(__file__).resolve().parent / "data" / "mbr_cd19_lv_closed_system.json"


def shipped_mbr_data() -> dict:
    with SHIPPED_MBR.open(encoding="utf-8") as handle:
        return json.load(handle)


def load_shipped_mbr(*, product: Product, admin, qp, password: str, request=None) -> MasterBatchRecord:
    """The shipped recipe as the product's effective version (kept if one is effective already)."""
    current = MasterBatchRecord.objects.filter(product=product, status=MbrStatus.EFFECTIVE).first()
    if current is not None:
        return current
    mbr = mbr_load(actor=admin, product=product, data=shipped_mbr_data())
    mbr_approve(actor=admin, mbr=mbr, password=password, request=request, expected_revision=mbr.revision,
                role=Role.SITE_ADMIN, comment="Reviewed against the site's validated process")
    mbr.refresh_from_db()
    mbr_approve(actor=qp, mbr=mbr, password=password, request=request, expected_revision=mbr.revision,
                role=Role.QUALIFIED_PERSON)
    return mbr_make_effective(actor=qp, mbr=mbr, reason="Shipped recipe put in force for the demo")


@dataclass(frozen=True)
class DemoLot:
    material_type: str
    name: str
    lot_number: str
    barcode: str
    expires_in_days: int
    release: bool = True
    titer_tu_per_ml: str | None = None


# One usable lot per material of the shipped recipe, plus the lots that show the blocks.
DEMO_LOTS = [
    DemoLot("tubing_set", "Tubing set TS520", "TS-24-0917", "LOT-TS-240917", 400),
    DemoLot("cd4_microbeads", "CD4 MicroBeads", "CD4-6612", "LOT-CD4-6612", 200),
    DemoLot("cd8_microbeads", "CD8 MicroBeads", "CD8-6640", "LOT-CD8-6640", 200),
    DemoLot("culture_medium", "TexMACS GMP medium 2 L", "TM-5521", "LOT-TM-5521", 120),
    DemoLot("il7", "IL-7 premium grade", "IL7-0311", "LOT-IL7-0311", 300),
    DemoLot("il15", "IL-15 premium grade", "IL15-0308", "LOT-IL15-0308", 300),
    DemoLot("transact", "T Cell TransAct", "TA-7720", "LOT-TA-7720", 150),
    DemoLot("lentiviral_vector", "Anti-CD19 CAR lentiviral vector", "LV-CD19-023", "LOT-LV-CD19-023", 500,
            titer_tu_per_ml="250000000"),
    DemoLot("formulation_buffer", "Formulation buffer (saline + 1 % HSA)", "FB-2207", "LOT-FB-2207", 90),
    # Expired yesterday (registered from the store's inventory, never released): refused at the scan.
    DemoLot("transact", "T Cell TransAct", "TA-7318", "LOT-TA-7318", -1, release=False),
    # Received, not yet released by QC: refused at the scan.
    DemoLot("il15", "IL-15 premium grade", "IL15-0415", "LOT-IL15-0415", 365, release=False),
]


@dataclass(frozen=True)
class DemoEquipment:
    asset_id: str
    equipment_type: str
    name: str
    calibration_due_in_days: int
    maintenance_due_in_days: int | None = None


DEMO_EQUIPMENT = [
    DemoEquipment("BSC-02", "biosafety_cabinet", "Biosafety cabinet class II, room B2", 160, 60),
    DemoEquipment("PRODIGY-01", "cell_processor", "CliniMACS Prodigy #1", 90, 30),
    DemoEquipment("PRODIGY-02", "cell_processor", "CliniMACS Prodigy #2", -3, 30),  # calibration overdue
    DemoEquipment("NC-200-1", "cell_counter", "NucleoCounter NC-200", 45),
    DemoEquipment("FACS-1", "flow_cytometer", "MACSQuant flow cytometer", 120),
]


def load_demo_materials(*, site, admin, qp, password: str) -> None:
    """Lots and equipment for the shipped recipe (existing ones are kept)."""
    today = site_today(site)
    for spec in DEMO_LOTS:
        if MaterialLot.objects.filter(site=site, barcode=spec.barcode).exists():
            continue
        lot = material_lot_create(
            actor=admin, site=site, material_type=spec.material_type, name=spec.name, lot_number=spec.lot_number,
            barcode=spec.barcode, expiry_date=today + dt.timedelta(days=spec.expires_in_days),
            titer_tu_per_ml=spec.titer_tu_per_ml,
        )
        if spec.release:
            material_lot_release(actor=qp, lot=lot, password=password, expected_version=lot.version,
                                 comment="Certificate of analysis checked")
    for eq in DEMO_EQUIPMENT:
        if Equipment.objects.filter(site=site, asset_id=eq.asset_id).exists():
            continue
        equipment_create(
            actor=admin, site=site, asset_id=eq.asset_id, equipment_type=eq.equipment_type, name=eq.name,
            calibration_due=today + dt.timedelta(days=eq.calibration_due_in_days),
            maintenance_due=today + dt.timedelta(days=eq.maintenance_due_in_days)
            if eq.maintenance_due_in_days is not None else None,
        )


# --- a typical good run of the shipped recipe -------------------------------------------------

GOOD_VALUES: dict[str, str] = {
    "apheresis_volume_ml": "212.0",
    "apheresis_viable_wbc": "8.4e9",
    "apheresis_viability": "97.5",
    "selected_viable_cells": "1.1e9",
    "selected_viability": "96.0",
    "seeded_viable_cells": "1.0e8",
    "cells_at_transduction": "1.0e8",
    "vector_volume_ml": "2.00",       # 2.5e8 TU/mL × 2 mL / 1e8 cells = MOI 5
    "harvest_viable_cells": "2.4e9",
    "harvest_viability": "93.5",
    "car_positive_pct": "35.0",
    "formulated_concentration": "1.0e6",
}
# Daily counts: (viable cells, viability %, chamber temperature °C) from day 3 to day 10.
DAILY_COUNTS = [
    ("1.4e8", "91.2", "37.0"), ("2.6e8", "92.5", "37.1"), ("4.9e8", "93.8", "36.9"), ("8.6e8", "94.1", "37.0"),
    ("1.3e9", "94.6", "37.0"), ("1.8e9", "94.0", "37.2"), ("2.2e9", "93.4", "37.0"), ("2.4e9", "93.5", "37.1"),
]
LOT_FOR = {"tubing_set": "LOT-TS-240917", "cd4_microbeads": "LOT-CD4-6612", "cd8_microbeads": "LOT-CD8-6640",
           "culture_medium": "LOT-TM-5521", "il7": "LOT-IL7-0311", "il15": "LOT-IL15-0308",
           "transact": "LOT-TA-7720", "lentiviral_vector": "LOT-LV-CD19-023",
           "formulation_buffer": "LOT-FB-2207"}
EQUIPMENT_FOR = {"biosafety_cabinet": "BSC-02", "cell_processor": "PRODIGY-01", "cell_counter": "NC-200-1",
                 "flow_cytometer": "FACS-1"}


def label_scan(batch: Batch, container_type: str, *, actor, index: int = 0) -> str:
    """What scanning the DataMatrix of the batch's ``index``-th label of ``container_type``
    gives; the label is printed and applied first (by ``actor``, through the label
    services) when there is none yet, as on the floor."""
    from django.utils import timezone

    from batches.isbt128 import parse_din
    from batches.models import ContainerType, Label, LabelStatus
    from batches.scans import label_scan_data
    from batches.services.labels import label_apply, labels_print

    def live():
        return list(Label.objects.filter(donation=batch.donation, container_type=container_type)
                    .exclude(status=LabelStatus.DESTROYED).order_by("pk"))

    labels = live()
    if len(labels) <= index:
        if container_type == ContainerType.FINAL_PRODUCT_BAG:
            labels_print(actor=actor, donation=batch.donation, container_type=container_type,
                         expires_at=timezone.now() + dt.timedelta(days=3))
        else:
            labels_print(actor=actor, donation=batch.donation, container_type=container_type,
                         quantity=index + 1 - len(labels))
        labels = live()
    label = labels[index]
    if label.status == LabelStatus.PRINTED:
        label = label_apply(actor=actor, label=label)
    return label_scan_data(parse_din(batch.donation.din), label.container_code)


def step_inputs(state, batch: Batch, *, actor=None, daily_counts=DAILY_COUNTS) -> dict:
    """What a technician enters for ``state`` (a ``StepState``) in a good run."""
    definition = state.definition
    kind = definition.kind
    if kind == StepKind.VALUE:
        if definition.repeatable:
            column = {"daily_viable_cells": 0, "daily_viability": 1, "daily_temperature": 2}[definition.code]
            return {"value": daily_counts[state.count][column], "unit": definition.unit}
        return {"value": GOOD_VALUES[definition.code], "unit": definition.unit}
    if kind == StepKind.MATERIAL:
        return {"lot_barcode": LOT_FOR[definition.material_type]}
    if kind == StepKind.EQUIPMENT:
        return {"equipment_code": EQUIPMENT_FOR[definition.equipment_type]}
    if kind in (StepKind.SCAN, StepKind.SAMPLE):
        index = state.count if definition.repeatable else 0
        return {"scanned_code": label_scan(batch, definition.container_type, actor=actor, index=index)}
    return {}


def run_good_steps(*, batch: Batch, technician, verifier, password: str, stop_before: str | None = None,
                   expansion_days: int = len(DAILY_COUNTS)) -> Batch:
    """Record the shipped recipe's steps in order, as a technician and a verifier would,
    until ``stop_before`` (a step code) or the end. The expansion cycle runs
    ``expansion_days`` times."""
    from batches.services.execution import batch_start, step_record, step_verify

    batch.refresh_from_db()
    if batch.state == BatchState.PLANNED:
        batch = batch_start(actor=technician, batch=batch, expected_version=batch.version)
    for _ in range(500):
        plan = load_plan(batch)
        for record_state in plan.awaiting_verification:
            step_verify(actor=verifier, record=record_state.record, password=password,
                        expected_version=record_state.record.version)
        plan = load_plan(batch)
        state = plan.next_step
        if state is not None and state is plan.cycle_continuation:
            # Daily counts until the culture ends; one bag scan per fraction.
            wanted = len(batch.product.fraction_percents or [100]) if state.definition.kind == StepKind.SCAN \
                else expansion_days
            if state.count >= wanted:
                state = plan.move_on_step
        if state is None or state.definition.code == stop_before:
            break
        step_record(actor=technician, batch=batch, definition=state.definition, password=password,
                    expected_occurrence=state.next_occurrence, **step_inputs(state, batch, actor=technician))
    batch.refresh_from_db()
    return batch


def demo_weight_kg() -> Decimal:
    return Decimal("68.0")


# --- the demo of `make run` -------------------------------------------------------------------------

DEMO_PRODUCT: dict[str, Any] = {"code": "cd19-cart", "name": "Anti-CD19 CAR-T (ARI-0001-like)", "product_code": "S1234",
                "fraction_percents": [10, 30, 60]}


def demo_product(*, site, admin) -> Product:
    from batches.models import RegulatoryPathway
    from batches.services.mbr import product_create

    return Product.objects.filter(site=site, code=DEMO_PRODUCT["code"]).first() or product_create(
        actor=admin, site=site, pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, **DEMO_PRODUCT)


def _demo_batch_rows(*, site, product, actor, pseudonym: str, initials: str, birth_year: int, weight_kg: str) -> Batch:
    """Patient → order → donation → batch rows, each audited, without the chain-of-identity
    flow (no labels, no intake). For demo batches that must look older than today (the QC
    demo); :func:`_demo_batch` makes a batch the way a site does."""
    from django.db import transaction
    from django.utils import timezone

    from batches.exceptions import NotReady
    from batches.isbt128 import next_din
    from batches.models import Donation, Order, Patient
    from batches.numbering import formatted_number, next_number
    from batches.selectors import mbr_effective_for
    from carmfg.audit.models import Action
    from carmfg.audit.services import audit_record

    today = site_today(site)
    with transaction.atomic():
        patient = Patient.objects.create(
            site=site, pseudonym=pseudonym, initials=initials, birth_year=birth_year,
            hospital_record_number=f"HRN-{pseudonym}", wristband_code=f"WB-{pseudonym}",
            weight_kg=Decimal(weight_kg), weight_measured_on=today)
        audit_record(actor=actor, action=Action.CREATE, obj=patient, changes=patient.signable_content())
        order = Order.objects.create(
            site=site, number=formatted_number(site=site, prefix="ORD"), patient=patient, product=product,
            indication="Relapsed/refractory B-ALL", treating_physician="Dr. A. Ivanova",
            target_dose_cells_per_kg=Decimal("1000000"), planned_collection_date=today)
        audit_record(actor=actor, action=Action.CREATE, obj=order, changes=order.signable_content())
        din = next_din(site.facility_identification_number, today.year,
                       next_number(site=site, key="din", year=today.year) - 1)  # the counter of donation_register
        donation = Donation.objects.create(site=site, order=order, din=din.din13, check_character=din.check)
        audit_record(actor=actor, action=Action.CREATE, obj=donation, changes={"din": donation.din})
        mbr = mbr_effective_for(product)
        if mbr is None:
            raise NotReady(gettext_noop("%(product)s has no effective master batch record."),
                           params={"product": product})
        batch = Batch.objects.create(site=site, number=formatted_number(site=site, prefix="B"), order=order,
                                     donation=donation, product=product, mbr=mbr, created_at=timezone.now())
        audit_record(actor=actor, action=Action.CREATE, obj=batch,
                     changes={"number": batch.number, "mbr": str(batch.mbr), "din": donation.din})
    return batch


def _demo_batch(*, site, product, coordinator, technician, initials: str, birth_year: int, weight_kg: str,
                record_number: str) -> Batch:
    """A batch made as at the site: the coordinator registers the patient, the order and the
    collection (DIN) and labels the apheresis bag; the technician records its intake, which,
    within the acceptance criteria, creates the batch on the effective recipe."""
    from django.utils import timezone

    from batches.isbt128 import parse_din
    from batches.scans import label_scan_data
    from batches.services.intake import intake_record
    from batches.services.labels import label_apply, labels_print
    from batches.services.patients import donation_register, order_create, patient_create

    today = site_today(site)
    now = timezone.now()
    patient = patient_create(actor=coordinator, site=site, initials=initials, birth_year=birth_year,
                             hospital_record_number=record_number, wristband_code=f"WB-{record_number}",
                             weight_kg=weight_kg, weight_measured_on=today)
    order = order_create(actor=coordinator, patient=patient, product=product, indication="Relapsed/refractory B-ALL",
                         treating_physician="Dr. A. Ivanova", target_dose_cells_per_kg="1000000",
                         planned_collection_date=today)
    donation = donation_register(actor=coordinator, order=order, collection_date=today)
    labels, _pdf = labels_print(actor=coordinator, donation=donation, container_type="apheresis_bag")
    label = label_apply(actor=coordinator, label=labels[0])
    intake_record(actor=technician, donation=donation, collection_started_at=now - dt.timedelta(hours=7),
                  collection_ended_at=now - dt.timedelta(hours=3), received_at=now - dt.timedelta(minutes=30),
                  transport_temperature_c="4.0", volume_ml="212.0", wbc_10e3_per_ul="39.60",
                  cd3_cells_total="2100000000", bag_intact=True,
                  label_scanned_code=label_scan_data(parse_din(donation.din), label.container_code))
    return Batch.objects.get(donation=donation)


def _record(batch, code, actor, password, **inputs):
    from batches.services.execution import step_record

    state = load_plan(batch).by_code[code]
    return step_record(actor=actor, batch=batch, definition=state.definition, password=password,
                       expected_occurrence=state.next_occurrence, **inputs)


def seed_manufacturing_demo(*, site, password: str, prepare_product=None, log=print) -> None:
    """Product, shipped recipe, lots and equipment, and three batches made through the
    chain-of-identity services (patient, order, DIN, bag label, intake): one mid-expansion
    (with an out-of-limit temperature and its deviation under investigation), one at the
    activation reagent (to try the expired lot), one planned. Idempotent: a site that has
    batches already gets none added. ``prepare_product(product)`` runs before the batches
    (the QC app puts the product's specification into effect there)."""
    from django.contrib.auth import get_user_model

    from batches.exceptions import MaterialNotUsable
    from batches.services.deviations import deviation_update
    from carmfg.exceptions import GMPError

    names = ("tech", "verifier", "qp", "admin", "coord")
    users = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
    tech, verifier, qp, admin, coord = (users.get(n) for n in names)
    if None in (tech, verifier, qp, admin, coord):
        log("Manufacturing demo skipped: the demo users tech, verifier, qp, admin and coord are needed.")
        return
    product = demo_product(site=site, admin=admin)
    load_shipped_mbr(product=product, admin=admin, qp=qp, password=password)
    load_demo_materials(site=site, admin=admin, qp=qp, password=password)
    if prepare_product is not None:
        prepare_product(product)
    if Batch.objects.filter(site=site).exists():
        return
    try:
        growing = _demo_batch(site=site, product=product, coordinator=coord, technician=tech, initials="KM",
                              birth_year=1987, weight_kg="68.0", record_number="HRN-2026-0417")
    except GMPError as exc:
        log(f"Demo batches skipped: {exc.message}")
        return
    run_good_steps(batch=growing, technician=tech, verifier=verifier, password=password, stop_before="transact")
    # The technician first scans the expired lot: refused, and the refusal is in the audit trail.
    with contextlib.suppress(MaterialNotUsable):
        _record(growing, "transact", tech, password, lot_barcode="LOT-TA-7318")
    run_good_steps(batch=growing, technician=tech, verifier=verifier, password=password,
                   stop_before="daily_viable_cells")
    for day, (cells, viability, temperature) in enumerate(DAILY_COUNTS[:4], start=1):
        _record(growing, "daily_viable_cells", tech, password, value=cells, unit="cells")
        _record(growing, "daily_viability", tech, password, value=viability, unit="%")
        if day == 2:
            saved = _record(growing, "daily_temperature", tech, password, value="38.4", unit="°C", confirmed=True,
                            comment="Chamber alarm during the feed; probe re-checked, 37.1 °C after 20 min")
            deviation_update(
                actor=verifier, deviation=saved.deviation, reason="Investigation", expected_version=saved.deviation.version,
                impact_assessment="38.4 °C for under 30 minutes during the day-4 feed. Viability and growth of the "
                                  "following counts stay in trend: no impact on the product expected.",
                root_cause="The feed line touched the chamber temperature probe during the feed.",
                capa="Clip added to hold the feed line away from the probe; SOP-EXP-004 updated (training done).")
        else:
            _record(growing, "daily_temperature", tech, password, value=temperature, unit="°C")
    at_activation = _demo_batch(site=site, product=product, coordinator=coord, technician=tech, initials="DS",
                                birth_year=1979, weight_kg="74.5", record_number="HRN-2026-0422")
    run_good_steps(batch=at_activation, technician=tech, verifier=verifier, password=password, stop_before="transact")
    _demo_batch(site=site, product=product, coordinator=coord, technician=tech, initials="AV", birth_year=2006,
                weight_kg="52.0", record_number="HRN-2026-0431")
    log(f"Manufacturing demo: {growing.number} mid-expansion, {at_activation.number} at activation, one planned.")
