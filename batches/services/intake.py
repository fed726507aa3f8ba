"""Apheresis intake: the GMP facility receives a patient's cells and decides.

The receiving technician records the collection and receipt times, transport
temperature, volume, WBC, total CD3+ cells, bag integrity and the scan of the bag's
label (which must be this donation's apheresis bag: anything else blocks, as at any
custody step). The server evaluates the site's acceptance criteria for the product:

* within criteria: accepted, and the batch is created, pinned to the product's
  effective master batch record (no effective MBR: refused, nothing recorded);
* outside criteria: pending, until a QP signs either "accepted with deviation"
  (a deviation is raised) or "rejected" (the order fails, countably), with a reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.exceptions import NotReady
from batches.models import (
    ApheresisIntake,
    Batch,
    BatchFailureReason,
    BatchState,
    ContainerType,
    CustodyStep,
    DeviationClass,
    DeviationSource,
    Donation,
    IntakeCriteria,
    IntakeOutcome,
    Order,
    OrderStatus,
)
from batches.numbering import formatted_number
from batches.scans import shown
from batches.selectors import mbr_effective_for
from batches.services.custody import (
    Refusal,
    clean_temperature,
    custody_record_matched,
    identify_label,
    refuse,
)
from batches.services.deviations import deviation_raise
from batches.services.patients import order_set_status
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.esign.models import Meaning
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import InvalidInput, InvalidTransition, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text
from carmfg.texts import Text

# The server's clock decides; a workstation a little ahead is tolerated, no more.
CLOCK_TOLERANCE = dt.timedelta(minutes=2)
MAX_COLLECTION_HOURS = 12
RECEIPT_LOCATION = "GMP facility, goods receipt"


def intake_criteria_for(site, product) -> IntakeCriteria:
    """The site's criteria for the product, or the defaults (≥ 1×10⁹ CD3+, 2–8 °C, ≤ 24 h)."""
    return IntakeCriteria.objects.filter(site=site, product=product).first() or IntakeCriteria(site=site, product=product)


def _number(value, *, field: str, label: str, low: Decimal, high: Decimal, places: int, low_open: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidInput(gettext_noop("%(field)s: expected a number."), params={"field": Text(label)}, field=field)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(gettext_noop("%(field)s: expected a number."), params={"field": Text(label)}, field=field) from None
    # NaN and infinity are refused before any comparison (a comparison with NaN raises).
    too_low = not number.is_finite() or (number <= low if low_open else number < low)
    if too_low or number > high:
        message = (gettext_noop("%(field)s: must be more than %(low)s and at most %(high)s.") if low_open
                   else gettext_noop("%(field)s: must be at least %(low)s and at most %(high)s."))
        raise InvalidInput(message, params={"field": Text(label), "low": f"{low:,}", "high": f"{high:,}"}, field=field)
    return number.quantize(Decimal(1).scaleb(-places))


CRITERIA_FIELDS = ("min_cd3_cells", "min_temperature_c", "max_temperature_c", "max_hours_collection_to_receipt")


def intake_criteria_set(*, actor, product, reason: str, password: str, request: HttpRequest | None = None,
                        **values) -> IntakeCriteria:
    """A site administrator sets the apheresis acceptance criteria of a product at the site:
    signed ("Approved") with a reason, old and new values audited, the previous signature
    voided. Intakes already recorded keep the values they were judged by."""
    require_site_perm(actor, product.site, SitePerm.ADMIN, action=gettext_noop("set intake acceptance criteria"))
    if set(values) != set(CRITERIA_FIELDS):
        raise InvalidInput(gettext_noop("The form is out of date (criteria missing). Reload the page."))
    reason = clean_text(reason, field=gettext_noop("reason"), max_length=REASON_MAX_LENGTH, required=True)
    cleaned = {
        "min_cd3_cells": _number(values["min_cd3_cells"], field="min_cd3_cells", label=gettext_noop("Minimum CD3+ cells"),
                                 low=Decimal(0), high=Decimal("1e13"), places=0, low_open=True),
        "min_temperature_c": _number(values["min_temperature_c"], field="min_temperature_c",
                                     label=gettext_noop("Lowest transport temperature"), low=Decimal(-200), high=Decimal(60), places=1),
        "max_temperature_c": _number(values["max_temperature_c"], field="max_temperature_c",
                                     label=gettext_noop("Highest transport temperature"), low=Decimal(-200), high=Decimal(60), places=1),
        "max_hours_collection_to_receipt": _number(
            values["max_hours_collection_to_receipt"], field="max_hours_collection_to_receipt",
            label=gettext_noop("Longest time from collection to receipt (h)"), low=Decimal(0), high=Decimal(168), places=1,
            low_open=True),
    }
    if cleaned["min_temperature_c"] >= cleaned["max_temperature_c"]:
        raise InvalidInput(gettext_noop("Transport temperature: the lowest must be below the highest."),
                           field="max_temperature_c")
    reauth = signature_reauthenticate(actor=actor, password=password, request=request)
    with transaction.atomic():
        criteria = IntakeCriteria.objects.select_for_update().filter(site=product.site, product=product).first()
        created = criteria is None
        if criteria is None:
            criteria = IntakeCriteria(site=product.site, product=product)
        before = {name: getattr(criteria, name) for name in CRITERIA_FIELDS}
        changes = {name: {"old": before[name], "new": new} for name, new in cleaned.items() if Decimal(before[name]) != new}
        if not changes:
            raise InvalidInput(gettext_noop("Nothing was changed."))
        for name, new in cleaned.items():
            setattr(criteria, name, new)
        criteria.save()
        audit_record(actor=actor, action=Action.CREATE if created else Action.UPDATE, obj=criteria, changes=changes,
                     reason=reason)
        signatures_void_changed(actor=actor, obj=criteria, reason=f"Criteria changed: {reason}")
        signature_apply(actor=actor, reauth=reauth, obj=criteria, meaning=Meaning.APPROVED, comment=reason)
    return criteria


def _moment(value, *, field: str, label: str, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise InvalidInput(gettext_noop("%(field)s: expected a date and time."), params={"field": Text(label)}, field=field)
    if value > now + CLOCK_TOLERANCE:
        raise InvalidInput(gettext_noop("%(field)s: is in the future."), params={"field": Text(label)}, field=field)
    return value


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def cells_text(number: Decimal | int) -> str:
    """``3.2 × 10⁹``: how cell counts are written and read."""
    number = Decimal(str(number))
    if number == 0:
        return "0"
    exponent = number.adjusted()
    mantissa = (number.scaleb(-exponent)).quantize(Decimal("0.01")).normalize()
    return f"{mantissa:f} × 10{str(exponent).translate(_SUPERSCRIPT)}"


def intake_evaluate(criteria: IntakeCriteria, *, cd3_cells_total: Decimal, transport_temperature_c: Decimal,
                    collection_ended_at: dt.datetime, received_at: dt.datetime, bag_intact: bool) -> dict:
    """Each criterion with the value, the limit and whether it is met (stored as is)."""
    hours = Decimal((received_at - collection_ended_at).total_seconds()) / Decimal(3600)
    hours = hours.quantize(Decimal("0.1"))
    return {
        "cd3_cells_total": {
            "label": "CD3+ cells (total)", "value": cells_text(cd3_cells_total),
            "limit": f"≥ {cells_text(criteria.min_cd3_cells)}",
            "met": cd3_cells_total >= criteria.min_cd3_cells,
        },
        "transport_temperature_c": {
            "label": "Transport temperature", "value": f"{transport_temperature_c} °C",
            "limit": f"{criteria.min_temperature_c} to {criteria.max_temperature_c} °C",
            "met": criteria.min_temperature_c <= transport_temperature_c <= criteria.max_temperature_c,
        },
        "hours_collection_to_receipt": {
            "label": "End of collection to receipt", "value": f"{hours} h",
            "limit": f"≤ {criteria.max_hours_collection_to_receipt} h",
            "met": hours <= criteria.max_hours_collection_to_receipt,
        },
        "bag_intact": {
            "label": "Bag integrity", "value": "intact" if bag_intact else "NOT intact", "limit": "intact",
            "met": bool(bag_intact),
        },
    }


def intake_content(intake: ApheresisIntake) -> dict:
    return {**intake.signable_content(), "din": intake.donation.din, "evaluation": intake.evaluation,
            "meets_criteria": intake.meets_criteria, "version": intake.version}


def _batch_create(*, actor, intake: ApheresisIntake, order: Order) -> Batch:
    """The batch of an accepted intake, pinned to the effective MBR version now."""
    mbr = mbr_effective_for(order.product)
    if mbr is None:
        raise NotReady(
            gettext_noop("No master batch record of %(product)s is effective at this site: the apheresis cannot be "
                         "accepted and no batch can be made. Nothing was recorded; ask the site administrator to make "
                         "an approved MBR effective."),
            params={"product": str(order.product)},
        )
    batch = Batch.objects.create(
        site=order.site, number=formatted_number(site=order.site, prefix="B"), order=order, donation=intake.donation,
        product=order.product, mbr=mbr, state=BatchState.PLANNED, created_at=timezone.now(),
    )
    audit_record(actor=actor, action=Action.CREATE, obj=batch, changes={
        "number": batch.number, "order": order.number, "din": intake.donation.din, "product": order.product.code,
        "mbr": {"id": mbr.pk, "title": mbr.title, "version": mbr.version}, "state": batch.state,
        "intake_outcome": intake.outcome,
    })
    return batch


def intake_values_clean(values: Mapping[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """An intake's measured values checked and typed, as recorded (``intake_record``) and
    as corrected (``intake_correct``): times in order and not in the future, a plausible
    apheresis, numbers in range, the bag's integrity answered."""
    started = _moment(values["collection_started_at"], field="collection_started_at",
                      label=gettext_noop("Collection start"), now=now)
    ended = _moment(values["collection_ended_at"], field="collection_ended_at",
                    label=gettext_noop("Collection end"), now=now)
    received = _moment(values["received_at"], field="received_at", label=gettext_noop("Receipt"), now=now)
    if ended <= started:
        raise InvalidInput(gettext_noop("Collection end: must be after the collection start."),
                           field="collection_ended_at")
    if ended - started > dt.timedelta(hours=MAX_COLLECTION_HOURS):
        raise InvalidInput(gettext_noop("Collection end: an apheresis longer than %(hours)s h is not "
                                        "plausible; check the dates."),
                           params={"hours": MAX_COLLECTION_HOURS}, field="collection_ended_at")
    if received < ended:
        raise InvalidInput(gettext_noop("Receipt: must be after the end of collection."), field="received_at")
    temperature = clean_temperature(values["transport_temperature_c"], required=True, field="transport_temperature_c")
    assert temperature is not None  # noqa: S101  (required=True above)
    cleaned = {
        "collection_started_at": started, "collection_ended_at": ended, "received_at": received,
        "transport_temperature_c": temperature,
        "volume_ml": _number(values["volume_ml"], field="volume_ml", label=gettext_noop("Volume (mL)"),
                             low=Decimal(0), high=Decimal(5000), places=1, low_open=True),
        "wbc_10e3_per_ul": _number(values["wbc_10e3_per_ul"], field="wbc_10e3_per_ul",
                                   label=gettext_noop("WBC (×10³/µL)"), low=Decimal(0), high=Decimal(10000),
                                   places=2, low_open=True),
        "cd3_cells_total": _number(values["cd3_cells_total"], field="cd3_cells_total",
                                   label=gettext_noop("CD3+ cells (total)"), low=Decimal(0), high=Decimal("1e13"),
                                   places=0, low_open=True),
    }
    if not isinstance(values["bag_intact"], bool):
        raise InvalidInput(gettext_noop("Bag integrity: answer yes or no."), field="bag_intact")
    cleaned["bag_intact"] = values["bag_intact"]
    return cleaned


def intake_record(
    *, actor, donation: Donation, collection_started_at, collection_ended_at, received_at, transport_temperature_c,
    volume_ml, wbc_10e3_per_ul, cd3_cells_total, bag_intact, label_scanned_code: str,
    location: str = RECEIPT_LOCATION,
) -> ApheresisIntake:
    """Record the receipt of apheresis material and evaluate the acceptance criteria.
    Within criteria it is accepted and the batch is created; outside, it waits for a QP."""
    site = donation.site
    require_site_perm(actor, site, SitePerm.EXECUTE, action=gettext_noop("record apheresis intake"))
    now = timezone.now()
    try:
        with transaction.atomic():
            locked = Donation.objects.select_for_update().select_related("order__product", "order__patient").get(
                pk=donation.pk)
            order = Order.objects.select_for_update().select_related("product", "patient").get(pk=locked.order_id)
            if ApheresisIntake.objects.filter(donation=locked).exists():
                raise InvalidTransition(gettext_noop("The intake of %(din)s is already recorded."),
                                        params={"din": locked.din_display})
            if order.status != OrderStatus.COLLECTED:
                raise InvalidTransition(gettext_noop("Order %(order)s is %(status)s: no intake can be recorded."),
                                        params={"order": order.number, "status": order.get_status_display().lower()})
            # The identity check comes first: a wrong bag is refused whatever else is typed.
            label = identify_label(donation=locked, scanned_code=label_scanned_code,
                                   containers={ContainerType.APHERESIS_BAG})
            values = intake_values_clean({
                "collection_started_at": collection_started_at, "collection_ended_at": collection_ended_at,
                "received_at": received_at, "transport_temperature_c": transport_temperature_c,
                "volume_ml": volume_ml, "wbc_10e3_per_ul": wbc_10e3_per_ul, "cd3_cells_total": cd3_cells_total,
                "bag_intact": bag_intact,
            }, now=now)
            started, ended, received = (values["collection_started_at"], values["collection_ended_at"],
                                        values["received_at"])
            temperature, volume, wbc = (values["transport_temperature_c"], values["volume_ml"],
                                        values["wbc_10e3_per_ul"])
            cd3 = values["cd3_cells_total"]
            evaluation = intake_evaluate(intake_criteria_for(site, order.product), cd3_cells_total=cd3,
                                         transport_temperature_c=temperature, collection_ended_at=ended,
                                         received_at=received, bag_intact=bag_intact)
            meets = all(item["met"] for item in evaluation.values())
            intake = ApheresisIntake.objects.create(
                site=site, donation=locked, collection_started_at=started, collection_ended_at=ended,
                received_at=received, transport_temperature_c=temperature, volume_ml=volume, wbc_10e3_per_ul=wbc,
                cd3_cells_total=cd3, bag_intact=bag_intact, label_scanned_code=clean_text(shown(label_scanned_code), field=gettext_noop("label_scanned_code"), max_length=200),
                evaluation=evaluation, meets_criteria=meets,
                outcome=IntakeOutcome.ACCEPTED if meets else IntakeOutcome.PENDING,
                recorded_by=actor, recorded_at=now,
            )
            intake.refresh_from_db()
            audit_record(actor=actor, action=Action.CREATE, obj=intake, changes=intake_content(intake))
            custody_record_matched(actor=actor, donation=locked, label=label, step=CustodyStep.RECEIPT,
                                   scanned_code=label_scanned_code, location=location, temperature_c=temperature,
                                   note="Scanned with the apheresis intake")
            if meets:
                _batch_create(actor=actor, intake=intake, order=order)
                order_set_status(actor=actor, order=order, status=OrderStatus.IN_MANUFACTURING)
    except Refusal as refusal:
        refuse(actor=actor, donation=donation, refusal=refusal, context="apheresis intake", step=CustodyStep.RECEIPT)
    return intake


def _decision_checks(actor, intake: ApheresisIntake, reason: str, expected_version: int) -> str:
    require_site_perm(actor, intake.site, SitePerm.CERTIFY, action=gettext_noop("decide on apheresis outside its criteria"))
    reason = clean_text(reason, field=gettext_noop("reason"), max_length=REASON_MAX_LENGTH, required=True)
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise InvalidInput(gettext_noop("The form is incomplete: reload the page."))
    return reason


def _lock_pending(intake: ApheresisIntake, expected_version: int) -> tuple[ApheresisIntake, Order]:
    locked = ApheresisIntake.objects.select_for_update().select_related("donation", "site").get(pk=intake.pk)
    order = Order.objects.select_for_update().select_related("product", "patient").get(pk=locked.donation.order_id)
    if locked.version != expected_version:
        raise StaleRecord(gettext_noop("The intake of %(din)s was changed since you opened it: nothing was saved. "
                                       "Reload to see the current decision."),
                          params={"din": locked.donation.din_display})
    if locked.outcome != IntakeOutcome.PENDING:
        raise InvalidTransition(gettext_noop("The intake is already decided: %(outcome)s."),
                                params={"outcome": locked.get_outcome_display().lower()})
    return locked, order


def intake_accept_with_deviation(
    *, actor, intake: ApheresisIntake, password: str, reason: str, expected_version: int,
    classification: str = DeviationClass.MAJOR, request: HttpRequest | None = None,
) -> ApheresisIntake:
    """A QP accepts apheresis outside its criteria: signed, with a reason; a deviation is
    raised and the batch is created."""
    reason = _decision_checks(actor, intake, reason, expected_version)
    if classification not in DeviationClass.values:
        raise InvalidInput(gettext_noop("Unknown deviation class %(class)s."), params={"class": repr(classification)},
                           field="classification")
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=intake)
    with transaction.atomic():
        locked, order = _lock_pending(intake, expected_version)
        failed = [item for item in locked.evaluation.values() if not item["met"]]
        deviation = deviation_raise(
            actor=actor, site=locked.site, source=DeviationSource.INTAKE, classification=classification,
            title=f"Apheresis {locked.donation.din_display} accepted outside intake criteria",
            description=("Criteria not met: " + "; ".join(
                f"{item['label']} {item['value']} (limit {item['limit']})" for item in failed
            ) if failed else (  # a pending intake whose corrected values meet them: still the QP's decision
                "Criteria met on the values corrected after recording (see the intake's corrections)"
            )) + f".\nQP decision: {reason}",
            donation=locked.donation,
        )
        locked.outcome = IntakeOutcome.ACCEPTED_WITH_DEVIATION
        locked.decision_reason = reason
        locked.deviation = deviation
        locked.version += 1
        locked.save(update_fields=["outcome", "decision_reason", "deviation", "version"])
        batch = _batch_create(actor=actor, intake=locked, order=order)
        deviation.batch = batch
        deviation.save(update_fields=["batch"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked, reason=reason, changes={
            "outcome": {"old": IntakeOutcome.PENDING, "new": locked.outcome}, "deviation": deviation.number,
            "batch": batch.number,
        })
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.APPROVED, comment=reason,
                        excluded_signers=[locked.recorded_by_id],
                        excluded_reason="Who recorded the intake cannot also accept it.")
        order_set_status(actor=actor, order=order, status=OrderStatus.IN_MANUFACTURING)
    intake.refresh_from_db()
    return locked


def intake_reject(
    *, actor, intake: ApheresisIntake, password: str, reason: str, expected_version: int,
    request: HttpRequest | None = None,
) -> ApheresisIntake:
    """A QP rejects the apheresis: signed, with a reason. The order fails with reason
    "apheresis rejected", so missed patients are counted."""
    reason = _decision_checks(actor, intake, reason, expected_version)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=intake)
    with transaction.atomic():
        locked, order = _lock_pending(intake, expected_version)
        locked.outcome = IntakeOutcome.REJECTED
        locked.decision_reason = reason
        locked.version += 1
        locked.save(update_fields=["outcome", "decision_reason", "version"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked, reason=reason,
                     changes={"outcome": {"old": IntakeOutcome.PENDING, "new": locked.outcome}})
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.REJECTED, comment=reason,
                        excluded_signers=[locked.recorded_by_id],
                        excluded_reason="Who recorded the intake cannot also decide on it.")
        order_set_status(actor=actor, order=order, status=OrderStatus.FAILED,
                         failure_reason=BatchFailureReason.APHERESIS_REJECTED, reason=reason)
    intake.refresh_from_db()
    return locked
