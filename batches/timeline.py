"""The chain of identity of one donation as a timeline, collection to infusion.

Everything that happened to the patient's material, in the order it happened: the
DIN issued, labels printed / applied / destroyed, each custody scan with where and
at what temperature, the intake, its corrections (old → new) and its decision, the batch, each fraction infused,
and every refused (blocked) scan from the audit trail. Reads only.

Texts are in the active language (the signed batch record builds the timeline once in
English for its embedded data and once in the reader's language for its pages); what
was typed or stored (notes, reasons, causes of refusals) is shown as stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import groupby

from django.utils.translation import gettext, ngettext

from batches.models import Donation, IntakeOutcome, LabelStatus
from batches.selectors import (
    batch_for_donation,
    blocked_event_list_for_donation,
    custody_event_list_for_donation,
    infusion_list_for_batch,
    intake_correction_list,
    intake_for_donation,
    label_list_for_donation,
)
from batches.services.intake import cells_text
from batches.services.intake_correction import FIELD_LABELS, stored_value_text
from carmfg.esign.selectors import signatures_for_record
from carmfg.numbers import localize_number_text


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str  # registered, labels, custody, intake, correction, decision, batch, infusion, blocked
    title: str
    who: str
    where: str = ""
    temperature_c: Decimal | None = None
    scanned: str = ""
    result: str = ""  # "matched", "blocked" or ""
    details: list[str] = field(default_factory=list)


def _name(user) -> str:
    if user is None:
        return gettext("system")
    return user.get_full_name() or user.get_username()


def _local(moment: dt.datetime, zone) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def coi_timeline(donation: Donation) -> list[Entry]:
    entries: list[Entry] = []
    zone = donation.site.zone
    order = donation.order
    entries.append(Entry(
        at=donation.created_at, kind="registered", title=gettext("Collection registered, DIN issued"),
        who=_name(donation.registered_by),
        details=[f"DIN {donation.din_display}", gettext("Order %(number)s") % {"number": order.number},
                 gettext("Day of apheresis %(date)s") % {"date": f"{donation.collection_date:%Y-%m-%d}"}
                 if donation.collection_date else ""],
    ))
    labels = list(label_list_for_donation(donation))
    by_job = sorted(labels, key=lambda lb: (lb.printed_at, lb.pk))
    for (at, printer), job in groupby(by_job, key=lambda lb: (lb.printed_at, lb.printed_by)):
        codes = [lb.container_code for lb in job]
        printed = ngettext("Printed %(count)s label", "Printed %(count)s labels", len(codes)) % {"count": len(codes)}
        entries.append(Entry(at=at, kind="labels", title=printed,
                             who=_name(printer), details=[", ".join(codes)]))
    for label in labels:
        if label.status_changed_at is None:
            continue
        if label.status == LabelStatus.DESTROYED:
            title = gettext("Label %(code)s destroyed") % {"code": label.container_code}
            details = [gettext("Reason: %(reason)s") % {"reason": label.status_reason}]
        else:
            title = gettext("Label %(code)s applied to its %(container)s") % {
                "code": label.container_code, "container": gettext(label.get_container_type_display()).lower()}
            details = []
        entries.append(Entry(at=label.status_changed_at, kind="labels", title=title,
                             who=_name(label.status_changed_by), details=details))
    for event in custody_event_list_for_donation(donation):
        entries.append(Entry(
            at=event.performed_at, kind="custody", title=gettext(event.get_step_display()), who=_name(event.performed_by),
            where=event.location, temperature_c=event.temperature_c, scanned=event.scanned_code, result="matched",
            details=[gettext("Container %(code)s") % {"code": event.label.container_code} if event.label is not None
                     else "", event.note],
        ))
    intake = intake_for_donation(donation)
    decided_by = ""
    if intake is not None:
        failed = [gettext("%(label)s: %(value)s (limit %(limit)s)") % {
            "label": gettext(c["label"]), "value": localize_number_text(str(c["value"])),
            "limit": localize_number_text(str(c["limit"]))} for c in intake.evaluation.values() if not c["met"]]
        measured = gettext("%(volume)s mL, WBC %(wbc)s ×10³/µL, CD3+ %(cd3)s, %(temperature)s °C in transport") % {
            "volume": intake.volume_ml, "wbc": intake.wbc_10e3_per_ul, "cd3": cells_text(intake.cd3_cells_total),
            "temperature": intake.transport_temperature_c}
        entries.append(Entry(
            at=intake.recorded_at, kind="intake", title=gettext("Apheresis intake recorded"),
            who=_name(intake.recorded_by), result="",
            details=[
                gettext("Collected %(start)s to %(end)s, received %(received)s") % {
                    "start": _local(intake.collection_started_at, zone), "end": _local(intake.collection_ended_at, zone),
                    "received": _local(intake.received_at, zone)},
                localize_number_text(measured) + ", "
                + (gettext("bag intact") if intake.bag_intact else gettext("bag NOT intact")),
                gettext("Within all acceptance criteria") if intake.meets_criteria
                else gettext("Outside criteria: %(failed)s") % {"failed": "; ".join(failed)},
            ],
        ))
        for correction, signatures in intake_correction_list(intake):
            # The intake entry above shows the values as they stand; each correction says what was first written.
            changes = correction.changes if isinstance(correction.changes, dict) else {}
            entries.append(Entry(
                at=correction.corrected_at, kind="correction",
                title=gettext("Intake corrected (%(number)s)") % {"number": correction.sequence},
                who=next((v.signature.signer_name for v in signatures if v.is_valid), _name(correction.corrected_by)),
                details=[
                    *(gettext("%(label)s: %(old)s → %(new)s") % {
                        "label": gettext(FIELD_LABELS.get(name) or name),
                        "old": localize_number_text(stored_value_text(name, change.get("old"), zone)),
                        "new": localize_number_text(stored_value_text(name, change.get("new"), zone))}
                      for name, change in changes.items() if isinstance(change, dict)),
                    gettext("Reason: %(reason)s") % {"reason": correction.reason},
                    gettext("Outcome: %(old)s → %(new)s") % {
                        "old": gettext(IntakeOutcome(correction.outcome_before).label).lower(),
                        "new": gettext(IntakeOutcome(correction.outcome_after).label).lower()}
                    if correction.outcome_before != correction.outcome_after else "",
                    gettext("Deviation %(number)s") % {"number": correction.deviation.number}
                    if correction.deviation else "",
                ],
            ))
        if intake.outcome in (IntakeOutcome.ACCEPTED_WITH_DEVIATION, IntakeOutcome.REJECTED):
            for view in signatures_for_record(intake):
                sig = view.signature
                decided_by = sig.signer_name
                entries.append(Entry(
                    at=sig.signed_at, kind="decision",
                    title=gettext("Intake: %(outcome)s") % {"outcome": gettext(intake.get_outcome_display()).lower()},
                    who=sig.signer_name,
                    details=[gettext("Reason: %(reason)s") % {"reason": intake.decision_reason},
                             gettext("Deviation %(number)s") % {"number": intake.deviation.number}
                             if intake.deviation else ""],
                ))
    batch = batch_for_donation(donation)
    if batch is not None:
        # Made by the acceptance: the technician's intake within criteria, or the QP's signed decision.
        accepted_by = decided_by or (_name(intake.recorded_by) if intake is not None else gettext("system"))
        entries.append(Entry(
            at=batch.created_at, kind="batch",
            title=gettext("Batch %(number)s created on acceptance") % {"number": batch.number},
            who=accepted_by,
            details=[gettext("Pinned to %(title)s v%(version)s") % {"title": batch.mbr.title, "version": batch.mbr.version},
                     gettext("Now %(state)s") % {"state": gettext(batch.get_state_display()).lower()}],
        ))
        for infusion in infusion_list_for_batch(batch):
            entries.append(Entry(
                at=infusion.infused_at, kind="infusion",
                title=gettext("Fraction %(number)s infused (%(percent)s %%)") % {
                    "number": infusion.fraction_number,
                    "percent": localize_number_text(str(infusion.fraction_percent.normalize()))},
                who=_name(infusion.recorded_by), scanned=infusion.bag_scanned_code, result="matched",
                details=[gettext("Bag and wristband matched the order"), infusion.note],
            ))
    for refused in blocked_event_list_for_donation(donation):
        changes = refused.changes or {}
        context = changes.get("context", "")
        step = changes.get("step", "")
        entries.append(Entry(
            at=refused.occurred_at, kind="blocked",
            title=gettext("%(context)s refused") % {"context": context.capitalize()}
            + (f" ({step.replace('_', ' ')})" if step else ""),
            who=refused.actor_name or refused.actor_username or gettext("system"), scanned=changes.get("scanned", ""),
            result="blocked",
            details=[changes.get("cause", ""), gettext("Expected %(code)s") % {"code": changes.get("expected", "")}],
        ))
    entries = [replace(entry, details=[d for d in entry.details if d]) for entry in entries]
    return sorted(entries, key=lambda e: e.at)
