"""Chain of custody: every handoff of a patient's material is a scan of its label.

The server, never the browser, decides whether the scanned label is the one the step
expects: this donation's DIN *and* a container of the expected type, labelled and
applied. Anything else (another patient's bag, the wrong container, a destroyed or
unknown label, an unreadable scan) **blocks**: nothing is recorded, an
``IdentityMismatch`` is raised and a ``blocked`` audit event is written in its own
transaction, so the attempt stays in the trail although the step was refused.

Intake (receipt) and infusion (bedside) use the same check through
:func:`identify_label` and :func:`refuse`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.exceptions import IdentityMismatch
from batches.models import ContainerType, CustodyEvent, CustodyStep, Donation, Label, LabelStatus
from batches.scans import ScanError, parse_label_scan, shown
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import GMPError, InvalidInput, PermissionRefused
from carmfg.textinput import clean_text
from carmfg.texts import Lowered, Text, joined

LOCATION_MAX = 200
NOTE_MAX = 2000
# Cryogenic storage (LN2 vapour) to a hot day on a trolley: anything outside is a typo.
TEMPERATURE_MIN_C = Decimal("-200")
TEMPERATURE_MAX_C = Decimal("60")

# Who may scan at a handoff: people on the floor, in QC, and coordinators on the ward.
SCAN_PERMS = (SitePerm.EXECUTE, SitePerm.VERIFY, SitePerm.QC, SitePerm.PATIENTS)

A = ContainerType


@dataclass(frozen=True)
class StepRule:
    containers: frozenset[str]
    asks_temperature: bool
    what: str  # shown on the scan page: what to scan (marked for translation)


STEP_RULES: dict[str, StepRule] = {
    CustodyStep.COLLECTION: StepRule(frozenset({A.APHERESIS_BAG}), False, gettext_noop("the apheresis bag, at the end of collection")),
    CustodyStep.TRANSPORT: StepRule(frozenset({A.APHERESIS_BAG}), True, gettext_noop("the apheresis bag, as it leaves in its transport box")),
    CustodyStep.RECEIPT: StepRule(frozenset({A.APHERESIS_BAG}), True, gettext_noop("the apheresis bag, as it arrives at the GMP facility")),
    CustodyStep.MANUFACTURING: StepRule(
        frozenset({A.APHERESIS_BAG, A.CULTURE_VESSEL}), False, gettext_noop("the bag or culture vessel going into the clean room")
    ),
    CustodyStep.QC_HANDOVER: StepRule(frozenset({A.QC_SAMPLE}), False, gettext_noop("each QC sample handed to the laboratory")),
    CustodyStep.STORAGE: StepRule(frozenset({A.FINAL_PRODUCT_BAG}), True, gettext_noop("the final product bag, into storage")),
    CustodyStep.DISPATCH: StepRule(frozenset({A.FINAL_PRODUCT_BAG}), True, gettext_noop("the final product bag, leaving for the ward")),
    CustodyStep.BEDSIDE: StepRule(frozenset({A.FINAL_PRODUCT_BAG}), False, gettext_noop("the final product bag, at the bedside")),
}


# The audit ``changes`` key, on a blocked event of the *other* patient's donation, that
# says its label turned up at this donation's hand-over: {"din": ..., "patient": ...} of
# the hand-over that refused it. Readers (the release checklist) use this key, not the
# wording of the cause.
SEEN_AT_OTHER_HANDOVER = "seen_at_handover_of"


class Refusal(Exception):
    """Raised inside a business transaction to roll it back; :func:`refuse` then audits
    the attempt in a transaction of its own and raises the user-facing error."""

    def __init__(self, *, cause: Text, expected: str | Text, scanned: str | Text,
                 other_donation: Donation | None = None, error: type[GMPError] | None = None,
                 message: Text | None = None, scanned_din: str = "") -> None:
        # Why it was refused, what was expected and what was scanned: English in
        # ``cause``, ``expected`` and ``scanned`` (the audit event), translatable in the phrases.
        self.cause_phrase = cause
        self.cause = cause.message
        self.expected_phrase = expected if isinstance(expected, Text) else Text.literal(expected)
        self.scanned_phrase = scanned if isinstance(scanned, Text) else Text.literal(scanned)
        self.expected = self.expected_phrase.message
        self.scanned = self.scanned_phrase.message
        self.other_donation = other_donation
        # The 13-character DIN the scan carried, when it was readable.
        self.scanned_din = other_donation.din if other_donation is not None else scanned_din
        self.error = error
        self.message = message
        super().__init__(self.cause)


def _expected_what(containers: Iterable[str], label: Label | None = None,
                   fraction_number: int | None = None) -> Text:
    if label is not None:
        return Text("%(type)s %(code)s", {"type": Lowered(ContainerType(label.container_type).label),
                                          "code": label.container_code})
    kinds: list[Text] = [Lowered(label) for label in sorted(ContainerType(c).label for c in containers)]
    what = kinds[0] if len(kinds) == 1 else Text(
        gettext_noop("%(first)s or %(second)s"), {"first": joined(kinds[:-1], ", "), "second": kinds[-1]})
    if fraction_number is not None:
        what = Text(gettext_noop("%(what)s of fraction %(fraction)s"), {"what": what, "fraction": fraction_number})
    return what


def expected_phrase(donation: Donation, containers: Iterable[str], label: Label | None = None,
                    fraction_number: int | None = None) -> Text:
    """What a scan must name (the donation's DIN and the container), translatable."""
    return Text("%(din)s · %(what)s", {"din": donation.din_display,
                                       "what": _expected_what(containers, label, fraction_number)})


def expected_text(donation: Donation, containers: Iterable[str], label: Label | None = None,
                  fraction_number: int | None = None) -> str:
    return expected_phrase(donation, containers, label, fraction_number).message


def _scanned_text(scan_din, label: Label | None, code: str | None, raw: str) -> Text:
    if scan_din is None:
        return Text.literal(shown(raw))
    text = scan_din.din13[:5] + " " + scan_din.din13[5:7] + " " + scan_din.din13[7:] + f" [{scan_din.check}]"
    if label is not None:
        return Text("%(din)s · %(type)s %(code)s", {
            "din": text, "type": Lowered(ContainerType(label.container_type).label), "code": label.container_code})
    if code:
        return Text("%(din)s · %(code)s", {"din": text, "code": code})
    return Text(gettext_noop("%(din)s · no container code (DIN barcode only)"), {"din": text})


def identify_label(*, donation: Donation, scanned_code: str, containers: Iterable[str],
                   label: Label | None = None, fraction_number: int | None = None) -> Label:
    """The applied label of ``donation`` that ``scanned_code`` names, if it is one the
    step expects; raises :class:`Refusal` otherwise. Call inside the business
    transaction: the label row is locked, so it cannot be destroyed meanwhile."""
    containers = frozenset(containers)
    expected = expected_phrase(donation, containers, label, fraction_number)
    try:
        scan = parse_label_scan(scanned_code)
    except ScanError as exc:
        raise Refusal(cause=Text(gettext_noop("Unreadable scan: %(problem)s"), {"problem": Text.of(exc)}),
                      expected=expected, scanned=Text.literal(shown(scanned_code))) from None
    if scan.din.din13 != donation.din:
        other = Donation.objects.filter(site_id=donation.site_id, din=scan.din.din13).select_related("order__patient").first()
        cause = (
            Text(gettext_noop("This label belongs to another donation (patient %(patient)s)."),
                 {"patient": other.order.patient.pseudonym})
            if other is not None else Text(gettext_noop("This label belongs to another donation, unknown at this site."))
        )
        raise Refusal(cause=cause, expected=expected, scanned=_scanned_text(scan.din, None, scan.container_code, scanned_code),
                      other_donation=other, scanned_din=scan.din.din13)
    if scan.container_code is None:
        raise Refusal(
            cause=Text(gettext_noop("Only the DIN was scanned: it does not say which container this is. "
                                    "Scan the square DataMatrix code of the label.")),
            expected=expected, scanned=_scanned_text(scan.din, None, None, scanned_code),
            scanned_din=scan.din.din13,
        )
    found = (
        Label.objects.select_for_update()
        .filter(donation=donation, container_code=scan.container_code)
        .first()
    )
    scanned = _scanned_text(scan.din, found, scan.container_code, scanned_code)
    if found is None:
        raise Refusal(cause=Text(gettext_noop("No label %(code)s was ever printed for this donation."),
                                 {"code": scan.container_code}),
                      expected=expected, scanned=scanned, scanned_din=scan.din.din13)
    if found.status == LabelStatus.DESTROYED:
        raise Refusal(cause=Text(gettext_noop("Label %(code)s was destroyed: it must not be on any container."),
                                 {"code": found.container_code}),
                      expected=expected, scanned=scanned, scanned_din=scan.din.din13)
    if found.status != LabelStatus.APPLIED:
        raise Refusal(cause=Text(gettext_noop("Label %(code)s was printed but never recorded as applied to its "
                                              "container."), {"code": found.container_code}),
                      expected=expected, scanned=scanned, scanned_din=scan.din.din13)
    if found.container_type not in containers:
        raise Refusal(cause=Text(gettext_noop("Wrong container: this step takes the %(expected)s, not the %(found)s."),
                                 {"expected": _expected_what(containers, label, fraction_number),
                                  "found": found.get_container_type_display().lower()}),
                      expected=expected, scanned=scanned, scanned_din=scan.din.din13)
    if label is not None and found.pk != label.pk:
        raise Refusal(cause=Text(gettext_noop("Wrong container: %(expected)s was expected, %(found)s was scanned."),
                                 {"expected": label.container_code, "found": found.container_code}),
                      expected=expected, scanned=scanned, scanned_din=scan.din.din13)
    if fraction_number is not None and found.fraction_number is not None and found.fraction_number != fraction_number:
        raise Refusal(cause=Text(gettext_noop("Wrong bag: %(code)s holds fraction %(found)s, not fraction %(expected)s."),
                                 {"code": found.container_code, "found": found.fraction_number,
                                  "expected": fraction_number}),
                      expected=expected, scanned=scanned, scanned_din=scan.din.din13)
    return found


def _pseudonym(donation: Donation) -> str:
    return donation.order.patient.pseudonym


def _scanned_patient(donation: Donation, refusal: Refusal) -> str:
    """Whose material the scan named: empty when unreadable, or a DIN unknown at the site."""
    if refusal.other_donation is not None:
        return _pseudonym(refusal.other_donation)
    return _pseudonym(donation) if refusal.scanned_din == donation.din else ""


def refuse(*, actor, donation: Donation, refusal: Refusal, context: str, step: str = "") -> NoReturn:
    """Audit a refused attempt in its own transaction, then raise the user's error.

    Call *outside* the business transaction (after it rolled back), so the event is
    committed although the attempt changed nothing.
    """
    other = refusal.other_donation
    changes = {"context": context, "step": step, "expected": refusal.expected, "scanned": refusal.scanned,
               "cause": refusal.cause,
               # Structured identities, for readers that must not parse the wording above.
               "expected_din": donation.din, "expected_patient": _pseudonym(donation),
               "scanned_din": refusal.scanned_din, "scanned_patient": _scanned_patient(donation, refusal)}
    with transaction.atomic():
        audit_record(actor=actor, action=Action.BLOCKED, obj=donation, root=donation, changes=changes)
        if other is not None and other.pk != donation.pk:
            # The other patient's record shows where its material turned up.
            audit_record(actor=actor, action=Action.BLOCKED, obj=other, root=other,
                         changes={**changes, "cause": f"Scanned by mistake for donation {donation.din_display}.",
                                  SEEN_AT_OTHER_HANDOVER: {"din": donation.din, "patient": _pseudonym(donation)}})
    if refusal.error is not None:
        told = refusal.message or refusal.cause_phrase
        raise refusal.error(told.template, params=told.params)
    raise IdentityMismatch(
        expected=refusal.expected_phrase, scanned=refusal.scanned_phrase, cause=refusal.cause_phrase,
        message=BLOCKED_MESSAGE,
        params={"cause": refusal.cause_phrase, "expected": refusal.expected_phrase, "scanned": refusal.scanned_phrase},
    )


BLOCKED_MESSAGE = gettext_noop("%(cause)s Expected %(expected)s; scanned %(scanned)s. "
                               "The step is blocked: nothing was recorded.")


def can_scan(user, site) -> bool:
    return any(has_site_perm(user, site, perm) for perm in SCAN_PERMS)


def clean_temperature(value, *, required: bool, field: str = "temperature_c") -> Decimal | None:
    if value is None or value == "":
        if required:
            raise InvalidInput(gettext_noop("Temperature: this step records the temperature (°C)."), field=field)
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidInput(gettext_noop("Temperature: expected a number of °C."), field=field)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(gettext_noop("Temperature: expected a number of °C."), field=field) from None
    if not number.is_finite() or not TEMPERATURE_MIN_C <= number <= TEMPERATURE_MAX_C:
        raise InvalidInput(
            gettext_noop("Temperature: %(value)s °C is not plausible (allowed %(low)s to %(high)s °C)."),
            params={"value": value, "low": TEMPERATURE_MIN_C, "high": TEMPERATURE_MAX_C}, field=field,
        )
    return number.quantize(Decimal("0.1"))


def custody_scan(
    *, actor, donation: Donation, step: str, scanned_code: str, expected_container_type: str | None = None,
    label: Label | None = None, location: str = "", temperature_c=None, note: str = "",
) -> CustodyEvent:
    """Record one handoff if the scanned label is the one the step expects; otherwise
    block it (see the module docstring). Call outside any transaction."""
    if step not in STEP_RULES:
        raise InvalidInput(gettext_noop("Unknown custody step %(step)s."), params={"step": repr(step)}, field="step")
    rule = STEP_RULES[CustodyStep(step)]
    if not can_scan(actor, donation.site):
        raise PermissionRefused(gettext_noop("Your roles at %(site)s do not allow you to record custody scans."),
                                params={"site": str(donation.site)})
    containers = rule.containers
    if expected_container_type is not None:
        if expected_container_type not in ContainerType.values:
            raise InvalidInput(gettext_noop("Unknown container type %(type)s."),
                               params={"type": repr(expected_container_type)})
        containers = frozenset({expected_container_type})
    if label is not None and label.donation_id != donation.pk:
        raise InvalidInput(gettext_noop("The expected label belongs to another donation."))
    try:
        with transaction.atomic():
            Donation.objects.select_for_update().filter(pk=donation.pk).first()
            found = identify_label(donation=donation, scanned_code=scanned_code, containers=containers, label=label)
            event = CustodyEvent.objects.create(
                site=donation.site, donation=donation, label=found, step=step,
                scanned_code=clean_text(shown(scanned_code), field=gettext_noop("Scan"), max_length=200),
                performed_by=actor, performed_at=timezone.now(),
                location=clean_text(location, field=gettext_noop("Location"), max_length=LOCATION_MAX, required=True),
                temperature_c=clean_temperature(temperature_c, required=rule.asks_temperature),
                note=clean_text(note, field=gettext_noop("Note"), max_length=NOTE_MAX),
            )
            audit_record(actor=actor, action=Action.CREATE, obj=event, changes=custody_content(event))
    except Refusal as refusal:
        refuse(actor=actor, donation=donation, refusal=refusal, context="custody scan", step=step)
    return event


def custody_record_matched(*, actor, donation: Donation, label: Label, step: str, scanned_code: str,
                           location: str, temperature_c=None, note: str = "", at=None) -> CustodyEvent:
    """A handoff whose scan another service already matched (intake, infusion), in its
    transaction."""
    event = CustodyEvent.objects.create(
        site=donation.site, donation=donation, label=label, step=step,
        scanned_code=clean_text(shown(scanned_code), field=gettext_noop("Scan"), max_length=200),
        performed_by=actor, performed_at=at or timezone.now(),
        location=clean_text(location, field=gettext_noop("Location"), max_length=LOCATION_MAX, required=True),
        temperature_c=temperature_c, note=clean_text(note, field=gettext_noop("Note"), max_length=NOTE_MAX),
    )
    audit_record(actor=actor, action=Action.CREATE, obj=event, changes=custody_content(event))
    return event


def custody_content(event: CustodyEvent) -> dict:
    return {
        "step": event.step, "din": event.donation.din,
        "container": event.label.container_code if event.label is not None else "",
        "scanned_code": event.scanned_code, "location": event.location,
        "temperature_c": event.temperature_c, "note": event.note, "matched": True,
    }
