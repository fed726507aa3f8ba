"""Material lots: registered by the site administrator, released (or rejected) with a
signature by a QP or the site administrator, and used on steps by scanning their
barcode. An expired, quarantined or rejected lot is refused unless a deviation
permitting that lot on that step of that batch was approved by a QP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.exceptions import MaterialNotUsable, NotReady
from batches.models import Batch, LotStatus, MaterialLot, StepDefinition, StepKind
from batches.quantities import parse_decimal
from batches.services.deviations import deviation_permitting
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.esign.models import Meaning
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import InvalidInput, PermissionRefused, ReasonRequired, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text
from carmfg.texts import Text

VECTOR_TYPES = ("lentiviral_vector",)


def site_today(site) -> dt.date:
    """Expiry and due dates are days at the site, not in UTC."""
    return timezone.now().astimezone(site.zone).date()


def lot_problem_phrase(lot: MaterialLot, today: dt.date) -> Text | None:
    """Why ``lot`` may not be used today, translatable; None when it may."""
    if lot.status == LotStatus.REJECTED:
        return Text(gettext_noop("rejected"))
    if lot.expiry_date < today:
        return Text(gettext_noop("expired (expiry date %(date)s)"), {"date": f"{lot.expiry_date:%d %b %Y}"})
    if lot.status == LotStatus.QUARANTINE:
        return Text(gettext_noop("in quarantine (not released)"))
    return None


class LotRefused(MaterialNotUsable):
    """Carries the lot, so the page can offer to request a deviation for it."""

    def __init__(self, message: str, *, params: dict[str, Any] | None = None, lot: MaterialLot | None = None,
                 definition: StepDefinition | None = None):
        super().__init__(message, params=params, field="lot_barcode")
        self.lot = lot
        self.definition = definition


def _titer_needed(batch: Batch, definition: StepDefinition) -> bool:
    source = f"lot:{definition.code}:titer"
    return StepDefinition.objects.filter(stage__mbr_id=batch.mbr_id, kind=StepKind.CALCULATION).filter(
        calculation_inputs__icontains=source).exists() if definition.code else False


def lot_for_step(*, batch: Batch, definition: StepDefinition, barcode: str):
    """The lot behind a scanned barcode, and the approved deviation that permits it
    when the lot is not usable; raises ``MaterialNotUsable`` otherwise."""
    lot = MaterialLot.objects.filter(site=batch.site, barcode=barcode).first()
    if lot is None:
        raise LotRefused(gettext_noop("No lot with barcode “%(barcode)s” is registered at this site. "
                                      "Check the label, or ask the site administrator to register the lot."),
                         params={"barcode": barcode})
    if lot.material_type != definition.material_type:
        raise LotRefused(gettext_noop("%(lot)s is %(type)s; this step needs %(needed)s."),
                         params={"lot": str(lot), "type": lot.material_type.replace("_", " "),
                                 "needed": definition.material_type.replace("_", " ")}, lot=lot)
    problem = lot_problem_phrase(lot, site_today(batch.site))
    if problem is not None:
        deviation = deviation_permitting(batch=batch, definition=definition, material_lot=lot)
        if deviation is None:
            raise LotRefused(
                gettext_noop("%(lot)s is %(problem)s. Use another lot, or raise a deviation asking to use this one: "
                             "it may be used only after a QP approves it."),
                params={"lot": str(lot), "problem": problem}, lot=lot, definition=definition)
    else:
        deviation = None
    if lot.titer_tu_per_ml is None and _titer_needed(batch, definition):
        raise LotRefused(gettext_noop("%(lot)s has no titer on record, and the MOI is calculated from it. "
                                      "The site administrator must enter the titer from the certificate of analysis."),
                         params={"lot": str(lot)}, lot=lot)
    return lot, deviation


# --- maintaining lots ---------------------------------------------------------------------------


def _clean_lot_fields(*, material_type, name, lot_number, barcode, expiry_date, titer_tu_per_ml) -> dict:
    fields: dict[str, Any] = {
        "material_type": clean_text(material_type, field=gettext_noop("Material type"), max_length=60, required=True),
        "name": clean_text(name, field=gettext_noop("Name"), max_length=200, required=True),
        "lot_number": clean_text(lot_number, field=gettext_noop("Lot number"), max_length=64, required=True),
        "barcode": clean_text(barcode, field=gettext_noop("Barcode"), max_length=200, required=True),
    }
    if not isinstance(expiry_date, dt.date) or isinstance(expiry_date, dt.datetime):
        raise InvalidInput(gettext_noop("Expiry date: expected a date."), field="expiry_date")
    fields["expiry_date"] = expiry_date
    titer = None
    if titer_tu_per_ml not in (None, ""):
        titer = parse_decimal(titer_tu_per_ml, field="Titer")
        if titer <= 0 or titer != titer.to_integral_value():
            raise InvalidInput(gettext_noop("Titer: a whole number of transducing units per mL, more than zero."),
                               field="titer_tu_per_ml")
        titer = titer.quantize(Decimal(1))
    if fields["material_type"] in VECTOR_TYPES and titer is None:
        raise InvalidInput(gettext_noop("A vector lot needs its titer (TU/mL) from the certificate of analysis."),
                           field="titer_tu_per_ml")
    fields["titer_tu_per_ml"] = titer
    return fields


def material_lot_create(*, actor, site, material_type: str, name: str, lot_number: str, barcode: str,
                        expiry_date: dt.date, titer_tu_per_ml=None) -> MaterialLot:
    """Register a received lot; it is in quarantine until released."""
    require_site_perm(actor, site, SitePerm.ADMIN, action=gettext_noop("register material lots"))
    fields = _clean_lot_fields(material_type=material_type, name=name, lot_number=lot_number, barcode=barcode,
                               expiry_date=expiry_date, titer_tu_per_ml=titer_tu_per_ml)
    with transaction.atomic():
        if MaterialLot.objects.filter(site=site, barcode=fields["barcode"]).exists():
            raise InvalidInput(gettext_noop("Another lot at this site has the barcode %(barcode)s."),
                               params={"barcode": fields["barcode"]}, field="barcode")
        lot = MaterialLot.objects.create(site=site, status=LotStatus.QUARANTINE, **fields)
        audit_record(actor=actor, action=Action.CREATE, obj=lot, changes=lot.signable_content())
    return lot


def material_lot_update(*, actor, lot: MaterialLot, reason: str, expected_version: int, **values) -> MaterialLot:
    """Correct a lot's data. A released lot goes back to quarantine: its release signed other data."""
    require_site_perm(actor, lot.site, SitePerm.ADMIN, action=gettext_noop("edit material lots"))
    if not clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH):
        raise ReasonRequired()
    with transaction.atomic():
        locked = MaterialLot.objects.select_for_update().get(pk=lot.pk)
        if locked.version != expected_version:
            raise StaleRecord()
        current = {k: getattr(locked, k) for k in ("material_type", "name", "lot_number", "barcode", "expiry_date",
                                                    "titer_tu_per_ml")}
        fields = _clean_lot_fields(**(current | values))
        if fields["barcode"] != locked.barcode and MaterialLot.objects.filter(
                site=locked.site, barcode=fields["barcode"]).exclude(pk=locked.pk).exists():
            raise InvalidInput(gettext_noop("Another lot at this site has the barcode %(barcode)s."),
                               params={"barcode": fields["barcode"]}, field="barcode")
        before = locked.signable_content()
        for key, value in fields.items():
            setattr(locked, key, value)
        if before != locked.signable_content() and locked.status == LotStatus.RELEASED:
            locked.status = LotStatus.QUARANTINE
        locked.version += 1
        locked.save()
        changes = diff_fields(before, locked.signable_content())
        if not changes:
            raise InvalidInput(gettext_noop("Nothing changed."))
        audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
        signatures_void_changed(actor=actor, obj=locked, reason=f"Lot data changed: {reason}")
    return locked


def _require_releaser(actor, site) -> None:
    if not (has_site_perm(actor, site, SitePerm.CERTIFY) or has_site_perm(actor, site, SitePerm.ADMIN)):
        raise PermissionRefused(gettext_noop("Only a qualified person or the site administrator releases or rejects "
                                             "lots."))


def material_lot_release(*, actor, lot: MaterialLot, password: str, expected_version: int,
                         request: HttpRequest | None = None, comment: str = "") -> MaterialLot:
    """Release a lot from quarantine, signed "Released"."""
    _require_releaser(actor, lot.site)
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=lot)
    with transaction.atomic():
        locked = MaterialLot.objects.select_for_update().get(pk=lot.pk)
        if locked.version != expected_version:
            raise StaleRecord()
        if locked.status != LotStatus.QUARANTINE:
            raise NotReady(gettext_noop("%(lot)s is %(status)s; only a lot in quarantine is released."),
                           params={"lot": str(locked), "status": locked.get_status_display().lower()})
        if locked.expiry_date < site_today(locked.site):
            raise NotReady(gettext_noop("%(lot)s expired on %(date)s: an expired lot is not released."),
                           params={"lot": str(locked), "date": locked.expiry_date})
        locked.status = LotStatus.RELEASED
        locked.version += 1
        locked.save(update_fields=["status", "version"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": LotStatus.QUARANTINE, "new": LotStatus.RELEASED}})
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.RELEASED, comment=comment)
    return locked


def material_lot_reject(*, actor, lot: MaterialLot, password: str, reason: str, expected_version: int,
                        request: HttpRequest | None = None) -> MaterialLot:
    """Reject a lot (quarantined or released), signed "Rejected" with the reason."""
    _require_releaser(actor, lot.site)
    reason = clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH)
    if not reason:
        raise ReasonRequired(gettext_noop("Say why the lot is rejected."))
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=lot)
    with transaction.atomic():
        locked = MaterialLot.objects.select_for_update().get(pk=lot.pk)
        if locked.version != expected_version:
            raise StaleRecord()
        if locked.status == LotStatus.REJECTED:
            raise NotReady(gettext_noop("%(lot)s is already rejected."), params={"lot": str(locked)})
        old = locked.status
        locked.status = LotStatus.REJECTED
        locked.version += 1
        locked.save(update_fields=["status", "version"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": old, "new": LotStatus.REJECTED}}, reason=reason)
        signatures_void_changed(actor=actor, obj=locked, reason=f"Lot rejected: {reason}")
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.REJECTED, comment=reason)
    return locked
