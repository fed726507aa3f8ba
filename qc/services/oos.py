"""Out-of-specification investigations.

A failing result opens one at once, linked to a deviation: major by default, critical
for the tests the specification marks so (sterility, mycoplasma, endotoxin). Phase I
looks for an assignable laboratory error: found, the result is invalidated (reason +
the reviewer's signature) and the test repeated; not found, the result is confirmed
and phase II investigates the product and process. The closing conclusion is signed
"Reviewed" by a QC person other than the analyst who entered the result.

A failing result on a batch already released provisionally is a *late* result: the
fresh product may be in the patient. The deviation is then critical (source
late_result), the batch goes on hold so no further fraction is given, and the
treating physician and the site's QPs are told at once (e-mail + an in-app alert the
QPs must acknowledge). The record shows who was told what, and when.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.models import Batch, BatchState, DeviationClass, DeviationSource
from batches.services.deviations import deviation_raise
from batches.services.transitions import batch_transition
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.esign.models import Meaning
from carmfg.esign.services import signature_apply, signature_reauthenticate
from carmfg.exceptions import InvalidInput, StaleRecord
from carmfg.textinput import clean_text
from carmfg.texts import Lowered, Text, joined
from qc.exceptions import NotReady
from qc.models import OosInvestigation, OosPhase1Conclusion, OosStatus, TestResult
from qc.selectors import released_provisionally
from qc.services.alerts import alert_create, notification_email_queue, site_qualified_persons
from qc.services.results import invalidate_locked

NOTES_MAX = 10_000


def oos_open(*, actor, result: TestResult, critical: bool) -> OosInvestigation:
    """Open the investigation of a failing result and its deviation, in the caller's
    transaction (the one that recorded the result)."""
    batch = result.batch
    test = result.test
    late = released_provisionally(batch)
    if late:
        source, classification = DeviationSource.LATE_RESULT, DeviationClass.CRITICAL
        title = f"Late failing {test.name} after provisional release of {batch.number}"
    else:
        source = DeviationSource.OOS
        classification = DeviationClass.CRITICAL if critical else DeviationClass.MAJOR
        title = f"Out-of-specification {test.name} for {batch.number}"
    description = (f"{test.name} ({test.method}) of batch {batch.number}: {result.display_value}. "
                   f"{result.evaluation_detail} Entered by {actor.get_full_name() or actor.get_username()}.")
    deviation = deviation_raise(actor=actor, site=batch.site, source=source, classification=classification,
                                title=title[:200], description=description, batch=batch)
    investigation = OosInvestigation.objects.create(site=batch.site, result=result, deviation=deviation,
                                                    opened_at=timezone.now())
    audit_record(actor=actor, action=Action.CREATE, obj=investigation,
                 changes={**investigation.signable_content(), "deviation_number": deviation.number, "late": late})
    if late:
        late_failure_notify(actor=actor, batch=batch, result=result, investigation=investigation)
    return investigation


def late_failure_notify(*, actor, batch: Batch, result: TestResult, investigation: OosInvestigation) -> None:
    """Hold the batch (no further fraction) and tell the treating physician and every
    QP of the site, in the transaction that recorded the result."""
    if batch.state == BatchState.PROVISIONALLY_RELEASED:
        batch_transition(actor=actor, batch=batch, to_state=BatchState.ON_HOLD,
                         reason=f"Late failing {result.test.name} result: no further fraction may be given until "
                                "the QP's final decision.")
    order = batch.order
    patient = order.patient
    infused = list(batch.infusions.order_by("fraction_number").values_list("fraction_number", "infused_at"))
    given = (Text(gettext_noop("Fractions already given: %(fractions)s."),
                  {"fractions": joined((Text(gettext_noop("#%(n)s at %(at)s UTC"), {"n": n, "at": f"{at:%Y-%m-%d %H:%M}"})
                                        for n, at in infused), ", ")})
             if infused else Text(gettext_noop("No infusion is recorded yet.")))
    try:
        link = reverse("qc:batch_release", args=[batch.pk])
    except NoReverseMatch:
        link = ""
    summary = Text(gettext_noop("Batch %(batch)s (DIN %(din)s, patient %(patient)s, order %(order)s) was released "
                                "provisionally. A late QC result fails its specification: %(test)s = %(value)s "
                                "(%(detail)s). %(given)s Deviation %(deviation)s (critical) is open and the batch is "
                                "on hold: no further fraction may be given until the QP's final decision."),
                   {"batch": batch.number, "din": batch.donation.din, "patient": patient.pseudonym,
                    "order": order.number, "test": result.test.name, "value": result.display_value,
                    "detail": result.evaluation_detail, "given": given,
                    "deviation": investigation.deviation.number})
    subject = f"URGENT: late failing {result.test.name} for CAR-T batch {batch.number}"
    if order.physician_email:
        notification_email_queue(
            actor=actor, site=batch.site, batch=batch, to=order.physician_email, subject=subject,
            body=f"Dear {order.treating_physician},\n\n{summary}\n\nThe qualified person of {batch.site.name} will "
                 "contact you. Please assess the patient and record your assessment with the QP.\n")
    for qp in site_qualified_persons(batch.site):
        alert_create(actor=actor, site=batch.site, batch=batch, recipient=qp, key=f"late:{result.pk}",
                     title=Text(gettext_noop("Late failing %(test)s: batch %(batch)s"),
                                {"test": result.test.name, "batch": batch.number}),
                     message=joined([summary, Text(gettext_noop("The treating physician was notified by e-mail."))
                                     if order.physician_email else
                                     Text(gettext_noop("No e-mail address is recorded for the treating physician: "
                                                       "call them."))]))
        if qp.email:
            notification_email_queue(actor=actor, site=batch.site, batch=batch, to=qp.email, subject=subject,
                                     body=summary + (f"\n\nRelease page (carmfg): {link}\n" if link else "\n"))


def _require_independent(actor, investigation: OosInvestigation) -> None:
    if investigation.result.entered_by_id == actor.pk:
        raise SegregationOfDuties(gettext_noop("You entered the result under investigation: a different QC "
                                               "person concludes the investigation."))


def _lock(investigation: OosInvestigation, expected_version: int) -> OosInvestigation:
    locked = OosInvestigation.objects.select_for_update().select_related("result__test", "result__batch").get(
        pk=investigation.pk)
    if locked.version != expected_version:
        raise StaleRecord()
    return locked


def oos_phase1_conclude(*, actor, investigation: OosInvestigation, conclusion: str, notes: str, password: str,
                        expected_version: int, request: HttpRequest | None = None) -> OosInvestigation:
    """Phase I: was there an assignable laboratory error?

    Yes: the result is invalidated (reason = these notes, signed "Reviewed") and the
    investigation closes, signed; the test is then repeated and the retest points to
    the original. No: the result is confirmed and phase II begins."""
    require_site_perm(actor, investigation.site, SitePerm.QC, action=gettext_noop("conclude OOS investigations"))
    if conclusion not in OosPhase1Conclusion.values:
        raise InvalidInput(gettext_noop("Conclusion: laboratory error found, or not."), field="conclusion")
    notes = clean_text(notes, field=gettext_noop("Phase I notes"), max_length=NOTES_MAX, required=True)
    _require_independent(actor, investigation)
    # Both conclusions are decisions of the person concluding: the password is asked either way.
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=investigation)
    with transaction.atomic():
        locked = _lock(investigation, expected_version)
        if locked.status != OosStatus.PHASE_1:
            raise NotReady(gettext_noop("The investigation is in %(status)s, not phase I."),
                           params={"status": Lowered(locked.get_status_display())})
        before = locked.signable_content()
        locked.phase1_conclusion = conclusion
        locked.phase1_notes = notes
        locked.version += 1
        if conclusion == OosPhase1Conclusion.LAB_ERROR:
            result = TestResult.objects.select_for_update().select_related("test", "batch").get(pk=locked.result_id)
            invalidate_locked(actor=actor, reauth=reauth, result=result,
                              reason=f"OOS phase I: assignable laboratory error. {notes}"[:2000])
            locked.status = OosStatus.CLOSED
            locked.conclusion = "Assignable laboratory error: result invalidated; the test is repeated."
            locked.closed_at = timezone.now()
        else:
            locked.status = OosStatus.PHASE_2
        locked.save()
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": before["status"], "new": locked.status},
                              "phase1_conclusion": conclusion, "phase1_notes": notes})
        if locked.status == OosStatus.CLOSED:
            signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.REVIEWED,
                            excluded_signers=[locked.result.entered_by_id])
    return locked


def oos_phase2_conclude(*, actor, investigation: OosInvestigation, notes: str, conclusion: str, password: str,
                        expected_version: int, request: HttpRequest | None = None) -> OosInvestigation:
    """Phase II closes with the investigation of product and process and its conclusion,
    signed "Reviewed". The result stands as out of specification: the batch is rejected,
    or released exceptionally by the QP with this investigation linked."""
    require_site_perm(actor, investigation.site, SitePerm.QC, action=gettext_noop("conclude OOS investigations"))
    notes = clean_text(notes, field=gettext_noop("Phase II notes"), max_length=NOTES_MAX, required=True)
    conclusion = clean_text(conclusion, field=gettext_noop("Conclusion"), max_length=NOTES_MAX, required=True)
    _require_independent(actor, investigation)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=investigation)
    with transaction.atomic():
        locked = _lock(investigation, expected_version)
        if locked.status != OosStatus.PHASE_2:
            raise NotReady(gettext_noop("The investigation is in %(status)s, not phase II."),
                           params={"status": Lowered(locked.get_status_display())})
        locked.phase2_notes = notes
        locked.conclusion = conclusion
        locked.status = OosStatus.CLOSED
        locked.closed_at = timezone.now()
        locked.version += 1
        locked.save()
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": OosStatus.PHASE_2, "new": OosStatus.CLOSED},
                              "phase2_notes": notes, "conclusion": conclusion})
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.REVIEWED,
                        excluded_signers=[locked.result.entered_by_id])
    return locked
