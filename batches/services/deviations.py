"""Deviations: raised automatically (out-of-limit value, unusable lot or equipment,
intake outside criteria, OOS) or by hand; approved for use or closed by a second
person with a signature. Open major/critical deviations block release."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.exceptions import NotReady
from batches.models import (
    Deviation,
    DeviationClass,
    DeviationSource,
    DeviationStatus,
    DeviationUseApproval,
)
from batches.numbering import formatted_number
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import InvalidInput, PermissionRefused, StaleRecord
from carmfg.textinput import clean_text
from carmfg.texts import Text, joined

TEXT_MAX = 10_000
EDITABLE_FIELDS = ("classification", "title", "description", "impact_assessment", "root_cause", "capa")
BLOCKING_CLASSES = (DeviationClass.MAJOR, DeviationClass.CRITICAL)


def deviation_raise(
    *, actor, site, source: str, classification: str, title: str, description: str,
    batch=None, donation=None, permits: dict | None = None,
) -> Deviation:
    """Open a deviation, in the caller's transaction (automatic ones are raised by the
    service that detected the problem, atomically with what it recorded)."""
    if classification not in DeviationClass.values:
        raise InvalidInput(gettext_noop("Unknown deviation class %(class)s."), params={"class": repr(classification)},
                           field="classification")
    # Checked before the transaction: a refusal must not break the caller's transaction.
    title = clean_text(title, field=gettext_noop("Title"), max_length=200, required=True)
    description = clean_text(description, field=gettext_noop("Description"), max_length=TEXT_MAX, required=True)
    with transaction.atomic(savepoint=False):
        deviation = Deviation.objects.create(
            site=site,
            number=formatted_number(site=site, prefix="DEV"),
            batch=batch,
            donation=donation if donation is not None else (batch.donation if batch is not None else None),
            source=source,
            classification=classification,
            title=title,
            description=description,
            permits=permits or {},
            raised_by=actor,
            raised_at=timezone.now(),
        )
        audit_record(actor=actor, action=Action.CREATE, obj=deviation, changes=deviation.signable_content())
    return deviation


# Roles that work on the floor or in QC may raise and investigate deviations.
INVESTIGATOR_PERMS = (SitePerm.EXECUTE, SitePerm.VERIFY, SitePerm.QC, SitePerm.CERTIFY)


def _require_investigator(user, site) -> None:
    if not any(has_site_perm(user, site, perm) for perm in INVESTIGATOR_PERMS):
        raise PermissionRefused(gettext_noop("Your roles at %(site)s do not allow you to raise or edit deviations."),
                                params={"site": str(site)})


def deviation_raise_manual(*, actor, site, classification: str, title: str, description: str, batch=None) -> Deviation:
    """A person raises a deviation by hand."""
    _require_investigator(actor, site)
    if batch is not None and batch.site_id != site.pk:
        raise InvalidInput(gettext_noop("The batch belongs to another site."))
    return deviation_raise(actor=actor, site=site, source=DeviationSource.MANUAL, classification=classification,
                           title=title, description=description, batch=batch)


def deviation_update(*, actor, deviation: Deviation, reason: str, expected_version: int, **values) -> Deviation:
    """Investigation fields (impact, root cause, CAPA, class). Changes need a reason."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(gettext_noop("These fields cannot be edited: %(fields)s."),
                           params={"fields": ", ".join(sorted(unknown))})
    with transaction.atomic():
        locked = Deviation.objects.select_for_update().get(pk=deviation.pk)
        _require_investigator(actor, locked.site)
        if locked.version != expected_version:
            raise StaleRecord()
        if locked.status == DeviationStatus.CLOSED:
            raise NotReady(gettext_noop("Deviation %(number)s is closed; open a new one instead."),
                           params={"number": locked.number})
        before = locked.signable_content()
        for key, value in values.items():
            if key == "classification":
                if value not in DeviationClass.values:
                    raise InvalidInput(gettext_noop("Unknown deviation class %(class)s."), params={"class": repr(value)},
                                       field="classification")
            else:
                value = clean_text(value, field=key.replace("_", " ").capitalize(),
                                   max_length=200 if key == "title" else TEXT_MAX, required=key in {"title", "description"})
            setattr(locked, key, value)
        locked.version += 1
        locked.save()
        changes = diff_fields(before, locked.signable_content())
        if not changes:
            raise InvalidInput(gettext_noop("Nothing changed."))
        audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
        signatures_void_changed(actor=actor, obj=locked, reason="Deviation changed after signing: " + reason)
        approval = DeviationUseApproval.objects.filter(deviation=locked).first()
        if approval is not None and signatures_void_changed(
                actor=actor, obj=approval, reason="The request changed after its approval: " + reason):
            # What was approved is no longer what is asked: the permission lapses.
            locked.status = DeviationStatus.OPEN
            locked.save(update_fields=["status"])
            audit_record(actor=actor, action=Action.TRANSITION, obj=locked, reason=reason,
                         changes={"status": {"old": DeviationStatus.APPROVED_FOR_USE, "new": DeviationStatus.OPEN}})
    return locked


def deviation_approve_use(*, actor, deviation: Deviation, password: str, request: HttpRequest | None = None,
                          comment: str = "", expected_version: int | None = None) -> Deviation:
    """A second person (a QP, not the one who raised it) approves what the deviation
    permits. The approval is its own signed record, so the investigation written later
    does not void it."""
    require_site_perm(actor, deviation.site, SitePerm.CERTIFY, action=gettext_noop("approve deviations"))
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=deviation)
    with transaction.atomic():
        locked = Deviation.objects.select_for_update().get(pk=deviation.pk)
        if expected_version is not None and locked.version != expected_version:
            raise StaleRecord()
        if locked.status != DeviationStatus.OPEN:
            raise NotReady(gettext_noop("Deviation %(number)s is %(status)s."),
                           params={"number": locked.number, "status": locked.get_status_display().lower()})
        if not locked.permits:
            raise NotReady(gettext_noop("This deviation does not ask for permission to use anything."))
        approval = DeviationUseApproval.objects.filter(deviation=locked).first()
        if approval is None:
            approval = DeviationUseApproval.objects.create(site=locked.site, deviation=locked, approved_by=actor,
                                                           approved_at=timezone.now())
        else:
            approval.approved_by, approval.approved_at = actor, timezone.now()
            approval.save(update_fields=["approved_by", "approved_at"])
        signature_apply(actor=actor, reauth=reauth, obj=approval, meaning=Meaning.APPROVED, comment=comment,
                        excluded_signers=[locked.raised_by_id],
                        excluded_reason="The person who raised a deviation cannot approve it: a second person must.")
        locked.status = DeviationStatus.APPROVED_FOR_USE
        locked.version += 1
        locked.save(update_fields=["status", "version"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": DeviationStatus.OPEN, "new": DeviationStatus.APPROVED_FOR_USE}})
    return locked


def deviation_permitting(*, batch, definition, material_lot=None, equipment=None) -> Deviation | None:
    """The approved deviation that permits this lot (or equipment) on this step of this
    batch, if there is one and its approval signature is still valid."""
    qs = Deviation.objects.filter(batch=batch, status=DeviationStatus.APPROVED_FOR_USE, permits__step=definition.pk)
    if material_lot is not None:
        qs = qs.filter(permits__material_lot=material_lot.pk)
    elif equipment is not None:
        qs = qs.filter(permits__equipment=equipment.pk)
    else:
        return None
    for deviation in qs.select_related("use_approval").order_by("raised_at"):
        approval = getattr(deviation, "use_approval", None)
        if approval is not None and any(
            v.is_valid and v.signature.meaning == Meaning.APPROVED for v in signatures_for_record(approval)
        ):
            return deviation
    return None


def deviation_request_use(*, actor, batch, definition, justification: str, material_lot=None, equipment=None,
                          classification: str = DeviationClass.MAJOR) -> Deviation:
    """From a refused scan: ask for permission to use exactly this lot (or equipment) on
    this step of this batch. A QP must approve it before the step can be recorded."""
    _require_investigator(actor, batch.site)
    if (material_lot is None) == (equipment is None):
        raise InvalidInput(gettext_noop("Name either a lot or a piece of equipment."))
    thing = material_lot if material_lot is not None else equipment
    if thing.site_id != batch.site_id or definition.stage.mbr_id != batch.mbr_id:
        raise InvalidInput(gettext_noop("The lot, equipment and step must belong to this batch's site and record."))
    justification = clean_text(justification, field=gettext_noop("Justification"), max_length=TEXT_MAX, required=True)
    if material_lot is not None:
        permits = {"kind": "material_lot", "material_lot": material_lot.pk, "lot": str(material_lot),
                   "step": definition.pk, "step_code": definition.code, "batch": batch.pk}
        source, what = DeviationSource.MATERIAL, f"lot {material_lot.lot_number} ({material_lot.name})"
    else:
        permits = {"kind": "equipment", "equipment": equipment.pk, "asset": equipment.asset_id,
                   "step": definition.pk, "step_code": definition.code, "batch": batch.pk}
        source, what = DeviationSource.EQUIPMENT, f"{equipment.name} ({equipment.asset_id})"
    return deviation_raise(
        actor=actor, site=batch.site, batch=batch, source=source, classification=classification,
        title=f"Use of {what} on “{definition.title}”"[:200],
        description=f"Requested for batch {batch.number}, step “{definition.title}”: {justification}",
        permits=permits,
    )


def deviation_close(*, actor, deviation: Deviation, password: str, request: HttpRequest | None = None,
                    comment: str = "", expected_version: int | None = None) -> Deviation:
    """QP closes a deviation with a signature. Major and critical ones need an impact
    assessment, a root cause and a CAPA first."""
    require_site_perm(actor, deviation.site, SitePerm.CERTIFY, action=gettext_noop("close deviations"))
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=deviation)
    with transaction.atomic():
        locked = Deviation.objects.select_for_update().get(pk=deviation.pk)
        if expected_version is not None and locked.version != expected_version:
            raise StaleRecord()
        if locked.status == DeviationStatus.CLOSED:
            raise NotReady(gettext_noop("Deviation %(number)s is already closed."), params={"number": locked.number})
        missing: list[Text] = [
            Text(label) for field, label in (("impact_assessment", gettext_noop("impact assessment")),
                                             ("root_cause", gettext_noop("root cause")), ("capa", "CAPA"))
            if not getattr(locked, field)]
        if locked.classification in BLOCKING_CLASSES and missing:
            raise NotReady(gettext_noop("Before closing a %(class)s deviation, record its %(missing)s."),
                           params={"class": locked.classification, "missing": joined(missing, ", ")})
        if not locked.impact_assessment:
            raise NotReady(gettext_noop("Record the impact assessment before closing."))
        old = locked.status
        locked.status = DeviationStatus.CLOSED
        locked.closed_at = timezone.now()
        locked.version += 1
        locked.save(update_fields=["status", "closed_at", "version"])
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.CLOSED, comment=comment)
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": old, "new": DeviationStatus.CLOSED}})
    return locked


def open_blocking_deviations(batch) -> list[Deviation]:
    """Major/critical deviations of ``batch`` not closed yet: they block release."""
    return list(
        Deviation.objects.filter(batch=batch, classification__in=BLOCKING_CLASSES)
        .exclude(status=DeviationStatus.CLOSED)
        .order_by("raised_at")
    )
