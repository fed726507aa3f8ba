"""axe-core on the main pages of every role, not only on the journeys' key steps.

One site is filled by ``seed_scale`` (batches in every state, with their steps,
signatures, QC results, deviations and certifications) plus the demo's material lots
and equipment. Each role signs in once, in its own browser session, and opens the pages
it works with; every page is checked as rendered, wide (a desk) and narrow (a phone or
a small tablet, where tables scroll sideways). A violation of impact serious or
critical fails, with its rule id and where it is; all pages are checked before the test
fails, so one run lists everything.
"""

from __future__ import annotations

import io

from django.core.management import call_command
from django.urls import reverse

from batches.models import Batch, BatchState, Deviation, MasterBatchRecord, Patient
from carmfg.accounts.models import Role, Site
from qc.models import Specification
from tests.conftest import PASSWORD
from tests.e2e.conftest import JOURNEY_MARKS, SERIOUS

pytestmark = JOURNEY_MARKS

PREFIX = "axe"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def _violations(page, where: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{where}: {v['id']} ({v['impact']}) {v['help']} at "
            + ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            for v in results.response["violations"] if v.get("impact") in SERIOUS]


def test_the_main_pages_of_every_role_have_no_serious_or_critical_axe_violation(
    as_user, browser, live_server, make_user
):
    from batches.demo_mbr import load_demo_materials

    call_command("seed_scale", "--sites", "1", "--batches", "12", "--audit-events", "40", "--prefix", PREFIX,
                 stdout=io.StringIO())
    site = Site.objects.get(code=f"{PREFIX}01")
    people = {role: make_user(f"{role}-{PREFIX}", roles=[role], site=site) for role in (
        Role.TECHNICIAN, Role.QC_ANALYST, Role.QUALIFIED_PERSON, Role.COORDINATOR, Role.AUDITOR, Role.SITE_ADMIN)}
    load_demo_materials(site=site, admin=people[Role.SITE_ADMIN], qp=people[Role.QUALIFIED_PERSON], password=PASSWORD)

    batches = Batch.objects.filter(site=site)
    in_process = batches.filter(state=BatchState.IN_PROCESS).first()
    awaiting = batches.filter(state=BatchState.AWAITING_RELEASE).first()
    mbr = MasterBatchRecord.objects.filter(site=site).first()
    spec = Specification.objects.filter(site=site).first()
    assert in_process is not None
    assert awaiting is not None
    assert mbr is not None
    assert spec is not None
    assert Deviation.objects.filter(site=site).exists()
    assert Patient.objects.filter(site=site).exists()

    pages: dict[Role, list[str | tuple[str, int]]] = {
        Role.TECHNICIAN: ["home", "batches:index", ("batches:batch_detail", in_process.pk), "batches:deviation_list",
                          "profile"],
        Role.COORDINATOR: ["home", "batches:patient_list", "batches:order_list", "qc:dashboard"],
        Role.QC_ANALYST: ["home", "qc:index", "qc:specifications", ("qc:specification", spec.pk)],
        Role.QUALIFIED_PERSON: ["home", "qc:release", ("qc:batch_release", awaiting.pk), "qc:dashboard"],
        Role.SITE_ADMIN: ["home", "batches:lot_list", "batches:equipment_list", "batches:mbr_list",
                          ("batches:mbr_detail", mbr.pk), "qc:dashboard"],
        Role.AUDITOR: ["home", "audit_list"],
    }
    found: list[str] = []
    checked: list[str] = []
    for role, names in pages.items():
        session = as_user(people[role])  # one browser session per role
        for name in names:
            url = reverse(name[0], args=name[1:]) if isinstance(name, tuple) else reverse(name)
            response = session.page.goto(live_server.url + url)
            where = f"{role} {url}"
            assert response is not None
            assert response.status == 200, where
            found += _violations(session.page, where)
            # A phone or a small tablet on the floor: tables scroll sideways.
            session.page.set_viewport_size(NARROW)
            found += _violations(session.page, where + " (narrow)")
            session.page.set_viewport_size(WIDE)
            checked.append(where)

    # Signed out: the login page.
    context = browser.new_context(viewport=WIDE)
    try:
        page = context.new_page()
        page.goto(live_server.url + reverse("login"))
        found += _violations(page, "signed out /accounts/login/")
        checked.append("login")
    finally:
        context.close()

    assert len(checked) == 1 + sum(len(names) for names in pages.values())
    assert not found, f"axe-core, serious or critical, on {len(checked)} pages:\n" + "\n".join(found)
