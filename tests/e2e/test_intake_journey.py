"""Journey 1: the coordinator registers a patient, an order and the collection (DIN) and
labels the apheresis bag; the technician receives the bag with a custody scan and
accepts the intake, which creates the batch on the recipe in force."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from playwright.sync_api import expect

from batches.models import Batch, CustodyEvent, Donation, IntakeOutcome, Label, LabelStatus, Patient
from batches.scans import din_of, label_scan_data
from tests.e2e.conftest import JOURNEY_MARKS

pytestmark = JOURNEY_MARKS


def _local(site, moment) -> str:
    return timezone.localtime(moment, site.zone).strftime("%Y-%m-%dT%H:%M")


def test_a_coordinator_registers_patient_and_order_and_a_technician_receives_the_bag_and_accepts_the_intake(
    as_user, floor, site, product, coordinator, technician
):
    coord = as_user(coordinator)
    page = coord.go("/batches/patients/new/")
    today = timezone.localdate(timezone.now(), site.zone).isoformat()
    page.get_by_label("Initials").fill("K.M.")
    page.get_by_label("Birth year").fill("1987")
    page.get_by_label("Hospital record number").fill("HRN-2026-0501")
    page.get_by_label("Wristband code").fill("WB-2026-0501")
    page.get_by_label("Weight (kg)").fill("68.0")
    page.get_by_label("Weight measured on").fill(today)
    coord.axe("patient registration")
    coord.shot("01-patient-form")
    page.get_by_role("button", name="Register").click()
    patient = Patient.objects.get(site=site, hospital_record_number="HRN-2026-0501")
    expect(page.locator("h1")).to_contain_text(patient.pseudonym)

    page.get_by_role("link", name="New order").click()
    page.get_by_label("Indication").fill("Relapsed/refractory B-ALL")
    page.get_by_label("Treating physician").fill("Dr. A. Ivanova")
    page.get_by_label("Target dose (CAR+ cells per kg)").fill("1000000")
    page.get_by_label("Planned collection date").fill(today)
    coord.axe("order form")
    page.get_by_role("button", name=re.compile("Register|Save|Create")).click()
    expect(page.locator("h1")).to_contain_text("Order")
    page.get_by_role("button", name="Register the collection and issue the DIN").click()
    coord.expect_message("Collection registered")
    donation = Donation.objects.get(order__patient=patient)

    with page.expect_download() as printed:
        page.get_by_role("button", name="Print (PDF)").click()
    assert printed.value.suggested_filename.endswith(".pdf")
    page.reload()
    page.locator("#labels").get_by_role("button", name="Applied").click()
    coord.expect_message("recorded as applied")
    coord.axe("order with its DIN and labels")
    coord.shot("02-order-with-din-and-label")
    label = Label.objects.get(donation=donation)
    assert label.status == LabelStatus.APPLIED
    bag_scan = label_scan_data(din_of(donation), label.container_code)

    tech = as_user(technician)
    page = tech.go(f"/batches/donations/{donation.pk}/custody/receipt/")
    scan = page.get_by_label("Scan the label")
    page.get_by_label("Temperature (°C)").fill("4.5")
    page.get_by_label("Location").fill("GMP goods-in, fridge 2")
    tech.axe("custody scan")
    scan.fill(bag_scan)
    scan.press("Enter")
    tech.expect_message("matched and recorded")
    assert CustodyEvent.objects.filter(donation=donation, step="receipt", label=label).count() == 1

    page = tech.go(f"/batches/donations/{donation.pk}/intake/")
    now = timezone.now()
    page.get_by_label("Collection started").fill(_local(site, now - dt.timedelta(hours=6)))
    page.get_by_label("Collection ended").fill(_local(site, now - dt.timedelta(hours=3)))
    page.get_by_label("Received here").fill(_local(site, now - dt.timedelta(minutes=20)))
    page.get_by_label("Transport temperature (°C)").fill("4.5")
    page.get_by_label("Volume (mL)").fill("212.0")
    page.get_by_label("WBC (×10³/µL)").fill("39.60")
    page.get_by_label("CD3+ cells (total)").fill("2.1e9")
    page.get_by_label("Yes, intact").check()
    tech.axe("apheresis intake")
    tech.shot("03-intake-form")
    scan = page.get_by_label("Scan the bag label")
    scan.fill(bag_scan)
    scan.press("Enter")
    tech.expect_message("accepted, and the batch is created")
    tech.shot("04-intake-accepted")
    tech.axe("intake decision")

    donation.refresh_from_db()
    assert donation.intake.outcome == IntakeOutcome.ACCEPTED
    batch = Batch.objects.get(donation=donation)
    assert batch.mbr == floor
    assert batch.state == "planned"
