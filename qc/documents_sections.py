"""The domain sections of the signed batch record (what :mod:`qc.documents` prints).

Each builder is ``f(ctx: RecordContext) -> Section | None`` and reads only. A section's
data is what the PDF prints, in the words and numbers it prints them (values already
formatted, times already written in UTC and the site's local time), so that the
embedded JSON is the document's content, not a second interpretation of it.

Queries are fixed in number per section, whatever the size of the batch: the step
records come from :func:`batches.progress.load_plan` (four queries), QC from
:func:`qc.selectors.batch_test_status` (four), the chain of identity from
:func:`batches.timeline.coi_timeline`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext, ngettext

from batches.calculations import REGISTRY
from batches.charts import expansion_chart_svg, expansion_points
from batches.models import Batch, Deviation, DeviationStatus, Infusion, StepKind
from batches.progress import Plan, load_plan
from batches.quantities import format_value
from batches.selectors import intake_for_donation
from batches.services.execution import limits_phrase
from batches.timeline import coi_timeline
from carmfg.numbers import localize_number_text
from qc.models import Certification, OosInvestigation
from qc.selectors import batch_test_status
from qc.templatetags.qc_tags import limit_text

if TYPE_CHECKING:
    from qc.documents import RecordContext, Section

SECTION_TEMPLATES = "documents/batch_record/sections/"

# Builders run twice when a record is printed in another language than the data's
# (qc.documents.record_content): once in English for the embedded data, once in the
# reader's language for the page. Every word they write goes through gettext (choice
# labels are English msgids marked with gettext_noop); numbers through _number.


def _number(value, places: int | None = None) -> str:
    """A value as written once (language-neutral), with the active language's decimal separator."""
    return localize_number_text(format_value(value, places) if places is not None else format_value(value))


def _label(text: str) -> str:
    """A choice label or another English msgid, in the active language."""
    return gettext(text) if text else text


def when(moment: dt.datetime | None, zone) -> dict[str, str] | None:
    """A moment as the record prints it: UTC (the reference) and the site's local time."""
    if moment is None:
        return None
    utc = moment.astimezone(dt.UTC)
    local = moment.astimezone(zone)
    return {"utc": utc.strftime("%Y-%m-%d %H:%M:%S UTC"), "local": f"{local:%Y-%m-%d %H:%M} {local.tzname()}"}


def _person(user) -> str:
    if user is None:
        return gettext("system")
    return user.get_full_name() or user.get_username()


def _section(key: str, title: str, template: str, data: Any) -> Section:
    from qc.documents import Section

    return Section(key=key, title=title, template=SECTION_TEMPLATES + template, data=data)


def _batch(ctx: RecordContext) -> Batch:
    return ctx.document.batch


# --- summary ----------------------------------------------------------------------------------


def _certifications(ctx: RecordContext) -> list[Certification]:
    """The certifications the record knows of: its own and any signed before it."""
    document = ctx.document
    qs = Certification.objects.filter(batch_id=document.batch_id).select_related("qp", "specification", "deviation")
    if document.certification is not None:
        qs = qs.filter(signed_at__lte=document.certification.signed_at)
    return list(qs.order_by("signed_at", "pk"))


def summary_section(ctx: RecordContext) -> Section:
    """Vein to vein in one page: the key moments, the dose, and every exception."""
    batch = _batch(ctx)
    zone = batch.site.zone
    plan = _plan(ctx)
    dose = _dose(plan)
    moments: list[tuple[str, dt.datetime | None]] = [(gettext("Collection registered, DIN issued"),
                                                      batch.donation.created_at)]
    intake = intake_for_donation(batch.donation)
    if intake is not None:
        moments += [(gettext("Apheresis collection ended"), intake.collection_ended_at),
                    (gettext("Apheresis received at the unit"), intake.received_at)]
    moments += [(gettext("Batch created"), batch.created_at), (gettext("Manufacturing started"), batch.started_at),
                (gettext("Manufacturing completed"), batch.completed_at)]
    for certification in _certifications(ctx):
        moments.append((gettext("%(kind)s certification: %(decision)s (%(qp)s)") % {
            "kind": _label(certification.get_kind_display()), "decision": _label(certification.get_decision_display()),
            "qp": _person(certification.qp)}, certification.signed_at))
    for infusion in Infusion.objects.filter(batch=batch).order_by("infused_at"):
        moments.append((gettext("Fraction %(number)s infused (%(percent)s %%)") % {
            "number": infusion.fraction_number, "percent": _number(infusion.fraction_percent)}, infusion.infused_at))
    dated = sorted(((text, at) for text, at in moments if at is not None), key=lambda item: item[1])
    timeline = [{"event": text, "at": when(at, zone)} for text, at in dated]
    exceptions = []
    for state in plan.steps:
        for rs in state.records:
            record = rs.record
            if record.limit_result in ("alert", "action"):
                value = f"{_number(record.value)} {state.definition.unit}".rstrip()
                exceptions.append(f"{state.definition.title}: {_label(record.get_limit_result_display()).lower()} "
                                  f"({value})")
            if record.corrections.all():
                count = len(record.corrections.all())
                exceptions.append(f"{state.definition.title}: " + ngettext(
                    "corrected %(count)s time", "corrected %(count)s times", count) % {"count": count})
    deviations = [f"{d.number} ({_label(d.get_classification_display()).lower()}, "
                  f"{_label(d.get_status_display()).lower()}): {d.title}"
                  for d in Deviation.objects.filter(batch=batch).order_by("raised_at", "pk")]
    return _section("summary", gettext("Summary"), "_summary.html", {
        "timeline": timeline, "dose": dose, "exceptions": exceptions, "deviations": deviations,
        "steps_done": plan.steps_done, "steps_total": plan.steps_total,
    })


def _dose(plan: Plan) -> dict[str, Any] | None:
    dose = [rs.record for s in plan.steps if s.definition.kind == StepKind.CALCULATION
            and s.definition.calculation == "dose_per_kg" for rs in s.records if rs.record.value is not None]
    if not dose:
        return None
    record = dose[-1]
    order = plan.batch.order
    outputs = record.calculation_outputs or {}
    per_kg = gettext("%(value)s CAR+ cells/kg")
    return {
        "per_kg": per_kg % {"value": _number(record.value)},
        "total": (gettext("%(value)s CAR+ cells") % {"value": _number(outputs["dose_cells_total"])}
                  if outputs.get("dose_cells_total") else ""),
        "target": per_kg % {"value": _number(order.target_dose_cells_per_kg)},
        "weight": gettext("%(weight)s kg (weighed %(date)s)") % {
            "weight": _number(order.patient.weight_kg), "date": f"{order.patient.weight_measured_on:%Y-%m-%d}"},
    }


# --- chain of identity and custody -----------------------------------------------------------------


def chain_section(ctx: RecordContext) -> Section:
    """Every handoff of the patient's material with what was scanned, refused scans included."""
    batch = _batch(ctx)
    zone = batch.site.zone
    entries = []
    for entry in coi_timeline(batch.donation):
        entries.append({
            "at": when(entry.at, zone), "kind": entry.kind, "title": _label(entry.title), "who": entry.who,
            "where": entry.where,
            "temperature": f"{_number(entry.temperature_c)} °C" if entry.temperature_c is not None else "",
            "scanned": entry.scanned, "result": entry.result, "details": list(entry.details),
        })
    patient = batch.order.patient
    return _section("chain_of_identity", gettext("Chain of identity and custody"), "_chain.html", {
        "patient": {"pseudonym": patient.pseudonym, "initials": patient.initials, "birth_year": patient.birth_year},
        "din": batch.donation.din, "entries": entries,
        "blocked": sum(1 for e in entries if e["result"] == "blocked"),
    })


# --- stages and steps --------------------------------------------------------------------------------


def _plan(ctx: RecordContext) -> Plan:
    """The plan is read once per record and shared by the sections that need it."""
    cache = ctx.cache
    if "plan" not in cache:
        cache["plan"] = load_plan(_batch(ctx))
    return cache["plan"]


def _signature(view, zone) -> dict[str, Any]:
    sig = view.signature
    return {"name": sig.signer_name, "meaning": _label(sig.get_meaning_display()), "at": when(sig.signed_at, zone),
            "status": view.status, "comment": sig.comment,
            "void_reason": sig.void_reason if view.status == "voided" else ""}


def _value_text(record, definition) -> str:
    kind = definition.kind
    if kind in (StepKind.VALUE, StepKind.CALCULATION) and record.value is not None:
        places = definition.decimal_places if abs(record.value) < 100_000 else None
        return f"{_number(record.value, places)} {definition.unit}".strip()
    if kind in (StepKind.SCAN, StepKind.SAMPLE):
        if record.value_text:
            return gettext("label matched: %(code)s") % {"code": record.value_text}
        return gettext("label matched")
    if kind == StepKind.SIGNATURE:
        return gettext("signed")
    if kind == StepKind.INSTRUCTION:
        return gettext("done")
    return ""


def _changes(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before != after:
            out.append(f"{key.replace('_', ' ')}: {_plain(before)} → {_plain(after)}")
    return out


def _plain(value) -> str:
    if value in (None, "", {}, []):
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}={_plain(v.get('display', v.get('value')) if isinstance(v, dict) else v)}"
                         for k, v in value.items())
    return format_value(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else str(value)


def _record(rs, definition, zone) -> dict[str, Any]:
    record = rs.record
    out: dict[str, Any] = {
        "occurrence": record.occurrence, "status": _label(record.get_status_display()),
        "value": _value_text(record, definition),
        "limit_result": record.limit_result if record.limit_result != "none" else "",
        "limit_result_label": _label(record.get_limit_result_display()) if record.limit_result != "none" else "",
        "comment": record.comment, "performed_at": when(record.performed_at, zone),
        "deviation": record.deviation.number if record.deviation_id else "",
        "signatures": [_signature(view, zone) for view in rs.signatures],
        "corrections": [
            {"at": when(c.corrected_at, zone), "by": _person(c.corrected_by), "reason": c.reason,
             "changes": _changes(c.old_content or {}, c.new_content or {})}
            for c in record.corrections.all()
        ],
    }
    if record.calculation_inputs:
        out["inputs"] = [
            {"label": _label(item.get("label", name)), "value": localize_number_text(item.get("display", _plain(item.get("value")))),
             "unit": item.get("unit", ""), "origin": item.get("origin", "")}
            for name, item in record.calculation_inputs.items()
        ]
    if record.calculation_outputs:
        calc = REGISTRY.get(definition.calculation)
        labels = {o.name: (o.label, o.unit) for o in calc.outputs} if calc is not None else {}
        outputs = []
        for name, raw in record.calculation_outputs.items():
            if name == "target_reached":
                continue
            label, unit = labels.get(name, (name.replace("_", " "), ""))
            shown = " · ".join(f"{i}: {_number(v)}" for i, v in enumerate(raw, 1)) if isinstance(raw, list) \
                else _number(raw)
            outputs.append(f"{_label(label)}: {shown} {unit}".strip())
        out["outputs"] = outputs
    if record.material_lot_id:
        lot = record.material_lot
        out["material"] = {
            "name": lot.name, "lot": lot.lot_number, "expiry": lot.expiry_date.isoformat(),
            "status": _label(lot.get_status_display()),
            "quantity": f"{_number(record.quantity)} {definition.unit}".strip() if record.quantity is not None else "",
            "titer": f"{_number(lot.titer_tu_per_ml)} TU/mL" if lot.titer_tu_per_ml else "",
            "expired_at_use": lot.expiry_date < record.performed_at.astimezone(zone).date(),
        }
    if record.equipment_id:
        eq = record.equipment
        out["equipment"] = {
            "name": eq.name, "asset_id": eq.asset_id, "calibration_due": eq.calibration_due.isoformat(),
            "status": _label(eq.get_status_display()),
            "calibration_overdue_at_use": eq.calibration_due < record.performed_at.astimezone(zone).date(),
        }
    return out


def steps_section(ctx: RecordContext) -> Section:
    """Every stage and step of the pinned recipe with what was recorded against it."""
    batch = _batch(ctx)
    zone = batch.site.zone
    plan = _plan(ctx)
    stages = []
    for s_index, stage in enumerate(plan.stages, start=1):
        steps = []
        for t_index, state in enumerate(stage.steps, start=1):
            d = state.definition
            flags = [label for flag, label in ((d.critical, gettext("critical")),
                                               (d.requires_verification, gettext("second-person verification")),
                                               (d.repeatable, gettext("repeatable"))) if flag]
            steps.append({
                "number": f"{s_index}.{t_index}", "code": d.code, "title": d.title, "kind": _label(d.get_kind_display()),
                "flags": flags, "limits": localize_number_text(limits_phrase(d).text), "unit": d.unit,
                "records": [_record(rs, d, zone) for rs in state.records],
            })
        stages.append({"number": s_index, "name": stage.stage.name, "steps": steps,
                       "done": stage.done, "total": len(stage.steps)})
    mbr = batch.mbr
    return _section("steps", gettext("Stages and steps"), "_steps.html", {
        "mbr": {"title": mbr.title, "version": mbr.version}, "stages": stages,
        "completion_problems": [p.text for p in plan.completion_problems()],
    })


def chart_section(ctx: RecordContext) -> Section | None:
    points, x_title, limit = expansion_points(_plan(ctx))
    if not points:
        return None
    svg = expansion_chart_svg(points, x_title=x_title, viability_action_min=limit, title=gettext("Expansion"))
    return _section("expansion", gettext("Expansion"), "_chart.html", {
        "x_title": _label(x_title),
        "viability_action_min": _number(limit) if limit is not None else None,
        "points": [{"x": round(p.x, 3), "label": p.label,
                    "viable_cells": _number(p.viable_cells) if p.viable_cells is not None else None,
                    "viability_pct": _number(p.viability_pct) if p.viability_pct is not None else None}
                   for p in points],
        "svg": svg,
    })


# --- QC, deviations, checklist ------------------------------------------------------------------------


def qc_section(ctx: RecordContext) -> Section:
    """Every test of the pinned specification against its limit, with every result
    (invalidated ones included) and the tests still pending at provisional release."""
    batch = _batch(ctx)
    zone = batch.site.zone
    qc = batch_test_status(batch)
    spec = qc.specification
    tests = []
    for status in qc.tests:
        test = status.test
        tests.append({
            "code": test.code, "name": test.name, "method": test.method, "limit": localize_number_text(limit_text(test)),
            "required_for_provisional": test.required_for_provisional, "state": status.state,
            "expected_on": status.expected_on.isoformat() if status.expected_on else None,
            "results": [
                {"value": _label(localize_number_text(r.display_value)), "evaluation": _label(r.get_evaluation_display()),
                 "status": _label(r.get_status_display()),
                 "detail": r.evaluation_detail, "entered_by": _person(r.entered_by), "entered_at": when(r.entered_at, zone),
                 "reviewed_by": _person(r.reviewed_by) if r.reviewed_by_id else "",
                 "reviewed_at": when(r.reviewed_at, zone), "invalidation_reason": r.invalidation_reason,
                 "retest": bool(r.retest_of_id)}
                for r in status.history
            ],
        })
    pending: list = []
    certification = ctx.document.certification
    if certification is not None and certification.kind == "provisional":
        pending = certification.pending_tests
    return _section("qc", gettext("QC results against the specification"), "_qc.html", {
        "specification": {"title": spec.title, "version": spec.version,
                          "dose_range": gettext("%(low)s – %(high)s CAR+ cells/kg") % {
                              "low": _number(spec.dose_min_cells_per_kg), "high": _number(spec.dose_max_cells_per_kg)}},
        "samples": [{"code": s.code, "type": s.sample_type, "tests": s.test_codes, "taken_at": when(s.taken_at, zone),
                     "received_at": when(s.received_at, zone), "taken_by": _person(s.taken_by)} for s in qc.samples],
        "tests": tests, "pending_at_certification": pending,
    })


def deviations_section(ctx: RecordContext) -> Section:
    batch = _batch(ctx)
    zone = batch.site.zone
    deviations = list(Deviation.objects.filter(batch=batch).select_related("raised_by").order_by("raised_at", "pk"))
    oos = list(OosInvestigation.objects.filter(result__batch=batch).select_related("deviation", "result__test")
               .order_by("opened_at", "pk"))
    return _section("deviations", gettext("Deviations and OOS investigations"), "_deviations.html", {
        "deviations": [
            {"number": d.number, "title": d.title, "classification": _label(d.get_classification_display()),
             "status": _label(d.get_status_display()), "closed": d.status == DeviationStatus.CLOSED,
             "source": _label(d.get_source_display()), "description": d.description,
             "impact_assessment": d.impact_assessment, "root_cause": d.root_cause, "capa": d.capa,
             "raised_by": _person(d.raised_by), "raised_at": when(d.raised_at, zone), "closed_at": when(d.closed_at, zone)}
            for d in deviations
        ],
        "oos": [
            {"test": o.result.test.name, "result": localize_number_text(o.result.display_value),
             "deviation": o.deviation.number, "status": _label(o.get_status_display()),
             "phase1": _label(o.get_phase1_conclusion_display()) if o.phase1_conclusion else "",
             "phase1_notes": o.phase1_notes, "phase2_notes": o.phase2_notes, "conclusion": o.conclusion,
             "opened_at": when(o.opened_at, zone), "closed_at": when(o.closed_at, zone)}
            for o in oos
        ],
    })


def checklist_section(ctx: RecordContext) -> Section:
    """The release checklist as the QP saw it when signing (the certification's snapshot)."""
    zone = _batch(ctx).site.zone
    certifications = [
        {"kind": _label(c.get_kind_display()), "decision": _label(c.get_decision_display()), "decision_code": c.decision,
         "qp": _person(c.qp), "signed_at": when(c.signed_at, zone), "justification": c.justification,
         "exceptional_request": ({"physician": c.physician_name, "consent_reference": c.consent_reference,
                                  "deviation": c.deviation.number if c.deviation is not None else ""}
                                 if c.is_exceptional_request else None),
         "specification": f"{c.specification.title} v{c.specification.version}",
         "items": [{"title": _label(i.get("title", "")), "status": i.get("status", ""), "message": i.get("message", ""),
                    "details": list(i.get("details") or [])} for i in (c.checklist or [])],
         "pending_tests": c.pending_tests}
        for c in _certifications(ctx)
    ]
    return _section("release_checklist", gettext("Release checklist as evaluated at certification"), "_checklist.html",
                    {"certifications": certifications})


SECTION_BUILDERS = [summary_section, chain_section, steps_section, chart_section, qc_section, deviations_section,
                    checklist_section]
