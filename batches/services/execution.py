"""Executing a batch against its master batch record: the electronic batch record.

Rules enforced here, whatever the page or API that calls:

* steps in the recipe's order unless a step allows otherwise (21 CFR 11.10(f));
* values checked by the server: type, unit, decimal places, limits. Outside alert
  limits needs the user's confirmation and a comment; outside action limits is
  recorded as out of limits with a deviation raised in the same transaction, and a
  critical step puts the batch on hold;
* expired, quarantined or rejected lots and equipment past calibration or maintenance
  or out of service are refused, unless a deviation permitting exactly that use was
  approved by a QP; a scanned label of another donation blocks the step. Each refusal
  is written to the audit trail, and nothing is recorded;
* calculations are done by the server from recorded values (``batches.calculations``);
* the performer signs every step (password re-entered); steps that need verification
  are signed by a second person; a correction needs a reason, keeps the original
  visible, voids the signatures and is signed again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.calculations import REGISTRY, calculation_run
from batches.exceptions import (
    ConfirmationRequired,
    EquipmentNotUsable,
    IdentityMismatch,
    MaterialNotUsable,
    NotReady,
    OutOfOrder,
    more_phrase,
)
from batches.models import (
    Batch,
    BatchState,
    Deviation,
    DeviationClass,
    DeviationSource,
    LimitResult,
    StepCorrection,
    StepDefinition,
    StepKind,
    StepRecord,
    StepStatus,
)
from batches.models.mbr import fixed_decimal
from batches.progress import Plan, input_snapshot, load_plan
from batches.quantities import check_decimal_places, format_value, parse_decimal, round_to
from batches.services.custody import Refusal, identify_label, refuse
from batches.services.deviations import deviation_raise
from batches.services.equipment import equipment_for_step
from batches.services.materials import lot_for_step
from batches.services.transitions import batch_transition
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.esign.models import Meaning
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import InvalidInput, ReasonRequired, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text
from carmfg.texts import Text, joined

COMMENT_MAX = 2000
SCAN_MAX = 200
RECORDING_STATES = (BatchState.IN_PROCESS,)
CORRECTING_STATES = (BatchState.IN_PROCESS, BatchState.ON_HOLD)
# Failures that are safety blocks: written to the audit trail even though nothing is recorded.
BLOCKS = (MaterialNotUsable, EquipmentNotUsable, IdentityMismatch)


# --- limits ---------------------------------------------------------------------------------


def evaluate_limits(definition: StepDefinition, value: Decimal) -> str:
    """Action limits first: a value outside them is out of limits, whatever the alert limits say."""
    d = definition
    if all(x is None for x in (d.alert_min, d.alert_max, d.action_min, d.action_max)):
        return LimitResult.NONE
    if (d.action_min is not None and value < d.action_min) or (d.action_max is not None and value > d.action_max):
        return LimitResult.ACTION
    if (d.alert_min is not None and value < d.alert_min) or (d.alert_max is not None and value > d.alert_max):
        return LimitResult.ALERT
    return LimitResult.WITHIN


def _range(lo, hi, unit: str) -> str:
    if lo is not None and hi is not None:
        return f"{format_value(lo)}–{format_value(hi)} {unit}".strip()
    if lo is not None:
        return f"≥ {format_value(lo)} {unit}".strip()
    if hi is not None:
        return f"≤ {format_value(hi)} {unit}".strip()
    return ""


def limits_phrase(definition: StepDefinition) -> Text:
    """The step's alert and action limits, e.g. "alert 6.8–7.6; action 6.5–8.0"."""
    alert = _range(definition.alert_min, definition.alert_max, definition.unit)
    action = _range(definition.action_min, definition.action_max, definition.unit)
    if alert and action:
        return Text(gettext_noop("alert %(alert)s; action %(action)s"), {"alert": alert, "action": action})
    if alert:
        return Text(gettext_noop("alert %(alert)s"), {"alert": alert})
    if action:
        return Text(gettext_noop("action %(action)s"), {"action": action})
    return Text("")


def limits_text(definition: StepDefinition) -> str:
    return limits_phrase(definition).message


def _confirmation_needed(definition: StepDefinition, value: Decimal, result: str) -> ConfirmationRequired:
    shown = f"{format_value(value)} {definition.unit}".strip()
    if result == LimitResult.ACTION and definition.critical:
        message = gettext_noop(
            "%(value)s is outside the action limits (%(limits)s). If you confirm it, it is recorded as out of "
            "limits and a deviation is raised; this step is critical, so the batch goes on hold. "
            "Check the value; to record it, tick the confirmation and explain in the comment.")
    elif result == LimitResult.ACTION:
        message = gettext_noop(
            "%(value)s is outside the action limits (%(limits)s). If you confirm it, it is recorded as out of "
            "limits and a deviation is raised. "
            "Check the value; to record it, tick the confirmation and explain in the comment.")
    else:
        message = gettext_noop(
            "%(value)s is outside the alert limits (%(limits)s). "
            "Check the value; to record it, tick the confirmation and explain in the comment.")
    exc = ConfirmationRequired(message, params={"value": shown, "limits": limits_phrase(definition)}, field="value")
    exc.limit_result = result  # type: ignore[attr-defined]
    return exc


# --- inputs -----------------------------------------------------------------------------------


def _parse_value(definition: StepDefinition, value, unit: str | None) -> Decimal:
    if unit is not None and unit != definition.unit:
        if definition.unit:
            raise InvalidInput(gettext_noop("This step records %(unit)s, not %(given)s: the form is out of date. "
                                            "Reload the page."),
                               params={"unit": definition.unit, "given": repr(unit)}, field="unit")
        raise InvalidInput(gettext_noop("This step records no unit, not %(given)s: the form is out of date. "
                                        "Reload the page."), params={"given": repr(unit)}, field="unit")
    parsed = parse_decimal(value, field=definition.title)
    return check_decimal_places(parsed, definition.decimal_places, field=definition.title)


def _scan_text(value, field: str) -> str:
    return clean_text(value, field=field, max_length=SCAN_MAX, required=True)


class _LabelRefused(IdentityMismatch):
    """A scanned label that is not the container the step expects; carries the chain-of-
    identity refusal so that it is audited on the donation like every other blocked scan."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(expected=refusal.expected_phrase, scanned=refusal.scanned_phrase, cause=refusal.cause_phrase,
                         message=gettext_noop("%(cause)s Expected %(expected)s; scanned %(scanned)s. "
                                              "The step is blocked."),
                         params={"cause": refusal.cause_phrase, "expected": refusal.expected_phrase,
                                 "scanned": refusal.scanned_phrase})


def _check_label(batch: Batch, definition: StepDefinition, scanned: str) -> str:
    """The same identity check as every custody scan: this donation's applied label, on a
    container of the type the step names. Anything else blocks."""
    try:
        label = identify_label(donation=batch.donation, scanned_code=scanned, containers=[definition.container_type])
    except Refusal as refusal:
        raise _LabelRefused(refusal) from None
    return f"{batch.donation.din} · {label.container_code}"


def _calculate(plan: Plan, definition: StepDefinition) -> tuple[Decimal, dict, dict]:
    if definition.calculation not in REGISTRY:
        raise NotReady(gettext_noop("%(step)s: the recipe names an unknown calculation."),
                       params={"step": definition.title})
    resolved = plan.resolve_inputs(definition)
    missing = [item["label"] for item in resolved.values() if item["missing"]]
    if missing:
        raise NotReady(gettext_noop("%(step)s cannot be calculated yet: %(missing)s not recorded."),
                       params={"step": definition.title, "missing": ", ".join(missing)})
    result = calculation_run(definition.calculation, {name: item["value"] for name, item in resolved.items()})
    value = round_to(result.value, definition.decimal_places)
    outputs = {name: ([str(v) for v in out] if isinstance(out, list) else str(out))
               for name, out in result.outputs.items()}
    return value, input_snapshot(resolved), outputs


def _audit_block(actor, batch: Batch, definition: StepDefinition, exc: Exception, attempted: dict) -> None:
    if isinstance(exc, _LabelRefused):
        # Audited on the donation (and on the other patient's, if the label is theirs), then raised.
        refuse(actor=actor, donation=batch.donation, refusal=exc.refusal,
               context=f"Batch {batch.number}: {definition.title}", step=definition.code)
    with transaction.atomic():
        audit_record(actor=actor, action=Action.BLOCKED, obj=batch,
                     object_repr=f"{batch.number} · {definition.title}",
                     changes={"step": definition.code, "refused": getattr(exc, "message", str(exc)), **attempted})


# --- recording ---------------------------------------------------------------------------------


def _lock_batch(batch: Batch, states=RECORDING_STATES) -> Batch:
    locked = Batch.objects.select_for_update().select_related("order__patient", "product", "donation", "site").get(pk=batch.pk)
    if locked.state not in states:
        if locked.state == BatchState.PLANNED:
            raise NotReady(gettext_noop("Batch %(batch)s has not started: start manufacturing first."),
                           params={"batch": locked.number})
        raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: steps cannot be recorded now."),
                       params={"batch": locked.number, "state": locked.get_state_display().lower()})
    return locked


def _definition_of(batch: Batch, definition: StepDefinition) -> StepDefinition:
    found = StepDefinition.objects.select_related("stage").filter(pk=definition.pk, stage__mbr_id=batch.mbr_id).first()
    if found is None:
        raise InvalidInput(gettext_noop("This step is not part of the batch's master batch record."))
    return found


def _fill(record: StepRecord, definition: StepDefinition, *, batch: Batch, plan: Plan, value, unit, lot_barcode,
          equipment_code, scanned_code, quantity, actor, attempted: dict[str, Any]) -> None:
    """Set the kind-specific content of ``record``; raise if it may not be recorded.
    What was scanned goes into ``attempted`` first, for the audit of a refusal."""
    kind = definition.kind
    record.unit = definition.unit
    if kind == StepKind.VALUE:
        record.value = _parse_value(definition, value, unit)
    elif kind == StepKind.CALCULATION:
        record.value, record.calculation_inputs, record.calculation_outputs = _calculate(plan, definition)
    elif kind == StepKind.MATERIAL:
        barcode = _scan_text(lot_barcode, gettext_noop("Lot barcode"))
        attempted["lot_barcode"] = barcode
        lot, deviation = lot_for_step(batch=batch, definition=definition, barcode=barcode)
        record.material_lot = lot
        record.deviation = deviation
        record.quantity = parse_decimal(quantity, field="Quantity") if quantity not in (None, "") else definition.quantity
        if record.quantity is not None:
            record.quantity = check_decimal_places(record.quantity, 3, field="Quantity")
            if record.quantity <= 0:
                raise InvalidInput(gettext_noop("Quantity: must be more than zero."), field="quantity")
    elif kind == StepKind.EQUIPMENT:
        code = _scan_text(equipment_code, gettext_noop("Equipment asset label"))
        attempted["equipment"] = code
        record.equipment, record.deviation = equipment_for_step(batch=batch, definition=definition, asset_id=code)
    elif kind in (StepKind.SCAN, StepKind.SAMPLE):
        scanned = _scan_text(scanned_code, gettext_noop("Scanned label"))
        attempted["scanned"] = scanned
        record.value_text = _check_label(batch, definition, scanned)
        if kind == StepKind.SAMPLE:
            record.value_text += " · tests: " + ", ".join(definition.sample_tests)


def _as_stored(record: StepRecord) -> None:
    """Give a record just inserted the values a read-back would give, without reading it
    back: decimals with the column's places. Its batch (locked, with site, order and
    donation), definition (with stage), deviation and performer are already attached."""
    record.value = fixed_decimal(record.value, StepRecord._meta.get_field("value").decimal_places)
    record.quantity = fixed_decimal(record.quantity, StepRecord._meta.get_field("quantity").decimal_places)


def _refresh_from(batch: Batch, locked: Batch) -> None:
    """``batch.refresh_from_db()`` without the query: ``locked`` was read under the row
    lock in the transaction that just committed (and re-read by a hold, if any)."""
    for field in Batch._meta.concrete_fields:
        setattr(batch, field.attname, getattr(locked, field.attname))
    batch.__dict__.pop("_prefetched_objects_cache", None)


def _after_limits(actor, record: StepRecord, definition: StepDefinition, batch: Batch, *, comment: str) -> None:
    """Out of action limits: a deviation in this transaction, and a hold for a critical step."""
    if record.limit_result != LimitResult.ACTION:
        return
    if record.deviation is not None and record.deviation.source == DeviationSource.OUT_OF_LIMIT:
        return  # already raised for this record (a correction that stays out of limits)
    shown = f"{format_value(record.value)} {definition.unit}".strip()
    deviation = deviation_raise(
        actor=actor, site=batch.site, batch=batch, source=DeviationSource.OUT_OF_LIMIT,
        classification=DeviationClass.MAJOR if definition.critical else DeviationClass.MINOR,
        title=f"{definition.title}: {shown} outside action limits"[:200],
        description=(f"Batch {batch.number}, stage “{definition.stage.name}”, step “{definition.title}”"
                     f"{f' #{record.occurrence}' if definition.repeatable else ''}: {shown} recorded; "
                     f"limits {limits_text(definition)}. Comment of the performer: {comment or '—'}"),
    )
    record.deviation = deviation
    record.save(update_fields=["deviation"])
    if definition.critical and batch.state == BatchState.IN_PROCESS:
        batch_transition(actor=actor, batch=batch, to_state=BatchState.ON_HOLD,
                         reason=f"Critical step “{definition.title}” out of action limits: deviation {deviation.number}.")


def step_record(
    *, actor, batch: Batch, definition: StepDefinition, password: str, expected_occurrence: int,
    request: HttpRequest | None = None, value=None, unit: str | None = None, lot_barcode=None,
    equipment_code=None, scanned_code=None, quantity=None, comment: str = "", confirmed: bool = False,
) -> StepRecord:
    """Record one step (one occurrence of a repeatable step) and sign it as performer."""
    require_site_perm(actor, batch.site, SitePerm.EXECUTE, action=gettext_noop("record manufacturing steps"))
    definition = _definition_of(batch, definition)
    comment = clean_text(comment, field=gettext_noop("Comment"), max_length=COMMENT_MAX)
    if not isinstance(expected_occurrence, int) or isinstance(expected_occurrence, bool) or expected_occurrence < 1:
        raise InvalidInput(gettext_noop("The form is out of date (occurrence missing). Reload the page."))
    # Checks that need no password come first: a mistyped value does not cost a signature attempt.
    if definition.kind == StepKind.VALUE:
        parsed = _parse_value(definition, value, unit)
        result = evaluate_limits(definition, parsed)
        if result in (LimitResult.ALERT, LimitResult.ACTION) and not (confirmed and comment):
            raise _confirmation_needed(definition, parsed, result)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
    attempted: dict[str, Any] = {}
    try:
        with transaction.atomic():
            locked = _lock_batch(batch)
            plan = load_plan(locked, for_update=True)
            state = plan.by_pk[definition.pk]
            if state.count + 1 != expected_occurrence:
                raise StaleRecord(gettext_noop("“%(step)s” was recorded by someone else since you opened it "
                                               "(#%(count)s is there now). Reload and check before recording."),
                                  params={"step": definition.title, "count": state.count})
            if not state.can_record:
                raise (OutOfOrder if state.count == 0 or definition.repeatable else NotReady)(
                    state.refusal_template, params=state.refusal_params)
            record = StepRecord(site=locked.site, batch=locked, definition=definition, occurrence=expected_occurrence,
                                comment=comment, performed_by=actor, performed_at=timezone.now())
            _fill(record, definition, batch=locked, plan=plan, value=value, unit=unit, lot_barcode=lot_barcode,
                  equipment_code=equipment_code, scanned_code=scanned_code, quantity=quantity, actor=actor,
                  attempted=attempted)
            if record.value is not None and definition.kind in (StepKind.VALUE, StepKind.CALCULATION):
                record.limit_result = evaluate_limits(definition, record.value)
                if record.limit_result in (LimitResult.ALERT, LimitResult.ACTION) and not (confirmed and comment):
                    raise _confirmation_needed(definition, record.value, record.limit_result)
                if record.limit_result == LimitResult.ACTION:
                    record.status = StepStatus.OUT_OF_LIMIT
            try:
                with transaction.atomic():
                    record.save()
            except IntegrityError:
                raise StaleRecord(gettext_noop("“%(step)s” #%(occurrence)s was recorded by someone else a moment "
                                               "ago. Reload and check before recording."),
                                  params={"step": definition.title, "occurrence": expected_occurrence}) from None
            _as_stored(record)
            audit_record(actor=actor, action=Action.CREATE, obj=record, changes=record.signable_content())
            signature_apply(actor=actor, reauth=reauth, obj=record, meaning=Meaning.PERFORMED, comment=comment)
            _after_limits(actor, record, definition, locked, comment=comment)
    except BLOCKS as exc:
        _audit_block(actor, batch, definition, exc, attempted)
        raise
    _refresh_from(batch, locked)
    return record


def step_preview(*, actor, batch: Batch, definition: StepDefinition, value=None, unit: str | None = None,
                 lot_barcode=None, equipment_code=None, scanned_code=None, quantity=None, comment: str = "",
                 confirmed: bool = False) -> StepRecord:
    """Check a step before signing it (a scan followed by Enter): the same refusals as
    :func:`step_record`, nothing saved. Blocks are audited as for a real attempt."""
    require_site_perm(actor, batch.site, SitePerm.EXECUTE, action=gettext_noop("record manufacturing steps"))
    definition = _definition_of(batch, definition)
    attempted: dict[str, Any] = {}
    try:
        with transaction.atomic():
            locked = _lock_batch(batch)
            plan = load_plan(locked, for_update=True)
            state = plan.by_pk[definition.pk]
            if not state.can_record:
                raise (OutOfOrder if state.count == 0 or definition.repeatable else NotReady)(
                    state.refusal_template, params=state.refusal_params)
            record = StepRecord(site=locked.site, batch=locked, definition=definition, occurrence=state.next_occurrence,
                                performed_by=actor, performed_at=timezone.now())
            _fill(record, definition, batch=locked, plan=plan, value=value, unit=unit, lot_barcode=lot_barcode,
                  equipment_code=equipment_code, scanned_code=scanned_code, quantity=quantity, actor=actor,
                  attempted=attempted)
            if record.value is not None and definition.kind in (StepKind.VALUE, StepKind.CALCULATION):
                record.limit_result = evaluate_limits(definition, record.value)
                if record.limit_result in (LimitResult.ALERT, LimitResult.ACTION) and not (confirmed and comment):
                    raise _confirmation_needed(definition, record.value, record.limit_result)
    except BLOCKS as exc:
        _audit_block(actor, batch, definition, exc, attempted)
        raise
    return record


def step_verify(*, actor, record: StepRecord, password: str, expected_version: int,
                request: HttpRequest | None = None, comment: str = "") -> StepRecord:
    """A second person verifies a step (never the one who performed it)."""
    require_site_perm(actor, record.site, SitePerm.VERIFY, action=gettext_noop("verify steps"))
    if not record.definition.requires_verification:
        raise NotReady(gettext_noop("“%(step)s” needs no second-person verification."),
                       params={"step": record.definition.title})
    comment = clean_text(comment, field=gettext_noop("Comment"), max_length=COMMENT_MAX)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=record)
    with transaction.atomic():
        _lock_batch(record.batch, CORRECTING_STATES)
        locked = StepRecord.objects.select_for_update().get(pk=record.pk)
        if locked.version != expected_version:
            raise StaleRecord(gettext_noop("This step was corrected since you opened it. Reload and check the new "
                                           "value before verifying."))
        plan = load_plan(locked.batch)
        state = next(r for r in plan.by_pk[locked.definition_id].records if r.record.pk == locked.pk)
        if state.performed is None:
            raise NotReady(gettext_noop("The step has no valid performer signature yet: it must be signed before it "
                                        "is verified."))
        if state.stale_inputs:
            raise NotReady(gettext_noop("An input of this calculation changed: it must be recalculated before it is "
                                        "verified."))
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.VERIFIED, comment=comment)
    return locked


def step_correct(
    *, actor, record: StepRecord, password: str, reason: str, expected_version: int,
    request: HttpRequest | None = None, value=None, unit: str | None = None, lot_barcode=None, equipment_code=None,
    scanned_code=None, quantity=None, comment: str | None = None, confirmed: bool = False,
) -> StepRecord:
    """Correct a recorded step. The original stays visible (``StepCorrection``); the
    signatures of the old content are voided and the corrector signs the new one;
    verification, where needed, is asked for again. A calculation is corrected by
    recalculating it from the current inputs."""
    require_site_perm(actor, record.site, SitePerm.EXECUTE, action=gettext_noop("correct manufacturing steps"))
    reason = clean_text(reason, field=gettext_noop("Reason for the correction"), max_length=REASON_MAX_LENGTH)
    if not reason:
        raise ReasonRequired(gettext_noop("A correction needs a reason (e.g. “typing error: 7.2 written as 72”)."))
    definition = record.definition
    if definition.kind == StepKind.VALUE:
        parsed = _parse_value(definition, value, unit)
        result = evaluate_limits(definition, parsed)
        if result in (LimitResult.ALERT, LimitResult.ACTION) and not confirmed:
            raise _confirmation_needed(definition, parsed, result)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=record)
    attempted: dict[str, Any] = {}
    try:
        with transaction.atomic():
            batch = _lock_batch(record.batch, CORRECTING_STATES)
            locked = StepRecord.objects.select_for_update(of=("self",)).select_related("deviation").get(pk=record.pk)
            if locked.version != expected_version:
                raise StaleRecord(gettext_noop("This step was changed by someone else since you opened it. Reload "
                                               "and check it before correcting."))
            plan = load_plan(batch, for_update=True)
            before = locked.signable_content()
            if comment is not None:
                locked.comment = clean_text(comment, field=gettext_noop("Comment"), max_length=COMMENT_MAX)
            _fill(locked, definition, batch=batch, plan=plan, value=value, unit=unit, lot_barcode=lot_barcode,
                  equipment_code=equipment_code, scanned_code=scanned_code, quantity=quantity, actor=actor,
                  attempted=attempted)
            if locked.value is not None and definition.kind in (StepKind.VALUE, StepKind.CALCULATION):
                locked.limit_result = evaluate_limits(definition, locked.value)
                if locked.limit_result in (LimitResult.ALERT, LimitResult.ACTION) and not confirmed:
                    raise _confirmation_needed(definition, locked.value, locked.limit_result)
                locked.status = StepStatus.OUT_OF_LIMIT if locked.limit_result == LimitResult.ACTION else StepStatus.DONE
            after = locked.signable_content()
            if after == before:
                raise InvalidInput(gettext_noop("Nothing changed: the corrected entry is the same as the recorded one."))
            locked.version += 1
            locked.save()
            StepCorrection.objects.create(step_record=locked, old_content=_jsonable_content(before),
                                          new_content=_jsonable_content(after), reason=reason, corrected_by=actor,
                                          corrected_at=timezone.now())
            audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=diff_fields(before, after), reason=reason)
            signatures_void_changed(actor=actor, obj=locked, reason=f"Step corrected: {reason}")
            signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.PERFORMED,
                            comment=f"Correction: {reason}"[:REASON_MAX_LENGTH])
            _after_limits(actor, locked, definition, batch, comment=f"correction: {reason}")
    except BLOCKS as exc:
        _audit_block(actor, record.batch, definition, exc, attempted)
        raise
    return locked


def _jsonable_content(content: dict) -> dict:
    from carmfg.canonical import to_jsonable

    return to_jsonable(content)


# --- the batch ------------------------------------------------------------------------------------


def batch_start(*, actor, batch: Batch, expected_version: int) -> Batch:
    """Start manufacturing: the batch moves from planned to in process."""
    require_site_perm(actor, batch.site, SitePerm.EXECUTE, action=gettext_noop("start manufacturing"))
    with transaction.atomic():
        return batch_transition(actor=actor, batch=batch, to_state=BatchState.IN_PROCESS,
                                expected_version=expected_version, reason="Manufacturing started")


def batch_complete(*, actor, batch: Batch, expected_version: int) -> Batch:
    """Every step recorded, signed and (where needed) verified: the batch awaits QC and release."""
    require_site_perm(actor, batch.site, SitePerm.EXECUTE, action=gettext_noop("complete batches"))
    with transaction.atomic():
        locked = _lock_batch(batch)
        if locked.version != expected_version:
            raise StaleRecord()
        problems = load_plan(locked).completion_problems()
        if problems:
            raise NotReady(gettext_noop("The batch record is not complete: %(problems)s%(more)s"),
                           params={"problems": joined(problems[:5]), "more": more_phrase(len(problems) - 5)})
        return batch_transition(actor=actor, batch=locked, to_state=BatchState.AWAITING_RELEASE,
                                expected_version=expected_version, reason="All steps recorded, signed and verified")


def batch_hold(*, actor, batch: Batch, reason: str, expected_version: int) -> Batch:
    """Anyone on the floor, or a QP, stops a batch: nothing is recorded until it is resumed."""
    if not (has_site_perm(actor, batch.site, SitePerm.EXECUTE) or has_site_perm(actor, batch.site, SitePerm.CERTIFY)):
        require_site_perm(actor, batch.site, SitePerm.CERTIFY, action=gettext_noop("put batches on hold"))
    if not clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH):
        raise ReasonRequired(gettext_noop("Say why the batch is put on hold."))
    with transaction.atomic():
        return batch_transition(actor=actor, batch=batch, to_state=BatchState.ON_HOLD, reason=reason,
                                expected_version=expected_version)


def batch_resume(*, actor, batch: Batch, reason: str, expected_version: int) -> Batch:
    """A QP lets a batch on hold go on, with a reason (its deviations stay open until closed)."""
    require_site_perm(actor, batch.site, SitePerm.CERTIFY, action=gettext_noop("resume batches on hold"))
    if not clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH):
        raise ReasonRequired(gettext_noop("Say why the batch may go on (e.g. the deviation's impact assessment)."))
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != BatchState.ON_HOLD:
            raise NotReady(gettext_noop("Batch %(batch)s is not on hold."), params={"batch": locked.number})
        to_state = locked.state_before_hold or BatchState.IN_PROCESS
        return batch_transition(actor=actor, batch=locked, to_state=to_state, reason=reason,
                                expected_version=expected_version)


def open_deviations_of(batch: Batch) -> list[Deviation]:
    return list(Deviation.objects.filter(batch=batch).exclude(status="closed").order_by("raised_at"))
