"""The records the authorisation matrix points its URLs at: one set per site.

Everything is reached through the services a user goes through (chain of identity,
execution, QC), starting from a product with an effective MBR and specification, the
same starting state as the QC tests. One set is built for the personas' own site and
one for another site, so each URL is tried on a record the user may reach and on one
that must stay invisible (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from batches.demo_mbr import load_demo_materials
from batches.models import (
    Equipment,
    MaterialLot,
    Product,
    RegulatoryPathway,
    StageDefinition,
    StepDefinition,
)
from batches.services.execution import batch_start, step_record
from carmfg.accounts.tokens import api_token_create
from qc.documents import batch_record_request
from qc.models import DocumentPurpose, OosInvestigation, Specification, SpecStatus, TestDefinition
from qc.services.alerts import alert_create
from qc.services.samples import sample_create
from tests.batches.coi_steps import a_batch, a_collection, a_patient
from tests.conftest import PASSWORD
from tests.qc.conftest import FAILING, enter, make_effective_specification, make_mbr


@dataclass(frozen=True)
class SiteActors:
    technician: Any
    verifier: Any
    qc_analyst: Any
    qp: Any
    coordinator: Any
    site_admin: Any


def site_records(site, actors: SiteActors, *, n: int) -> dict[str, Any]:
    """Every kind of record a URL can name, at ``site``, keyed by the name the
    expectations use (see ``tests.carmfg.authz_expectations``)."""
    product = Product.objects.create(
        site=site, code=f"cd19-{n}", name="Anti-CD19 CAR-T", pathway=RegulatoryPathway.HOSPITAL_EXEMPTION,
        product_code=f"S{n:04d}", fraction_percents=[10, 30, 60],
    )
    make_effective_specification(product)
    mbr = make_mbr(product)
    patient = a_patient(actors.coordinator, site, n=n)
    batch = a_batch(actors.coordinator, actors.technician, patient, product)
    batch = batch_start(actor=actors.technician, batch=batch, expected_version=batch.version)
    step = StepDefinition.objects.filter(stage__mbr=mbr).order_by("stage__order", "order").first()
    assert step is not None
    record = step_record(actor=actors.technician, batch=batch, definition=step, password=PASSWORD,
                         expected_occurrence=1)
    sample = sample_create(actor=actors.qc_analyst, batch=batch, test_codes=["viability"], sample_type="Final product")
    result = enter(batch, "viability", actors.qc_analyst, outcome=FAILING)
    oos = OosInvestigation.objects.get(result=result)
    load_demo_materials(site=site, admin=actors.site_admin, qp=actors.qp, password=PASSWORD)
    alert = alert_create(actor=None, site=site, recipient=actors.qp, title="Matrix alert", message="For the matrix.",
                         batch=batch, key=f"matrix-{n}")
    # An export of the batch record, requested and not yet signed (signing takes seconds;
    # the matrix only needs the row).
    document = batch_record_request(actor=actors.qp, batch=batch, purpose=DocumentPurpose.EXPORT)
    spec = Specification.objects.get(product=product, status=SpecStatus.EFFECTIVE)
    donation = batch.donation
    return {
        "site": site,
        "product": product,
        "mbr": mbr,
        "stage": StageDefinition.objects.filter(mbr=mbr).first(),
        "mbr_step": step,
        "patient": patient,
        "order": batch.order,
        "donation": donation,
        "label": donation.labels.first(),
        "intake": donation.intake,
        "donation_awaiting_intake": a_collection(actors.coordinator, patient, product),
        "batch": batch,
        "step": step,
        "record": record,
        "deviation": oos.deviation,
        "lot": MaterialLot.objects.filter(site=site).first(),
        "equipment": Equipment.objects.filter(site=site).first(),
        "sample": sample,
        "result": result,
        "oos": oos,
        "specification": spec,
        "spec_test": TestDefinition.objects.filter(specification=spec).first(),
        "alert": alert,
        "document": document,
        # An API token of this site's technician: every other user must get 404 for it.
        "token": api_token_create(actor=actors.technician, name=f"matrix {n}")[0].token_key,
        "made_at": timezone.now(),
    }
