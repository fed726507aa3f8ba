"""Demo chain-of-identity data, made through the services as the users would make it.

Four patients at one site, each at another point of the chain:

* an order waiting for its collection;
* a collection registered (DIN issued) whose bag label is printed but not yet applied;
* material received within criteria: accepted, its batch created on the effective
  master batch record (only when one is effective), with a refused scan of another
  patient's bag in its chain of custody;
* material received outside its criteria (warm, late), waiting for a QP's decision.

Idempotent: each step is taken only if it has not been taken yet, so a later run
(e.g. once an MBR is effective) completes what an earlier run could not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from batches.exceptions import IdentityMismatch
from batches.models import (
    ContainerType,
    CustodyEvent,
    CustodyStep,
    Donation,
    Label,
    LabelStatus,
    Order,
    Patient,
    Product,
    RegulatoryPathway,
)
from batches.scans import din_of, label_scan_data
from batches.selectors import mbr_effective_for
from batches.services.custody import custody_scan
from batches.services.intake import intake_record
from batches.services.labels import label_apply, labels_print
from batches.services.patients import donation_register, order_create, patient_create, site_today
from carmfg.audit.models import Action, AuditEvent

DEMO_PRODUCT_CODE = "cd19-cart"


@dataclass(frozen=True)
class DemoPatient:
    hospital_record_number: str
    initials: str
    birth_year: int
    weight_kg: str
    story: str  # ordered, labelled, accepted, outside
    indication: str
    physician: str


DEMO_PATIENTS = [
    DemoPatient("HRN-40118", "E.N.", 1979, "81.0", "ordered", "Relapsed DLBCL after two lines", "Dr. A. Ivanova"),
    DemoPatient("HRN-40125", "T.R.", 1992, "63.5", "labelled", "Relapsed/refractory B-ALL", "Dr. A. Ivanova"),
    DemoPatient("HRN-40131", "V.K.", 1968, "72.0", "accepted", "Relapsed/refractory B-ALL", "Dr. M. Ortiz"),
    DemoPatient("HRN-40140", "S.L.", 1985, "58.4", "outside", "Mantle cell lymphoma, relapsed", "Dr. M. Ortiz"),
]


def _product(site, admin) -> Product:
    product = Product.objects.filter(site=site, code=DEMO_PRODUCT_CODE).first()
    if product is not None:
        return product
    # The manufacturing demo normally registers it (with its recipe); the same product otherwise.
    from batches.services.mbr import product_create

    return product_create(actor=admin, site=site, code=DEMO_PRODUCT_CODE, name="Anti-CD19 CAR-T (ARI-0001-like)",
                          pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S1234",
                          fraction_percents=[10, 30, 60])


def _scan_code(donation: Donation, code: str) -> str:
    return label_scan_data(din_of(donation), code)


def _bag(*, coord, donation: Donation, apply: bool) -> None:
    if not Label.objects.filter(donation=donation, container_type=ContainerType.APHERESIS_BAG).exists():
        labels_print(actor=coord, donation=donation, container_type=ContainerType.APHERESIS_BAG)
    if apply:
        for label in Label.objects.filter(donation=donation, status=LabelStatus.PRINTED,
                                          container_type=ContainerType.APHERESIS_BAG):
            label_apply(actor=coord, label=label)


def _custody(*, actor, donation: Donation, step: str, location: str, temperature_c=None) -> None:
    if CustodyEvent.objects.filter(donation=donation, step=step).exists():
        return
    custody_scan(actor=actor, donation=donation, step=step, scanned_code=_scan_code(donation, "AB-1"),
                 location=location, temperature_c=temperature_c)


def _intake(*, tech, donation: Donation, outside: bool) -> None:
    if hasattr(donation, "intake"):
        return
    now = timezone.now()
    ended = now - dt.timedelta(hours=28 if outside else 5)
    intake_record(
        actor=tech, donation=donation, collection_started_at=ended - dt.timedelta(hours=3, minutes=10),
        collection_ended_at=ended, received_at=now - dt.timedelta(minutes=50),
        transport_temperature_c=Decimal("9.6") if outside else Decimal("4.8"),
        volume_ml=Decimal("236.0") if outside else Decimal("212.0"),
        wbc_10e3_per_ul=Decimal("38.40") if outside else Decimal("52.10"),
        cd3_cells_total=Decimal("1.4e9") if outside else Decimal("3.1e9"),
        bag_intact=True, label_scanned_code=_scan_code(donation, "AB-1"),
    )


def seed_coi_demo(*, site, log: Callable[[str], object] = print) -> None:
    """The four demo patients of the module docstring at ``site`` (see there)."""
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["coord", "tech", "qp", "admin"])}
    coord, tech, admin = (users.get(n) for n in ("coord", "tech", "admin"))
    if None in (coord, tech, admin):
        log("Chain-of-identity demo skipped: the demo users coord, tech and admin are needed.")
        return
    product = _product(site, admin)
    today = site_today(site)
    donations: dict[str, Donation] = {}
    for spec in DEMO_PATIENTS:
        patient = Patient.objects.filter(site=site, hospital_record_number=spec.hospital_record_number).first()
        if patient is None:
            patient = patient_create(
                actor=coord, site=site, initials=spec.initials, birth_year=spec.birth_year,
                hospital_record_number=spec.hospital_record_number,
                wristband_code="WB" + spec.hospital_record_number.removeprefix("HRN-"),
                weight_kg=Decimal(spec.weight_kg), weight_measured_on=today - dt.timedelta(days=2),
            )
        order = Order.objects.filter(patient=patient).first() or order_create(
            actor=coord, patient=patient, product=product, indication=spec.indication,
            treating_physician=spec.physician, physician_email="haematology@demo.invalid",
            target_dose_cells_per_kg=Decimal("1000000"),
            planned_collection_date=today + dt.timedelta(days=3) if spec.story == "ordered" else today,
            planned_infusion_date=today + dt.timedelta(days=12),
        )
        if spec.story == "ordered":
            continue
        donation = Donation.objects.filter(order=order).first() or donation_register(actor=coord, order=order)
        _bag(coord=coord, donation=donation, apply=spec.story != "labelled")
        donations[spec.story] = donation
    for story in ("outside", "accepted"):
        donation = donations[story]
        _custody(actor=coord, donation=donation, step=CustodyStep.COLLECTION, location="Apheresis unit, 2nd floor")
        if story == "accepted" and not AuditEvent.objects.filter(
                action=Action.BLOCKED, root_type="batches.donation", root_id=str(donation.pk)).exists():
            # Two bags leave the apheresis unit together; the courier scans the other one first.
            with contextlib.suppress(IdentityMismatch):
                custody_scan(actor=coord, donation=donation, step=CustodyStep.TRANSPORT,
                             scanned_code=_scan_code(donations["outside"], "AB-1"),
                             location="Courier box 7", temperature_c=Decimal("4.6"))
        _custody(actor=coord, donation=donation, step=CustodyStep.TRANSPORT, location="Courier box 7",
                 temperature_c=Decimal("9.4") if story == "outside" else Decimal("4.6"))
    _intake(tech=tech, donation=donations["outside"], outside=True)
    if mbr_effective_for(product) is not None:
        _intake(tech=tech, donation=donations["accepted"], outside=False)
    else:
        log("Chain-of-identity demo: no effective MBR, so the accepted intake (and its batch) waits.")
    log("Chain-of-identity demo: 4 patients (ordered, labelled, accepted, outside criteria).")
