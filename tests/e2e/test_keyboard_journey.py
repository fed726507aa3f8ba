"""Scanner-first: a technician in gloves does whole steps with the keyboard alone (a
keyboard-wedge scanner types and presses Enter), and the second person verifies the
same way. No click, no mouse: keyboard events only."""

from __future__ import annotations

from decimal import Decimal

from playwright.sync_api import expect

from batches.demo_mbr import label_scan, run_good_steps
from batches.models import StepRecord
from batches.services.execution import batch_start
from tests.batches.coi_steps import a_batch, a_patient
from tests.conftest import PASSWORD
from tests.e2e.conftest import JOURNEY_MARKS

pytestmark = JOURNEY_MARKS


def test_whole_steps_are_recorded_and_verified_with_the_keyboard_only(
    as_user, floor, site, product, coordinator, technician, verifier
):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)
    batch_start(actor=technician, batch=batch, expected_version=batch.version)
    bag = label_scan(batch, "apheresis_bag", actor=technician)  # printed and stuck on the bag at collection

    tech = as_user(technician)
    page = tech.go(f"/batches/{batch.pk}/")
    keys = page.keyboard
    form = page.locator("#action form.step-form")
    # An instruction: the signature is all there is, and it has the focus.
    expect(page.locator("#action-title")).to_contain_text("Line clearance")
    expect(form.locator("[name=password]")).to_be_focused()
    keys.type(PASSWORD)
    keys.press("Enter")
    tech.expect_message("Recorded and signed: Line clearance")
    clearance = StepRecord.objects.get(batch=batch, definition__code="line_clearance")

    checker = as_user(verifier)
    checking = checker.go(f"/batches/{batch.pk}/?verify={clearance.pk}#action")
    expect(checking.locator("#action [name=password]")).to_be_focused()
    checking.keyboard.type(PASSWORD)
    checking.keyboard.press("Enter")
    checker.expect_message("Verified: Line clearance")

    # A scan: after the redirect the scan field of the next step has the focus; Enter asks
    # the server to check the scan, then the password signs.
    expect(page.locator("#action-title")).to_contain_text("apheresis bag", ignore_case=True)
    expect(form.locator("[name=scanned_code]")).to_be_focused()
    tech.axe("a scan step")
    keys.type(bag)
    keys.press("Enter")
    expect(page.locator("#action .checked")).to_be_visible()
    expect(form.locator("[name=password]")).to_be_focused()
    tech.shot("01-scan-checked-password-next")
    keys.type(PASSWORD)
    keys.press("Enter")
    tech.expect_message("Recorded and signed")
    scanned = StepRecord.objects.get(batch=batch, definition__code="apheresis_bag_scan")
    assert scanned.value_text.endswith("AB-1")

    # Equipment: the asset label, the same way.
    expect(form.locator("[name=equipment_code]")).to_be_focused()
    keys.type("BSC-02")
    keys.press("Enter")
    expect(form.locator("[name=password]")).to_be_focused()
    keys.type(PASSWORD)
    keys.press("Enter")
    tech.expect_message("Recorded and signed")
    cabinet = StepRecord.objects.get(batch=batch, definition__code="bsc").equipment
    assert cabinet is not None
    assert cabinet.asset_id == "BSC-02"

    # A value, its comment and the signature, moving with Tab; Enter records at once.
    run_good_steps(batch=batch, technician=technician, verifier=verifier, password=PASSWORD,
                   stop_before="apheresis_volume_ml")
    page.reload()
    expect(form.locator("[name=value]")).to_be_focused()
    keys.type("212.0")
    keys.press("Tab")
    expect(form.locator("[name=comment]")).to_be_focused()
    keys.type("Weighed on the bag scale")
    keys.press("Tab")
    expect(form.locator("[name=password]")).to_be_focused()
    keys.type(PASSWORD)
    keys.press("Enter")
    tech.expect_message("Recorded and signed")
    tech.shot("02-value-recorded-with-the-keyboard")
    volume = StepRecord.objects.get(batch=batch, definition__code="apheresis_volume_ml")
    assert volume.value == Decimal("212.0")
    assert volume.comment == "Weighed on the bag scale"
