"""Batch certification by the qualified person.

Two-stage products (hospital exemption: the fresh product is infused before sterility
is known): a *provisional* certification on the results available at harvest, naming
the tests still pending with their expected dates, then a *final* one when every
result is in. Single-stage products: one certification requiring every result.

Rules enforced here, whatever the caller:

* the QP is independent of the batch: they performed or verified none of its steps
  and entered, reviewed or invalidated none of its QC results;
* a release needs every item of the release checklist (``qc.checklist``) ok, as the
  server evaluates it inside the signing transaction; the QP signs the checklist they
  saw (its fingerprint), never a different one;
* when a result fails (e.g. a late sterility result after infusion) the only final
  decisions are a signed rejection, or a signed *exceptional* release with a written
  justification and every closed OOS investigation of the failing results linked;
* rejection is always possible, signed, with a reason and a failure reason that keeps
  failed batches countable.

Each certification asks for its signed PDF batch record once committed
(:func:`certification_document_request`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.models import (
    Batch,
    BatchFailureReason,
    BatchState,
    Deviation,
    DeviationClass,
    ReleaseModel,
    StepRecord,
)
from batches.services.deviations import open_blocking_deviations
from batches.services.transitions import batch_transition
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.services import signature_apply, signature_reauthenticate
from carmfg.exceptions import InvalidInput, StaleRecord
from carmfg.textinput import clean_text
from carmfg.texts import Lowered, Text, joined
from qc.checklist import FAILED, Checklist, release_checklist
from qc.exceptions import NotReady, SegregationOfDuties
from qc.models import (
    Certification,
    CertificationDecision,
    CertificationKind,
    OosInvestigation,
    OosStatus,
    ResultStatus,
    TestResult,
)

JUSTIFICATION_MIN = 20
JUSTIFICATION_MAX = 10_000
RELEASED_DECISIONS = (CertificationDecision.RELEASED, CertificationDecision.RELEASED_EXCEPTIONAL)


# --- independence of the QP -------------------------------------------------------------------


def batch_participants(batch: Batch) -> dict[int, list[Text]]:
    """Who did what on the batch: user id → what they did (performed or verified steps,
    entered, reviewed or invalidated QC results). None of them may certify it."""
    done: dict[int, list[Text]] = {}

    def add(user_id: int | None, what: Text) -> None:
        if user_id is not None and what not in done.setdefault(user_id, []):
            done[user_id].append(what)

    record_ids = [str(pk) for pk in StepRecord.objects.filter(batch=batch).values_list("pk", flat=True)]
    for signer_id, meaning in Signature.objects.filter(
        content_type=ContentType.objects.get_for_model(StepRecord), object_id__in=record_ids,
        meaning__in=(Meaning.PERFORMED, Meaning.VERIFIED),
    ).values_list("signer_id", "meaning"):
        add(signer_id, Text(gettext_noop("performed a manufacturing step")) if meaning == Meaning.PERFORMED
            else Text(gettext_noop("verified a step")))
    results = {str(pk): (entered, reviewed, status) for pk, entered, reviewed, status in
               TestResult.objects.filter(batch=batch).values_list("pk", "entered_by_id", "reviewed_by_id", "status")}
    for entered, reviewed, _status in results.values():
        add(entered, Text(gettext_noop("entered a QC result")))
        add(reviewed, Text(gettext_noop("reviewed a QC result")))
    for object_id, signer_id in Signature.objects.filter(
        content_type=ContentType.objects.get_for_model(TestResult), object_id__in=list(results),
        meaning=Meaning.REVIEWED,
    ).values_list("object_id", "signer_id"):
        invalidated = results[object_id][2] == ResultStatus.INVALIDATED
        add(signer_id, Text(gettext_noop("invalidated a QC result")) if invalidated
            else Text(gettext_noop("reviewed a QC result")))
    return done


def qp_independence_problem(actor, batch: Batch) -> Text:
    """Why ``actor`` may not certify ``batch`` (empty when they may)."""
    what = batch_participants(batch).get(actor.pk)
    if not what:
        return Text("")
    done = what[0]
    for more in what[1:]:
        done = Text(gettext_noop("%(done)s and %(more)s"), {"done": done, "more": more})
    return Text(gettext_noop("You %(done)s of batch %(batch)s: a qualified person who took part in making or "
                             "testing a batch cannot certify it. Another QP must."),
                {"done": done, "batch": batch.number})


# --- helpers ----------------------------------------------------------------------------------


def _refuse_unless_ok(checklist: Checklist, *, allowed_failures: Iterable[str] = ()) -> None:
    failed = [item for item in checklist.failed if item.code not in set(allowed_failures)]
    if failed:
        raise NotReady(gettext_noop("Certification refused. %(problems)s"),
                       params={"problems": joined(_named(item) for item in failed)})


def _named(item) -> Text:
    return Text("%(title)s: %(message)s", {"title": item.title, "message": item.message})


def _lock_batch(batch: Batch, expected_version: int | None) -> Batch:
    locked = Batch.objects.select_for_update().select_related("site", "product", "order__patient", "donation").get(
        pk=batch.pk)
    if expected_version is not None and locked.version != expected_version:
        raise StaleRecord()
    return locked


def _check_fingerprint(checklist: Checklist, expected_checklist: str | None) -> None:
    if expected_checklist is not None and expected_checklist != checklist.fingerprint:
        raise StaleRecord(gettext_noop("The release checklist changed since you opened the page (a result, a deviation "
                                       "or a signature changed). Reload it, read it again and sign what it now says."))


def _certify(*, actor, batch: Batch, kind: str, decision: str, checklist: Checklist, reauth, meaning: str,
             justification: str = "", investigations: Iterable[OosInvestigation] = (),
             comment: str = "") -> Certification:
    cert = Certification.objects.create(
        site=batch.site, batch=batch, kind=kind, decision=decision, justification=justification,
        checklist=checklist.snapshot(), pending_tests=checklist.pending_tests,
        specification=checklist.qc.specification, qp=actor, signed_at=timezone.now(),
    )
    if investigations:
        cert.investigations.set(list(investigations))
    cert.refresh_from_db()
    audit_record(actor=actor, action=Action.CREATE, obj=cert,
                 changes={**cert.signable_content(), "checklist_fingerprint": checklist.fingerprint})
    participants = list(batch_participants(batch))
    signature_apply(actor=actor, reauth=reauth, obj=cert, meaning=meaning, comment=comment,
                    excluded_signers=participants if decision in RELEASED_DECISIONS else [],
                    excluded_reason=gettext_noop("You took part in making or testing this batch: "
                                                 "another QP must certify it."))
    certification_document_request(cert, actor=actor)
    return cert


def _require_independent(actor, batch: Batch) -> None:
    problem = qp_independence_problem(actor, batch)
    if problem:
        raise SegregationOfDuties(problem.template, params=problem.params)


# --- provisional --------------------------------------------------------------------------


def certification_provisional_sign(*, actor, batch: Batch, password: str, expected_version: int | None = None,
                                   expected_checklist: str | None = None, request: HttpRequest | None = None,
                                   comment: str = "") -> Certification:
    """A QP, independent of the batch, releases the fresh product provisionally
    ("Released (provisional)"). Refused while any item of the provisional checklist
    fails; the certificate names the tests still pending and when each is expected."""
    require_site_perm(actor, batch.site, SitePerm.CERTIFY, action=gettext_noop("certify batches"))
    if batch.product.release_model != ReleaseModel.TWO_STAGE:
        raise NotReady(gettext_noop("%(product)s is released in a single certification, when every result is in."),
                       params={"product": str(batch.product)})
    _require_independent(actor, batch)
    _refuse_unless_ok(release_checklist(batch, kind=CertificationKind.PROVISIONAL))
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
    with transaction.atomic():
        locked = _lock_batch(batch, expected_version)
        if locked.state != BatchState.AWAITING_RELEASE:
            raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: only a completed batch awaiting release is "
                                        "certified provisionally."),
                           params={"batch": locked.number, "state": Lowered(locked.get_state_display())})
        if Certification.objects.filter(batch=locked, kind=CertificationKind.PROVISIONAL).exists():
            raise NotReady(gettext_noop("Batch %(batch)s already has a provisional certification."),
                           params={"batch": locked.number})
        _require_independent(actor, locked)
        checklist = release_checklist(locked, kind=CertificationKind.PROVISIONAL)
        _check_fingerprint(checklist, expected_checklist)
        _refuse_unless_ok(checklist)
        cert = _certify(actor=actor, batch=locked, kind=CertificationKind.PROVISIONAL,
                        decision=CertificationDecision.RELEASED, checklist=checklist, reauth=reauth,
                        meaning=Meaning.RELEASED_PROVISIONAL, comment=comment)
        batch_transition(actor=actor, batch=locked, to_state=BatchState.PROVISIONALLY_RELEASED,
                         reason=f"Provisional certification by {actor.get_full_name() or actor.get_username()}")
    batch.refresh_from_db()
    return cert


# --- exceptional provisional release ------------------------------------------------------------

NAME_MAX = 200
# Checklist items an out-of-specification product may fail and still be released exceptionally;
# identity, steps, signatures, labels and versions never.
EXCEPTIONAL_ALLOWED_FAILURES = ("tests", "dose", "deviations")


def exceptional_provisional_problems(checklist: Checklist, *, deviation: Deviation | None = None) -> list[Text]:
    """What stands between an out-of-specification fresh product and an exceptional
    provisional release (empty when it may be signed). With ``deviation`` given, the
    deviation is checked too; the release page calls it without one."""
    batch = checklist.batch
    problems = [_named(item) for item in checklist.failed if item.code not in EXCEPTIONAL_ALLOWED_FAILURES]
    provisional = [r for r in checklist.qc.requirements if r.required_for_provisional]
    problems += [r.describe() for r in provisional if r.state in ("missing", "unreviewed")]
    out_of_spec = any(r.state == "failing" for r in provisional) or checklist.item("dose").status == FAILED
    if not out_of_spec:
        problems.append(Text(gettext_noop("The product meets its specification: certify it provisionally, "
                                          "not exceptionally.")))
    # Open major deviations are tolerated only when they record this out-of-specification
    # product: the one the release is under, and the OOS deviations of the failing results.
    tolerated = {inv.deviation_id for inv in OosInvestigation.objects.filter(result__in=failing_results(checklist))}
    if deviation is not None:
        tolerated.add(deviation.pk)
    for open_one in open_blocking_deviations(batch):
        if open_one.classification == DeviationClass.CRITICAL:
            problems.append(Text(gettext_noop("Deviation %(number)s is critical and open: a product under an open "
                                              "critical deviation is never released."), {"number": open_one.number}))
        elif open_one.pk not in tolerated:
            problems.append(Text(gettext_noop("Deviation %(number)s (%(title)s) is open and is not about this "
                                              "out-of-specification result: close it first."),
                                 {"number": open_one.number, "title": open_one.title}))
    if deviation is not None:
        if deviation.batch_id != batch.pk:
            problems.append(Text(gettext_noop("Deviation %(number)s is not a deviation of batch %(batch)s."),
                                 {"number": deviation.number, "batch": batch.number}))
        elif deviation.classification != DeviationClass.MAJOR:
            problems.append(Text(gettext_noop("Deviation %(number)s is %(class)s: an exceptional release is recorded "
                                              "under a major deviation."),
                                 {"number": deviation.number, "class": Lowered(deviation.get_classification_display())}))
    return problems


def certification_provisional_exceptional_sign(*, actor, batch: Batch, password: str, justification: str,
                                               physician_name: str, consent_reference: str,
                                               deviation: Deviation | None, expected_version: int | None = None,
                                               expected_checklist: str | None = None,
                                               request: HttpRequest | None = None, comment: str = "") -> Certification:
    """A QP, independent of the batch, releases an out-of-specification fresh product at
    the treating physician's documented request with the patient's consent: a distinct
    signed decision ("Released exceptionally"), never a silent pass. Needs a written
    justification, the physician's name, the consent reference and a major deviation of
    the batch; identity, steps, signatures, labels and versions must still be in order,
    every provisional result entered and reviewed, and no critical deviation open."""
    require_site_perm(actor, batch.site, SitePerm.CERTIFY, action=gettext_noop("certify batches"))
    if batch.product.release_model != ReleaseModel.TWO_STAGE:
        raise NotReady(gettext_noop("%(product)s is released in a single certification, when every result is in."),
                       params={"product": str(batch.product)})
    justification = clean_text(justification, field=gettext_noop("Justification"), max_length=JUSTIFICATION_MAX, required=True)
    if len(justification) < JUSTIFICATION_MIN:
        raise InvalidInput(gettext_noop("Justification: write at least %(n)s characters: why this "
                                        "out-of-specification product is released, and what the physician was told."),
                           params={"n": JUSTIFICATION_MIN}, field="justification")
    physician_name = clean_text(physician_name, field=gettext_noop("Treating physician"), max_length=NAME_MAX, required=True)
    consent_reference = clean_text(consent_reference, field=gettext_noop("Patient consent reference"), max_length=NAME_MAX,
                                   required=True)
    if deviation is None:
        raise InvalidInput(gettext_noop("Deviation: link the major deviation this exceptional release is recorded under."),
                           field="deviation")
    _require_independent(actor, batch)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
    with transaction.atomic():
        locked = _lock_batch(batch, expected_version)
        if locked.state != BatchState.AWAITING_RELEASE:
            raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: only a completed batch awaiting release is "
                                        "certified provisionally."),
                           params={"batch": locked.number, "state": Lowered(locked.get_state_display())})
        if Certification.objects.filter(batch=locked, kind=CertificationKind.PROVISIONAL).exists():
            raise NotReady(gettext_noop("Batch %(batch)s already has a provisional certification."),
                           params={"batch": locked.number})
        _require_independent(actor, locked)
        linked = Deviation.objects.select_for_update().get(pk=deviation.pk)
        checklist = release_checklist(locked, kind=CertificationKind.PROVISIONAL)
        _check_fingerprint(checklist, expected_checklist)
        problems = exceptional_provisional_problems(checklist, deviation=linked)
        if problems:
            raise NotReady(gettext_noop("Exceptional release refused. %(problems)s"),
                           params={"problems": joined(problems)})
        cert = Certification.objects.create(
            site=locked.site, batch=locked, kind=CertificationKind.PROVISIONAL,
            decision=CertificationDecision.RELEASED_EXCEPTIONAL, justification=justification,
            checklist=checklist.snapshot(), pending_tests=checklist.pending_tests,
            specification=checklist.qc.specification, qp=actor, signed_at=timezone.now(),
            physician_name=physician_name, consent_reference=consent_reference, deviation=linked,
        )
        audit_record(actor=actor, action=Action.CREATE, obj=cert,
                     changes={**cert.signable_content(), "checklist_fingerprint": checklist.fingerprint,
                              "deviation_number": linked.number})
        signature_apply(actor=actor, reauth=reauth, obj=cert, meaning=Meaning.RELEASED_EXCEPTIONAL, comment=comment,
                        excluded_signers=list(batch_participants(locked)),
                        excluded_reason=gettext_noop("You took part in making or testing this batch: "
                                                     "another QP must certify it."))
        certification_document_request(cert, actor=actor)
        batch_transition(actor=actor, batch=locked, to_state=BatchState.PROVISIONALLY_RELEASED,
                         reason=f"Exceptional provisional release (out of specification) by "
                                f"{actor.get_full_name() or actor.get_username()} at the request of {physician_name}, "
                                f"consent {consent_reference}, deviation {linked.number}")
    batch.refresh_from_db()
    return cert


# --- final (or single) ----------------------------------------------------------------------


def final_kind(batch: Batch) -> str:
    return CertificationKind.SINGLE if batch.product.release_model == ReleaseModel.SINGLE else CertificationKind.FINAL


def _final_state_ok(batch: Batch, kind: str) -> None:
    if kind == CertificationKind.SINGLE:
        if batch.state != BatchState.AWAITING_RELEASE:
            raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: only a completed batch awaiting release is "
                                        "certified."),
                           params={"batch": batch.number, "state": Lowered(batch.get_state_display())})
        return
    held_after_release = batch.state == BatchState.ON_HOLD and batch.state_before_hold == BatchState.PROVISIONALLY_RELEASED
    if batch.state != BatchState.PROVISIONALLY_RELEASED and not held_after_release:
        raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: the final certification follows the provisional one."),
                       params={"batch": batch.number, "state": Lowered(batch.get_state_display())})


def failing_results(checklist: Checklist) -> list[TestResult]:
    """The current results that fail their criterion (a composite criterion fails only
    when all its read-outs fail)."""
    out: list[TestResult] = []
    for requirement in checklist.qc.requirements:
        if requirement.state == "failing":
            out.extend(m.current for m in requirement.members if m.current is not None)
    return out


def exceptional_release_problems(checklist: Checklist) -> list[Text]:
    """What stands between a batch with failing results and an exceptional release (the
    release page lists it instead of offering a form that would be refused)."""
    problems = [_named(item) for item in checklist.failed if item.code != "tests"]
    for requirement in checklist.qc.requirements:
        if requirement.state in ("missing", "unreviewed"):
            problems.append(requirement.describe())
    for result in failing_results(checklist):
        inv = getattr(result, "oos", None)
        label = _result_label(result)
        if inv is None:
            problems.append(Text(gettext_noop("%(result)s: no OOS investigation exists."), {"result": label}))
        elif inv.status != OosStatus.CLOSED:
            problems.append(Text(gettext_noop("%(result)s: its OOS investigation is concluded (now: %(status)s)."),
                                 {"result": label, "status": Text(inv.get_status_display())}))
        if result.status != ResultStatus.REVIEWED:
            problems.append(Text(gettext_noop("%(result)s: the result is reviewed by a second QC person."),
                                 {"result": label}))
    return problems


def _result_label(result: TestResult) -> str:
    return f"{result.test.name} {result.display_value}"


def _exceptional_investigations(checklist: Checklist, chosen: list[OosInvestigation]) -> list[OosInvestigation]:
    failing = failing_results(checklist)
    if not failing:
        raise InvalidInput(gettext_noop("No result fails: an exceptional release is only for a batch out of "
                                        "specification. Certify it as released."), field="decision")
    missing = [n for n in (i for i in checklist.qc.requirements if i.state != "passing") if n.state != "failing"]
    if missing:
        raise NotReady(gettext_noop("Results are still pending or unreviewed: %(problems)s"),
                       params={"problems": joined(r.describe() for r in missing)})
    chosen_by_result = {inv.result_id: inv for inv in chosen}
    needed = []
    for result in failing:
        inv = OosInvestigation.objects.filter(result=result).first()
        label = _result_label(result)
        if inv is None:
            needed.append(Text(gettext_noop("%(result)s: no OOS investigation exists."), {"result": label}))
        elif inv.status != OosStatus.CLOSED:
            needed.append(Text(gettext_noop("%(result)s: its OOS investigation is still in %(status)s."),
                               {"result": label, "status": Lowered(inv.get_status_display())}))
        elif result.pk not in chosen_by_result:
            needed.append(Text(gettext_noop("%(result)s: link its OOS investigation (deviation %(deviation)s)."),
                               {"result": label, "deviation": inv.deviation.number}))
    if needed:
        raise NotReady(gettext_noop("An exceptional release rests on concluded investigations of every failing "
                                    "result. %(problems)s"), params={"problems": joined(needed)})
    stray = [inv for inv in chosen if inv.result_id not in {r.pk for r in failing}]
    if stray:
        raise InvalidInput(gettext_noop("Only the investigations of this batch's failing results can be linked."),
                           field="investigations")
    return chosen


def certification_final_sign(*, actor, batch: Batch, password: str,
                             decision: str = CertificationDecision.RELEASED, justification: str = "",
                             investigations: Iterable[OosInvestigation] = (), expected_version: int | None = None,
                             expected_checklist: str | None = None, request: HttpRequest | None = None,
                             comment: str = "") -> Certification:
    """The QP's final decision to release (or the single certification of a single-stage
    product), signed "Released". Refused while any result is pending or unreviewed.

    ``released``: every checklist item ok. ``released_exceptional``: the only failing
    item is the QC results, every failing result has a closed OOS investigation, all
    linked here, and a written justification (e.g. the physician's documented request
    with the patient's consent). To reject, use :func:`certification_reject`."""
    require_site_perm(actor, batch.site, SitePerm.CERTIFY, action=gettext_noop("certify batches"))
    if decision not in RELEASED_DECISIONS:
        raise InvalidInput(gettext_noop("Decision: released, or released exceptionally. To reject, use the rejection form."),
                           field="decision")
    kind = final_kind(batch)
    _require_independent(actor, batch)
    chosen = list(investigations)
    if any(inv.site_id != batch.site_id or inv.result.batch_id != batch.pk for inv in chosen):
        raise InvalidInput(gettext_noop("Only the investigations of this batch's failing results can be linked."),
                           field="investigations")
    if decision == CertificationDecision.RELEASED_EXCEPTIONAL:
        justification = clean_text(justification, field=gettext_noop("Justification"), max_length=JUSTIFICATION_MAX, required=True)
        if len(justification) < JUSTIFICATION_MIN:
            raise InvalidInput(gettext_noop("Justification: write at least %(n)s characters: why the product is "
                                            "released although out of specification, at whose documented request."),
                               params={"n": JUSTIFICATION_MIN}, field="justification")
    else:
        justification = clean_text(justification, field=gettext_noop("Justification"), max_length=JUSTIFICATION_MAX)
        if chosen:
            raise InvalidInput(gettext_noop("Investigations are linked only to an exceptional release."),
                               field="investigations")
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
    with transaction.atomic():
        locked = _lock_batch(batch, expected_version)
        _final_state_ok(locked, kind)
        if Certification.objects.filter(batch=locked, kind=kind).exists():
            raise NotReady(gettext_noop("Batch %(batch)s already has a %(kind)s certification."),
                           params={"batch": locked.number, "kind": Lowered(CertificationKind(kind).label)})
        _require_independent(actor, locked)
        checklist = release_checklist(locked, kind=kind)
        _check_fingerprint(checklist, expected_checklist)
        if decision == CertificationDecision.RELEASED:
            if failing_results(checklist):
                raise NotReady(gettext_noop("A result fails its specification: the batch can only be rejected, or "
                                            "released exceptionally with a written justification and the OOS "
                                            "investigation linked."))
            _refuse_unless_ok(checklist)
            linked: list[OosInvestigation] = []
        else:
            _refuse_unless_ok(checklist, allowed_failures=("tests",))
            linked = _exceptional_investigations(checklist, chosen)
        cert = _certify(actor=actor, batch=locked, kind=kind, decision=decision, checklist=checklist, reauth=reauth,
                        meaning=Meaning.RELEASED, justification=justification, investigations=linked, comment=comment)
        if locked.state == BatchState.ON_HOLD:
            batch_transition(actor=actor, batch=locked, to_state=BatchState.PROVISIONALLY_RELEASED,
                             reason="Hold lifted by the QP's final decision")
        label = "Exceptional final release" if decision == CertificationDecision.RELEASED_EXCEPTIONAL else "Final release"
        batch_transition(actor=actor, batch=locked, to_state=BatchState.RELEASED,
                         reason=f"{label} by {actor.get_full_name() or actor.get_username()}")
    batch.refresh_from_db()
    return cert


# --- rejection ------------------------------------------------------------------------------


def certification_reject(*, actor, batch: Batch, reason: str, failure_reason: str, password: str,
                         expected_version: int | None = None, request: HttpRequest | None = None) -> Certification:
    """The QP rejects the batch: a signed decision ("Rejected") with its reason and a
    failure reason. Possible at any stage of release, whatever the checklist says; not
    restricted to an independent QP (stopping a batch is always safe)."""
    require_site_perm(actor, batch.site, SitePerm.CERTIFY, action=gettext_noop("reject batches"))
    reason = clean_text(reason, field=gettext_noop("Reason"), max_length=JUSTIFICATION_MAX, required=True)
    if failure_reason not in BatchFailureReason.values:
        raise InvalidInput(gettext_noop("Failure reason: choose why the batch failed."), field="failure_reason")
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
    with transaction.atomic():
        locked = _lock_batch(batch, expected_version)
        before_hold = locked.state_before_hold if locked.state == BatchState.ON_HOLD else locked.state
        if before_hold not in (BatchState.AWAITING_RELEASE, BatchState.PROVISIONALLY_RELEASED):
            raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: it is not awaiting a QP decision."),
                           params={"batch": locked.number, "state": Lowered(locked.get_state_display())})
        released = Certification.objects.filter(batch=locked, decision__in=RELEASED_DECISIONS).exists()
        kind = CertificationKind.FINAL if released else (
            CertificationKind.SINGLE if locked.product.release_model == ReleaseModel.SINGLE
            else CertificationKind.PROVISIONAL)
        if Certification.objects.filter(batch=locked, kind=kind).exists():
            raise NotReady(gettext_noop("Batch %(batch)s already has a %(kind)s certification."),
                           params={"batch": locked.number, "kind": Lowered(CertificationKind(kind).label)})
        checklist = release_checklist(locked, kind=kind)
        cert = _certify(actor=actor, batch=locked, kind=kind, decision=CertificationDecision.REJECTED,
                        checklist=checklist, reauth=reauth, meaning=Meaning.REJECTED, justification=reason)
        batch_transition(actor=actor, batch=locked, to_state=BatchState.REJECTED, reason=reason,
                         failure_reason=failure_reason)
    batch.refresh_from_db()
    return cert


# --- the signed PDF ---------------------------------------------------------------------------


def certification_document_request(certification: Certification, *, actor) -> None:
    """Every certification asks for its signed PDF batch record, in the certifying
    transaction: the record is queued when it commits, never for one rolled back."""
    # Imported here: PDF rendering is loaded only when a certification needs it.
    from qc.documents import certification_record_request

    certification_record_request(actor=actor, certification=certification)
