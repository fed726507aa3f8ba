"""Steps of the chain of identity, taken through the services as users take them.

Tests build their starting states with these (a patient, an order, a collection with
its applied bag label, an accepted intake, a released batch) instead of writing rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from batches.models import BatchState, ContainerType, Donation, Label
from batches.scans import din_of, label_scan_data
from batches.services.intake import intake_record
from batches.services.labels import label_apply, labels_print
from batches.services.patients import donation_register, order_create, patient_create, site_today
from batches.services.transitions import batch_transition


def a_patient(coordinator, site, *, n: int = 1, **overrides):
    values = {
        "initials": "A.B.", "birth_year": 1968, "hospital_record_number": f"HRN-{n:05d}",
        "wristband_code": f"WB{n:08d}", "weight_kg": Decimal("72.5"), "weight_measured_on": site_today(site),
    }
    values.update(overrides)
    return patient_create(actor=coordinator, site=site, **values)


def an_order(coordinator, patient, product, **overrides):
    values = {
        "product": product, "indication": "Relapsed B-ALL", "treating_physician": "Dr. M. Ortiz",
        "target_dose_cells_per_kg": Decimal("1000000"), "planned_collection_date": site_today(patient.site),
    }
    values.update(overrides)
    return order_create(actor=coordinator, patient=patient, **values)


def scan_of(donation: Donation, code: str) -> str:
    """What a scanner sends for the DataMatrix of container ``code`` of ``donation``."""
    return label_scan_data(din_of(donation), code)


def a_collection(coordinator, patient_or_order, product=None) -> Donation:
    """A registered collection (DIN) whose apheresis bag label AB-1 is printed and applied."""
    order = patient_or_order if product is None else an_order(coordinator, patient_or_order, product)
    donation = donation_register(actor=coordinator, order=order)
    labels, _pdf = labels_print(actor=coordinator, donation=donation, container_type=ContainerType.APHERESIS_BAG)
    label_apply(actor=coordinator, label=labels[0])
    return donation


def intake_values(donation: Donation, **overrides) -> dict:
    """Intake values within the default criteria: 2-8 °C, ≥ 1e9 CD3+, ≤ 24 h."""
    now = timezone.now()
    values = {
        "collection_started_at": now - dt.timedelta(hours=7),
        "collection_ended_at": now - dt.timedelta(hours=4),
        "received_at": now - dt.timedelta(hours=1),
        "transport_temperature_c": Decimal("5.0"),
        "volume_ml": Decimal("250"),
        "wbc_10e3_per_ul": Decimal("45.5"),
        "cd3_cells_total": Decimal("3.2e9"),
        "bag_intact": True,
        "label_scanned_code": scan_of(donation, "AB-1"),
    }
    values.update(overrides)
    return values


def an_intake(technician, donation: Donation, **overrides):
    return intake_record(actor=technician, donation=donation, **intake_values(donation, **overrides))


def a_batch(coordinator, technician, patient, product):
    """An accepted intake and its planned batch (needs an effective MBR)."""
    donation = a_collection(coordinator, patient, product)
    an_intake(technician, donation)
    donation.refresh_from_db()
    return donation.batch


def released(batch, actor, *, to: str = BatchState.PROVISIONALLY_RELEASED):
    for state in (BatchState.IN_PROCESS, BatchState.AWAITING_RELEASE, to):
        batch = batch_transition(actor=actor, batch=batch, to_state=state, reason="test: batch made")
    return batch


def final_bags(technician, batch, *, apply: bool = True) -> list[Label]:
    labels, _pdf = labels_print(actor=technician, donation=batch.donation,
                                container_type=ContainerType.FINAL_PRODUCT_BAG,
                                expires_at=timezone.now() + dt.timedelta(days=2))
    if apply:
        for label in labels:
            label_apply(actor=technician, label=label)
    return labels
