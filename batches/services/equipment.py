"""Equipment: maintained by the site administrator, used on steps by scanning its asset
label. Equipment past its calibration or maintenance due date, or out of service, is
refused unless a deviation permitting it on that step was approved by a QP."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_noop

from batches.exceptions import EquipmentNotUsable
from batches.models import Batch, Equipment, EquipmentStatus, StepDefinition
from batches.services.deviations import deviation_permitting
from batches.services.materials import site_today
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.exceptions import InvalidInput, ReasonRequired, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text
from carmfg.texts import Text


def equipment_problem_phrase(equipment: Equipment, today: dt.date) -> Text | None:
    """Why ``equipment`` may not be used today, translatable; None when it may."""
    if equipment.status == EquipmentStatus.OUT_OF_SERVICE:
        return Text(gettext_noop("out of service"))
    if equipment.calibration_due < today:
        return Text(gettext_noop("past its calibration due date (%(date)s)"),
                    {"date": f"{equipment.calibration_due:%d %b %Y}"})
    if equipment.maintenance_due is not None and equipment.maintenance_due < today:
        return Text(gettext_noop("past its maintenance due date (%(date)s)"),
                    {"date": f"{equipment.maintenance_due:%d %b %Y}"})
    return None


class EquipmentRefused(EquipmentNotUsable):
    def __init__(self, message: str, *, params: dict[str, Any] | None = None, equipment: Equipment | None = None,
                 definition: StepDefinition | None = None):
        super().__init__(message, params=params, field="equipment_code")
        self.equipment = equipment
        self.definition = definition


def equipment_for_step(*, batch: Batch, definition: StepDefinition, asset_id: str):
    equipment = Equipment.objects.filter(site=batch.site, asset_id=asset_id).first()
    if equipment is None:
        raise EquipmentRefused(gettext_noop("No equipment with asset label “%(asset)s” is registered at this site. "
                                            "Check the label, or ask the site administrator to register it."),
                               params={"asset": asset_id})
    if equipment.equipment_type != definition.equipment_type:
        raise EquipmentRefused(gettext_noop("%(equipment)s is a %(type)s; this step needs a %(needed)s."),
                               params={"equipment": str(equipment), "type": equipment.equipment_type.replace("_", " "),
                                       "needed": definition.equipment_type.replace("_", " ")},
                               equipment=equipment)
    problem = equipment_problem_phrase(equipment, site_today(batch.site))
    if problem is None:
        return equipment, None
    deviation = deviation_permitting(batch=batch, definition=definition, equipment=equipment)
    if deviation is None:
        raise EquipmentRefused(
            gettext_noop("%(equipment)s is %(problem)s. Use other equipment, or raise a deviation asking to use it: "
                         "it may be used only after a QP approves it."),
            params={"equipment": str(equipment), "problem": problem}, equipment=equipment, definition=definition)
    return equipment, deviation


def _clean(values: dict) -> dict:
    out: dict[str, Any] = {
        "asset_id": clean_text(values.get("asset_id"), field=gettext_noop("Asset id"), max_length=64, required=True),
        "equipment_type": clean_text(values.get("equipment_type"), field=gettext_noop("Type"), max_length=60, required=True),
        "name": clean_text(values.get("name"), field=gettext_noop("Name"), max_length=200, required=True),
    }
    status = values.get("status", EquipmentStatus.IN_SERVICE)
    if status not in EquipmentStatus.values:
        raise InvalidInput(gettext_noop("Unknown status %(status)s."), params={"status": repr(status)}, field="status")
    out["status"] = status
    for name in ("calibration_due", "maintenance_due"):
        value = values.get(name)
        if value is None and name == "maintenance_due":
            out[name] = None
            continue
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise InvalidInput(gettext_noop("%(field)s: expected a date."),
                               params={"field": name.replace("_", " ").capitalize()}, field=name)
        out[name] = value
    return out


def _content(equipment: Equipment) -> dict:
    return {k: getattr(equipment, k) for k in ("asset_id", "equipment_type", "name", "status", "calibration_due",
                                               "maintenance_due")}


def equipment_create(*, actor, site, **values) -> Equipment:
    require_site_perm(actor, site, SitePerm.ADMIN, action=gettext_noop("register equipment"))
    fields = _clean(values)
    with transaction.atomic():
        if Equipment.objects.filter(site=site, asset_id=fields["asset_id"]).exists():
            raise InvalidInput(gettext_noop("Asset id %(asset)s is already registered at this site."),
                               params={"asset": fields["asset_id"]}, field="asset_id")
        equipment = Equipment.objects.create(site=site, **fields)
        audit_record(actor=actor, action=Action.CREATE, obj=equipment, changes=_content(equipment))
    return equipment


def equipment_update(*, actor, equipment: Equipment, reason: str, expected_version: int, **values) -> Equipment:
    """New calibration or maintenance dates, or a change of status; always with a reason."""
    require_site_perm(actor, equipment.site, SitePerm.ADMIN, action=gettext_noop("maintain equipment"))
    reason = clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH)
    if not reason:
        raise ReasonRequired(gettext_noop("Say why (e.g. “calibrated, certificate CAL-2026-114”)."))
    with transaction.atomic():
        locked = Equipment.objects.select_for_update().get(pk=equipment.pk)
        if locked.version != expected_version:
            raise StaleRecord()
        before = _content(locked)
        fields = _clean(before | values)
        if fields["asset_id"] != locked.asset_id and Equipment.objects.filter(
                site=locked.site, asset_id=fields["asset_id"]).exclude(pk=locked.pk).exists():
            raise InvalidInput(gettext_noop("Asset id %(asset)s is already registered at this site."),
                               params={"asset": fields["asset_id"]}, field="asset_id")
        for key, value in fields.items():
            setattr(locked, key, value)
        changes = diff_fields(before, _content(locked))
        if not changes:
            raise InvalidInput(gettext_noop("Nothing changed."))
        locked.version += 1
        locked.save()
        audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
    return locked
