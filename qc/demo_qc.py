"""Demo data of the QC app for ``make run``, built through the services.

``demo_specification(product)`` puts the shipped ARI-0001-like specification into
effect (written by a QC analyst, reviewed by another, approved by the QP): it runs
before the demo batches are created, since every batch pins the specification in force.

``seed_qc_demo(site=…)`` then adds five finished batches for the release pages, each
recorded step by step through the execution services, with its QC results entered and
reviewed by the two QC analysts:

* one ready for provisional release (no exception);
* one with a viability out of specification (OOS investigation and major deviation);
* one released provisionally, fraction 1 infused, whose sterility result came back
  positive (critical deviation, batch on hold, physician and QP notified);
* one released provisionally, late tests pending; one released finally. Every
  certification queues its signed batch record (``seed_demo`` then generates them).

Idempotent: a site that has QC results already gets nothing added.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from batches.models import Batch, ContainerType, Product
from qc.models import TestDefinition, TestResult
from qc.services.specifications import (
    effective_specification_for,
    specification_approve,
    specification_create_from_data,
    specification_make_effective,
    specification_review,
)

PASSING = {
    "viability": ("93.5", "% of nucleated cells"), "cd3": ("96.2", "% of viable cells"),
    "car_pos": ("35.0", "% of CD3+"), "endotoxin": ("<0.25", "EU/mL"), "gram": "conforms",
    "mycoplasma": "not_detected", "sterility": "no_growth", "vcn": ("2.4", "copies/transduced cell"),
    "ifng": ("1850", "pg/mL"),
}
PROVISIONAL = ["viability", "cd3", "car_pos", "endotoxin", "gram", "mycoplasma"]


def demo_specification(product: Product) -> None:
    """The shipped ARI-0001-like specification, reviewed, approved and in effect."""
    if effective_specification_for(product) is not None:
        return
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["qc", "qc2", "qp"])}
    password = settings.CARMFG_DEMO_PASSWORD
    spec = specification_create_from_data(actor=users["qc2"], product=product,
                                          change_summary="First version at this site, from the published ARI-0001 figures.")
    spec = specification_review(actor=users["qc"], specification=spec, password=password, expected_revision=spec.revision)
    spec = specification_approve(actor=users["qp"], specification=spec, password=password,
                                 expected_revision=spec.revision)
    specification_make_effective(actor=users["qp"], specification=spec)


@contextlib.contextmanager
def _on_the_day(moment: dt.datetime) -> Iterator[None]:
    """Act out a demo story's earlier step at the time it happened: the server clock that
    every service reads (``django.utils.timezone.now``) runs from ``moment`` for the block,
    so the records, their audit events and the rules judged against "today" are those of
    that day. The services are unchanged: nothing a user reaches can pass a time of its
    own. Demo data only; refused in production."""
    if settings.PRODUCTION:
        raise RuntimeError("The demo's replayed clock is not available in production.")
    real_now = timezone.now
    offset = moment - real_now()

    def shifted() -> dt.datetime:
        return real_now() + offset

    with mock.patch.object(timezone, "now", new=shifted):
        yield


def _finished_batch(*, site, product, users, password: str, initials: str, birth_year: int, weight_kg: str,
                    collected_days_ago: int, physician_email: str = "") -> Batch:
    """A batch made as at the site, collected ``collected_days_ago`` days ago: the
    coordinator registers patient, order and collection and labels the apheresis bag,
    the technician records the intake (which creates the batch), every step is
    recorded and verified, the batch completed; QC registers and receives the samples."""
    from batches.demo_mbr import run_good_steps
    from batches.isbt128 import parse_din
    from batches.scans import label_scan_data
    from batches.services.execution import batch_complete
    from batches.services.intake import intake_record
    from batches.services.labels import label_apply, labels_print
    from batches.services.materials import site_today
    from batches.services.patients import donation_register, order_create, patient_create
    from qc.services.samples import sample_receive, samples_create_from_steps

    coord, tech = users["coord"], users["tech"]
    collected = timezone.now() - dt.timedelta(days=collected_days_ago)
    started = collected - dt.timedelta(hours=4)
    day = started.astimezone(site.zone).date()  # the day of apheresis
    # The coordinator's part happened before the collection, and is recorded then: the
    # patient and the order three days before, the collection (DIN, bag label) an hour
    # before the apheresis starts. So the order's collection day, the day on the labels and the
    # day counted vein to vein are the story's, and the rule that a collection is
    # registered within a week of the apheresis holds as it does for every user.
    with _on_the_day(collected - dt.timedelta(days=3)):
        patient = patient_create(actor=coord, site=site, initials=initials, birth_year=birth_year,
                                 hospital_record_number=f"HRN-{initials}{birth_year}",
                                 wristband_code=f"WB-{initials}{birth_year}",
                                 weight_kg=weight_kg, weight_measured_on=site_today(site))
        order = order_create(actor=coord, patient=patient, product=product, indication="Relapsed/refractory B-ALL",
                             treating_physician="Dr. A. Ivanova", physician_email=physician_email,
                             target_dose_cells_per_kg="1000000", planned_collection_date=day)
    with _on_the_day(started - dt.timedelta(hours=1)):
        donation = donation_register(actor=coord, order=order, collection_date=day)
        labels, _pdf = labels_print(actor=coord, donation=donation, container_type=ContainerType.APHERESIS_BAG)
        bag = label_apply(actor=coord, label=labels[0])
    intake_record(actor=tech, donation=donation, collection_started_at=started,
                  collection_ended_at=collected, received_at=collected + dt.timedelta(hours=5),
                  transport_temperature_c="4.2", volume_ml="212.0", wbc_10e3_per_ul="39.60",
                  cd3_cells_total="3100000000", bag_intact=True,
                  label_scanned_code=label_scan_data(parse_din(donation.din), bag.container_code))
    batch = Batch.objects.get(donation=donation)
    # Five days of counts reach the fold-expansion limit (13 fold); every signature costs a password check.
    batch = run_good_steps(batch=batch, technician=tech, verifier=users["verifier"], password=password,
                           expansion_days=5)
    batch = batch_complete(actor=tech, batch=batch, expected_version=batch.version)
    for sample in samples_create_from_steps(actor=users["qc"], batch=batch):
        if sample.label is not None:
            sample_receive(actor=users["qc"], sample=sample,
                           scanned_code=label_scan_data(parse_din(donation.din), sample.label.container_code))
    return batch


def _enter(batch: Batch, code: str, users, password: str, outcome=None, *, review: bool = True) -> TestResult:
    from qc.services.results import result_enter, result_review

    test = TestDefinition.objects.get(specification=batch.specification_pin.specification, code=code)
    given = (outcome or PASSING)[code]
    if isinstance(given, tuple):
        result = result_enter(actor=users["qc"], batch=batch, test=test, raw_value=given[0], unit=given[1],
                              password=password)
    else:
        result = result_enter(actor=users["qc"], batch=batch, test=test, qualitative=str(given), password=password)
    if review:
        result = result_review(actor=users["qc2"], result=result, password=password, expected_version=result.version)
    return result


def seed_qc_demo(*, site, password: str, log=print) -> None:
    from batches.isbt128 import parse_din
    from batches.scans import label_scan_data
    from batches.services.infusion import infusion_record
    from qc.services.release import certification_final_sign, certification_provisional_sign

    if TestResult.objects.filter(site=site).exists():
        return
    names = ["tech", "verifier", "qc", "qc2", "qp", "admin", "coord"]
    users = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
    missing = [n for n in names if n not in users]
    product = Product.objects.filter(site=site, code="cd19-cart").first()
    if missing or product is None or effective_specification_for(product) is None:
        log(f"QC demo skipped: needs the demo users ({', '.join(missing) or 'present'}) and the demo product "
            "with its specification in effect.")
        return
    common = {"site": site, "product": product, "users": users, "password": password}

    ready = _finished_batch(initials="LN", birth_year=1992, weight_kg="61.5", collected_days_ago=9, **common)
    for code in PROVISIONAL:
        _enter(ready, code, users, password)

    out_of_spec = _finished_batch(initials="RG", birth_year=1968, weight_kg="80.0", collected_days_ago=11, **common)
    for code in PROVISIONAL:
        low = {"viability": ("61.0", "% of nucleated cells")}
        _enter(out_of_spec, code, users, password, low if code == "viability" else None)

    # Infused today, a week after apheresis: the vein-to-vein panel shows 7 days, in target.
    late = _finished_batch(initials="EK", birth_year=2001, weight_kg="57.0", collected_days_ago=7,
                           physician_email="a.ivanova@hematology.demo.invalid", **common)
    for code in PROVISIONAL:
        _enter(late, code, users, password)
    certification_provisional_sign(actor=users["qp"], batch=late, password=password)
    infusion_record(actor=users["coord"], batch=late, fraction_number=1,
                    bag_scanned_code=label_scan_data(parse_din(late.donation.din), "FP-1"),
                    wristband_scanned_code=late.order.patient.wristband_code,
                    infused_at=timezone.now(), password=password)
    _enter(late, "vcn", users, password)
    _enter(late, "ifng", users, password)
    _enter(late, "sterility", users, password, {"sterility": "growth"}, review=False)

    # Certified batches, each with its signed batch record (queued by the certification).
    provisional = _finished_batch(initials="TB", birth_year=1985, weight_kg="68.0", collected_days_ago=12, **common)
    for code in PROVISIONAL:
        _enter(provisional, code, users, password)
    certification_provisional_sign(actor=users["qp"], batch=provisional, password=password)

    released = _finished_batch(initials="MV", birth_year=1979, weight_kg="74.5", collected_days_ago=30, **common)
    for code in PROVISIONAL:
        _enter(released, code, users, password)
    certification_provisional_sign(actor=users["qp"], batch=released, password=password)
    for code in ("vcn", "ifng", "sterility"):
        _enter(released, code, users, password)
    certification_final_sign(actor=users["qp"], batch=released, password=password)

    log(f"QC demo: {ready.number} ready for release, {out_of_spec.number} out of specification, "
        f"{late.number} late sterility failure after infusion, {provisional.number} released provisionally, "
        f"{released.number} released (final).")
