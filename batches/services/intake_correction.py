"""Correcting an apheresis intake after it was recorded (the electronic strike-through).

Part 11 §11.10(e) and Annex 11 §9: the original value stays in the record (an
``IntakeCorrection`` keeps old and new values, the evaluation before and after, and
the outcome before and after; the audit trail keeps them too), the correction needs a
reason and the corrector's electronic signature. The rules a hospital's GMP unit
expects:

* only measured values are corrected (times, temperature, volume, WBC, CD3+ cells,
  bag integrity). The DIN, the label scan and the patient bind the bag to the patient:
  a wrong identity is a chain-of-identity event, never a typing error, and is refused;
* the server evaluates the criteria again, with the limits the intake was judged by
  (if the site's criteria changed since, the correction is refused: it would judge the
  material against other limits). A correction never decides an intake:

  - pending (outside criteria, waiting for the QP): it stays pending, and the QP
    decides on the corrected values;
  - accepted: if the corrected values fail a criterion that was met (or change a value
    that fails), the material was used outside its criteria. Refusing the correction
    would leave a value known to be wrong in the record, and the batch already exists,
    so the intake becomes "accepted with deviation" and a major deviation is raised on
    the batch: it blocks release until the QP closes it;

* once a QP signed a decision on the intake (accepted with deviation, or rejected),
  its values are what the QP judged: a correction would void that decision, so it is
  refused (the correct value goes into the deviation's investigation);
* once the batch is provisionally released, released, rejected or cancelled (or on
  hold after a provisional release), its record is certified or closed: refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from batches.exceptions import BatchError
from batches.models import (
    ApheresisIntake,
    Batch,
    BatchState,
    DeviationClass,
    DeviationSource,
    IntakeCorrection,
    IntakeOutcome,
    Order,
    OrderStatus,
)
from batches.services.deviations import deviation_raise
from batches.services.intake import intake_criteria_for, intake_evaluate, intake_values_clean
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.canonical import to_jsonable
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import InvalidInput, InvalidTransition, ReasonRequired, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text

CORRECTABLE_FIELDS = (
    "collection_started_at", "collection_ended_at", "received_at", "transport_temperature_c", "volume_ml",
    "wbc_10e3_per_ul", "cd3_cells_total", "bag_intact",
)
# What binds the bag to the patient: never corrected as a typing error.
IDENTITY_FIELDS = frozenset({
    "din", "donation", "label_scanned_code", "label", "patient", "order", "wristband_code", "site",
})
# The batch's record is neither certified nor closed yet.
CORRECTABLE_BATCH_STATES = (BatchState.PLANNED, BatchState.IN_PROCESS, BatchState.AWAITING_RELEASE,
                            BatchState.ON_HOLD)
CORRECTABLE_OUTCOMES = (IntakeOutcome.PENDING, IntakeOutcome.ACCEPTED, IntakeOutcome.ACCEPTED_WITH_DEVIATION)


FIELD_LABELS = {
    "collection_started_at": gettext_noop("Collection started"),
    "collection_ended_at": gettext_noop("Collection ended"),
    "received_at": gettext_noop("Received here"),
    "transport_temperature_c": gettext_noop("Transport temperature (°C)"),
    "volume_ml": gettext_noop("Volume (mL)"),
    "wbc_10e3_per_ul": gettext_noop("WBC (×10³/µL)"),
    "cd3_cells_total": gettext_noop("CD3+ cells (total)"),
    "bag_intact": gettext_noop("Bag intact?"),
}


def stored_value_text(name: str, value: Any, zone) -> str:
    """A value kept in a correction (JSON) as a person reads it."""
    if value is None:
        return "—"
    if name == "bag_intact":
        return gettext("yes") if value else gettext("no")
    if name.endswith("_at"):
        try:
            return dt.datetime.fromisoformat(str(value)).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return str(value)
    if name == "cd3_cells_total":
        return f"{Decimal(str(value)):,}"
    return str(value)


class IdentityNotCorrectable(BatchError):
    """A correction tried to change what binds the bag to the patient."""

    status_code = 409
    default_message = gettext_noop(
        "The DIN, the bag's label scan and the patient bind the bag to the patient: they cannot be corrected. A wrong "
        "identity is a chain-of-identity event, not a typing error. Nothing was changed: quarantine the bag and raise "
        "a deviation."
    )


def _check_request(changes, reason, expected_version) -> str:
    if not isinstance(changes, Mapping):
        raise InvalidInput(gettext_noop("The form is out of date: reload the page."))
    if set(changes) & IDENTITY_FIELDS:
        raise IdentityNotCorrectable()
    unknown = sorted(str(name) for name in set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise InvalidInput(gettext_noop("These values of an intake cannot be corrected: %(fields)s."),
                           params={"fields": ", ".join(unknown)[:200]})
    reason = clean_text(reason, field=gettext_noop("Reason for the correction"), max_length=REASON_MAX_LENGTH)
    if not reason:
        raise ReasonRequired(gettext_noop("A correction needs a reason (e.g. “typing error: 5.0 °C written as "
                                          "50 °C”)."), field="reason")
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise StaleRecord(gettext_noop("The form is incomplete: reload the page."))
    return reason


def _check_still_correctable(intake: ApheresisIntake, order: Order, batch: Batch | None) -> None:
    din = intake.donation.din_display
    decision = (Signature.objects.filter(object_id=str(intake.pk), voided_at__isnull=True,
                                         content_type__app_label="batches", content_type__model="apheresisintake")
                .order_by("signed_at").first())
    if intake.outcome == IntakeOutcome.REJECTED or decision is not None:
        raise InvalidTransition(
            gettext_noop("A QP signed the decision on the intake of %(din)s (%(outcome)s) on the values as recorded: "
                         "they can no longer be corrected here, since the correction would void that decision. Nothing "
                         "was changed; record the correct value in the deviation's investigation."),
            params={"din": din, "outcome": intake.get_outcome_display().lower()})
    if intake.outcome not in CORRECTABLE_OUTCOMES or order.status in (OrderStatus.CANCELLED, OrderStatus.FAILED):
        raise InvalidTransition(gettext_noop("Order %(order)s is %(status)s: its intake can no longer be corrected."),
                                params={"order": order.number, "status": order.get_status_display().lower()})
    if batch is not None and (
        batch.state not in CORRECTABLE_BATCH_STATES
        or (batch.state == BatchState.ON_HOLD and batch.state_before_hold not in CORRECTABLE_BATCH_STATES)
    ):
        raise InvalidTransition(
            gettext_noop("Batch %(batch)s is %(state)s: its record is certified or closed, so the intake of %(din)s can "
                         "no longer be corrected. Nothing was changed; raise a deviation instead."),
            params={"batch": batch.number, "state": batch.get_state_display().lower(), "din": din})


def intake_correction_blocker(intake: ApheresisIntake) -> InvalidTransition | None:
    """Why the intake can no longer be corrected (shown instead of the form), or None."""
    try:
        _check_still_correctable(intake, intake.donation.order,
                                 Batch.objects.filter(donation_id=intake.donation_id).first())
    except InvalidTransition as refusal:
        return refusal
    return None


def _newly_failed(before: dict, after: dict) -> list[str]:
    """Criteria failing after the correction that no decision covered: they were met, or
    their failing value changed."""
    return [key for key, item in after.items() if not item["met"] and before.get(key) != item]


def intake_correct(
    *, actor, intake: ApheresisIntake, changes: Mapping[str, Any], reason: str, password: str,
    expected_version: int, request: HttpRequest | None = None,
) -> IntakeCorrection:
    """Correct measured values of a recorded intake: the original stays visible, the
    corrector signs with a reason, the criteria are evaluated again, and a correction
    that makes accepted material fail its criteria raises a major deviation."""
    require_site_perm(actor, intake.site, SitePerm.EXECUTE, action=gettext_noop("correct apheresis intakes"))
    reason = _check_request(changes, reason, expected_version)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=intake)
    now = timezone.now()
    with transaction.atomic():
        # The batch first, then the order, as a release locks them: the other order could deadlock with it.
        batch = Batch.objects.select_for_update().filter(donation_id=intake.donation_id).first()
        locked = ApheresisIntake.objects.select_for_update().select_related("donation", "site").get(pk=intake.pk)
        order = Order.objects.select_for_update().select_related("product").get(pk=locked.donation.order_id)
        if locked.version != expected_version:
            raise StaleRecord(gettext_noop("The intake of %(din)s was changed since you opened it: nothing was saved. "
                                           "Reload and check the current values before correcting."),
                              params={"din": locked.donation.din_display})
        _check_still_correctable(locked, order, batch)
        before = {name: getattr(locked, name) for name in CORRECTABLE_FIELDS}
        after = intake_values_clean({**before, **changes}, now=now)
        corrected = {name: {"old": before[name], "new": after[name]} for name in CORRECTABLE_FIELDS
                     if after[name] != before[name]}
        if not corrected:
            raise InvalidInput(gettext_noop("Nothing changed: the corrected values are the ones recorded."))
        evaluation = intake_evaluate(intake_criteria_for(locked.site, order.product), **{
            name: after[name] for name in ("cd3_cells_total", "transport_temperature_c", "collection_ended_at",
                                           "received_at", "bag_intact")})
        judged_by = {k: v.get("limit") for k, v in (locked.evaluation or {}).items() if isinstance(v, dict)}
        if judged_by and judged_by != {k: v["limit"] for k, v in evaluation.items()}:
            raise InvalidTransition(
                gettext_noop("The acceptance criteria of %(product)s changed after the intake of %(din)s was judged: a "
                             "correction would judge it against other limits. Nothing was changed; raise a deviation "
                             "instead."),
                params={"product": order.product.name, "din": locked.donation.din_display})
        evaluation_before, outcome_before, meets_before = locked.evaluation, locked.outcome, locked.meets_criteria
        failed = _newly_failed(evaluation_before, evaluation) if outcome_before != IntakeOutcome.PENDING else []
        deviation = None
        if failed:
            deviation = deviation_raise(
                actor=actor, site=locked.site, source=DeviationSource.INTAKE, classification=DeviationClass.MAJOR,
                title=f"Apheresis {locked.donation.din_display} outside intake criteria after a correction",
                description="The corrected intake values do not meet: " + "; ".join(
                    f"{evaluation[key]['label']} {evaluation[key]['value']} (limit {evaluation[key]['limit']})"
                    for key in failed
                ) + f".\nThe material was accepted on the values as first recorded.\nReason for the correction: {reason}",
                batch=batch, donation=locked.donation,
            )
        for name, value in after.items():
            setattr(locked, name, value)
        locked.evaluation = evaluation
        locked.meets_criteria = all(item["met"] for item in evaluation.values())
        if deviation is not None:
            locked.outcome = IntakeOutcome.ACCEPTED_WITH_DEVIATION
            locked.deviation = locked.deviation or deviation
        locked.version += 1
        locked.save()
        locked.refresh_from_db()
        correction = IntakeCorrection.objects.create(
            site=locked.site, intake=locked, sequence=locked.corrections.count() + 1,
            changes=to_jsonable(corrected), evaluation_before=evaluation_before, evaluation_after=evaluation,
            outcome_before=outcome_before, outcome_after=locked.outcome, reason=reason, deviation=deviation,
            corrected_by=actor, corrected_at=now,
        )
        audit_changes: dict[str, Any] = dict(corrected)
        if locked.meets_criteria != meets_before:
            audit_changes["meets_criteria"] = {"old": meets_before, "new": locked.meets_criteria}
        if locked.outcome != outcome_before:
            audit_changes["outcome"] = {"old": outcome_before, "new": locked.outcome}
        audit_changes["evaluation"] = {"old": evaluation_before, "new": evaluation}
        audit_changes["correction"] = correction.sequence
        if deviation is not None:
            audit_changes["deviation"] = deviation.number
        audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=audit_changes, reason=reason)
        audit_record(actor=actor, action=Action.CREATE, obj=correction, changes=correction.signable_content(),
                     reason=reason)
        signatures_void_changed(actor=actor, obj=locked, reason=f"Intake corrected: {reason}")
        signature_apply(actor=actor, reauth=reauth, obj=correction, meaning=Meaning.PERFORMED,
                        comment=f"Correction of the intake: {reason}"[:REASON_MAX_LENGTH])
    intake.refresh_from_db()
    return correction
