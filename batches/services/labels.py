"""Container labels: printed from the record, one row per physical label.

Every label printed is counted (audited as ``print``), and each one ends either
applied to its container or destroyed with a reason, so that before release
``printed = applied + destroyed`` (:func:`label_reconciliation`). Container codes
(AB-1, CV-2, QC-3, FP-1) are never reused within a donation: a replacement label is
a new code, and a final product bag's label names the fraction it holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.exceptions import NotReady
from batches.labels import LabelData, render_labels_pdf
from batches.models import ContainerType, Donation, Label, LabelStatus
from batches.scans import container_code, container_number, din_of
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused
from carmfg.textinput import REASON_MAX_LENGTH, clean_text

MAX_LABELS_PER_JOB = 24
# Who prints and applies labels: coordinators (the apheresis bag) and the floor.
LABEL_PERMS = (SitePerm.PATIENTS, SitePerm.EXECUTE)
AUTOLOGOUS = "For autologous use only"
QC_STATEMENT = "QC sample - not for infusion"
# Containers that exist only once manufacturing has started (the batch is created at intake).
NEED_BATCH = frozenset({ContainerType.CULTURE_VESSEL, ContainerType.FINAL_PRODUCT_BAG})


# QC prints, applies and destroys the labels of the samples it takes itself (e.g. a
# retest sample), and no other labels.
QC_LABELS = frozenset({ContainerType.QC_SAMPLE})


def can_handle_labels(user, site, container_type: str | None = None) -> bool:
    if any(has_site_perm(user, site, perm) for perm in LABEL_PERMS):
        return True
    return container_type in QC_LABELS and has_site_perm(user, site, SitePerm.QC)


def _require_label_perm(user, site, action: str, container_type: str | None = None) -> None:
    """``action`` is the refusal's message, a template with ``%(site)s``."""
    if not can_handle_labels(user, site, container_type):
        raise PermissionRefused(action, params={"site": str(site)})


def fractions_of(product) -> list:
    """The split-dose fractions of a product, as percentages; one of 100 % if not split."""
    return list(product.fraction_percents or [100])


def label_content(label: Label) -> dict:
    return {
        "din": label.donation.din, "container_code": label.container_code, "container_type": label.container_type,
        "fraction_number": label.fraction_number, "expires_at": label.expires_at, "status": label.status,
    }


def labels_print(
    *, actor, donation: Donation, container_type: str, quantity: int = 1, fractions: list[int] | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[list[Label], bytes]:
    """Print labels for ``donation``: new rows (each one physical label, audited as
    printed) and the PDF to send to the label printer.

    Final product bags get one label per fraction (``fractions``, default: every
    fraction without a live label) and need the expiry printed on them.
    """
    site = donation.site
    _require_label_perm(actor, site, gettext_noop("Your roles at %(site)s do not allow you to print labels."),
                        container_type)
    if container_type not in ContainerType.values:
        raise InvalidInput(gettext_noop("Unknown container type %(type)s."), params={"type": repr(container_type)},
                           field="container_type")
    kind = ContainerType(container_type)
    order = donation.order
    product = order.product
    now = timezone.now()
    if kind in NEED_BATCH and not hasattr(donation, "batch"):
        raise NotReady(gettext_noop("%(kind)s labels are printed once the apheresis is accepted and the batch "
                                    "exists."), params={"kind": kind.label})
    if kind == ContainerType.FINAL_PRODUCT_BAG:
        if not isinstance(expires_at, dt.datetime) or timezone.is_naive(expires_at):
            raise InvalidInput(gettext_noop("Expiry: a final product bag label needs the product's expiry (date and "
                                            "time)."), field="expires_at")
        if expires_at <= now:
            raise InvalidInput(gettext_noop("Expiry: the expiry is already past."), field="expires_at")
    elif expires_at is not None:
        raise InvalidInput(gettext_noop("Expiry: only final product bag labels carry an expiry here."),
                           field="expires_at")
    percents = fractions_of(product)
    with transaction.atomic():
        Donation.objects.select_for_update().filter(pk=donation.pk).first()
        existing = list(Label.objects.filter(donation=donation, container_type=kind))
        if kind == ContainerType.FINAL_PRODUCT_BAG:
            live = {lb.fraction_number for lb in existing if lb.status != LabelStatus.DESTROYED}
            if fractions is None:
                fractions = [n for n in range(1, len(percents) + 1) if n not in live]
                if not fractions:
                    raise NotReady(gettext_noop("Every fraction already has a final product bag label: destroy one "
                                                "to replace it."))
            bad = [n for n in fractions if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(percents)]
            if bad or not fractions:
                raise InvalidInput(gettext_noop("Fractions: choose among 1 to %(count)s."),
                                   params={"count": len(percents)}, field="fractions")
            taken = sorted(set(fractions) & live)
            if taken:
                raise NotReady(gettext_noop("Fraction %(fraction)s already has a live label: destroy it first to "
                                            "print a replacement."), params={"fraction": taken[0]})
            count = len(fractions)
        else:
            if fractions is not None:
                raise InvalidInput(gettext_noop("Fractions: only final product bags hold fractions."), field="fractions")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_LABELS_PER_JOB:
                raise InvalidInput(gettext_noop("Quantity: 1 to %(max)s labels at a time."),
                                   params={"max": MAX_LABELS_PER_JOB}, field="quantity")
            count = quantity
        last = max((container_number(lb.container_code) for lb in existing), default=0)
        labels = []
        for index in range(count):
            fraction = fractions[index] if kind == ContainerType.FINAL_PRODUCT_BAG and fractions else None
            label = Label.objects.create(
                site=site, donation=donation, container_type=kind, container_code=container_code(kind, last + index + 1),
                fraction_number=fraction, expires_at=expires_at if kind == ContainerType.FINAL_PRODUCT_BAG else None,
                printed_by=actor, printed_at=now,
            )
            audit_record(actor=actor, action=Action.PRINT, obj=label, changes=label_content(label))
            labels.append(label)
        # Rendered inside the transaction: a label that cannot be printed is not counted.
        pdf = render_labels_pdf([label_data(label) for label in labels])
    return labels, pdf


def label_data(label: Label) -> LabelData:
    """What the printed label shows, from the record."""
    donation = label.donation
    order = donation.order
    patient = order.patient
    product = order.product
    site = donation.site
    sample_text = ""
    statement = AUTOLOGOUS
    if label.container_type == ContainerType.FINAL_PRODUCT_BAG and label.fraction_number:
        percents = fractions_of(product)
        percent = percents[label.fraction_number - 1]
        sample_text = f"Fraction {label.fraction_number} of {len(percents)} - {percent} % of dose"
    elif label.container_type == ContainerType.QC_SAMPLE:
        statement = QC_STATEMENT
    intake = getattr(donation, "intake", None)
    collected = intake.collection_ended_at if intake is not None else (donation.collection_date or donation.created_at)
    return LabelData(
        din=din_of(donation),
        container_type=ContainerType(label.container_type),
        container_code=label.container_code,
        product_name=product.name,
        product_code=product.product_code or product.code.upper()[:10],
        patient_pseudonym=patient.pseudonym,
        patient_initials=patient.initials,
        patient_birth_year=patient.birth_year,
        collected_at=collected,
        expires_at=label.expires_at,
        site_name=site.name,
        time_zone=site.time_zone,
        sample_text=sample_text,
        statement=statement,
    )


def _change_status(*, actor, label: Label, to: str, allowed_from: tuple[str, ...], reason: str = "") -> Label:
    with transaction.atomic():
        locked = Label.objects.select_for_update().select_related("donation").get(pk=label.pk)
        if locked.status not in allowed_from:
            raise InvalidTransition(
                gettext_noop("Label %(code)s is %(status)s: it cannot be %(to)s."),
                params={"code": locked.container_code, "status": locked.get_status_display().lower(),
                        "to": LabelStatus(to).label.lower()},
            )
        old = locked.status
        locked.status = to
        locked.status_changed_at = timezone.now()
        locked.status_changed_by = actor
        locked.status_reason = reason
        locked.save(update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": old, "new": to}, "container_code": locked.container_code},
                     reason=reason)
    label.refresh_from_db()
    return locked


def label_apply(*, actor, label: Label) -> Label:
    """Record that a printed label is now on its container."""
    _require_label_perm(actor, label.site, gettext_noop("Your roles at %(site)s do not allow you to apply labels."),
                        label.container_type)
    return _change_status(actor=actor, label=label, to=LabelStatus.APPLIED, allowed_from=(LabelStatus.PRINTED,))


def label_destroy(*, actor, label: Label, reason: str) -> Label:
    """Record that a label was destroyed (misprint, damaged, container discarded): a reason is required."""
    _require_label_perm(actor, label.site, gettext_noop("Your roles at %(site)s do not allow you to destroy labels."),
                        label.container_type)
    reason = clean_text(reason, field=gettext_noop("reason"), max_length=REASON_MAX_LENGTH, required=True)
    return _change_status(actor=actor, label=label, to=LabelStatus.DESTROYED,
                          allowed_from=(LabelStatus.PRINTED, LabelStatus.APPLIED), reason=reason)


@dataclass(frozen=True)
class Reconciliation:
    printed: int
    applied: int
    destroyed: int
    outstanding: list[str] = field(default_factory=list)  # printed, neither applied nor destroyed

    @property
    def balanced(self) -> bool:
        """printed = applied + destroyed: every label printed is accounted for."""
        return self.printed == self.applied + self.destroyed


def label_reconciliation(donation: Donation) -> Reconciliation:
    """Label reconciliation of a donation, as release needs it: every printed label is
    either applied or destroyed."""
    rows = list(Label.objects.filter(donation=donation).values_list("container_code", "status"))
    applied = sum(1 for _, status in rows if status == LabelStatus.APPLIED)
    destroyed = sum(1 for _, status in rows if status == LabelStatus.DESTROYED)
    outstanding = sorted(code for code, status in rows if status == LabelStatus.PRINTED)
    return Reconciliation(printed=len(rows), applied=applied, destroyed=destroyed, outstanding=outstanding)

