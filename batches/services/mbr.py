"""Master batch records: the recipe every batch of a product is executed against.

Lifecycle draft → approved → effective → superseded (``MBR_TRANSITIONS``). Only a
draft is edited (by a site administrator); approval takes two signatures "Approved"
over the whole recipe, by a site administrator and by a QP, two different people;
making a version effective supersedes the previous one in the same transaction. A
batch keeps the version it was created with, so no change here reaches a running batch.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.calculations import REGISTRY, calculation_get
from batches.exceptions import NotReady, more_phrase
from batches.models import (
    MBR_TRANSITIONS,
    ContainerType,
    MasterBatchRecord,
    MbrApproval,
    MbrApprovalRole,
    MbrStatus,
    Product,
    RegulatoryPathway,
    StageDefinition,
    StepDefinition,
    StepKind,
)
from batches.quantities import parse_decimal
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.canonical import content_hash
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused, StaleRecord
from carmfg.textinput import clean_text
from carmfg.texts import Text, joined

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
MAX_STAGES = 30
MAX_STEPS_PER_STAGE = 80
STEP_TEXT_FIELDS = {"title": 200, "instruction": 5000, "unit": 40, "material_type": 60, "equipment_type": 60,
                    "calculation": 40, "container_type": 32}
STEP_LIMIT_FIELDS = ("alert_min", "alert_max", "action_min", "action_max")
STEP_FLAG_FIELDS = ("critical", "requires_verification", "repeatable", "allow_out_of_order")
STEP_FIELDS = ("code", "title", "instruction", "kind", "unit", "decimal_places", *STEP_LIMIT_FIELDS,
               "material_type", "quantity", "equipment_type", "calculation", "calculation_inputs",
               "container_type", "sample_tests", *STEP_FLAG_FIELDS)

# Where a calculation input may come from. ``step:<code>`` is the latest recorded value
# of an earlier step, ``step:<code>:<output>`` one output of an earlier calculation,
# ``lot:<code>:titer`` the titer of the lot used at an earlier material step.
FIXED_SOURCES = {
    "patient:weight_kg": ("Patient weight", False),
    "order:target_dose_cells_per_kg": ("Target dose (order)", False),
    "product:fraction_percents": ("Dose fractions (product)", True),
}


# --- products ------------------------------------------------------------------------------


def product_create(*, actor, site, code: str, name: str, pathway: str, product_code: str = "",
                   fraction_percents: list | None = None) -> Product:
    """A site administrator registers a product made at the site."""
    require_site_perm(actor, site, SitePerm.ADMIN, action=gettext_noop("register products"))
    code = clean_text(code, field=gettext_noop("Code"), max_length=40, required=True)
    if not CODE_RE.match(code):
        raise InvalidInput(gettext_noop("Code: use lower-case letters, digits, - and _ only."), field="code")
    if pathway not in RegulatoryPathway.values:
        raise InvalidInput(gettext_noop("Unknown regulatory pathway %(pathway)s."), params={"pathway": repr(pathway)},
                           field="pathway")
    from batches.calculations import check_fraction_percents

    percents = list(fraction_percents or [])
    if percents:
        check_fraction_percents(percents)
    with transaction.atomic():
        if Product.objects.filter(site=site, code=code).exists():
            raise InvalidInput(gettext_noop("A product with code %(code)s exists at this site."), params={"code": code},
                               field="code")
        product = Product.objects.create(
            site=site, code=code, name=clean_text(name, field=gettext_noop("Name"), max_length=200, required=True),
            pathway=pathway, product_code=clean_text(product_code, field=gettext_noop("Product code"), max_length=20),
            fraction_percents=percents,
        )
        audit_record(actor=actor, action=Action.CREATE, obj=product,
                     changes={"code": code, "name": product.name, "pathway": pathway, "fraction_percents": percents})
    return product


# --- validation of steps ---------------------------------------------------------------------


def _decimal_or_none(value, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return parse_decimal(value, field=field.replace("_", " ").capitalize())


def _as_bool(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "1", 1):
        return True
    if value in ("", "false", "0", 0, None, "off"):
        return False
    raise InvalidInput(gettext_noop("%(field)s: expected yes or no."), params={"field": field}, field=field)


def clean_step_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Step fields checked one by one (cross-step rules are in :func:`mbr_problem_phrases`)."""
    unknown = set(values) - set(STEP_FIELDS)
    if unknown:
        raise InvalidInput(gettext_noop("Unknown step fields: %(fields)s."), params={"fields": ", ".join(sorted(unknown))})
    out: dict[str, Any] = {}
    code = clean_text(values.get("code", ""), field=gettext_noop("Code"), max_length=60, required=True)
    if not CODE_RE.match(code):
        raise InvalidInput(gettext_noop("Code: start with a letter or digit; use lower-case letters, digits, - and _ "
                                        "only."), field="code")
    out["code"] = code
    kind = values.get("kind", "")
    if kind not in StepKind.values:
        raise InvalidInput(gettext_noop("Kind: %(kind)s is not a step kind."), params={"kind": repr(kind)}, field="kind")
    out["kind"] = kind
    for name, max_length in STEP_TEXT_FIELDS.items():
        out[name] = clean_text(values.get(name, ""), field=name.replace("_", " ").capitalize(),
                               max_length=max_length, required=name == "title")
    places = values.get("decimal_places", 0)
    try:
        places = int(places if places not in (None, "") else 0)
    except (TypeError, ValueError):
        raise InvalidInput(gettext_noop("Decimal places: expected a whole number from 0 to 6."), field="decimal_places") from None
    if not 0 <= places <= 6:
        raise InvalidInput(gettext_noop("Decimal places: expected a whole number from 0 to 6."), field="decimal_places")
    out["decimal_places"] = places
    for name in STEP_LIMIT_FIELDS:
        out[name] = _decimal_or_none(values.get(name), name)
    out["quantity"] = _decimal_or_none(values.get("quantity"), "quantity")
    for name in STEP_FLAG_FIELDS:
        out[name] = _as_bool(values.get(name, False), name.replace("_", " ").capitalize())
    _check_limits(out)
    inputs = values.get("calculation_inputs") or {}
    if not isinstance(inputs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
        raise InvalidInput(gettext_noop("Calculation inputs: expected input name → source pairs."),
                           field="calculation_inputs")
    out["calculation_inputs"] = {clean_text(k, field=gettext_noop("Input"), max_length=60): clean_text(v, field=gettext_noop("Source"), max_length=120)
                                 for k, v in inputs.items()}
    tests = values.get("sample_tests") or []
    if not isinstance(tests, list) or not all(isinstance(t, str) and CODE_RE.match(t) for t in tests) or len(tests) > 30:
        raise InvalidInput(gettext_noop("Sample tests: expected up to 30 test codes (lower-case letters, digits, _)."),
                           field="sample_tests")
    out["sample_tests"] = tests
    _check_kind(out)
    return out


def _check_limits(step: dict[str, Any]) -> None:
    lo = [step[n] for n in ("action_min", "alert_min") if step[n] is not None]
    hi = [step[n] for n in ("alert_max", "action_max") if step[n] is not None]
    ordered = [step[n] for n in ("action_min", "alert_min", "alert_max", "action_max") if step[n] is not None]
    if ordered != sorted(ordered) or (lo and hi and max(lo) > min(hi)):
        raise InvalidInput(gettext_noop("Limits must be in order: action min ≤ alert min ≤ alert max ≤ action max."),
                           field="alert_min")


def _check_kind(step: dict[str, Any]) -> None:
    kind = step["kind"]
    has_limits = any(step[n] is not None for n in STEP_LIMIT_FIELDS)
    if kind == StepKind.VALUE and not step["unit"]:
        raise InvalidInput(gettext_noop("A value step needs a unit (e.g. %, mL, cells)."), field="unit")
    if kind not in (StepKind.VALUE, StepKind.CALCULATION) and has_limits:
        raise InvalidInput(gettext_noop("Only value and calculation steps have limits."), field="alert_min")
    if kind == StepKind.MATERIAL and not step["material_type"]:
        raise InvalidInput(gettext_noop("A material step needs the material type its lots must have."),
                           field="material_type")
    if kind == StepKind.EQUIPMENT and not step["equipment_type"]:
        raise InvalidInput(gettext_noop("An equipment step needs the equipment type."), field="equipment_type")
    if kind in (StepKind.SCAN, StepKind.SAMPLE) and step["container_type"] not in ContainerType.values:
        raise InvalidInput(gettext_noop("A %(kind)s step needs a container type: %(types)s."),
                           params={"kind": kind, "types": ", ".join(ContainerType.values)}, field="container_type")
    if kind == StepKind.CALCULATION:
        calc = calculation_get(step["calculation"]) if step["calculation"] in REGISTRY else None
        if calc is None:
            raise InvalidInput(gettext_noop("Calculation: choose one of %(calculations)s."),
                               params={"calculations": ", ".join(sorted(REGISTRY))}, field="calculation")
        if set(step["calculation_inputs"]) != calc.input_names:
            raise InvalidInput(gettext_noop("%(calculation)s needs exactly these inputs: %(inputs)s."),
                               params={"calculation": calc.label, "inputs": ", ".join(sorted(calc.input_names))},
                               field="calculation_inputs")
        if not step["unit"]:
            raise InvalidInput(gettext_noop("A calculation step needs the unit of its result."), field="unit")
    elif step["calculation"] or step["calculation_inputs"]:
        raise InvalidInput(gettext_noop("Only calculation steps name a calculation."), field="calculation")
    if step["repeatable"] and kind in (StepKind.CALCULATION, StepKind.SIGNATURE):
        raise InvalidInput(gettext_noop("Calculation and signature steps cannot be repeated."), field="repeatable")


def mbr_problem_phrases(mbr: MasterBatchRecord) -> list[Text]:
    """What keeps ``mbr`` from being approved, translatable; empty when it is complete."""
    stages = list(mbr.stages.prefetch_related("steps"))
    problems = []
    if not stages:
        problems.append(Text(gettext_noop("The record has no stages.")))
    seen: dict[str, StepDefinition] = {}
    for stage in stages:
        steps = list(stage.steps.all())
        if not steps:
            problems.append(Text(gettext_noop("Stage “%(stage)s” has no steps."), {"stage": stage.name}))
        for step in steps:
            if step.code in seen:
                problems.append(Text(gettext_noop("Step code %(code)s is used twice."), {"code": step.code}))
            try:
                clean_step_fields({name: getattr(step, name) for name in STEP_FIELDS})
            except InvalidInput as exc:
                problems.append(Text(gettext_noop("Step %(code)s: %(problem)s"),
                                     {"code": step.code, "problem": Text.of(exc)}))
            if step.kind == StepKind.CALCULATION and step.calculation in REGISTRY:
                problems.extend(_source_problems(step, seen))
            seen[step.code] = step
    return problems


def _source_problems(step: StepDefinition, earlier: dict[str, StepDefinition]) -> list[Text]:
    calc = calculation_get(step.calculation)
    wanted = {i.name: i for i in calc.inputs}
    problems = []
    for name, source in step.calculation_inputs.items():
        is_list = wanted[name].is_list if name in wanted else False
        where = {"code": step.code, "input": name}
        parts = source.split(":")
        if source in FIXED_SOURCES:
            if FIXED_SOURCES[source][1] != is_list:
                problems.append(Text(
                    gettext_noop("Step %(code)s, input %(input)s: %(source)s does not give a list.") if is_list
                    else gettext_noop("Step %(code)s, input %(input)s: %(source)s does not give one number."),
                    {**where, "source": source}))
        elif parts[0] == "step" and len(parts) in (2, 3):
            origin = earlier.get(parts[1])
            if origin is None:
                problems.append(Text(gettext_noop("Step %(code)s, input %(input)s: %(step)s is not an earlier step "
                                                  "of this record."), {**where, "step": parts[1]}))
            elif len(parts) == 2:
                if origin.kind not in (StepKind.VALUE, StepKind.CALCULATION) or is_list:
                    problems.append(Text(gettext_noop("Step %(code)s, input %(input)s: %(step)s does not record one "
                                                      "number."), {**where, "step": parts[1]}))
            else:
                outputs = {o.name: o for o in calculation_get(origin.calculation).outputs} \
                    if origin.kind == StepKind.CALCULATION and origin.calculation in REGISTRY else {}
                if parts[2] not in outputs:
                    problems.append(Text(gettext_noop("Step %(code)s, input %(input)s: %(step)s has no output "
                                                      "%(output)s."), {**where, "step": parts[1], "output": parts[2]}))
                elif outputs[parts[2]].is_list != is_list:
                    problems.append(Text(
                        gettext_noop("Step %(code)s, input %(input)s: output %(output)s is a list.")
                        if outputs[parts[2]].is_list
                        else gettext_noop("Step %(code)s, input %(input)s: output %(output)s is one number."),
                        {**where, "output": parts[2]}))
        elif parts[0] == "lot" and len(parts) == 3 and parts[2] == "titer":
            origin = earlier.get(parts[1])
            if origin is None or origin.kind != StepKind.MATERIAL:
                problems.append(Text(gettext_noop("Step %(code)s, input %(input)s: %(step)s is not an earlier "
                                                  "material step."), {**where, "step": parts[1]}))
        else:
            problems.append(Text(gettext_noop("Step %(code)s, input %(input)s: unknown source %(source)s."),
                                 {**where, "source": repr(source)}))
    return problems


# --- drafts --------------------------------------------------------------------------------


def _require_admin(actor, site) -> None:
    require_site_perm(actor, site, SitePerm.ADMIN, action=gettext_noop("edit master batch records"))


def _lock_draft(mbr: MasterBatchRecord, expected_revision: int | None) -> MasterBatchRecord:
    locked = MasterBatchRecord.objects.select_for_update().select_related("site", "product").get(pk=mbr.pk)
    if expected_revision is not None and locked.revision != expected_revision:
        raise StaleRecord()
    if locked.status != MbrStatus.DRAFT:
        raise InvalidTransition(
            gettext_noop("%(mbr)s is %(status)s: only a draft can be changed. Make a new version from it instead."),
            params={"mbr": str(locked), "status": locked.get_status_display().lower()},
        )
    return locked


def _touch(actor, mbr: MasterBatchRecord, reason: str) -> None:
    """After any change of a draft: a new revision, and approvals already signed are void."""
    mbr.revision += 1
    mbr.save(update_fields=["revision"])
    for approval in mbr.approvals.all():
        signatures_void_changed(actor=actor, obj=approval, reason=f"The draft changed after approval: {reason}")


def _next_version(product) -> int:
    return (MasterBatchRecord.objects.filter(product=product).aggregate(v=Max("version"))["v"] or 0) + 1


def _step_create(stage: StageDefinition, order: int, fields: dict[str, Any]) -> StepDefinition:
    return StepDefinition.objects.create(stage=stage, order=order, **fields)


def mbr_create_draft(*, actor, product: Product, title: str, change_summary: str = "") -> MasterBatchRecord:
    """A new, empty draft version of the product's recipe."""
    _require_admin(actor, product.site)
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=product.pk)
        mbr = MasterBatchRecord.objects.create(
            site=product.site, product=product, version=_next_version(product),
            title=clean_text(title, field=gettext_noop("Title"), max_length=200, required=True),
            change_summary=clean_text(change_summary, field=gettext_noop("Change summary"), max_length=5000),
            created_by=actor,
        )
        audit_record(actor=actor, action=Action.CREATE, obj=mbr,
                     changes={"version": mbr.version, "title": mbr.title, "status": mbr.status})
    return mbr


def mbr_load(*, actor, product: Product, data: dict) -> MasterBatchRecord:
    """A draft built from a recipe written as data (``{"title", "stages": [{"code",
    "name", "steps": [{…step fields…}]}]}``), through the same checks as the editor.
    One audit event records the whole recipe loaded (its content hash and size)."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        raise InvalidInput(gettext_noop("A recipe needs a title and a list of stages."))
    if len(data["stages"]) > MAX_STAGES:
        raise InvalidInput(gettext_noop("A record has at most %(max)s stages."), params={"max": MAX_STAGES})
    with transaction.atomic():
        mbr = mbr_create_draft(actor=actor, product=product, title=data.get("title", ""),
                               change_summary=data.get("change_summary", ""))
        locked = _lock_draft(mbr, None)
        stage_codes: set[str] = set()
        step_codes: set[str] = set()
        count = 0
        for stage_order, stage_data in enumerate(data["stages"], start=1):
            if not isinstance(stage_data, dict) or not isinstance(stage_data.get("steps", []), list):
                raise InvalidInput(gettext_noop("Stage %(stage)s: expected a code, a name and a list of steps."),
                                   params={"stage": stage_order})
            code = clean_text(stage_data.get("code", ""), field=gettext_noop("Stage code"), max_length=40, required=True)
            if not CODE_RE.match(code) or code in stage_codes:
                raise InvalidInput(gettext_noop("Stage code %(code)s is not valid or is used twice."),
                                   params={"code": repr(code)})
            stage_codes.add(code)
            stage = StageDefinition.objects.create(
                mbr=locked, order=stage_order, code=code,
                name=clean_text(stage_data.get("name", ""), field=gettext_noop("Stage name"), max_length=200, required=True))
            if len(stage_data.get("steps", [])) > MAX_STEPS_PER_STAGE:
                raise InvalidInput(gettext_noop("A stage has at most %(max)s steps."), params={"max": MAX_STEPS_PER_STAGE})
            for step_order, step_data in enumerate(stage_data.get("steps", []), start=1):
                if not isinstance(step_data, dict):
                    raise InvalidInput(gettext_noop("Stage %(stage)s, step %(step)s: expected the step's fields."),
                                       params={"stage": code, "step": step_order})
                fields = clean_step_fields(step_data)
                if fields["code"] in step_codes:
                    raise InvalidInput(gettext_noop("Step code %(code)s is used twice."), params={"code": fields["code"]})
                step_codes.add(fields["code"])
                _step_create(stage, step_order, fields)
                count += 1
        locked.revision += 1
        locked.save(update_fields=["revision"])
        audit_record(actor=actor, action=Action.CREATE, obj=locked, changes={
            "loaded": "recipe loaded from data", "stages": len(stage_codes), "steps": count,
            "content_sha256": content_hash(locked.signable_content())})
    return locked


def mbr_clone(*, actor, mbr: MasterBatchRecord, change_summary: str) -> MasterBatchRecord:
    """A new draft version with every stage and step of ``mbr``, to be changed and approved."""
    _require_admin(actor, mbr.site)
    change_summary = clean_text(change_summary, field=gettext_noop("Change summary"), max_length=5000, required=True)
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=mbr.product_id)
        clone = MasterBatchRecord.objects.create(
            site=mbr.site, product=mbr.product, version=_next_version(mbr.product), title=mbr.title,
            change_summary=change_summary, based_on=mbr, created_by=actor,
        )
        for stage in mbr.stages.prefetch_related("steps"):
            new_stage = StageDefinition.objects.create(mbr=clone, order=stage.order, code=stage.code, name=stage.name)
            StepDefinition.objects.bulk_create([
                StepDefinition(stage=new_stage, order=step.order,
                               **{name: getattr(step, name) for name in STEP_FIELDS})
                for step in stage.steps.all()
            ])
        audit_record(actor=actor, action=Action.CREATE, obj=clone,
                     changes={"version": clone.version, "based_on": str(mbr), "change_summary": change_summary})
    return clone


def mbr_update(*, actor, mbr: MasterBatchRecord, expected_revision: int, reason: str = "draft edit",
               title: str, change_summary: str) -> MasterBatchRecord:
    _require_admin(actor, mbr.site)
    with transaction.atomic():
        locked = _lock_draft(mbr, expected_revision)
        before = {"title": locked.title, "change_summary": locked.change_summary}
        locked.title = clean_text(title, field=gettext_noop("Title"), max_length=200, required=True)
        locked.change_summary = clean_text(change_summary, field=gettext_noop("Change summary"), max_length=5000)
        locked.save(update_fields=["title", "change_summary"])
        changes = diff_fields(before, {"title": locked.title, "change_summary": locked.change_summary})
        if changes:
            audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
            _touch(actor, locked, reason)
    return locked


def mbr_stage_add(*, actor, mbr: MasterBatchRecord, code: str, name: str, expected_revision: int) -> StageDefinition:
    _require_admin(actor, mbr.site)
    code = clean_text(code, field=gettext_noop("Stage code"), max_length=40, required=True)
    if not CODE_RE.match(code):
        raise InvalidInput(gettext_noop("Stage code: use lower-case letters, digits, - and _ only."), field="code")
    with transaction.atomic():
        locked = _lock_draft(mbr, expected_revision)
        if locked.stages.count() >= MAX_STAGES:
            raise InvalidInput(gettext_noop("A record has at most %(max)s stages."), params={"max": MAX_STAGES})
        if locked.stages.filter(code=code).exists():
            raise InvalidInput(gettext_noop("Stage code %(code)s is already used in this record."),
                               params={"code": code}, field="code")
        order = (locked.stages.aggregate(o=Max("order"))["o"] or 0) + 1
        stage = StageDefinition.objects.create(
            mbr=locked, order=order, code=code, name=clean_text(name, field=gettext_noop("Stage name"), max_length=200, required=True))
        audit_record(actor=actor, action=Action.CREATE, obj=stage, site=locked.site, root=locked,
                     changes={"code": code, "name": stage.name, "order": order})
        _touch(actor, locked, f"stage {code} added")
    return stage


def mbr_stage_rename(*, actor, stage: StageDefinition, name: str, expected_revision: int, reason: str) -> StageDefinition:
    _require_admin(actor, stage.mbr.site)
    with transaction.atomic():
        locked = _lock_draft(stage.mbr, expected_revision)
        old = stage.name
        stage.name = clean_text(name, field=gettext_noop("Stage name"), max_length=200, required=True)
        stage.save(update_fields=["name"])
        audit_record(actor=actor, action=Action.UPDATE, obj=stage, site=locked.site, root=locked,
                     changes={"name": {"old": old, "new": stage.name}}, reason=reason)
        _touch(actor, locked, reason)
    return stage


def mbr_step_add(*, actor, stage: StageDefinition, expected_revision: int, **values) -> StepDefinition:
    """A new step at the end of ``stage``."""
    _require_admin(actor, stage.mbr.site)
    fields = clean_step_fields(values)
    with transaction.atomic():
        locked = _lock_draft(stage.mbr, expected_revision)
        if StepDefinition.objects.filter(stage__mbr=locked, code=fields["code"]).exists():
            raise InvalidInput(gettext_noop("Step code %(code)s is already used in this record."),
                               params={"code": fields["code"]}, field="code")
        if stage.steps.count() >= MAX_STEPS_PER_STAGE:
            raise InvalidInput(gettext_noop("A stage has at most %(max)s steps."), params={"max": MAX_STEPS_PER_STAGE})
        order = (stage.steps.aggregate(o=Max("order"))["o"] or 0) + 1
        step = _step_create(stage, order, fields)
        audit_record(actor=actor, action=Action.CREATE, obj=step, site=locked.site, root=locked,
                     changes=step.definition_content())
        _touch(actor, locked, f"step {step.code} added")
    return step


def mbr_step_update(*, actor, step: StepDefinition, expected_revision: int, reason: str, **values) -> StepDefinition:
    """Change a step of a draft (instruction, limits, flags…); the change is audited with its reason."""
    _require_admin(actor, step.stage.mbr.site)
    merged = {name: getattr(step, name) for name in STEP_FIELDS} | values
    fields = clean_step_fields(merged)
    with transaction.atomic():
        locked = _lock_draft(step.stage.mbr, expected_revision)
        step = StepDefinition.objects.select_for_update().get(pk=step.pk)
        if fields["code"] != step.code and StepDefinition.objects.filter(stage__mbr=locked, code=fields["code"]).exists():
            raise InvalidInput(gettext_noop("Step code %(code)s is already used in this record."),
                               params={"code": fields["code"]}, field="code")
        before = step.definition_content()
        for name, value in fields.items():
            setattr(step, name, value)
        step.save()
        changes = diff_fields(before, step.definition_content())
        if changes:
            audit_record(actor=actor, action=Action.UPDATE, obj=step, site=locked.site, root=locked,
                         changes=changes, reason=reason)
            _touch(actor, locked, reason)
    return step


def mbr_step_remove(*, actor, step: StepDefinition, expected_revision: int, reason: str) -> None:
    _require_admin(actor, step.stage.mbr.site)
    with transaction.atomic():
        locked = _lock_draft(step.stage.mbr, expected_revision)
        content = step.definition_content()
        audit_record(actor=actor, action=Action.DELETE, obj=step, site=locked.site, root=locked,
                     changes=content, reason=reason)
        step.delete()
        _touch(actor, locked, reason)


def mbr_step_move(*, actor, step: StepDefinition, direction: int, expected_revision: int) -> StepDefinition:
    """Swap a step with its neighbour in the stage (``direction`` -1 up, +1 down)."""
    _require_admin(actor, step.stage.mbr.site)
    if direction not in (-1, 1):
        raise InvalidInput(gettext_noop("A step moves one place up or down."))
    with transaction.atomic():
        locked = _lock_draft(step.stage.mbr, expected_revision)
        siblings = list(step.stage.steps.select_for_update().order_by("order"))
        index = next(i for i, s in enumerate(siblings) if s.pk == step.pk)
        other_index = index + direction
        if not 0 <= other_index < len(siblings):
            raise InvalidInput(gettext_noop("The step is already at that end of its stage."))
        other = siblings[other_index]
        a, b = siblings[index].order, other.order
        # Through a free number: (stage, order) is unique.
        top = max(s.order for s in siblings) + 1
        StepDefinition.objects.filter(pk=other.pk).update(order=top)
        StepDefinition.objects.filter(pk=step.pk).update(order=b)
        StepDefinition.objects.filter(pk=other.pk).update(order=a)
        audit_record(actor=actor, action=Action.UPDATE, obj=step, site=locked.site, root=locked,
                     changes={"order": {"old": a, "new": b}}, reason=f"moved {'up' if direction < 0 else 'down'}")
        _touch(actor, locked, f"step {step.code} moved")
    step.refresh_from_db()
    return step


# --- approval and effectiveness -------------------------------------------------------------


def mbr_approval_state(mbr: MasterBatchRecord) -> dict[str, Any]:
    """Per role, the approval's currently valid signature (or None)."""
    state: dict[str, Any] = dict.fromkeys(MbrApprovalRole.values)
    for approval in mbr.approvals.all():
        valid = [v for v in signatures_for_record(approval) if v.is_valid and v.signature.meaning == Meaning.APPROVED]
        state[approval.role] = valid[0].signature if valid else None
    return state


def _approval_role(actor, site, role: str | None) -> str:
    roles = [r for r, perm in ((MbrApprovalRole.SITE_ADMIN, SitePerm.ADMIN),
                               (MbrApprovalRole.QUALIFIED_PERSON, SitePerm.CERTIFY)) if has_site_perm(actor, site, perm)]
    if not roles:
        raise PermissionRefused(gettext_noop("Only a site administrator or a qualified person approves master batch "
                                             "records."))
    if role is None:
        if len(roles) > 1:
            raise InvalidInput(gettext_noop("You hold both approving roles here: say in which one you sign."),
                               field="role")
        return roles[0]
    if role not in roles:
        raise PermissionRefused(gettext_noop("You do not hold the role %(role)s at %(site)s."),
                                params={"role": MbrApprovalRole(role).label, "site": str(site)})
    return role


def mbr_approve(*, actor, mbr: MasterBatchRecord, password: str, expected_revision: int,
                request: HttpRequest | None = None, role: str | None = None, comment: str = "") -> MasterBatchRecord:
    """Sign the draft "Approved" as site administrator or as QP. The second of the two
    signatures, by a different person, makes it approved."""
    role = _approval_role(actor, mbr.site, role)
    problems = mbr_problem_phrases(mbr)
    if problems:
        raise NotReady(gettext_noop("The record cannot be approved yet: %(problems)s%(more)s"),
                       params={"problems": joined(problems[:5]), "more": more_phrase(len(problems) - 5)})
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=mbr)
    with transaction.atomic():
        locked = _lock_draft(mbr, expected_revision)
        approval, _ = MbrApproval.objects.get_or_create(mbr=locked, role=role, defaults={"site": locked.site})
        state = mbr_approval_state(locked)
        others = [sig.signer_id for r, sig in state.items() if r != role and sig is not None]
        signature_apply(
            actor=actor, reauth=reauth, obj=approval, meaning=Meaning.APPROVED, comment=comment,
            excluded_signers=others,
            excluded_reason="The site administrator and the QP who approve a master batch record must be two "
                            "different people: you already approved it in your other role.",
        )
        state = mbr_approval_state(locked)
        if all(state.values()):
            _transition(actor, locked, MbrStatus.APPROVED)
    return locked


def _transition(actor, mbr: MasterBatchRecord, to: str, *, reason: str = "") -> None:
    if to not in MBR_TRANSITIONS[mbr.status]:
        raise InvalidTransition(gettext_noop("%(mbr)s is %(status)s; it cannot become %(to)s."),
                                params={"mbr": str(mbr), "status": mbr.get_status_display().lower(),
                                        "to": MbrStatus(to).label.lower()})
    old = mbr.status
    mbr.status = to
    now = timezone.now()
    if to == MbrStatus.EFFECTIVE:
        mbr.effective_at = now
    if to == MbrStatus.SUPERSEDED:
        mbr.superseded_at = now
    mbr.save(update_fields=["status", "effective_at", "superseded_at"])
    audit_record(actor=actor, action=Action.TRANSITION, obj=mbr, changes={"status": {"old": old, "new": to}}, reason=reason)


def mbr_make_effective(*, actor, mbr: MasterBatchRecord, reason: str = "") -> MasterBatchRecord:
    """New batches of the product use this version from now on; the one in force before
    is superseded in the same transaction. Running batches keep their own version."""
    if not (has_site_perm(actor, mbr.site, SitePerm.ADMIN) or has_site_perm(actor, mbr.site, SitePerm.CERTIFY)):
        raise PermissionRefused(gettext_noop("Only a site administrator or a qualified person makes a master batch "
                                             "record effective."))
    with transaction.atomic():
        # Every version of the product is locked: two versions cannot become effective at once.
        versions = {m.pk: m for m in MasterBatchRecord.objects.select_for_update().filter(product_id=mbr.product_id)}
        locked = versions[mbr.pk]
        if locked.status != MbrStatus.APPROVED:
            raise InvalidTransition(gettext_noop("%(mbr)s is %(status)s: only an approved version can become "
                                                 "effective."),
                                    params={"mbr": str(locked), "status": locked.get_status_display().lower()})
        if not all(mbr_approval_state(locked).values()):
            raise NotReady(gettext_noop("Both approvals must be valid before the record becomes effective."))
        for other in versions.values():
            if other.status == MbrStatus.EFFECTIVE:
                _transition(actor, other, MbrStatus.SUPERSEDED, reason=f"Superseded by version {locked.version}")
        try:
            with transaction.atomic():
                _transition(actor, locked, MbrStatus.EFFECTIVE, reason=reason)
        except IntegrityError:
            raise StaleRecord(gettext_noop("Another version became effective at the same moment. Reload and try "
                                           "again.")) from None
    return locked
