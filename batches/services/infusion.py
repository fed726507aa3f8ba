"""Infusion at the bedside: the last link of the chain of identity.

The nurse or coordinator scans the product bag and the patient's wristband. Both must
be this order's: the bag is a final product bag of the batch's donation (holding the
fraction being given), the wristband is the patient's. The batch must be at least
provisionally released, and each fraction of the split dose is given once, in order.
A mismatch, or an attempt on a batch not released, blocks and is audited as blocked.
Whoever gives the product signs the infusion record ("Performed") with their password,
like every other GMP act (21 CFR 11.50, 11.200): a wrong password records nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.exceptions import NotReady
from batches.models import (
    Batch,
    BatchState,
    ContainerType,
    CustodyStep,
    Infusion,
    Order,
    OrderStatus,
)
from batches.scans import shown
from batches.services.custody import Refusal, custody_record_matched, identify_label, refuse
from batches.services.labels import fractions_of
from batches.services.patients import order_set_status
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.esign.exceptions import SignatureRefused
from carmfg.esign.models import Meaning
from carmfg.esign.services import signature_apply, signature_reauthenticate
from carmfg.exceptions import InvalidInput
from carmfg.textinput import clean_text
from carmfg.texts import Text

CLOCK_TOLERANCE = dt.timedelta(minutes=2)
INFUSABLE_STATES = frozenset({BatchState.PROVISIONALLY_RELEASED, BatchState.RELEASED})
BEDSIDE_LOCATION = "Bedside"


def infusion_content(infusion: Infusion) -> dict:
    return {**infusion.signable_content(), "batch_number": infusion.batch.number, "note": infusion.note}


def infusion_record(
    *, actor, batch: Batch, fraction_number: int, bag_scanned_code: str, wristband_scanned_code: str,
    infused_at: dt.datetime, password: str, request: HttpRequest | None = None, note: str = "",
    location: str = BEDSIDE_LOCATION,
) -> Infusion:
    """Record one fraction given, after bag and wristband both matched the order, and
    sign it as performed by ``actor``. Call outside any transaction (a refusal's audit
    event, and a refused password's, is committed on its own)."""
    require_site_perm(actor, batch.site, SitePerm.PATIENTS, action=gettext_noop("record infusions"))
    percents = fractions_of(batch.product)
    if isinstance(fraction_number, bool) or not isinstance(fraction_number, int) \
            or not 1 <= fraction_number <= len(percents):
        raise InvalidInput(gettext_noop("Fraction: choose 1 to %(count)s."), params={"count": len(percents)},
                           field="fraction_number")
    # The password is checked first (a refusal is audited on its own), but a wrong bag or
    # wristband is still looked for and blocked before the refusal is raised: a
    # chain-of-identity mismatch is never hidden behind a mistyped password.
    try:
        reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
        refused_signature = None
    except SignatureRefused as exc:
        exc.field = exc.field or "password"
        refused_signature = exc
    donation = batch.donation
    try:
        with transaction.atomic():
            locked = Batch.objects.select_for_update().select_related("donation", "product", "order__patient").get(
                pk=batch.pk)
            if locked.state not in INFUSABLE_STATES:
                state = {"batch": locked.number, "state": locked.get_state_display().lower()}
                raise Refusal(
                    cause=Text(gettext_noop("Batch %(batch)s is %(state)s: it may be infused only once it is "
                                            "(provisionally) released."), state),
                    expected=Text(gettext_noop("a released batch")), scanned=Text.literal(shown(bag_scanned_code)),
                    error=NotReady,
                    message=Text(gettext_noop("Infusion refused: batch %(batch)s is %(state)s. A product may be "
                                              "infused only once the QP has (provisionally) released it. Nothing "
                                              "was recorded; the attempt is in the audit trail."), state),
                )
            given = {inf.fraction_number: inf for inf in Infusion.objects.filter(batch=locked)}
            if fraction_number in given:
                raise NotReady(gettext_noop("Fraction %(fraction)s was already given: each fraction is given once."),
                               params={"fraction": fraction_number})
            missing = [n for n in range(1, fraction_number) if n not in given]
            if missing:
                raise NotReady(gettext_noop("Fraction %(fraction)s has not been given yet: the fractions are given "
                                            "in order."), params={"fraction": missing[0]})
            label = identify_label(donation=locked.donation, scanned_code=bag_scanned_code,
                                   containers={ContainerType.FINAL_PRODUCT_BAG}, fraction_number=fraction_number)
            patient = locked.order.patient
            wristband = wristband_scanned_code.strip() if isinstance(wristband_scanned_code, str) else None
            if wristband != patient.wristband_code:
                raise Refusal(
                    cause=Text(gettext_noop("Wrong patient: the wristband scanned is not this patient's.")),
                    expected=Text(gettext_noop("wristband of patient %(patient)s (%(initials)s, born %(year)s)"),
                                  {"patient": patient.pseudonym, "initials": patient.initials,
                                   "year": patient.birth_year}),
                    scanned=Text(gettext_noop("wristband %(code)s"), {"code": shown(wristband_scanned_code)}),
                )
            if not isinstance(infused_at, dt.datetime) or timezone.is_naive(infused_at):
                raise InvalidInput(gettext_noop("Infusion time: expected a date and time."), field="infused_at")
            now = timezone.now()
            if infused_at > now + CLOCK_TOLERANCE:
                raise InvalidInput(gettext_noop("Infusion time: is in the future."), field="infused_at")
            # People type minutes: compare with the minute the batch was made in.
            if infused_at < locked.created_at.replace(second=0, microsecond=0):
                raise InvalidInput(gettext_noop("Infusion time: before the batch was made."), field="infused_at")
            previous = given.get(fraction_number - 1)
            if previous is not None and infused_at < previous.infused_at:
                raise InvalidInput(gettext_noop("Infusion time: before fraction %(fraction)s was given."),
                                   params={"fraction": fraction_number - 1}, field="infused_at")
            if refused_signature is not None:
                raise refused_signature
            infusion = Infusion.objects.create(
                site=locked.site, batch=locked, fraction_number=fraction_number,
                fraction_percent=Decimal(str(percents[fraction_number - 1])),
                bag_scanned_code=clean_text(shown(bag_scanned_code), field=gettext_noop("bag_scanned_code"), max_length=200),
                wristband_scanned_code=clean_text(shown(wristband_scanned_code), field=gettext_noop("wristband_scanned_code"),
                                                  max_length=200),
                infused_at=infused_at, recorded_by=actor, recorded_at=now,
                note=clean_text(note, field=gettext_noop("note"), max_length=2000),
            )
            infusion.refresh_from_db()
            audit_record(actor=actor, action=Action.CREATE, obj=infusion, changes=infusion_content(infusion))
            signature_apply(actor=actor, reauth=reauth, obj=infusion, meaning=Meaning.PERFORMED)
            custody_record_matched(actor=actor, donation=locked.donation, label=label, step=CustodyStep.BEDSIDE,
                                   scanned_code=bag_scanned_code, location=location,
                                   note=f"Fraction {fraction_number} infused; wristband matched")
            order = Order.objects.select_for_update().get(pk=locked.order_id)
            # The split dose: the order is infused with its last fraction, partly infused before.
            status = OrderStatus.INFUSED if len(given) + 1 == len(percents) else OrderStatus.PARTLY_INFUSED
            if order.status != status:
                order_set_status(actor=actor, order=order, status=status)
    except Refusal as refusal:
        refuse(actor=actor, donation=donation, refusal=refusal, context="infusion", step=CustodyStep.BEDSIDE)
    return infusion
