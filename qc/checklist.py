"""The release checklist: what the QP must be sure of before certifying a batch.

Computed by the server from the records, never ticked by hand (review by exception:
the QP reads what failed, not forty green lines). Each item is ok, failed or not
applicable, with a message a person can act on and a link to where it is fixed.
The certification stores the checklist as evaluated when it was signed.

Items (in this order):

identity    chain of identity: intake accepted, labels reconciled (printed = applied +
            destroyed, a final product bag labelled), receipt scanned, no blocked scan
            left without a later matching scan at the same handoff;
steps       every step of the pinned master batch record recorded, signed by its
            performer and, where required, verified by a second person, no
            calculation left stale (the rule ``batches.progress`` completes a batch by);
signatures  no signature voided without being given again, none invalidated by a
            later change (steps, QC results, OOS investigations, certifications);
deviations  no major or critical deviation of the batch open;
tests       QC results reviewed and passing against the pinned specification: those
            required for provisional release (provisional), all of them (final, single);
            a composite criterion passes when any of its read-outs passes;
dose        the formulated dose per kg within the order's target ± the specification's
            tolerance, and within the specification's dose range;
versions    the master batch record and the specification the batch was pinned to
            were in force when the batch was created;
provisional the provisional certification stands, validly signed (final only; not
            applicable to the provisional and single certifications).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_noop

from batches.models import (
    Batch,
    ContainerType,
    CustodyStep,
    Deviation,
    DeviationClass,
    DeviationStatus,
    IntakeOutcome,
    Label,
    LabelStatus,
    MbrStatus,
    StepKind,
    StepRecord,
    StepStatus,
)
from batches.progress import load_plan
from batches.quantities import format_value
from batches.selectors import (
    blocked_event_list_for_donation,
    custody_event_list_for_donation,
    intake_correction_list,
    intake_for_donation,
)
from batches.services.custody import SEEN_AT_OTHER_HANDOVER
from batches.services.deviations import open_blocking_deviations
from batches.services.labels import label_reconciliation
from carmfg.audit.models import AuditEvent
from carmfg.canonical import content_hash
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.services import signable_hash
from carmfg.texts import Lowered, Text, english_of, joined, text_of
from qc.models import (
    BatchSpecification,
    Certification,
    CertificationDecision,
    CertificationKind,
    OosInvestigation,
    ResultStatus,
    SpecStatus,
    TestResult,
)
from qc.selectors import BatchQc, batch_test_status

OK, FAILED, NOT_APPLICABLE = "ok", "failed", "not_applicable"
MAX_DETAILS = 8
DOSE_CALCULATION = "dose_per_kg"
PROVISIONAL_TITLE = Text(gettext_noop("Provisional certification"))


@dataclass(frozen=True)
class ChecklistItem:
    """Title, message and details are English (``carmfg.texts.Text``): the certification keeps
    them so; the ``*_text`` properties are what the release page shows, in the reader's language."""

    code: str
    title: str
    status: str
    message: str
    details: tuple[str, ...] = ()
    link: str = ""

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    @property
    def title_text(self) -> str:
        return text_of(self.title)

    @property
    def message_text(self) -> str:
        return text_of(self.message)

    @property
    def details_text(self) -> list[str]:
        return [text_of(d) for d in self.details]

    def as_record(self) -> dict:
        """The item as stored and hashed: plain English strings."""
        return {"code": self.code, "title": english_of(self.title), "status": self.status,
                "message": english_of(self.message), "details": [english_of(d) for d in self.details],
                "link": self.link}


@dataclass
class Checklist:
    batch: Batch
    kind: str
    items: list[ChecklistItem]
    qc: BatchQc
    pending_tests: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def failed(self) -> list[ChecklistItem]:
        return [item for item in self.items if item.status == FAILED]

    def item(self, code: str) -> ChecklistItem:
        return next(i for i in self.items if i.code == code)

    def snapshot(self) -> list[dict]:
        """What the certification keeps: the items as the QP saw them."""
        return [item.as_record() for item in self.items]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the checklist would read differently: a signature form
        carries it, so a QP never signs a checklist other than the one on screen."""
        return content_hash({"kind": self.kind, "items": self.snapshot(), "pending": self.pending_tests})


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _item(code: str, title: str, problems: Sequence[str], ok_message: str, *, link: str = "",
          failed_message: str = "") -> ChecklistItem:
    title = Text(title)
    if not problems:
        return ChecklistItem(code, title, OK, ok_message, link=link)
    message = failed_message or problems[0]
    extra = len(problems) - MAX_DETAILS
    details = tuple(problems[:MAX_DETAILS]) + ((Text(gettext_noop("… and %(n)s more."), {"n": extra}),) if extra > 0 else ())
    return ChecklistItem(code, title, FAILED, message, details=details, link=link)


# --- identity -------------------------------------------------------------------------------


# A blocked scan recorded on this donation because *its* label turned up at another
# patient's hand-over carries SEEN_AT_OTHER_HANDOVER (batches.services.custody.refuse):
# our chain is intact, the other patient's step was refused; it is shown, not counted
# as ours to resolve.


def unresolved_mismatches(batch: Batch) -> list[AuditEvent]:
    """Blocked scans on the batch's donation (``blocked_event_list_for_donation``) not
    followed by a matching scan at the same hand-over: a later custody event of that
    step, or, for a scan step of the batch record, a later record of that step."""
    blocked = [e for e in blocked_event_list_for_donation(batch.donation)
               if not (isinstance(e.changes, dict) and e.changes.get(SEEN_AT_OTHER_HANDOVER))]
    if not blocked:
        return []
    custody = list(custody_event_list_for_donation(batch.donation).values_list("step", "performed_at"))
    recorded = list(StepRecord.objects.filter(batch=batch).values_list("definition__code", "performed_at"))
    out = []
    for event in blocked:
        step = (event.changes or {}).get("step", "") if isinstance(event.changes, dict) else ""
        later = [s for s, at in custody + recorded if at >= event.occurred_at]
        if not (step in later if step else later):
            out.append(event)
    return out


def _identity(batch: Batch) -> ChecklistItem:
    """Reads the donation's intake, its label reconciliation (``label_reconciliation``),
    its custody events and blocked scans (``batches.selectors``)."""
    donation = batch.donation
    problems = []
    intake = intake_for_donation(donation)
    if intake is None:
        problems.append(Text(gettext_noop("No apheresis intake is recorded for this donation.")))
    elif intake.outcome not in (IntakeOutcome.ACCEPTED, IntakeOutcome.ACCEPTED_WITH_DEVIATION):
        problems.append(Text(gettext_noop("The apheresis intake is %(outcome)s, not accepted."),
                             {"outcome": Lowered(intake.get_outcome_display())}))
    labels = label_reconciliation(donation)
    if not labels.balanced:
        problems.append(Text(gettext_noop("Label reconciliation: %(printed)s printed ≠ %(applied)s applied + "
                                          "%(destroyed)s destroyed; not accounted for: %(outstanding)s."),
                             {"printed": labels.printed, "applied": labels.applied, "destroyed": labels.destroyed,
                              "outstanding": ", ".join(labels.outstanding)}))
    if not Label.objects.filter(donation=donation, container_type=ContainerType.FINAL_PRODUCT_BAG,
                                status=LabelStatus.APPLIED).exists():
        problems.append(Text(gettext_noop("No final product bag label is recorded as applied.")))
    if not custody_event_list_for_donation(donation).filter(step=CustodyStep.RECEIPT).exists():
        problems.append(Text(gettext_noop("The receipt of the apheresis material at the facility was never scanned.")))
    for event in unresolved_mismatches(batch):
        changes = event.changes if isinstance(event.changes, dict) else {}
        problems.append(Text(
            gettext_noop("Blocked scan at %(where)s (%(at)s UTC): %(cause)s — no matching scan since."),
            {"where": changes.get("step") or changes.get("context") or Text(gettext_noop("a handoff")),
             "at": f"{event.occurred_at:%Y-%m-%d %H:%M}", "cause": changes["cause"] if "cause" in changes else Text(gettext_noop("mismatch"))},
        ))
    # A correction is part of the record only with its corrector's signature, still matching what it says.
    corrections = intake_correction_list(intake) if intake is not None else []
    for correction, signatures in corrections:
        if not any(view.is_valid for view in signatures):
            problems.append(Text(gettext_noop("Correction %(n)s of the intake has no valid signature (not signed, "
                                              "voided, or changed after signing)."), {"n": correction.sequence}))
    counts = {"din": donation.din, "printed": labels.printed, "applied": labels.applied, "destroyed": labels.destroyed}
    link = _url("batches:coi_timeline", donation.pk) or _url("batches:batch_detail", batch.pk)
    if intake is not None and corrections:
        # Review by exception: values corrected after the intake was recorded are for the QP to read.
        ok = Text(gettext_noop("DIN %(din)s: intake accepted, its values corrected after recording (%(corrections)s "
                               "signed correction(s): read them); labels printed %(printed)s = applied %(applied)s + "
                               "destroyed %(destroyed)s; no unresolved mismatch."),
                  {**counts, "corrections": len(corrections)})
        link = _url("batches:intake_correct", intake.pk) or link
    else:
        ok = Text(gettext_noop("DIN %(din)s: intake accepted; labels printed %(printed)s = applied %(applied)s + "
                               "destroyed %(destroyed)s; no unresolved mismatch."), counts)
    return _item("identity", gettext_noop("Chain of identity"), problems, ok, link=link)


# --- steps and signatures --------------------------------------------------------------------


def _signatures_by_record(model, ids: list[int]) -> dict[str, list[Signature]]:
    by_record: dict[str, list[Signature]] = defaultdict(list)
    if not ids:
        return by_record
    for sig in Signature.objects.filter(content_type=ContentType.objects.get_for_model(model),
                                        object_id__in=[str(i) for i in ids]).order_by("signed_at", "pk"):
        by_record[sig.object_id].append(sig)
    return by_record


def _valid(sig: Signature, current_hash: str) -> bool:
    return sig.voided_at is None and sig.content_hash == current_hash


def _steps(batch: Batch) -> ChecklistItem:
    """The same completeness rule as completing the batch (``batches.progress``): every
    step of the pinned recipe recorded, signed, verified where required, calculations
    not stale; plus no step record left blocked."""
    plan = load_plan(batch)
    problems = plan.completion_problems()
    for state in plan.steps:
        for record_state in state.records:
            if record_state.record.status == StepStatus.BLOCKED:
                problems.append(Text(gettext_noop("%(stage)s · %(step)s: blocked."),
                                     {"stage": state.definition.stage.name, "step": state.definition.title}))
    ok = Text(gettext_noop("All %(n)s steps of %(mbr)s recorded, signed and verified where required."),
              {"n": plan.steps_total, "mbr": str(batch.mbr)})
    return _item("steps", gettext_noop("Manufacturing steps"), problems, ok, link=_url("batches:batch_detail", batch.pk))


def _signature_problems(label: str, sigs: list[Signature], current_hash: str, *, skip: frozenset = frozenset()) -> list[Text]:
    problems = []
    by_meaning: dict[str, list[Signature]] = defaultdict(list)
    for sig in sigs:
        by_meaning[sig.meaning].append(sig)
    for meaning, group in by_meaning.items():
        if meaning in skip:
            continue
        active = [s for s in group if s.voided_at is None]
        name = Text(Meaning(meaning).label) if meaning in Meaning.values else meaning
        if any(s.content_hash != current_hash for s in active):
            problems.append(Text(gettext_noop("%(record)s: the “%(meaning)s” signature no longer matches the record "
                                              "(changed after signing)."), {"record": label, "meaning": name}))
        elif not active:
            last = group[-1]
            problems.append(Text(gettext_noop("%(record)s: the “%(meaning)s” signature of %(signer)s was voided "
                                              "(%(reason)s) and not given again."),
                                 {"record": label, "meaning": name, "signer": last.signer_name,
                                  "reason": last.void_reason or Text(gettext_noop("no reason given"))}))
    return problems


def _signatures(batch: Batch, records: list[StepRecord], step_sigs: dict[str, list[Signature]],
                hashes: dict[int, str]) -> ChecklistItem:
    """Reads the signatures of the batch's StepRecords, TestResults, OosInvestigations
    and Certifications, against each record's current content."""
    problems = []
    for record in records:
        problems += _signature_problems(str(record), step_sigs.get(str(record.pk), []), hashes[record.pk])
    results = list(TestResult.objects.filter(batch=batch).select_related("test", "batch"))
    result_sigs = _signatures_by_record(TestResult, [r.pk for r in results])
    for result in results:
        # Invalidating a result voids its entry signature by design; the invalidation
        # itself carries the reviewer's signature, checked like any other.
        skip = frozenset({Meaning.PERFORMED}) if result.status == ResultStatus.INVALIDATED else frozenset()
        problems += _signature_problems(Text(gettext_noop("%(test)s result %(value)s"),
                                             {"test": result.test.name, "value": result.display_value}),
                                        result_sigs.get(str(result.pk), []), signable_hash(result), skip=skip)
    investigations = list(OosInvestigation.objects.filter(result__batch=batch).select_related("result__test"))
    oos_sigs = _signatures_by_record(OosInvestigation, [i.pk for i in investigations])
    for inv in investigations:
        problems += _signature_problems(Text(gettext_noop("OOS investigation of %(test)s"), {"test": inv.result.test.name}),
                                        oos_sigs.get(str(inv.pk), []),
                                        signable_hash(inv))
    certifications = list(Certification.objects.filter(batch=batch))
    cert_sigs = _signatures_by_record(Certification, [c.pk for c in certifications])
    for cert in certifications:
        problems += _signature_problems(str(cert), cert_sigs.get(str(cert.pk), []), signable_hash(cert))
    counted = sum(len(v) for v in step_sigs.values()) + sum(len(v) for v in result_sigs.values())
    return _item("signatures", gettext_noop("Signatures"), problems,
                 Text(gettext_noop("%(n)s signatures on steps and results checked against the records: "
                                   "none voided or invalid."), {"n": counted}),
                 link=_url("audit_list") and f"{_url('audit_list')}?action=void")


# --- deviations, tests, dose, versions -------------------------------------------------------


def _deviations(batch: Batch) -> ChecklistItem:
    open_ones = open_blocking_deviations(batch)
    problems = [Text("%(number)s (%(class)s, %(status)s): %(title)s",
                     {"number": d.number, "class": Lowered(d.get_classification_display()),
                      "status": Lowered(d.get_status_display()), "title": d.title})
                for d in open_ones]
    others = list(Deviation.objects.filter(batch=batch).values_list("number", "classification", "status"))
    minor_open = [n for n, c, s in others if c == DeviationClass.MINOR and s != DeviationStatus.CLOSED]
    closed = [n for n, _c, s in others if s == DeviationStatus.CLOSED]
    if minor_open:
        ok = Text(gettext_noop("No major or critical deviation is open (%(minor)s minor open: %(numbers)s; "
                               "%(closed)s closed)."),
                  {"minor": len(minor_open), "numbers": ", ".join(minor_open), "closed": len(closed)})
    elif closed:
        ok = Text(gettext_noop("No major or critical deviation is open (0 minor open; %(closed)s closed)."),
                  {"closed": len(closed)})
    else:
        ok = Text(gettext_noop("No major or critical deviation is open."))
    link = _url("batches:deviation_detail", open_ones[0].pk) if open_ones else _url("batches:deviation_list")
    failed = ""
    if len(problems) == 1:
        failed = Text(gettext_noop("One major or critical deviation is open: %(list)s"), {"list": problems[0]})
    elif problems:
        failed = Text(gettext_noop("%(n)s major or critical deviations are open: %(list)s"),
                      {"n": len(problems), "list": joined(problems, "; ")})
    return _item("deviations", gettext_noop("Deviations"), problems, ok, link=link, failed_message=failed)


def _tests(batch: Batch, qc: BatchQc, kind: str) -> ChecklistItem:
    problems = []
    considered = 0
    for requirement in qc.requirements:
        if kind == CertificationKind.PROVISIONAL and not requirement.required_for_provisional:
            continue
        considered += 1
        if requirement.state != "passing":
            problems.append(requirement.describe())
    if kind == CertificationKind.PROVISIONAL:
        ok = Text(gettext_noop("All %(n)s criteria required for provisional release reviewed and passing (%(spec)s)."),
                  {"n": considered, "spec": str(qc.specification)})
    else:
        ok = Text(gettext_noop("All %(n)s criteria of the specification reviewed and passing (%(spec)s)."),
                  {"n": considered, "spec": str(qc.specification)})
    return _item("tests", gettext_noop("QC results"), problems, ok, link=_url("qc:batch", batch.pk))


def _dose_record(batch: Batch, records: list[StepRecord]) -> StepRecord | None:
    dose = [r for r in records if r.definition.kind == StepKind.CALCULATION
            and r.definition.calculation == DOSE_CALCULATION and r.value is not None]
    return max(dose, key=lambda r: r.occurrence) if dose else None


def _dose(batch: Batch, records: list[StepRecord], qc: BatchQc) -> ChecklistItem:
    """Reads the batch's dose calculation step record (calculation ``dose_per_kg``), the
    order's target dose and the pinned specification's dose range and tolerance."""
    spec = qc.specification
    record = _dose_record(batch, records)
    target = batch.order.target_dose_cells_per_kg
    unit = "CAR+ cells/kg"
    if record is None:
        return ChecklistItem("dose", Text(gettext_noop("Dose")), FAILED,
                             Text(gettext_noop("No dose calculation is recorded: the dose per kg cannot be checked.")),
                             link=_url("batches:batch_detail", batch.pk))
    dose = record.value
    if dose is None:
        return ChecklistItem("dose", Text(gettext_noop("Dose")), FAILED,
                             Text(gettext_noop("The dose calculation has no value: the dose per kg cannot be checked.")),
                             link=_url("batches:batch_detail", batch.pk))
    tolerance = spec.dose_tolerance_percent / Decimal(100)
    low_t, high_t = target * (1 - tolerance), target * (1 + tolerance)
    problems = []
    if not low_t <= dose <= high_t:
        problems.append(Text(gettext_noop("Dose %(dose)s %(unit)s differs from the order's target %(target)s "
                                          "by more than %(tolerance)s %% (allowed %(low)s–%(high)s)."),
                             {"dose": format_value(dose), "unit": unit, "target": format_value(target),
                              "tolerance": format_value(spec.dose_tolerance_percent),
                              "low": format_value(low_t), "high": format_value(high_t)}))
    if not spec.dose_min_cells_per_kg <= dose <= spec.dose_max_cells_per_kg:
        problems.append(Text(gettext_noop("Dose %(dose)s %(unit)s is outside the specification's range %(min)s–%(max)s."),
                             {"dose": format_value(dose), "unit": unit,
                              "min": format_value(spec.dose_min_cells_per_kg),
                              "max": format_value(spec.dose_max_cells_per_kg)}))
    ok = Text(gettext_noop("Dose %(dose)s %(unit)s: target %(target)s ± %(tolerance)s %%, specification %(min)s–%(max)s."),
              {"dose": format_value(dose), "unit": unit, "target": format_value(target),
               "tolerance": format_value(spec.dose_tolerance_percent),
               "min": format_value(spec.dose_min_cells_per_kg), "max": format_value(spec.dose_max_cells_per_kg)})
    return _item("dose", gettext_noop("Dose"), problems, ok, link=_url("batches:batch_detail", batch.pk))


def _in_force_at(status: str, effective_at: dt.datetime | None, superseded_at: dt.datetime | None,
                 moment: dt.datetime) -> bool:
    if status not in ("effective", "superseded") or effective_at is None or effective_at > moment:
        return False
    return superseded_at is None or superseded_at > moment


def _versions(batch: Batch, qc: BatchQc) -> ChecklistItem:
    """Reads the batch's MasterBatchRecord (status, effective and superseded times) and
    its BatchSpecification pin (the specification's status and effective time)."""
    problems = []
    mbr = batch.mbr
    if not _in_force_at(mbr.status, mbr.effective_at, mbr.superseded_at, batch.created_at):
        problems.append(Text(gettext_noop("%(mbr)s (%(status)s) was not the approved version in force when "
                                          "the batch was created."),
                             {"mbr": str(mbr), "status": Lowered(mbr.get_status_display())}))
    if mbr.status not in (MbrStatus.EFFECTIVE, MbrStatus.SUPERSEDED):
        problems.append(Text(gettext_noop("%(mbr)s is %(status)s, never approved."),
                             {"mbr": str(mbr), "status": Lowered(mbr.get_status_display())}))
    spec = qc.specification
    pin = BatchSpecification.objects.filter(batch=batch).first()
    if spec.status not in (SpecStatus.EFFECTIVE, SpecStatus.SUPERSEDED) or spec.effective_at is None or (
            pin is not None and spec.effective_at > pin.pinned_at):
        problems.append(Text(gettext_noop("%(spec)s was not the effective specification when the batch was pinned to it."),
                             {"spec": str(spec)}))
    ok = Text(gettext_noop("Made to %(mbr)s and judged against %(spec)s, both in force when the batch was created."),
              {"mbr": str(mbr), "spec": str(spec)})
    return _item("versions", gettext_noop("Versions"), problems, ok, link=_url("qc:specification", spec.pk))


def _provisional(batch: Batch) -> ChecklistItem:
    cert = Certification.objects.filter(batch=batch, kind=CertificationKind.PROVISIONAL).select_related("deviation").first()
    if cert is None or cert.decision not in (CertificationDecision.RELEASED, CertificationDecision.RELEASED_EXCEPTIONAL):
        return ChecklistItem("provisional", PROVISIONAL_TITLE, FAILED,
                             Text(gettext_noop("The batch was never provisionally released.")))
    exceptional = cert.decision == CertificationDecision.RELEASED_EXCEPTIONAL
    sig = Signature.objects.filter(content_type=ContentType.objects.get_for_model(Certification),
                                   object_id=str(cert.pk),
                                   meaning=Meaning.RELEASED_EXCEPTIONAL if exceptional else Meaning.RELEASED_PROVISIONAL,
                                   voided_at__isnull=True).first()
    if sig is None or sig.content_hash != signable_hash(cert):
        return ChecklistItem("provisional", PROVISIONAL_TITLE, FAILED,
                             Text(gettext_noop("The provisional certification no longer carries a valid signature.")))
    if exceptional:
        # The final decision is taken knowing the fresh product went out of specification.
        deviation = cert.deviation.number if cert.deviation is not None else Text(gettext_noop("none"))
        return ChecklistItem(
            "provisional", PROVISIONAL_TITLE, OK,
            Text(gettext_noop("Released exceptionally, out of specification, by %(qp)s at %(at)s UTC at the request of "
                              "%(physician)s (patient consent %(consent)s; deviation %(deviation)s)."),
                 {"qp": sig.signer_name, "at": f"{sig.signed_at:%Y-%m-%d %H:%M}", "physician": cert.physician_name,
                  "consent": cert.consent_reference, "deviation": deviation}),
            details=(Text(gettext_noop("Justification: %(text)s"), {"text": cert.justification}),),
        )
    return ChecklistItem("provisional", PROVISIONAL_TITLE, OK,
                         Text(gettext_noop("Provisionally released by %(qp)s at %(at)s UTC."),
                              {"qp": sig.signer_name, "at": f"{sig.signed_at:%Y-%m-%d %H:%M}"}))


def pending_tests(qc: BatchQc) -> list[dict]:
    """Criteria not required for provisional release that are not passing yet, with the
    date each result is expected (sample date + turnaround): named on the certificate."""
    out = []
    for requirement in qc.requirements:
        if requirement.required_for_provisional or requirement.state == "passing":
            continue
        expected = requirement.expected_on
        out.append({
            "criterion": english_of(requirement.label), "tests": [m.test.code for m in requirement.members],
            "state": requirement.state, "expected_on": expected.isoformat() if expected else None,
            "turnaround_days": max(m.test.turnaround_days for m in requirement.members),
        })
    return out


def release_checklist(batch: Batch, *, kind: str) -> Checklist:
    """The checklist of ``batch`` for a certification of ``kind`` (provisional, final, single)."""
    if kind not in CertificationKind.values:
        raise ValueError(f"unknown certification kind {kind!r}")
    batch = Batch.objects.select_related("site", "order__patient", "donation", "mbr", "product").get(pk=batch.pk)
    qc = batch_test_status(batch)
    records = list(StepRecord.objects.filter(batch=batch).select_related("definition__stage", "batch"))
    hashes = {r.pk: signable_hash(r) for r in records}
    step_sigs = _signatures_by_record(StepRecord, [r.pk for r in records])
    items = [
        _identity(batch),
        _steps(batch),
        _signatures(batch, records, step_sigs, hashes),
        _deviations(batch),
        _tests(batch, qc, kind),
        _dose(batch, records, qc),
        _versions(batch, qc),
    ]
    if kind == CertificationKind.FINAL:
        items.append(_provisional(batch))
    elif kind == CertificationKind.PROVISIONAL:
        items.append(ChecklistItem("provisional", PROVISIONAL_TITLE, NOT_APPLICABLE,
                                   Text(gettext_noop("This is the provisional certification; the final one follows "
                                                     "when every result is in."))))
    else:
        items.append(ChecklistItem("provisional", PROVISIONAL_TITLE, NOT_APPLICABLE,
                                   Text(gettext_noop("%(product)s is released in a single certification."),
                                        {"product": str(batch.product)})))
    pending = pending_tests(qc) if kind == CertificationKind.PROVISIONAL else []
    return Checklist(batch=batch, kind=kind, items=items, pending_tests=pending, qc=qc)
