"""Signed batch record: the whole dossier (read, render, sign, self-check, store) of a
batch with 50 steps and 2,000 audit events, against plain WeasyPrint rendering of the
very same HTML in the same run.

The batch is written straight to the tables (recipe of 50 value steps with limits, one
record per step with its performer and verifier signatures, 2,000 audit events rooted
at the batch): setting it up through the services would cost a password check per
signature and is not what is measured. What is measured is
``qc.documents.batch_record_generate_now``, the function the Celery task runs: the
section reads, the template, WeasyPrint (PDF/A-3b with the JSON attachment), the
pyHanko certification signature, the validation of the signed file and storing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import time
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from bench.result import Result

STEPS = 50
AUDIT_EVENTS = 2000
GOAL_SECONDS = 10.0
GOAL_RATIO = 1.3


def _world():
    from batches.isbt128 import check_character
    from batches.models import (
        Batch,
        BatchState,
        Donation,
        LimitResult,
        MasterBatchRecord,
        MbrStatus,
        Order,
        Patient,
        Product,
        RegulatoryPathway,
        StageDefinition,
        StepDefinition,
        StepKind,
        StepRecord,
    )
    from carmfg.accounts.services import site_create, user_create
    from carmfg.audit.models import Action, AuditEvent, ChainHead
    from carmfg.audit.services import event_seal
    from carmfg.canonical import GENESIS_HASH
    from carmfg.esign.models import Meaning, Signature
    from carmfg.esign.services import signable_hash
    from qc.models import BatchSpecification, Specification, SpecStatus, TestDefinition
    from qc.spec_data import ARI_0001_LIKE, definition_rows

    suffix = uuid.uuid4().hex[:6]
    site = site_create(actor=None, code=f"d{suffix}", name="Benchmark cell therapy unit", time_zone="Europe/Madrid",
                       facility_identification_number="B0002")
    tech = user_create(actor=None, username=f"tech{suffix}", full_name="Bench Technician",
                       email="t@bench.invalid", password=uuid.uuid4().hex)
    verifier = user_create(actor=None, username=f"ver{suffix}", full_name="Bench Verifier",
                           email="v@bench.invalid", password=uuid.uuid4().hex)
    now = timezone.now()
    product = Product.objects.create(site=site, code=f"cd19-{suffix}", name="Anti-CD19 CAR-T (benchmark)",
                                     pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S1234",
                                     fraction_percents=[10, 30, 60])
    spec = Specification.objects.create(site=site, product=product, version=1, status=SpecStatus.EFFECTIVE,
                                        effective_at=now, **{k: v for k, v in ARI_0001_LIKE.items() if k != "tests"})
    for row in definition_rows():
        TestDefinition.objects.create(specification=spec, **row)
    mbr = MasterBatchRecord.objects.create(site=site, product=product, version=1, title="CD19 CAR-T (benchmark)",
                                           status=MbrStatus.EFFECTIVE, effective_at=now)
    stages = [StageDefinition.objects.create(mbr=mbr, order=i, code=f"stage-{i}", name=f"Stage {i}")
              for i in range(1, 6)]
    definitions = StepDefinition.objects.bulk_create([
        StepDefinition(stage=stages[i // 10], order=i % 10 + 1, code=f"step-{i}", title=f"Measured value {i + 1}",
                       kind=StepKind.VALUE, unit="mL", decimal_places=1, alert_min=Decimal(90), alert_max=Decimal(110),
                       action_min=Decimal(80), action_max=Decimal(120), requires_verification=True)
        for i in range(STEPS)
    ])
    patient = Patient.objects.create(site=site, pseudonym=f"P-{suffix}", initials="BK", birth_year=1980,
                                     hospital_record_number=f"H-{suffix}", wristband_code=f"W-{suffix}",
                                     weight_kg=Decimal("70.0"), weight_measured_on=dt.date(2026, 11, 1))
    order = Order.objects.create(site=site, number=f"O-{suffix}", patient=patient, product=product,
                                 indication="r/r B-ALL", treating_physician="Dr. Bench",
                                 target_dose_cells_per_kg=Decimal(1_000_000), planned_collection_date=dt.date(2026, 11, 2))
    din = f"W0001{abs(hash(suffix)) % 10**8:08d}"
    donation = Donation.objects.create(site=site, order=order, din=din, check_character=check_character(din))
    batch = Batch.objects.create(site=site, number=f"CT-B-{suffix}", order=order, donation=donation, product=product,
                                 mbr=mbr, state=BatchState.AWAITING_RELEASE, created_at=now - dt.timedelta(days=12),
                                 started_at=now - dt.timedelta(days=11), completed_at=now - dt.timedelta(days=1))
    BatchSpecification.objects.get_or_create(batch=batch, defaults={"specification": spec})
    records = StepRecord.objects.bulk_create([
        StepRecord(site=site, batch=batch, definition=d, value=Decimal(100 + i % 7), unit="mL",
                   limit_result=LimitResult.WITHIN, performed_by=tech,
                   performed_at=now - dt.timedelta(days=10, minutes=-30 * i))
        for i, d in enumerate(definitions)
    ])
    # The batch's audit trail: 2,000 events rooted at the batch, sealed as the writer seals them.
    chain = site.pk
    head = ChainHead.objects.filter(chain=chain).values_list("seq", "hash").first() or (0, GENESIS_HASH)
    seq, prev = head
    events = []
    for i in range(AUDIT_EVENTS):
        seq += 1
        record = records[i % STEPS]
        event = AuditEvent(
            chain=chain, seq=seq, occurred_at=now - dt.timedelta(days=10) + dt.timedelta(minutes=i),
            actor=tech, actor_username=tech.username, actor_name=tech.get_full_name(), site=site,
            action=Action.UPDATE, object_type="batches.steprecord", object_id=str(record.pk),
            object_repr=f"{batch.number} · {record.definition.title}", root_type="batches.batch",
            root_id=str(batch.pk), changes={"value": {"old": "100.0", "new": f"{100 + i % 7}.0"}},
            reason="benchmark event" if i % 5 == 0 else "", request_id=uuid.uuid4().hex, prev_hash=prev,
        )
        event_seal(event)
        prev = event.hash
        events.append(event)
    AuditEvent.objects.bulk_create(events)
    ChainHead.objects.update_or_create(chain=chain, defaults={"seq": seq, "hash": prev})
    # Performer and verifier signatures on every record (Part 11 manifestations printed per step).
    step_type = ContentType.objects.get_for_model(StepRecord)
    signatures = []
    for i, record in enumerate(records):
        for meaning, who, event in ((Meaning.PERFORMED, tech, events[2 * i]),
                                    (Meaning.VERIFIED, verifier, events[2 * i + 1])):
            signatures.append(Signature(content_type=step_type, object_id=str(record.pk), site=site, meaning=meaning,
                                        signer=who, signer_name=who.get_full_name(), signed_at=event.occurred_at,
                                        content_hash=signable_hash(record), audit_event=event))
    Signature.objects.bulk_create(signatures)
    return batch, tech


def bench_dossier(repeat: int) -> Result:
    from django.test.utils import override_settings
    from weasyprint import HTML

    from qc import documents
    from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus

    batch, actor = _world()
    media = tempfile.mkdtemp(prefix="carmfg-bench-media-")
    with override_settings(MEDIA_ROOT=media):
        full_best = plain_best = full_cpu = plain_cpu = float("inf")
        pages = 0
        html = ""
        for _ in range(repeat):
            document = BatchRecordDocument.objects.create(
                site=batch.site, batch=batch, purpose=DocumentPurpose.EXPORT, version=(
                    BatchRecordDocument.objects.filter(batch=batch).count() + 1),
                requested_at=timezone.now(),
            )
            start, cpu = time.perf_counter(), time.process_time()
            done = documents.batch_record_generate_now(document.pk)
            full_best = min(full_best, time.perf_counter() - start)
            full_cpu = min(full_cpu, time.process_time() - cpu)
            assert done.status == DocumentStatus.DONE, done.failure_reason
            pages = done.page_count or 0
            # The same HTML the record was made from, rendered by WeasyPrint alone.
            loaded = BatchRecordDocument.objects.select_related(
                "site", "batch__site", "batch__product", "batch__donation", "batch__order__patient", "batch__mbr",
                "batch__specification_pin__specification", "certification", "requested_by",
            ).get(pk=document.pk)
            html = documents.render_batch_record_html(loaded)
            start, cpu = time.perf_counter(), time.process_time()
            HTML(string=html).write_pdf()
            plain_best = min(plain_best, time.perf_counter() - start)
            plain_cpu = min(plain_cpu, time.process_time() - cpu)
    ratio = full_best / plain_best
    met = full_best <= GOAL_SECONDS and ratio <= GOAL_RATIO
    digest = hashlib.sha256(html.encode()).hexdigest()[:12]
    return Result(
        name=f"signed dossier ({STEPS} steps, {AUDIT_EVENTS:,} audit events) vs plain WeasyPrint of the same HTML",
        value=round(full_best, 2), unit="s", baseline=round(plain_best, 2), ratio=round(ratio, 2),
        goal=f"value <= {GOAL_SECONDS:g} s and ratio <= {GOAL_RATIO}", met=met,
        notes=f"best of {repeat}; CPU time {full_cpu:.2f} s vs {plain_cpu:.2f} s ({full_cpu / plain_cpu:.2f}x); "
              f"{pages} pages; timestamp: {'yes' if settings.CARMFG_TSA_URL else 'no TSA configured'}; "
              f"html {digest}",
    )


def run(quick: bool) -> list[Result]:
    return [bench_dossier(repeat=1 if quick else 3)]
