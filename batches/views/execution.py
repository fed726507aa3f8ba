"""Pages of manufacturing execution: batches and their steps, master batch records,
deviations, material lots and equipment.

Views are thin: they read through the site-scoped selectors (other sites' objects are
404), parse input with forms, call one service, and turn a refused action into the
same page with the reason on it (never a 500). Every rule is the services'.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_GET, require_POST

from batches import selectors
from batches.calculations import REGISTRY, calculation_run
from batches.charts import expansion_chart_svg, expansion_points
from batches.exceptions import ConfirmationRequired, IdentityMismatch
from batches.models import (
    BatchState,
    DeviationClass,
    DeviationStatus,
    LotStatus,
    MbrApprovalRole,
    MbrStatus,
    StepKind,
)
from batches.progress import load_plan
from batches.services import deviations as deviation_services
from batches.services import equipment as equipment_services
from batches.services import execution as execution_services
from batches.services import materials as material_services
from batches.services import mbr as mbr_services
from batches.services.equipment import EquipmentRefused, equipment_problem_phrase
from batches.services.materials import LotRefused, lot_problem_phrase, site_today
from batches.views import execution_forms as f
from batches.views.submission import form_submit
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import GMPError
from carmfg.texts import Text

PAGE_SIZE = 25
SCAN_FIELDS = ("lot_barcode", "equipment_code", "scanned_code")
SCAN_REFUSALS = (LotRefused, EquipmentRefused, IdentityMismatch)


def _site(request: HttpRequest):
    site = request.site if getattr(request, "site", None) else None
    if site is None:
        raise Http404("You hold no role at any site.")
    return site


def _perms(user, site) -> dict[str, bool]:
    return {
        "execute": has_site_perm(user, site, SitePerm.EXECUTE),
        "verify": has_site_perm(user, site, SitePerm.VERIFY),
        "certify": has_site_perm(user, site, SitePerm.CERTIFY),
        "admin": has_site_perm(user, site, SitePerm.ADMIN),
        "qc": has_site_perm(user, site, SitePerm.QC),
    }


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


STATE_BADGE: dict[str, str] = {
    BatchState.PLANNED: "neutral", BatchState.IN_PROCESS: "info", BatchState.AWAITING_RELEASE: "warn",
    BatchState.PROVISIONALLY_RELEASED: "ok", BatchState.RELEASED: "ok", BatchState.ON_HOLD: "danger",
    BatchState.REJECTED: "danger", BatchState.CANCELLED: "neutral",
}


# --- batches -------------------------------------------------------------------------------------


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    form = f.BatchFilterForm(request.GET or None, states=BatchState.choices)
    batches = selectors.batch_list_for_user(request.user, site=site).order_by("-created_at")
    if form.is_bound and form.is_valid():
        if form.cleaned_data["state"]:
            batches = batches.filter(state=form.cleaned_data["state"])
        if form.cleaned_data["q"]:
            q = form.cleaned_data["q"].strip().lstrip("=")
            batches = batches.filter(Q(number__icontains=q) | Q(donation__din__icontains=q[:13]))
    page = Paginator(batches, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    progress = selectors.batch_list_progress(shown)
    in_process = [b for b in shown if b.state == BatchState.IN_PROCESS]
    next_steps = selectors.next_steps_for_batches(in_process)
    rows = [(b, progress[b.pk], STATE_BADGE.get(b.state, "neutral"), next_steps.get(b.pk)) for b in shown]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "batches/execution/batch_list.html", {
        "form": form, "page": page, "rows": rows, "query": query.urlencode(), "site": site,
        "perms": _perms(request.user, site),
    }, status=200 if not form.is_bound or form.is_valid() else 400)


def _calc_preview(plan, definition) -> dict:
    """A calculation shown with its inputs before it is signed."""
    resolved = plan.resolve_inputs(definition)
    preview = {"inputs": resolved, "formula": REGISTRY[definition.calculation].formula, "error": ""}
    if any(item["missing"] for item in resolved.values()):
        preview["error"] = gettext("Not every input is recorded yet.")
        return preview
    try:
        result = calculation_run(definition.calculation, {k: v["value"] for k, v in resolved.items()})
    except GMPError as exc:
        preview["error"] = exc.text
        return preview
    from batches.quantities import round_to

    preview["value"] = round_to(result.value, definition.decimal_places)
    preview["limit"] = execution_services.evaluate_limits(definition, preview["value"])
    preview["outputs"] = [(REGISTRY[definition.calculation].outputs[i], out)
                          for i, out in enumerate(result.outputs.values())]
    return preview


def _render_detail(request, batch, *, action: dict | None = None, status: int = 200) -> HttpResponse:
    site = batch.site
    plan = load_plan(batch)
    perms = _perms(request.user, site)
    action = action or {}
    mode = action.get("mode")
    if mode is None:
        # What the page offers: a record to verify or correct, a chosen step, or the next step.
        verify_pk, correct_pk, step_pk = (_int(request.GET.get(k)) for k in ("verify", "correct", "step"))
        if verify_pk is not None:
            action = {"mode": "verify", "record": _record_state(plan, verify_pk)}
        elif correct_pk is not None:
            action = {"mode": "correct", "record": _record_state(plan, correct_pk)}
        elif step_pk is not None and step_pk in plan.by_pk:
            action = {"mode": "record", "state": plan.by_pk[step_pk]}
        elif plan.next_step is not None:
            action = {"mode": "record", "state": plan.next_step}
        mode = action.get("mode")
    if mode == "record":
        state = plan.by_pk[action["state"].definition.pk]
        action["state"] = state
        action.setdefault("form", f.StepForm(definition=state.definition, initial={
            "expected_occurrence": state.next_occurrence, "unit": state.definition.unit}))
        if state.definition.kind == StepKind.CALCULATION and state.definition.calculation in REGISTRY:
            action["preview_calc"] = _calc_preview(plan, state.definition)
        action["limits"] = execution_services.limits_phrase(state.definition).text
    elif mode == "correct" and action.get("record") is not None:
        rec = action["record"]
        definition = rec.record.definition
        action.setdefault("form", f.StepForm(definition=definition, correcting=True, initial={
            "expected_version": rec.record.version, "unit": definition.unit,
            "value": "" if rec.record.value is None or definition.kind != StepKind.VALUE
            else f"{rec.record.value.normalize():f}",
            "comment": rec.record.comment}))
        action["limits"] = execution_services.limits_phrase(definition).text
        if definition.kind == StepKind.CALCULATION and definition.calculation in REGISTRY:
            action["preview_calc"] = _calc_preview(plan, definition)
    elif mode == "verify" and action.get("record") is not None:
        action.setdefault("form", f.SignForm(initial={"expected_version": action["record"].record.version}))
        action["form"].fields["password"].widget.attrs["autofocus"] = True  # the verifier signs at once
    deviations = list(selectors.deviation_list_for_user(request.user, site=site).filter(batch=batch)
                      .order_by("raised_at"))
    points, x_title, viability_limit = expansion_points(plan)
    chart = expansion_chart_svg(points, x_title=x_title, viability_action_min=viability_limit,
                                title=gettext("Expansion of batch %(number)s") % {"number": batch.number}) if points else ""
    problems = [p.text for p in plan.completion_problems()] if batch.state == BatchState.IN_PROCESS else []
    return render(request, "batches/execution/batch_detail.html", {
        "batch": batch, "plan": plan, "site": site, "perms": perms, "action": action,
        "state_badge": STATE_BADGE.get(batch.state, "neutral"),
        "deviations": deviations,
        "open_deviations": [d for d in deviations if d.status != DeviationStatus.CLOSED],
        "chart": mark_safe(chart),  # noqa: S308  (built by batches.charts, every text escaped there)
        "chart_points": points,
        "completion_problems": problems,
        "can_complete": batch.state == BatchState.IN_PROCESS and not problems,
        "version_form": f.VersionForm(initial={"expected_version": batch.version}),
        "today": site_today(site),
    }, status=status)


def _record_state(plan, record_pk: int | None):
    for state in plan.steps:
        for rec in state.records:
            if rec.record.pk == record_pk:
                return rec
    raise Http404("No such step record in this batch.")


@login_required
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(request.user, pk)
    return _render_detail(request, batch)


def _refused(request, batch, action: dict, exc: GMPError) -> HttpResponse:
    action["error"] = exc
    if isinstance(exc, ConfirmationRequired):
        action["confirm"] = exc
    if isinstance(exc, LotRefused | EquipmentRefused) and exc.definition is not None:
        lot = exc.lot if isinstance(exc, LotRefused) else None
        equipment = exc.equipment if isinstance(exc, EquipmentRefused) else None
        thing = lot or equipment
        if thing is not None:
            action["request_use"] = {
                "thing": thing, "definition": exc.definition,
                "form": f.RequestUseForm(initial={"lot_barcode": lot.barcode if lot else "",
                                                  "equipment_code": equipment.asset_id if equipment else ""},
                                         auto_id="use_%s"),  # ids unique beside the step form
            }
    return _render_detail(request, batch, action=action, status=exc.status_code)


@login_required
@require_POST
def step_record_view(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(request.user, pk)
    definition = selectors.step_definition_get_for_mbr(batch.mbr, step_pk)
    state = load_plan(batch).by_pk[definition.pk]
    confirming = bool(request.POST.get("confirmed"))
    form = f.StepForm(request.POST, definition=definition, ask_confirmation=confirming)
    action: dict = {"mode": "record", "state": state, "form": form}
    if not form.is_valid():
        return _render_detail(request, batch, action=action, status=400)
    data = form.cleaned_data
    try:
        if not data.get("password"):
            preview = execution_services.step_preview(actor=request.user, batch=batch, definition=definition,
                                                      comment=data.get("comment") or "", **form.service_kwargs())
            action["checked"] = preview
            action["form"] = f.StepForm(request.POST, definition=definition, ask_confirmation=confirming)
            action["form"].is_valid()
            action["form"].fields["password"].widget.attrs["autofocus"] = True
            for name in ("value", "lot_barcode", "equipment_code", "scanned_code"):
                if name in action["form"].fields:
                    action["form"].fields[name].widget.attrs.pop("autofocus", None)
            return _render_detail(request, batch, action=action)
        saved = execution_services.step_record(
            actor=request.user, batch=batch, definition=definition, password=data["password"], request=request,
            expected_occurrence=data.get("expected_occurrence") or 0, comment=data.get("comment") or "",
            **form.service_kwargs())
    except GMPError as exc:
        data = request.POST.copy()
        if isinstance(exc, SCAN_REFUSALS):
            # The refused code is named in the message; the field is emptied for the next scan
            # (a scanner types into it: it must not append to the refused code).
            for name in SCAN_FIELDS:
                data.pop(name, None)
        action["form"] = f.StepForm(data, definition=definition,
                                    ask_confirmation=confirming or isinstance(exc, ConfirmationRequired))
        action["form"].is_valid()
        return _refused(request, batch, action, exc)
    suffix = f" #{saved.occurrence}" if definition.repeatable else ""
    if saved.deviation is not None and saved.limit_result == "action":
        messages.warning(request, gettext("Recorded out of limits: %(step)s. Deviation %(deviation)s was raised.")
                         % {"step": definition.title + suffix, "deviation": saved.deviation.number})
    else:
        messages.success(request, gettext("Recorded and signed: %(step)s.") % {"step": definition.title + suffix})
    return redirect(reverse("batches:batch_detail", args=[batch.pk]) + "#action")


@login_required
@require_POST
def step_verify_view(request: HttpRequest, pk: int, record_pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(request.user, pk)
    record = selectors.step_record_get_for_batch(batch, record_pk)
    form = f.SignForm(request.POST)
    rec = _record_state(load_plan(batch), record.pk)
    action: dict = {"mode": "verify", "record": rec, "form": form}
    if not form.is_valid():
        return _render_detail(request, batch, action=action, status=400)
    try:
        execution_services.step_verify(actor=request.user, record=record, password=form.cleaned_data["password"],
                                       request=request, expected_version=form.cleaned_data["expected_version"] or 0,
                                       comment=form.cleaned_data["comment"] or "")
    except GMPError as exc:
        return _refused(request, batch, action, exc)
    messages.success(request, gettext("Verified: %(step)s.") % {"step": record.definition.title})
    return redirect(reverse("batches:batch_detail", args=[batch.pk]) + "#action")


@login_required
@require_POST
def step_correct_view(request: HttpRequest, pk: int, record_pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(request.user, pk)
    record = selectors.step_record_get_for_batch(batch, record_pk)
    confirming = bool(request.POST.get("confirmed"))
    form = f.StepForm(request.POST, definition=record.definition, correcting=True, ask_confirmation=confirming)
    rec = _record_state(load_plan(batch), record.pk)
    action: dict = {"mode": "correct", "record": rec, "form": form}
    if not form.is_valid():
        return _render_detail(request, batch, action=action, status=400)
    data = form.cleaned_data
    try:
        execution_services.step_correct(
            actor=request.user, record=record, password=data.get("password") or "", request=request,
            reason=data.get("reason") or "", expected_version=data.get("expected_version") or 0,
            comment=data.get("comment") if "comment" in request.POST else None, **form.service_kwargs())
    except GMPError as exc:
        action["form"] = f.StepForm(request.POST, definition=record.definition, correcting=True,
                                    ask_confirmation=confirming or isinstance(exc, ConfirmationRequired))
        action["form"].is_valid()
        return _refused(request, batch, action, exc)
    messages.success(request, gettext("Corrected and signed again: %(step)s. "
                                      "The original entry stays visible, struck through.")
                     % {"step": record.definition.title})
    return redirect(reverse("batches:batch_detail", args=[batch.pk]) + f"#rec-{record.pk}")


@login_required
@require_POST
def request_use_view(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(request.user, pk)
    definition = selectors.step_definition_get_for_mbr(batch.mbr, step_pk)
    form = f.RequestUseForm(request.POST)
    state = load_plan(batch).by_pk[definition.pk]
    if not form.is_valid():
        return _render_detail(request, batch, action={"mode": "record", "state": state, "error": GMPError(
            gettext_noop("Write why the lot or equipment must be used: the QP decides on it."))}, status=400)
    lot = selectors.material_lot_by_barcode(batch.site, form.cleaned_data["lot_barcode"]) \
        if form.cleaned_data["lot_barcode"] else None
    equipment = selectors.equipment_by_asset(batch.site, form.cleaned_data["equipment_code"]) \
        if form.cleaned_data["equipment_code"] else None
    try:
        deviation = deviation_services.deviation_request_use(
            actor=request.user, batch=batch, definition=definition, material_lot=lot, equipment=equipment,
            justification=form.cleaned_data["justification"])
    except GMPError as exc:
        return _render_detail(request, batch, action={"mode": "record", "state": state, "error": exc},
                              status=exc.status_code)
    messages.info(request, gettext("Deviation %(number)s asks a QP to approve this use. The step stays blocked "
                                   "until it is approved; then scan the same label again.") % {"number": deviation.number})
    return redirect("batches:deviation_detail", pk=deviation.pk)


def _batch_action(request, pk: int, call, success: str) -> HttpResponse:
    batch = selectors.batch_get_for_user(request.user, pk)
    form = f.ReasonForm(request.POST) if "reason" in request.POST else f.VersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("The form was incomplete or out of date: %(errors)s")
                       % {"errors": "; ".join(str(e) for errs in form.errors.values() for e in errs)})
        return redirect("batches:batch_detail", pk=batch.pk)
    try:
        call(batch, form.cleaned_data)
    except GMPError as exc:
        return _render_detail(request, batch, action={"batch_error": exc}, status=exc.status_code)
    messages.success(request, success)
    return redirect("batches:batch_detail", pk=batch.pk)


@login_required
@require_POST
def batch_start_view(request, pk: int):
    return _batch_action(request, pk, lambda b, d: execution_services.batch_start(
        actor=request.user, batch=b, expected_version=d["expected_version"]), gettext("Manufacturing started."))


@login_required
@require_POST
def batch_complete_view(request, pk: int):
    return _batch_action(request, pk, lambda b, d: execution_services.batch_complete(
        actor=request.user, batch=b, expected_version=d["expected_version"]),
        gettext("Batch record complete: the batch awaits QC results and release."))


@login_required
@require_POST
def batch_hold_view(request, pk: int):
    return _batch_action(request, pk, lambda b, d: execution_services.batch_hold(
        actor=request.user, batch=b, reason=d.get("reason", ""), expected_version=d["expected_version"]),
        gettext("The batch is on hold."))


@login_required
@require_POST
def batch_resume_view(request, pk: int):
    return _batch_action(request, pk, lambda b, d: execution_services.batch_resume(
        actor=request.user, batch=b, reason=d.get("reason", ""), expected_version=d["expected_version"]),
        gettext("The batch goes on."))


# --- deviations --------------------------------------------------------------------------------------


@login_required
@require_GET
def deviation_list(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    deviations = selectors.deviation_list_for_user(request.user, site=site).order_by("-raised_at")
    status = request.GET.get("status", "open")
    if status == "open":
        deviations = deviations.exclude(status=DeviationStatus.CLOSED)
    elif status in DeviationStatus.values:
        deviations = deviations.filter(status=status)
    else:
        status = "all"
    page = Paginator(deviations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "batches/execution/deviation_list.html", {
        "page": page, "status": status, "statuses": DeviationStatus.choices, "perms": _perms(request.user, site),
        "site": site})


@login_required
def deviation_new(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    batches = list(selectors.batch_list_for_user(request.user, site=site).exclude(
        state__in=[BatchState.CANCELLED, BatchState.RELEASED, BatchState.REJECTED])[:100])
    initial = {"batch": request.GET.get("batch", "")}
    form = f.DeviationRaiseForm(request.POST or None, batches=batches, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            batch = next((b for b in batches if str(b.pk) == form.cleaned_data["batch"]), None)
            try:
                deviation = deviation_services.deviation_raise_manual(
                    actor=request.user, site=site, batch=batch, classification=form.cleaned_data["classification"],
                    title=form.cleaned_data["title"], description=form.cleaned_data["description"])
            except GMPError as exc:
                form.add_error(None, exc.text)
                status = exc.status_code
            else:
                messages.success(request, gettext("Deviation %(number)s raised.") % {"number": deviation.number})
                return redirect("batches:deviation_detail", pk=deviation.pk)
        else:
            status = 400
    return render(request, "batches/execution/deviation_new.html", {"form": form, "site": site}, status=status)


def _render_deviation(request, deviation, *, update_form=None, sign_error=None, status=200):
    site = deviation.site
    perms = _perms(request.user, site)
    update_form = update_form or f.DeviationUpdateForm(initial={
        "classification": deviation.classification, "title": deviation.title, "description": deviation.description,
        "impact_assessment": deviation.impact_assessment, "root_cause": deviation.root_cause,
        "capa": deviation.capa, "expected_version": deviation.version})
    approval = getattr(deviation, "use_approval", None)
    return render(request, "batches/execution/deviation_detail.html", {
        "deviation": deviation, "site": site, "perms": perms,
        "can_investigate": any(perms[k] for k in ("execute", "verify", "qc", "certify"))
        and deviation.status != DeviationStatus.CLOSED,
        "update_form": update_form,
        "approve_form": f.SignForm(initial={"expected_version": deviation.version}, auto_id="approve_%s"),
        "close_form": f.SignForm(initial={"expected_version": deviation.version}, auto_id="close_%s"),
        "sign_error": sign_error,
        "signatures": signatures_for_record(deviation),
        "approval_signatures": signatures_for_record(approval) if approval else [],
        "blocking": deviation.classification in (DeviationClass.MAJOR, DeviationClass.CRITICAL)
        and deviation.status != DeviationStatus.CLOSED,
    }, status=status)


@login_required
def deviation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deviation = selectors.deviation_get_for_user(request.user, pk)
    if request.method != "POST":
        return _render_deviation(request, deviation)
    form = f.DeviationUpdateForm(request.POST)
    if not form.is_valid():
        return _render_deviation(request, deviation, update_form=form, status=400)
    data = dict(form.cleaned_data)
    reason, expected = data.pop("reason"), data.pop("expected_version")
    current = {k: getattr(deviation, k) for k in data}
    changed = {k: v for k, v in data.items() if v != current[k]}
    try:
        deviation_services.deviation_update(actor=request.user, deviation=deviation, reason=reason,
                                            expected_version=expected, **changed)
    except GMPError as exc:
        form.add_error(None, exc.text)
        return _render_deviation(request, deviation, update_form=form, status=exc.status_code)
    messages.success(request, gettext("Deviation updated."))
    return redirect("batches:deviation_detail", pk=deviation.pk)


def _deviation_sign(request, pk: int, call, success: str) -> HttpResponse:
    deviation = selectors.deviation_get_for_user(request.user, pk)
    form = f.SignForm(request.POST)
    if not form.is_valid():
        return _render_deviation(request, deviation, sign_error=gettext("The form was incomplete."), status=400)
    try:
        call(deviation, form.cleaned_data)
    except GMPError as exc:
        return _render_deviation(request, deviation, sign_error=exc.text, status=exc.status_code)
    messages.success(request, success)
    return redirect("batches:deviation_detail", pk=deviation.pk)


@login_required
@require_POST
def deviation_approve_use_view(request, pk: int):
    return _deviation_sign(request, pk, lambda d, data: deviation_services.deviation_approve_use(
        actor=request.user, deviation=d, password=data["password"], request=request, comment=data["comment"] or "",
        expected_version=data["expected_version"]), gettext("Use approved and signed."))


@login_required
@require_POST
def deviation_close_view(request, pk: int):
    return _deviation_sign(request, pk, lambda d, data: deviation_services.deviation_close(
        actor=request.user, deviation=d, password=data["password"], request=request, comment=data["comment"] or "",
        expected_version=data["expected_version"]), gettext("Deviation closed and signed."))


# --- master batch records ------------------------------------------------------------------------------


@login_required
@require_GET
def mbr_list(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    return render(request, "batches/execution/mbr_list.html", {
        "mbrs": list(selectors.mbr_list_with_products(request.user, site)), "site": site,
        "perms": _perms(request.user, site)})


def _render_mbr(request, mbr, *, error=None, status=200, template="batches/execution/mbr_detail.html", extra=None):
    site = mbr.site
    perms = _perms(request.user, site)
    stages = list(mbr.stages.prefetch_related("steps"))
    approvals = mbr_services.mbr_approval_state(mbr)
    context = {
        "mbr": mbr, "site": site, "perms": perms, "stages": stages, "error": error,
        "approvals": [(MbrApprovalRole(role).label, sig) for role, sig in approvals.items()],
        "problems": [p.text for p in mbr_services.mbr_problem_phrases(mbr)] if mbr.status == MbrStatus.DRAFT else [],
        "can_edit": perms["admin"] and mbr.status == MbrStatus.DRAFT,
        "can_approve": (perms["admin"] or perms["certify"]) and mbr.status == MbrStatus.DRAFT,
        "both_roles": perms["admin"] and perms["certify"],
        "can_make_effective": (perms["admin"] or perms["certify"]) and mbr.status == MbrStatus.APPROVED,
        "sign_form": f.SignForm(),
        "clone_form": f.MbrCloneForm(),
        "batches_pinned": selectors.batch_list_for_user(request.user, site=site).filter(mbr=mbr).count(),
    } | (extra or {})
    return render(request, template, context, status=status)


@login_required
@require_GET
def mbr_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_mbr(request, selectors.mbr_get_for_user(request.user, pk))


def _mbr_post(request, pk: int, call, success: str, *, next_url=None) -> HttpResponse:
    mbr = selectors.mbr_get_for_user(request.user, pk)
    try:
        result = call(mbr)
    except GMPError as exc:
        return _render_mbr(request, mbr, error=exc, status=exc.status_code)
    messages.success(request, success)
    target = next_url(result) if next_url else reverse("batches:mbr_detail", args=[mbr.pk])
    return redirect(target)


@login_required
@require_POST
def mbr_clone_view(request, pk: int):
    form = f.MbrCloneForm(request.POST)

    def call(mbr):
        if not form.is_valid():
            raise GMPError(gettext_noop("Say what will change in the new version."))
        return mbr_services.mbr_clone(actor=request.user, mbr=mbr, change_summary=form.cleaned_data["change_summary"])
    return _mbr_post(request, pk, call, gettext("New draft version made. Edit it, then have it approved."),
                     next_url=lambda clone: reverse("batches:mbr_edit", args=[clone.pk]))


@login_required
@require_POST
def mbr_approve_view(request, pk: int):
    form = f.SignForm(request.POST)
    role = request.POST.get("role") or None

    def call(mbr):
        if not form.is_valid():
            raise GMPError(gettext_noop("Enter your password to sign."))
        return mbr_services.mbr_approve(actor=request.user, mbr=mbr, password=form.cleaned_data["password"],
                                        request=request, expected_revision=_int(request.POST.get("expected_revision"), 0),
                                        role=role if role in MbrApprovalRole.values else None,
                                        comment=form.cleaned_data["comment"] or "")
    return _mbr_post(request, pk, call, gettext("Approval signed."))


@login_required
@require_POST
def mbr_make_effective_view(request, pk: int):
    return _mbr_post(request, pk, lambda mbr: mbr_services.mbr_make_effective(
        actor=request.user, mbr=mbr, reason=(request.POST.get("reason") or "")[:2000]),
        gettext("The version is effective: new batches use it; running batches keep their own version."))


@login_required
def mbr_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mbr = selectors.mbr_get_for_user(request.user, pk)
    header = f.MbrHeaderForm(request.POST or None, initial={
        "title": mbr.title, "change_summary": mbr.change_summary, "expected_revision": mbr.revision})
    stage_form = f.StageForm(initial={"expected_revision": mbr.revision})
    if request.method == "POST":
        if header.is_valid():
            try:
                mbr_services.mbr_update(actor=request.user, mbr=mbr, expected_revision=header.cleaned_data["expected_revision"],
                                        reason=header.cleaned_data["reason"] or "draft edit",
                                        title=header.cleaned_data["title"],
                                        change_summary=header.cleaned_data["change_summary"])
            except GMPError as exc:
                header.add_error(None, exc.text)
            else:
                messages.success(request, gettext("Saved."))
                return redirect("batches:mbr_edit", pk=mbr.pk)
        return _render_mbr(request, mbr, template="batches/execution/mbr_edit.html", status=400,
                           extra={"header_form": header, "stage_form": stage_form})
    return _render_mbr(request, mbr, template="batches/execution/mbr_edit.html",
                       extra={"header_form": header, "stage_form": stage_form})


@login_required
@require_POST
def mbr_stage_new(request, pk: int):
    mbr = selectors.mbr_get_for_user(request.user, pk)
    form = f.StageForm(request.POST)
    if form.is_valid():
        try:
            mbr_services.mbr_stage_add(actor=request.user, mbr=mbr, code=form.cleaned_data["code"],
                                       name=form.cleaned_data["name"],
                                       expected_revision=form.cleaned_data["expected_revision"])
        except GMPError as exc:
            form.add_error(None, exc.text)
        else:
            messages.success(request, gettext("Stage added."))
            return redirect("batches:mbr_edit", pk=mbr.pk)
    header = f.MbrHeaderForm(initial={"title": mbr.title, "change_summary": mbr.change_summary,
                                      "expected_revision": mbr.revision})
    return _render_mbr(request, mbr, template="batches/execution/mbr_edit.html", status=400,
                       extra={"header_form": header, "stage_form": form})


def _step_form_page(request, mbr, *, step=None, stage=None):
    initial = f.StepDefinitionForm.initial_for(step) if step else {"kind": StepKind.INSTRUCTION}
    initial["expected_revision"] = mbr.revision
    form = f.StepDefinitionForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                if step is None:
                    mbr_services.mbr_step_add(actor=request.user, stage=stage,
                                              expected_revision=form.cleaned_data["expected_revision"],
                                              **form.step_values())
                else:
                    mbr_services.mbr_step_update(actor=request.user, step=step,
                                                 expected_revision=form.cleaned_data["expected_revision"],
                                                 reason=form.cleaned_data["reason"] or "", **form.step_values())
            except GMPError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.text)
                status = exc.status_code
            else:
                messages.success(request, gettext("Step saved. The draft's approvals, if any, must be signed again."))
                return redirect(reverse("batches:mbr_edit", args=[mbr.pk]) + "#stages")
        else:
            status = 400
    return render(request, "batches/execution/mbr_step_form.html", {
        "mbr": mbr, "step": step, "stage": stage or step.stage, "form": form, "site": mbr.site,
        "calculations": REGISTRY.values(),
    }, status=status)


@login_required
def mbr_step_new(request: HttpRequest, pk: int, stage_pk: int) -> HttpResponse:
    mbr = selectors.mbr_get_for_user(request.user, pk)
    stage = selectors.stage_get_for_mbr(mbr, stage_pk)
    return _step_form_page(request, mbr, stage=stage)


@login_required
def mbr_step_edit(request: HttpRequest, pk: int, step_pk: int) -> HttpResponse:
    mbr = selectors.mbr_get_for_user(request.user, pk)
    step = selectors.step_definition_get_for_mbr(mbr, step_pk)
    return _step_form_page(request, mbr, step=step)


@login_required
@require_POST
def mbr_step_move(request, pk: int, step_pk: int):
    mbr = selectors.mbr_get_for_user(request.user, pk)
    step = selectors.step_definition_get_for_mbr(mbr, step_pk)
    try:
        mbr_services.mbr_step_move(actor=request.user, step=step, direction=-1 if request.POST.get("dir") == "up" else 1,
                                   expected_revision=_int(request.POST.get("expected_revision"), 0))
    except GMPError as exc:
        messages.error(request, exc.text)
    return redirect(reverse("batches:mbr_edit", args=[mbr.pk]) + f"#def-{step.pk}")


@login_required
@require_POST
def mbr_step_delete(request, pk: int, step_pk: int):
    mbr = selectors.mbr_get_for_user(request.user, pk)
    step = selectors.step_definition_get_for_mbr(mbr, step_pk)
    try:
        mbr_services.mbr_step_remove(actor=request.user, step=step, reason=(request.POST.get("reason") or "")[:2000],
                                     expected_revision=_int(request.POST.get("expected_revision"), 0))
    except GMPError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, gettext("Step %(code)s removed from the draft.") % {"code": step.code})
    return redirect(reverse("batches:mbr_edit", args=[mbr.pk]) + "#stages")


# --- material lots and equipment ---------------------------------------------------------------------


def _shown(problem: Text | None) -> str:
    """Why a lot or a piece of equipment may not be used, in the reader's language; empty when it may."""
    return problem.text if problem is not None else ""


def _lot_rows(lots, today):
    return [(lot, _shown(lot_problem_phrase(lot, today))) for lot in lots]


@login_required
def lot_list(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    perms = _perms(request.user, site)
    form = f.LotForm(request.POST or None)
    done = form_submit(request, form, lambda data: material_services.material_lot_create(
        actor=request.user, site=site, **data),
        success=lambda lot: gettext("%(lot)s registered, in quarantine until released.") % {"lot": lot},
        next_url=lambda _lot: reverse("batches:lot_list"))
    if done.response is not None:
        return done.response
    today = site_today(site)
    lots = selectors.material_lot_list_for_user(request.user, site=site).order_by("material_type", "expiry_date")
    return render(request, "batches/execution/lot_list.html", {
        "rows": _lot_rows(lots, today), "form": form, "perms": perms, "site": site, "today": today,
        "sign_form": f.SignForm(), "reject_form": f.LotRejectForm(), "lot_statuses": LotStatus,
        "can_release": perms["certify"] or perms["admin"],
    }, status=done.status)


def _lot_action(request, pk: int, call, success: str):
    lot = selectors.material_lot_get_for_user(request.user, pk)
    try:
        call(lot)
    except GMPError as exc:
        messages.error(request, f"{lot}: {exc.text}")
        return redirect(reverse("batches:lot_list") + f"#lot-{lot.pk}")
    messages.success(request, success % {"lot": lot})
    return redirect(reverse("batches:lot_list") + f"#lot-{lot.pk}")


@login_required
@require_POST
def lot_release_view(request, pk: int):
    return _lot_action(request, pk, lambda lot: material_services.material_lot_release(
        actor=request.user, lot=lot, password=request.POST.get("password", "")[:4096], request=request,
        expected_version=_int(request.POST.get("expected_version"), 0)), gettext("%(lot)s released and signed."))


@login_required
@require_POST
def lot_reject_view(request, pk: int):
    return _lot_action(request, pk, lambda lot: material_services.material_lot_reject(
        actor=request.user, lot=lot, password=request.POST.get("password", "")[:4096], request=request,
        reason=request.POST.get("reason", "")[:2000], expected_version=_int(request.POST.get("expected_version"), 0)),
        gettext("%(lot)s rejected."))


@login_required
def equipment_list(request: HttpRequest) -> HttpResponse:
    site = _site(request)
    form = f.EquipmentForm(request.POST or None)
    done = form_submit(request, form, lambda data: equipment_services.equipment_create(
        actor=request.user, site=site, **data),
        success=lambda equipment: gettext("%(equipment)s registered.") % {"equipment": equipment},
        next_url=lambda _equipment: reverse("batches:equipment_list"))
    if done.response is not None:
        return done.response
    today = site_today(site)
    items = selectors.equipment_list_for_user(request.user, site=site)
    return render(request, "batches/execution/equipment_list.html", {
        "rows": [(e, _shown(equipment_problem_phrase(e, today))) for e in items], "form": form, "site": site, "today": today,
        "perms": _perms(request.user, site)}, status=done.status)


@login_required
def equipment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    equipment = selectors.equipment_get_for_user(request.user, pk)
    initial = {k: getattr(equipment, k) for k in ("asset_id", "equipment_type", "name", "status", "calibration_due",
                                                   "maintenance_due")} | {"expected_version": equipment.version}
    form = f.EquipmentEditForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            reason, expected = data.pop("reason"), data.pop("expected_version")
            try:
                equipment_services.equipment_update(actor=request.user, equipment=equipment, reason=reason,
                                                    expected_version=expected, **data)
            except GMPError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.text)
                status = exc.status_code
            else:
                messages.success(request, gettext("%(equipment)s updated.") % {"equipment": equipment})
                return redirect("batches:equipment_list")
        else:
            status = 400
    return render(request, "batches/execution/equipment_edit.html", {
        "equipment": equipment, "form": form, "site": equipment.site,
        "problem": _shown(equipment_problem_phrase(equipment, site_today(equipment.site)))}, status=status)



urlpatterns = [
    path("", batch_list, name="index"),
    path("<int:pk>/", batch_detail, name="batch_detail"),
    path("<int:pk>/start/", batch_start_view, name="batch_start"),
    path("<int:pk>/complete/", batch_complete_view, name="batch_complete"),
    path("<int:pk>/hold/", batch_hold_view, name="batch_hold"),
    path("<int:pk>/resume/", batch_resume_view, name="batch_resume"),
    path("<int:pk>/steps/<int:step_pk>/record/", step_record_view, name="step_record"),
    path("<int:pk>/steps/<int:step_pk>/request-use/", request_use_view, name="request_use"),
    path("<int:pk>/records/<int:record_pk>/verify/", step_verify_view, name="step_verify"),
    path("<int:pk>/records/<int:record_pk>/correct/", step_correct_view, name="step_correct"),
    path("deviations/", deviation_list, name="deviation_list"),
    path("deviations/new/", deviation_new, name="deviation_new"),
    path("deviations/<int:pk>/", deviation_detail, name="deviation_detail"),
    path("deviations/<int:pk>/approve-use/", deviation_approve_use_view, name="deviation_approve_use"),
    path("deviations/<int:pk>/close/", deviation_close_view, name="deviation_close"),
    path("mbr/", mbr_list, name="mbr_list"),
    path("mbr/<int:pk>/", mbr_detail, name="mbr_detail"),
    path("mbr/<int:pk>/edit/", mbr_edit, name="mbr_edit"),
    path("mbr/<int:pk>/clone/", mbr_clone_view, name="mbr_clone"),
    path("mbr/<int:pk>/approve/", mbr_approve_view, name="mbr_approve"),
    path("mbr/<int:pk>/make-effective/", mbr_make_effective_view, name="mbr_make_effective"),
    path("mbr/<int:pk>/stages/new/", mbr_stage_new, name="mbr_stage_new"),
    path("mbr/<int:pk>/stages/<int:stage_pk>/steps/new/", mbr_step_new, name="mbr_step_new"),
    path("mbr/<int:pk>/steps/<int:step_pk>/", mbr_step_edit, name="mbr_step_edit"),
    path("mbr/<int:pk>/steps/<int:step_pk>/move/", mbr_step_move, name="mbr_step_move"),
    path("mbr/<int:pk>/steps/<int:step_pk>/delete/", mbr_step_delete, name="mbr_step_delete"),
    path("materials/", lot_list, name="lot_list"),
    path("materials/<int:pk>/release/", lot_release_view, name="lot_release"),
    path("materials/<int:pk>/reject/", lot_reject_view, name="lot_reject"),
    path("equipment/", equipment_list, name="equipment_list"),
    path("equipment/<int:pk>/edit/", equipment_edit, name="equipment_edit"),
]
