"""Release pages for the qualified person: the queue of batches awaiting a decision, and
a batch's release page (checklist, pending tests, the signature forms)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_POST

from batches.models import BatchFailureReason, BatchState, Deviation, ReleaseModel
from batches.selectors import batch_get_for_user, infusion_list_for_batch
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import GMPError, InvalidInput
from qc.checklist import release_checklist
from qc.models import CertificationDecision, CertificationKind, OosInvestigation
from qc.selectors import (
    alert_list_for_user,
    certification_list_for_batch,
    deviation_of_batch,
    major_deviations_of_batch,
    notifications_for_batch,
    oos_for_results,
    oos_of_batch_by_ids,
    release_queue_pages_for_user,
)
from qc.services import release
from qc.views.documents import records_context
from qc.views.quality import _redirect, _require_site, post_int, post_text, refused, site_perms_of

RELEASED = (CertificationDecision.RELEASED, CertificationDecision.RELEASED_EXCEPTIONAL)


@login_required
def queue(request):
    site = _require_site(request)
    pages = release_queue_pages_for_user(request.user, site=site, provisional_page=request.GET.get("p"),
                                         final_page=request.GET.get("f"))
    return render(request, "qc/release_queue.html", {
        "provisional": pages.provisional,
        "final": pages.final,
        "alerts": list(alert_list_for_user(request.user, site=site)[:20]),
        "perms": site_perms_of(request, site),
    })


def _stage(batch, certifications) -> str:
    """Which decision the batch waits for: provisional, final or single (or none)."""
    released = any(c.decision in RELEASED for c in certifications)
    waiting = batch.state == BatchState.AWAITING_RELEASE or (
        batch.state in (BatchState.PROVISIONALLY_RELEASED, BatchState.ON_HOLD) and released)
    if not waiting or any(c.decision == CertificationDecision.REJECTED for c in certifications):
        return ""
    if released:
        return CertificationKind.FINAL
    return CertificationKind.SINGLE if batch.product.release_model == ReleaseModel.SINGLE else CertificationKind.PROVISIONAL


def _render_batch_release(request, pk, *, posted=None, error_field=None, status=200):
    batch = batch_get_for_user(request.user, pk)
    certifications = certification_list_for_batch(batch)
    stage = _stage(batch, certifications)
    checklist = release_checklist(batch, kind=stage or CertificationKind.FINAL)
    independence = release.qp_independence_problem(request.user, batch)
    failing = release.failing_results(checklist)
    investigations = oos_for_results(failing)
    exceptional_stage = stage == CertificationKind.PROVISIONAL and not checklist.ok
    provisional_cert = next((c for c in certifications if c.kind == CertificationKind.PROVISIONAL), None)
    context = {
        # An out-of-specification fresh product: what an exceptional release still needs, and
        # the major deviations it may be recorded under.
        "exceptional_provisional_problems": (release.exceptional_provisional_problems(checklist)
                                             if exceptional_stage else []),
        "exceptional_deviations": major_deviations_of_batch(batch) if exceptional_stage else [],
        "exceptional_release": provisional_cert if provisional_cert is not None
        and provisional_cert.decision == CertificationDecision.RELEASED_EXCEPTIONAL else None,
        "batch": batch, "stage": stage, "checklist": checklist, "certifications": [
            (c, signatures_for_record(c)) for c in certifications],
        "independence": independence, "failing": failing, "investigations": investigations,
        "perms": site_perms_of(request, batch.site), "posted": posted or {}, "error_field": error_field,
        "failure_reasons": BatchFailureReason.choices, "Decision": CertificationDecision,
        # A failure the provisional decision already knew (an exceptional release) is not a late one.
        "late_failure": stage == CertificationKind.FINAL and any(
            provisional_cert is None or r.entered_at > provisional_cert.signed_at for r in failing),
        "exceptional_problems": release.exceptional_release_problems(checklist) if failing else [],
        "notifications": notifications_for_batch(batch),
        "infusions": list(infusion_list_for_batch(batch)),
        **records_context(request.user, batch),
    }
    return render(request, "qc/batch_release.html", context, status=status)


@login_required
def batch_release(request, pk: int):
    return _render_batch_release(request, pk)


def _investigations(request, batch) -> list[OosInvestigation]:
    ids = request.POST.getlist("investigations")
    try:
        wanted = [int(i) for i in ids]
    except ValueError:
        raise InvalidInput(gettext_noop("Unknown investigation."), field="investigations") from None
    found = oos_of_batch_by_ids(batch, wanted)
    if len(found) != len(set(wanted)):
        raise InvalidInput(gettext_noop("Only the investigations of this batch's failing results can be linked."),
                           field="investigations")
    return found


def _deviation(request, batch) -> Deviation | None:
    raw = request.POST.get("deviation", "")
    if not raw:
        return None
    try:
        deviation = deviation_of_batch(batch, int(raw))
    except ValueError:
        deviation = None
    if deviation is None:
        raise InvalidInput(gettext_noop("Deviation: choose one of this batch's major deviations."), field="deviation")
    return deviation


@login_required
@require_POST
def certify(request, pk: int):
    batch = batch_get_for_user(request.user, pk)
    common = {"actor": request.user, "batch": batch, "password": post_text(request, "password"), "request": request}
    try:
        common["expected_version"] = post_int(request, "version")
        common["expected_checklist"] = post_text(request, "checklist") or None
        kind = request.POST.get("kind")
        if kind == CertificationKind.PROVISIONAL and post_text(request, "decision") == \
                CertificationDecision.RELEASED_EXCEPTIONAL:
            cert = release.certification_provisional_exceptional_sign(
                justification=post_text(request, "justification"), physician_name=post_text(request, "physician_name"),
                consent_reference=post_text(request, "consent_reference"), deviation=_deviation(request, batch),
                comment=post_text(request, "comment"), **common)
        elif kind == CertificationKind.PROVISIONAL:
            cert = release.certification_provisional_sign(comment=post_text(request, "comment"), **common)
        elif kind in (CertificationKind.FINAL, CertificationKind.SINGLE):
            cert = release.certification_final_sign(
                decision=post_text(request, "decision", default=CertificationDecision.RELEASED),
                justification=post_text(request, "justification"), investigations=_investigations(request, batch),
                comment=post_text(request, "comment"), **common)
        else:
            raise InvalidInput(gettext_noop("The form is out of date (certification kind missing). Reload the page."))
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch_release(r, pk, **kw))
    messages.success(request, gettext("%(kind)s certification of %(batch)s signed: %(decision)s.")
                     % {"kind": gettext(cert.get_kind_display()), "batch": batch.number,
                        "decision": gettext(cert.get_decision_display()).lower()})
    return _redirect("qc:batch_release", batch.pk)


@login_required
@require_POST
def reject(request, pk: int):
    batch = batch_get_for_user(request.user, pk)
    try:
        cert = release.certification_reject(
            actor=request.user, batch=batch, reason=post_text(request, "reason"),
            failure_reason=post_text(request, "failure_reason"), password=post_text(request, "password"),
            expected_version=post_int(request, "version"), request=request)
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch_release(r, pk, **kw))
    messages.success(request, gettext("Batch %(batch)s rejected (%(kind)s decision, signed).")
                     % {"batch": batch.number, "kind": gettext(cert.get_kind_display()).lower()})
    return _redirect("qc:batch_release", batch.pk)


urlpatterns = [
    path("release/", queue, name="release"),
    path("release/<int:pk>/", batch_release, name="batch_release"),
    path("release/<int:pk>/certify/", certify, name="certify"),
    path("release/<int:pk>/reject/", reject, name="reject"),
]
