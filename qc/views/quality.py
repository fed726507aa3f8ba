"""QC pages: the work list, a batch's QC (samples, results, review, invalidation), OOS
investigations, specifications and alerts.

Thin: parse input, call one service or selector, render. Every object is read through
a site-scoped selector (404 for another site's); a refused action (``GMPError``) is
shown on the same page with what the user typed kept, never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_http_methods, require_POST

from batches.models import LabelStatus
from batches.selectors import batch_get_for_user
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import GMPError
from carmfg.texts import Text
from qc.exceptions import InvalidInput
from qc.models import LimitType, OosPhase1Conclusion, OosStatus, QualitativeResult, SpecStatus
from qc.selectors import (
    QC_ACTIVE_STATES,
    alert_get_for_user,
    alert_list_for_user,
    batch_test_status,
    oos_get_for_user,
    oos_list_for_user,
    result_get_for_user,
    results_to_enter_for_user,
    results_to_review_for_user,
    sample_get_for_user,
    specification_get_for_user,
    specification_list_for_user,
    test_definition_get_for_user,
)
from qc.services import alerts, oos, results, samples, specifications
from qc.services.specifications import TEST_FIELDS, specification_problems, specification_signatures

FIELD_MAX = 20_000  # no single form field of these pages is longer: a bigger one is refused before any work


# --- helpers shared with the release pages ------------------------------------------------------


def post_text(request, name: str, *, default: str = "") -> str:
    value = request.POST.get(name, default)
    if len(value) > FIELD_MAX:
        raise InvalidInput(gettext_noop("%(field)s: too long."), params={"field": name.replace("_", " ").capitalize()},
                           field=name)
    return value


def post_int(request, name: str, *, label: str = gettext_noop("The form")) -> int:
    raw = request.POST.get(name, "")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(gettext_noop("%(form)s is out of date or incomplete (%(name)s missing). Reload the page."),
                           params={"form": Text(label), "name": name}) from None


def site_perms_of(request, site) -> dict[str, bool]:
    return {
        "qc": has_site_perm(request.user, site, SitePerm.QC),
        "certify": has_site_perm(request.user, site, SitePerm.CERTIFY),
    }


def refused(request, exc: GMPError, render_page, **context):
    """Show the refusal on the page the user was on, keeping what they typed."""
    messages.error(request, exc.text)
    response = render_page(request, posted=request.POST, error_field=exc.field, **context)
    response.status_code = exc.status_code
    return response


def _redirect(name: str, *args, anchor: str = "") -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse(name, args=args) + (f"#{anchor}" if anchor else ""))


def _require_site(request):
    if not request.site:
        raise Http404("You hold no role at any site.")
    return request.site


# --- the QC work list ---------------------------------------------------------------------------


@login_required
def index(request):
    site = _require_site(request)
    context = {
        "to_enter": results_to_enter_for_user(request.user, site=site),
        "to_review": list(results_to_review_for_user(request.user, site=site)[:200]),
        "investigations": list(oos_list_for_user(request.user, site=site)),
        "alerts": list(alert_list_for_user(request.user, site=site)[:50]),
        "perms": site_perms_of(request, site),
    }
    return render(request, "qc/index.html", context)


# --- a batch's QC ---------------------------------------------------------------------------------


def _render_batch(request, pk, *, posted=None, error_field=None, status=200):
    batch = batch_get_for_user(request.user, pk)
    qc = batch_test_status(batch)
    for test_status in qc.tests:
        for result in test_status.history:
            result.sig_views = signatures_for_record(result)  # type: ignore[attr-defined]  # template-only
    context = {
        "batch": batch, "qc": qc, "perms": site_perms_of(request, batch.site),
        "can_enter": batch.state in QC_ACTIVE_STATES,
        "posted": posted or {}, "error_field": error_field, "qualitative_labels": dict(QualitativeResult.choices),
        "posted_tests": posted.getlist("tests") if hasattr(posted, "getlist") else [],
        "requirements": qc.requirements,
        # The scanner types into the first sample still to receive.
        "first_pending_sample": next((s.pk for s in qc.samples if s.received_at is None), None),
    }
    return render(request, "qc/batch.html", context, status=status)


@login_required
def batch_qc(request, pk: int):
    return _render_batch(request, pk)


@login_required
@require_POST
def result_enter(request, pk: int):
    batch = batch_get_for_user(request.user, pk)
    try:
        test_id = post_int(request, "test", label=gettext_noop("The result form"))
        test = next((t.test for t in batch_test_status(batch).tests if t.test.pk == test_id), None)
        if test is None:
            raise InvalidInput(gettext_noop("This test is not part of the batch's specification."), field="test")
        sample = None
        sample_id = request.POST.get("sample", "")
        if sample_id:
            try:
                sample = sample_get_for_user(request.user, int(sample_id))
            except (ValueError, Http404):
                raise InvalidInput(gettext_noop("Unknown sample."), field="sample") from None
        result = results.result_enter(
            actor=request.user, batch=batch, test=test, raw_value=post_text(request, "value"),
            qualitative=post_text(request, "qualitative"), unit=post_text(request, "unit"), sample=sample,
            comment=post_text(request, "comment"), password=post_text(request, "password"), request=request,
        )
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, pk, **kw))
    if result.evaluation == "fail":
        messages.warning(request, gettext("%(test)s %(value)s is out of specification: an OOS investigation and a "
                                          "deviation were opened.")
                         % {"test": result.test.name, "value": result.display_value})
    else:
        messages.success(request, gettext("%(test)s %(value)s recorded and signed.")
                         % {"test": result.test.name, "value": result.display_value})
    return _redirect("qc:batch", batch.pk, anchor=f"test-{result.test.code}")


@login_required
@require_POST
def result_review(request, pk: int):
    result = result_get_for_user(request.user, pk)
    try:
        results.result_review(actor=request.user, result=result, password=post_text(request, "password"),
                              expected_version=post_int(request, "version"), comment=post_text(request, "comment"),
                              request=request)
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, result.batch_id, **kw))
    messages.success(request, gettext("%(test)s result reviewed and signed.") % {"test": result.test.name})
    return _redirect("qc:batch", result.batch_id, anchor=f"test-{result.test.code}")


@login_required
@require_POST
def result_invalidate(request, pk: int):
    result = result_get_for_user(request.user, pk)
    try:
        results.result_invalidate(actor=request.user, result=result, reason=post_text(request, "reason"),
                                  password=post_text(request, "password"),
                                  expected_version=post_int(request, "version"), request=request)
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, result.batch_id, **kw))
    messages.success(request, gettext("%(test)s result invalidated; record the retest.") % {"test": result.test.name})
    return _redirect("qc:batch", result.batch_id, anchor=f"test-{result.test.code}")


@login_required
@require_POST
def samples_from_steps(request, pk: int):
    batch = batch_get_for_user(request.user, pk)
    try:
        created = samples.samples_create_from_steps(actor=request.user, batch=batch)
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, pk, **kw))
    messages.success(request, gettext("%(n)s sample(s) registered from the sampling steps.") % {"n": len(created)}
                     if created else gettext("Every sampling step already has its sample."))
    return _redirect("qc:batch", batch.pk, anchor="samples")


@login_required
@require_POST
def sample_register(request, pk: int):
    """QC registers a sample taken by hand (e.g. for a retest), with its label."""
    batch = batch_get_for_user(request.user, pk)
    try:
        sample = samples.sample_create(actor=request.user, batch=batch, test_codes=request.POST.getlist("tests"),
                                       sample_type=post_text(request, "sample_type"))
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, pk, **kw))
    label = sample.label
    if label is not None and label.status == LabelStatus.PRINTED:
        messages.success(request, gettext("Sample %(sample)s registered with the new label %(label)s: print it, stick "
                                          "it on the tube, record it as applied, then receive the sample with a scan.")
                         % {"sample": sample.code, "label": label.container_code})
    else:
        messages.success(request, gettext("Sample %(sample)s registered with label %(label)s: receive it with a scan "
                                          "of that label.")
                         % {"sample": sample.code, "label": label.container_code if label else "—"})
    return _redirect("qc:batch", batch.pk, anchor="samples")


@login_required
def sample_label(request, pk: int):
    """The PDF of a sample's label, while it is printed and not yet on the tube."""
    sample = sample_get_for_user(request.user, pk)
    try:
        pdf = samples.sample_label_pdf(actor=request.user, sample=sample)
    except GMPError as exc:
        messages.error(request, exc.text)
        return _redirect("qc:batch", sample.batch_id, anchor="samples")
    response = HttpResponse(pdf, content_type="application/pdf")
    code = sample.label.container_code if sample.label else sample.code
    response["Content-Disposition"] = f'attachment; filename="label-{sample.batch.donation.din}-{code}.pdf"'
    return response


@login_required
@require_POST
def sample_label_apply(request, pk: int):
    sample = sample_get_for_user(request.user, pk)
    try:
        label = samples.sample_label_apply(actor=request.user, sample=sample)
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, sample.batch_id, **kw))
    messages.success(request, gettext("Label %(label)s is on sample %(sample)s: receive it with a scan.")
                     % {"label": label.container_code, "sample": sample.code})
    return _redirect("qc:batch", sample.batch_id, anchor="samples")


@login_required
@require_POST
def sample_receive(request, pk: int):
    sample = sample_get_for_user(request.user, pk)
    try:
        samples.sample_receive(actor=request.user, sample=sample, scanned_code=post_text(request, "scanned_code"))
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_batch(r, sample.batch_id, **kw))
    messages.success(request, gettext("Sample %(sample)s received by QC.") % {"sample": sample.code})
    return _redirect("qc:batch", sample.batch_id, anchor="samples")


# --- OOS ----------------------------------------------------------------------------------------


def _render_oos(request, pk, *, posted=None, error_field=None, status=200):
    investigation = oos_get_for_user(request.user, pk)
    context = {
        "investigation": investigation, "result": investigation.result, "batch": investigation.result.batch,
        "signatures": signatures_for_record(investigation), "perms": site_perms_of(request, investigation.site),
        "posted": posted or {}, "error_field": error_field, "conclusions": OosPhase1Conclusion.choices,
        "OosStatus": OosStatus,
    }
    return render(request, "qc/oos.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def oos_detail(request, pk: int):
    if request.method == "GET":
        return _render_oos(request, pk)
    investigation = oos_get_for_user(request.user, pk)
    try:
        version = post_int(request, "version")
        if request.POST.get("phase") == "1":
            investigation = oos.oos_phase1_conclude(
                actor=request.user, investigation=investigation, conclusion=post_text(request, "conclusion"),
                notes=post_text(request, "notes"), password=post_text(request, "password"), expected_version=version,
                request=request)
        elif request.POST.get("phase") == "2":
            investigation = oos.oos_phase2_conclude(
                actor=request.user, investigation=investigation, notes=post_text(request, "notes"),
                conclusion=post_text(request, "conclusion"), password=post_text(request, "password"),
                expected_version=version, request=request)
        else:
            raise InvalidInput(gettext_noop("The form is out of date (phase missing). Reload the page."))
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_oos(r, pk, **kw))
    messages.success(request, gettext("Investigation: %(status)s.") % {"status": gettext(investigation.get_status_display())})
    return _redirect("qc:oos", investigation.pk)


# --- specifications -------------------------------------------------------------------------------


@login_required
def specification_list(request):
    site = _require_site(request)
    return render(request, "qc/specifications.html", {
        "specifications": list(specification_list_for_user(request.user, site=site)),
        "perms": site_perms_of(request, site),
    })


def _render_spec(request, pk, *, posted=None, error_field=None, status=200):
    spec = specification_get_for_user(request.user, pk)
    tests = list(spec.tests.all())
    context = {
        "spec": spec, "tests": tests, "signatures": signatures_for_record(spec),
        "state": specification_signatures(spec), "problems": [p.text for p in specification_problems(spec)] if spec.status == SpecStatus.DRAFT else [],
        "perms": site_perms_of(request, spec.site), "posted": posted or {}, "error_field": error_field,
        "limit_types": LimitType.choices, "passing_results": specifications.QUALITATIVE_CHOICES,
        "is_draft": spec.status == SpecStatus.DRAFT, "SpecStatus": SpecStatus,
    }
    return render(request, "qc/specification.html", context, status=status)


@login_required
def specification_detail(request, pk: int):
    return _render_spec(request, pk)


def _test_values(request) -> dict:
    values = {name: post_text(request, name) for name in TEST_FIELDS if name != "required_for_provisional"}
    values["required_for_provisional"] = request.POST.get("required_for_provisional") == "on"
    return values


@login_required
@require_POST
def specification_action(request, pk: int, action: str):
    spec = specification_get_for_user(request.user, pk)
    user = request.user
    try:
        if action == "clone":
            clone = specifications.specification_clone(actor=user, specification=spec,
                                                       change_summary=post_text(request, "change_summary"))
            messages.success(request, gettext("Draft version %(new)s created from version %(old)s.")
                             % {"new": clone.version, "old": spec.version})
            return _redirect("qc:specification", clone.pk)
        revision = post_int(request, "revision")
        if action == "edit":
            specifications.specification_update(
                actor=user, specification=spec, expected_revision=revision,
                reason=post_text(request, "reason") or "draft edit",
                **{name: post_text(request, name) for name in specifications.HEADER_FIELDS})
            messages.success(request, gettext("Specification updated."))
        elif action == "add-test":
            test = specifications.specification_test_add(actor=user, specification=spec, expected_revision=revision,
                                                         **_test_values(request))
            messages.success(request, gettext("Test %(test)s added.") % {"test": test.name})
        elif action == "review":
            specifications.specification_review(actor=user, specification=spec, password=post_text(request, "password"),
                                                expected_revision=revision, request=request,
                                                comment=post_text(request, "comment"))
            messages.success(request, gettext("Specification signed as reviewed."))
        elif action == "approve":
            specifications.specification_approve(actor=user, specification=spec, password=post_text(request, "password"),
                                                 expected_revision=revision, request=request,
                                                 comment=post_text(request, "comment"))
            messages.success(request, gettext("Specification approved."))
        elif action == "effective":
            specifications.specification_make_effective(actor=user, specification=spec)
            messages.success(request, gettext("Version %(version)s is now effective for new batches.")
                             % {"version": spec.version})
        else:
            raise Http404("Unknown action.")
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_spec(r, pk, **kw))
    return _redirect("qc:specification", spec.pk)


@login_required
@require_POST
def specification_test_action(request, pk: int, action: str):
    test = test_definition_get_for_user(request.user, pk)
    spec_pk = test.specification_id
    try:
        revision = post_int(request, "revision")
        if action == "edit":
            specifications.specification_test_update(actor=request.user, test=test, expected_revision=revision,
                                                     reason=post_text(request, "reason"), **_test_values(request))
            messages.success(request, gettext("Test %(test)s updated.") % {"test": test.name})
        elif action == "remove":
            specifications.specification_test_remove(actor=request.user, test=test, expected_revision=revision,
                                                     reason=post_text(request, "reason"))
            messages.success(request, gettext("Test %(test)s removed.") % {"test": test.name})
        else:
            raise Http404("Unknown action.")
    except GMPError as exc:
        return refused(request, exc, lambda r, **kw: _render_spec(r, spec_pk, **kw))
    return _redirect("qc:specification", spec_pk)


# --- alerts -----------------------------------------------------------------------------------


@login_required
def alert_list(request):
    site = _require_site(request)
    return render(request, "qc/alerts.html", {
        "open_alerts": list(alert_list_for_user(request.user, site=site)),
        "acknowledged": list(alert_list_for_user(request.user, site=site, open_only=False)
                             .filter(acknowledged_at__isnull=False)[:30]),
    })


@login_required
@require_POST
def alert_acknowledge(request, pk: int):
    alert = alert_get_for_user(request.user, pk)
    try:
        alerts.alert_acknowledge(actor=request.user, alert=alert)
    except GMPError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, gettext("Alert acknowledged: %(title)s.") % {"title": alert.title_text})
    return _redirect("qc:alerts")


urlpatterns = [
    path("", index, name="index"),
    path("batches/<int:pk>/", batch_qc, name="batch"),
    path("batches/<int:pk>/results/", result_enter, name="result_enter"),
    path("batches/<int:pk>/samples/", samples_from_steps, name="samples_from_steps"),
    path("samples/<int:pk>/receive/", sample_receive, name="sample_receive"),
    path("batches/<int:pk>/samples/new/", sample_register, name="sample_register"),
    path("samples/<int:pk>/label/", sample_label, name="sample_label"),
    path("samples/<int:pk>/label/applied/", sample_label_apply, name="sample_label_apply"),
    path("results/<int:pk>/review/", result_review, name="result_review"),
    path("results/<int:pk>/invalidate/", result_invalidate, name="result_invalidate"),
    path("oos/<int:pk>/", oos_detail, name="oos"),
    path("specifications/", specification_list, name="specifications"),
    path("specifications/<int:pk>/", specification_detail, name="specification"),
    path("specifications/<int:pk>/<slug:action>/", specification_action, name="specification_action"),
    path("specification-tests/<int:pk>/<slug:action>/", specification_test_action, name="specification_test_action"),
    path("alerts/", alert_list, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", alert_acknowledge, name="alert_acknowledge"),
]
