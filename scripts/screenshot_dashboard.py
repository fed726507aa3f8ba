"""Screenshot of the vein-to-vein dashboard for docs/screenshots/, on a throw-away demo.

    .venv/bin/python scripts/screenshot_dashboard.py

The demo (``seed_demo``) is made today, so it has batches in flight but no history.
For the picture, this script adds a year of finished patients to the throw-away
database first: batches collected, released and infused 8 to 19 days later, and a few
that failed. These rows exist only in the temporary database of the screenshot; the
demo itself is unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import CHROMIUM_ARGS, _free_port, _log_in, _shrink, _wait_until_up  # noqa: E402

HISTORY = r'''
import datetime as dt
from decimal import Decimal
from django.utils import timezone
from batches.isbt128 import check_character
from batches.models import Batch, BatchFailureReason, BatchState, Donation, Infusion, Order, Patient
from carmfg.accounts.models import Site

site = Site.objects.get(code="msk")
template = Batch.objects.filter(site=site).select_related("product", "mbr").first()
from django.contrib.auth import get_user_model
coordinator = get_user_model().objects.get(username="coord")
now = timezone.now()
# (days ago infused, vein-to-vein days, planned shift): about two patients a month
history = [(340, 16, 2), (325, 15, 1), (300, 14, 0), (290, 17, 3), (270, 13, 0), (250, 12, -1), (236, 15, 1),
           (215, 11, 0), (200, 12, 0), (182, 10, -1), (170, 11, 0), (150, 9, 0), (133, 10, 1), (120, 9, 0),
           (101, 8, 0), (90, 10, 0), (70, 9, -1), (60, 8, 0), (44, 9, 0), (30, 19, 4), (26, 10, 0), (12, 9, 0),
           (5, 8, 0)]
failed = [(280, BatchFailureReason.INSUFFICIENT_EXPANSION, BatchState.REJECTED),
          (160, BatchFailureReason.CONTAMINATION, BatchState.REJECTED),
          (75, BatchFailureReason.PATIENT_CONDITION, BatchState.CANCELLED)]


def make(n, collected, state, reason=""):
    patient = Patient.objects.create(site=site, pseudonym=f"PT-H{n:03d}", initials="HX", birth_year=1960 + n % 40,
                                     hospital_record_number=f"HIST-{n}", wristband_code=f"WBH{n:06d}",
                                     weight_kg=Decimal("70.0"), weight_measured_on=collected)
    order = Order.objects.create(site=site, number=f"ORD-H-{n:03d}", patient=patient, product=template.product,
                                 indication="r/r B-ALL", treating_physician="Dr. A. Ivanova",
                                 target_dose_cells_per_kg=Decimal("1000000"), planned_collection_date=collected)
    din13 = f"{site.facility_identification_number}25{900000 + n:06d}"
    donation = Donation.objects.create(site=site, order=order, din=din13, check_character=check_character(din13),
                                       collection_date=collected)
    made = dt.datetime.combine(collected, dt.time(12), tzinfo=site.zone)
    return Batch.objects.create(site=site, number=f"CT-H-{n:03d}", order=order, donation=donation,
                                product=template.product, mbr=template.mbr, state=state, created_at=made,
                                failure_reason=reason)


for n, (ago, days, shift) in enumerate(history, start=1):
    at = (now - dt.timedelta(days=ago)).astimezone(site.zone).replace(hour=10, minute=30)
    batch = make(n, at.date() - dt.timedelta(days=days), BatchState.RELEASED)
    Order.objects.filter(pk=batch.order_id).update(planned_infusion_date=at.date() - dt.timedelta(days=shift))
    for fraction, pct in ((1, 10), (2, 30), (3, 60)):
        Infusion.objects.create(site=site, batch=batch, fraction_number=fraction, fraction_percent=Decimal(pct),
                                bag_scanned_code="history", wristband_scanned_code="history",
                                infused_at=at + dt.timedelta(days=fraction - 1), recorded_by=coordinator,
                                recorded_at=at + dt.timedelta(days=fraction - 1))
for n, (ago, reason, state) in enumerate(failed, start=len(history) + 1):
    make(n, (now - dt.timedelta(days=ago)).date(), state, reason)
print(f"history: {len(history)} infused, {len(failed)} failed")
'''


def main() -> None:
    import shutil

    from playwright.sync_api import sync_playwright

    out = ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory(prefix="carmfg-v2v-") as var_dir:
        # A throw-away picture: a fast password hash (the demo signs hundreds of steps,
        # each re-authenticating) and no PDF rendering (queued, never run).
        Path(var_dir, "shot_settings.py").write_text(
            "from carmfg.settings import *  # noqa: F403\n"
            "PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']\n"
            "CELERY_TASK_ALWAYS_EAGER = False\n")
        env = {**os.environ, "CARMFG_VAR_DIR": var_dir, "CARMFG_ENV": "demo",
               "DJANGO_SETTINGS_MODULE": "shot_settings", "PYTHONPATH": var_dir}
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "-v0"], ["seed_demo"], ["shell", "-c", HISTORY]):
            subprocess.run(manage + command, cwd=ROOT, env=env, check=True)  # noqa: S603
        port = _free_port()
        server = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT, env=env,  # noqa: S603
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                _log_in(page, base, "coord")
                page.goto(base + "/qc/dashboard/")
                path = out / "vein-to-vein-dashboard.png"
                page.screenshot(path=str(path), full_page=True, animations="disabled", caret="initial")
                _shrink(path)
                page.emulate_media(media="print")
                print_path = out / "vein-to-vein-dashboard-print.png"
                page.screenshot(path=str(print_path), full_page=True, animations="disabled", caret="initial")
                _shrink(print_path)
                browser.close()
                print(path, print_path)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
