"""Patients, their orders, and the donation (DIN) that starts each chain of identity.

Coordinators register patients and orders. The floor sees a patient only by
pseudonym, initials and birth year; the hospital record number stays with the
coordinators. Every change is audited with its reason, and a form opened before
someone else's change is refused (optimistic concurrency on ``version``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.isbt128 import next_din
from batches.models import Batch, BatchState, Donation, Order, OrderStatus, Patient, Product
from batches.numbering import formatted_number, next_number
from batches.services.transitions import batch_transition
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.exceptions import InvalidInput, InvalidTransition, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text
from carmfg.texts import Text

EARLIEST_BIRTH_YEAR = 1900
WEIGHT_MIN_KG = Decimal("0.5")
WEIGHT_MAX_KG = Decimal("400")
DOSE_MAX_CELLS_PER_KG = Decimal("1e10")
# SiteCounter keys: one DIN sequence per facility and year, whoever issues the DIN.
DIN_COUNTER_KEY = "DIN"
PATIENT_COUNTER_KEY = "PT"
_INITIALS_RE = re.compile(r"[A-Z][A-Z.\- ]{0,3}")
_CODE_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: what a barcode carries

PATIENT_FIELDS = ("initials", "birth_year", "hospital_record_number", "wristband_code", "weight_kg",
                  "weight_measured_on")
ORDER_FIELDS = ("indication", "treating_physician", "physician_email", "target_dose_cells_per_kg",
                "planned_collection_date", "planned_infusion_date", "product")


def site_today(site) -> dt.date:
    return timezone.now().astimezone(site.zone).date()


# -- validation ---------------------------------------------------------------------


def _initials(value) -> str:
    text = clean_text(value, field=gettext_noop("initials"), max_length=4, required=True).upper()
    if not _INITIALS_RE.fullmatch(text):
        raise InvalidInput(gettext_noop("Initials: 1 to 4 characters, starting with a letter (A-Z, dots and hyphens "
                                        "allowed)."), field="initials")
    return text


def _birth_year(value, site) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(gettext_noop("Birth year: expected a year."), field="birth_year")
    this_year = site_today(site).year
    if not EARLIEST_BIRTH_YEAR <= value <= this_year:
        raise InvalidInput(gettext_noop("Birth year: must be between %(earliest)s and %(latest)s."),
                           params={"earliest": EARLIEST_BIRTH_YEAR, "latest": this_year}, field="birth_year")
    return value


def _code(value, *, field: str, label: str) -> str:
    text = clean_text(value, field=field, max_length=64, required=True)
    if not _CODE_RE.fullmatch(text):
        raise InvalidInput(gettext_noop("%(field)s: letters, digits and punctuation only, no spaces (as its barcode "
                                        "carries it)."), params={"field": Text(label)}, field=field)
    return text


def _decimal(value, *, field: str, label: str, low: Decimal, high: Decimal, places: int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidInput(gettext_noop("%(field)s: expected a number."), params={"field": Text(label)}, field=field)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(gettext_noop("%(field)s: expected a number."), params={"field": Text(label)}, field=field) from None
    if not number.is_finite() or not low <= number <= high:
        raise InvalidInput(gettext_noop("%(field)s: must be between %(low)s and %(high)s."),
                           params={"field": Text(label), "low": f"{low:,}", "high": f"{high:,}"}, field=field)
    return number.quantize(Decimal(1).scaleb(-places))


def _date(value, *, field: str, label: str) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise InvalidInput(gettext_noop("%(field)s: expected a date."), params={"field": Text(label)}, field=field)
    return value


def _clean_patient(site, values: dict) -> dict:
    out: dict[str, object] = {}
    if "initials" in values:
        out["initials"] = _initials(values["initials"])
    if "birth_year" in values:
        out["birth_year"] = _birth_year(values["birth_year"], site)
    if "hospital_record_number" in values:
        out["hospital_record_number"] = _code(values["hospital_record_number"], field="hospital_record_number",
                                              label=gettext_noop("Hospital record number"))
    if "wristband_code" in values:
        out["wristband_code"] = _code(values["wristband_code"], field="wristband_code", label=gettext_noop("Wristband code"))
    if "weight_kg" in values:
        out["weight_kg"] = _decimal(values["weight_kg"], field="weight_kg", label=gettext_noop("Weight (kg)"),
                                    low=WEIGHT_MIN_KG, high=WEIGHT_MAX_KG, places=1)
    if "weight_measured_on" in values:
        day = _date(values["weight_measured_on"], field="weight_measured_on", label=gettext_noop("Weight measured on"))
        if day > site_today(site):
            raise InvalidInput(gettext_noop("Weight measured on: the date is in the future."), field="weight_measured_on")
        out["weight_measured_on"] = day
    return out


def _duplicate(site, *, exclude_pk=None, **values) -> None:
    for field, message in (
        ("hospital_record_number", gettext_noop("Patient %(patient)s already has this hospital record number.")),
        ("wristband_code", gettext_noop("Patient %(patient)s already has this wristband code.")),
    ):
        if field in values:
            clash = Patient.objects.filter(site=site, **{field: values[field]}).exclude(pk=exclude_pk).first()
            if clash is not None:
                raise InvalidInput(message, params={"patient": clash.pseudonym}, field=field)


def patient_content(patient: Patient) -> dict:
    return {**patient.signable_content(), "version": patient.version}


# -- patients -------------------------------------------------------------------------


def patient_create(*, actor, site, initials, birth_year, hospital_record_number, wristband_code, weight_kg,
                   weight_measured_on) -> Patient:
    """Register a patient at ``site``; the floor will know them by a generated pseudonym."""
    require_site_perm(actor, site, SitePerm.PATIENTS, action=gettext_noop("register patients"))
    values = _clean_patient(site, {
        "initials": initials, "birth_year": birth_year, "hospital_record_number": hospital_record_number,
        "wristband_code": wristband_code, "weight_kg": weight_kg, "weight_measured_on": weight_measured_on,
    })
    with transaction.atomic():
        _duplicate(site, **values)
        year = site_today(site).year
        # Short enough for the label (16 characters), meaningless outside the site.
        pseudonym = f"PT-{year}-{next_number(site=site, key=PATIENT_COUNTER_KEY, year=year):04d}"
        try:
            with transaction.atomic():
                patient = Patient.objects.create(site=site, pseudonym=pseudonym, **values)
        except IntegrityError:
            raise InvalidInput(gettext_noop("Another coordinator registered this patient at the same moment: "
                                            "reload.")) from None
        audit_record(actor=actor, action=Action.CREATE, obj=patient, changes=patient_content(patient))
    return patient


def patient_update(*, actor, patient: Patient, reason: str, expected_version: int, **values) -> Patient:
    """Correct a patient's data: with a reason, and only if nobody changed it meanwhile."""
    unknown = set(values) - set(PATIENT_FIELDS)
    if unknown:
        raise InvalidInput(gettext_noop("These fields cannot be changed: %(fields)s."),
                           params={"fields": ", ".join(sorted(unknown))})
    require_site_perm(actor, patient.site, SitePerm.PATIENTS, action=gettext_noop("change patients"))
    reason = clean_text(reason, field=gettext_noop("reason"), max_length=REASON_MAX_LENGTH, required=True)
    cleaned = _clean_patient(patient.site, values)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.version != expected_version:
            raise StaleRecord(gettext_noop("Patient %(patient)s was changed since you opened it: nothing was saved. "
                                           "Reload to see the current data."), params={"patient": locked.pseudonym})
        _duplicate(locked.site, exclude_pk=locked.pk, **cleaned)
        before = patient_content(locked)
        for key, value in cleaned.items():
            setattr(locked, key, value)
        changes = diff_fields(before, patient_content(locked))
        if not changes:
            raise InvalidInput(gettext_noop("Nothing was changed."))
        locked.version += 1
        locked.save()
        changes["version"] = {"old": before["version"], "new": locked.version}
        audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
    return locked


# -- orders ----------------------------------------------------------------------------


def order_content(order: Order) -> dict:
    return {
        "number": order.number, "patient": order.patient.pseudonym, "product": order.product.code,
        "indication": order.indication, "treating_physician": order.treating_physician,
        "physician_email": order.physician_email, "target_dose_cells_per_kg": order.target_dose_cells_per_kg,
        "planned_collection_date": order.planned_collection_date,
        "planned_infusion_date": order.planned_infusion_date, "status": order.status,
        "failure_reason": order.failure_reason, "version": order.version,
    }


def _clean_order(site, values: dict) -> dict:
    out: dict = {}
    if "product" in values:
        product = values["product"]
        if not isinstance(product, Product) or product.site_id != site.pk:
            raise InvalidInput(gettext_noop("Choose a product of this site."), field="product")
        out["product"] = product
    if "indication" in values:
        out["indication"] = clean_text(values["indication"], field=gettext_noop("indication"), max_length=200, required=True)
    if "treating_physician" in values:
        out["treating_physician"] = clean_text(values["treating_physician"], field=gettext_noop("treating_physician"),
                                               max_length=200, required=True)
    if "physician_email" in values:
        email = clean_text(values["physician_email"], field=gettext_noop("physician_email"), max_length=254)
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise InvalidInput(gettext_noop("Physician e-mail: not an e-mail address."), field="physician_email")
        out["physician_email"] = email
    if "target_dose_cells_per_kg" in values:
        out["target_dose_cells_per_kg"] = _decimal(
            values["target_dose_cells_per_kg"], field="target_dose_cells_per_kg", label=gettext_noop("Target dose (cells/kg)"),
            low=Decimal(1), high=DOSE_MAX_CELLS_PER_KG, places=0)
    if "planned_collection_date" in values:
        out["planned_collection_date"] = _date(values["planned_collection_date"], field="planned_collection_date",
                                               label=gettext_noop("Planned collection date"))
    if "planned_infusion_date" in values:
        day = values["planned_infusion_date"]
        out["planned_infusion_date"] = None if day in (None, "") else _date(
            day, field="planned_infusion_date", label=gettext_noop("Planned infusion date"))
    return out


def _check_order_dates(collection: dt.date, infusion: dt.date | None) -> None:
    if infusion is not None and infusion < collection:
        raise InvalidInput(gettext_noop("Planned infusion date: before the planned collection."),
                           field="planned_infusion_date")


def order_create(*, actor, patient: Patient, product, indication, treating_physician, target_dose_cells_per_kg,
                 planned_collection_date, planned_infusion_date=None, physician_email="") -> Order:
    """Order a product for a patient; the order number is gap-free per site and year."""
    site = patient.site
    require_site_perm(actor, site, SitePerm.PATIENTS, action=gettext_noop("register orders"))
    values = _clean_order(site, {
        "product": product, "indication": indication, "treating_physician": treating_physician,
        "physician_email": physician_email, "target_dose_cells_per_kg": target_dose_cells_per_kg,
        "planned_collection_date": planned_collection_date, "planned_infusion_date": planned_infusion_date,
    })
    _check_order_dates(values["planned_collection_date"], values["planned_infusion_date"])
    with transaction.atomic():
        order = Order.objects.create(site=site, number=formatted_number(site=site, prefix="ORD"), patient=patient,
                                     **values)
        audit_record(actor=actor, action=Action.CREATE, obj=order, changes=order_content(order))
    return order


def order_update(*, actor, order: Order, reason: str, expected_version: int, **values) -> Order:
    """Change an order with a reason. The product is fixed once the collection is registered."""
    unknown = set(values) - set(ORDER_FIELDS)
    if unknown:
        raise InvalidInput(gettext_noop("These fields cannot be changed: %(fields)s."),
                           params={"fields": ", ".join(sorted(unknown))})
    require_site_perm(actor, order.site, SitePerm.PATIENTS, action=gettext_noop("change orders"))
    reason = clean_text(reason, field=gettext_noop("reason"), max_length=REASON_MAX_LENGTH, required=True)
    cleaned = _clean_order(order.site, values)
    with transaction.atomic():
        locked = Order.objects.select_for_update().select_related("patient", "product").get(pk=order.pk)
        if locked.version != expected_version:
            raise StaleRecord(gettext_noop("Order %(order)s was changed since you opened it: nothing was saved. "
                                           "Reload to see the current data."), params={"order": locked.number})
        if locked.status in (OrderStatus.CANCELLED, OrderStatus.FAILED, OrderStatus.INFUSED):
            raise InvalidTransition(gettext_noop("Order %(order)s is %(status)s: it is closed."),
                                    params={"order": locked.number, "status": locked.get_status_display().lower()})
        if "product" in cleaned and cleaned["product"].pk != locked.product_id and locked.status != OrderStatus.REGISTERED:
            raise InvalidTransition(gettext_noop("The product cannot change once the collection is registered."),
                                    field="product")
        before = order_content(locked)
        for key, value in cleaned.items():
            setattr(locked, key, value)
        _check_order_dates(locked.planned_collection_date, locked.planned_infusion_date)
        changes = diff_fields(before, order_content(locked))
        if not changes:
            raise InvalidInput(gettext_noop("Nothing was changed."))
        locked.version += 1
        locked.save()
        changes["version"] = {"old": before["version"], "new": locked.version}
        audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
    return locked


def order_cancel(*, actor, order: Order, reason: str, expected_version: int) -> Order:
    """A coordinator cancels an order (e.g. the patient no longer needs the product): with a
    reason, and only until manufacturing starts. A batch not started yet is cancelled with
    it; once a batch is in process, the batch is stopped by its own decisions (rejection)."""
    require_site_perm(actor, order.site, SitePerm.PATIENTS, action=gettext_noop("cancel orders"))
    reason = clean_text(reason, field=gettext_noop("reason"), max_length=REASON_MAX_LENGTH, required=True)
    with transaction.atomic():
        # The batch before the order, as a release and every batch transition lock them:
        # the other way round a cancellation and a release of the batch deadlock.
        batch = Batch.objects.select_for_update().filter(order_id=order.pk).first()
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.version != expected_version:
            raise StaleRecord(gettext_noop("Order %(order)s was changed since you opened it: nothing was saved. "
                                           "Reload to see the current data."), params={"order": locked.number})
        if locked.status in (OrderStatus.CANCELLED, OrderStatus.FAILED, OrderStatus.INFUSED):
            raise InvalidTransition(gettext_noop("Order %(order)s is %(status)s: it is closed."),
                                    params={"order": locked.number, "status": locked.get_status_display().lower()})
        if batch is not None and batch.state != BatchState.PLANNED:
            raise InvalidTransition(
                gettext_noop("Order %(order)s cannot be cancelled: batch %(batch)s has started (%(state)s). A qualified "
                             "person decides what happens to a started batch."),
                params={"order": locked.number, "batch": batch.number, "state": batch.get_state_display().lower()},
            )
        if batch is not None:
            batch_transition(actor=actor, batch=batch, to_state=BatchState.CANCELLED,
                             reason=f"Order {locked.number} cancelled: {reason}")
        order_set_status(actor=actor, order=locked, status=OrderStatus.CANCELLED, reason=reason)
    return locked


def order_set_status(*, actor, order: Order, status: str, failure_reason: str = "", reason: str = "") -> None:
    """Move a locked order along (collected → in manufacturing → product released → partly
    infused → infused, or failed), in the caller's transaction."""
    old = order.status
    order.status = status
    if failure_reason:
        order.failure_reason = failure_reason
    order.version += 1
    order.save(update_fields=["status", "failure_reason", "version"])
    changes: dict = {"status": {"old": old, "new": status}}
    if failure_reason:
        changes["failure_reason"] = failure_reason
    audit_record(actor=actor, action=Action.TRANSITION, obj=order, changes=changes, reason=reason)


# The order's status before its batch is certified, and once certified before any fraction is given.
_ORDER_BEFORE_RELEASE = (OrderStatus.REGISTERED, OrderStatus.COLLECTED, OrderStatus.IN_MANUFACTURING)
_ORDER_NOTHING_GIVEN = (*_ORDER_BEFORE_RELEASE, OrderStatus.RELEASED)


def order_follow_batch(*, actor, batch: Batch) -> None:
    """The order follows its batch, in the caller's transaction (``batch_transition``):
    once the batch is certified (provisionally or finally) the product is released for the
    patient; a batch rejected before any fraction was given leaves the patient without
    product (the order fails, with the batch's failure reason). Never moves an order back."""
    if batch.state not in (BatchState.PROVISIONALLY_RELEASED, BatchState.RELEASED, BatchState.REJECTED):
        return
    order = Order.objects.select_for_update().get(pk=batch.order_id)
    why = f"Batch {batch.number} {BatchState(batch.state).label.lower()}"
    if batch.state == BatchState.REJECTED:
        if order.status in _ORDER_NOTHING_GIVEN:
            order_set_status(actor=actor, order=order, status=OrderStatus.FAILED,
                             failure_reason=batch.failure_reason, reason=why)
    elif order.status in _ORDER_BEFORE_RELEASE:
        order_set_status(actor=actor, order=order, status=OrderStatus.RELEASED, reason=why)


# -- donation: the DIN -----------------------------------------------------------------


def donation_register(*, actor, order: Order, collection_date=None) -> Donation:
    """Register the collection of an order: issue the site's next DIN (ISBT 128, gap-free
    per facility and year). One donation per order."""
    site = order.site
    require_site_perm(actor, site, SitePerm.PATIENTS, action=gettext_noop("register collections"))
    day = site_today(site)
    collection_date = collection_date or order.planned_collection_date
    collection_date = _date(collection_date, field="collection_date", label=gettext_noop("Collection date"))
    if abs((collection_date - day).days) > 7:
        raise InvalidInput(gettext_noop("Collection date: register the collection within a week of the day of "
                                        "apheresis."), field="collection_date")
    with transaction.atomic():
        locked = Order.objects.select_for_update().select_related("patient", "product").get(pk=order.pk)
        if locked.status != OrderStatus.REGISTERED or Donation.objects.filter(order=locked).exists():
            raise InvalidTransition(gettext_noop("The collection of order %(order)s is already registered (the order "
                                                 "is %(status)s)."),
                                    params={"order": locked.number, "status": locked.get_status_display().lower()})
        # The DIN's year is the facility's calendar year, as on its labels.
        sequence = next_number(site=site, key=DIN_COUNTER_KEY, year=day.year)
        din = next_din(site.facility_identification_number, day.year, sequence - 1)
        donation = Donation.objects.create(
            site=site, order=locked, din=din.din13, flags=din.barcode_flags, check_character=din.check,
            collection_date=collection_date, registered_by=actor,
        )
        audit_record(actor=actor, action=Action.CREATE, obj=donation, changes={
            "din": donation.din, "flags": donation.flags, "check_character": donation.check_character,
            "order": locked.number, "patient": locked.patient.pseudonym, "collection_date": collection_date,
        })
        order_set_status(actor=actor, order=locked, status=OrderStatus.COLLECTED)
    return donation
