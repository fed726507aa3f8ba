"""The vein-to-vein panel of the home page: batches in flight by stage and this month's
median vein-to-vein time against the 7-14 day target, for coordinators, QPs and site
admins only, counted at the current site only, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.models import BatchFailureReason, BatchState
from carmfg.exceptions import PermissionRefused
from qc.dashboard import dashboard_summary_for_user
from tests.qc.conftest import make_mbr
from tests.qc.test_dashboard import Unit

pytestmark = pytest.mark.django_db

PANEL = 'id="panel-vein_to_vein"'
DASHBOARD_LINK = 'href="/qc/dashboard/"'


@pytest.fixture
def unit(site, product, mbr, technician):
    return Unit(site, product, mbr, technician)


def _this_month(unit: Unit, minutes_ago: int) -> dt.datetime:
    """A moment of today (site calendar), never before the month began."""
    start_of_day = dt.datetime.combine(unit.today, dt.time.min, tzinfo=unit.site.zone)
    return max(unit.now - dt.timedelta(minutes=minutes_ago), start_of_day)


def test_the_summary_counts_batches_in_flight_by_stage_and_this_months_median(unit, coordinator):
    unit.batch(state=BatchState.PLANNED, collected_days_ago=1)
    unit.batch(state=BatchState.PLANNED, collected_days_ago=2)
    unit.batch(state=BatchState.AWAITING_RELEASE, collected_days_ago=12)
    unit.batch(state=BatchState.REJECTED, collected_days_ago=9, failure_reason=BatchFailureReason.CONTAMINATION)
    # This month: 9, 12 and 20 days -> median 12, within 7-14.
    for days, minutes in ((9, 30), (12, 20), (20, 10)):
        unit.infused(vein_to_vein=days, at=_this_month(unit, minutes))
    # Last month's 30 days is not this month's.
    month_start = dt.datetime.combine(unit.today.replace(day=1), dt.time(12), tzinfo=unit.site.zone)
    unit.infused(vein_to_vein=30, at=month_start - dt.timedelta(days=2))

    summary = dashboard_summary_for_user(coordinator, site=unit.site)

    assert summary.in_flight == 3
    assert [(s.stage, s.count) for s in summary.by_stage] == [("Planned (awaiting start)", 2), ("QC and QP release", 1)]
    month = summary.this_month
    assert (month.month, month.infusions, month.median_days, month.within_target) == (
        unit.today.replace(day=1), 3, 12.0, True)
    assert (summary.target_min_days, summary.target_max_days) == (7, 14)


def test_a_month_without_infusion_has_no_median(unit, qp):
    unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=3)

    month = dashboard_summary_for_user(qp, site=unit.site).this_month

    assert (month.infusions, month.median_days, month.within_target) == (0, None, None)


def test_coordinators_qps_and_site_admins_see_the_panel_and_the_others_do_not(
    unit, client_for, coordinator, qp, site_admin, technician, verifier, qc_analyst, auditor
):
    unit.batch(state=BatchState.AWAITING_RELEASE, collected_days_ago=12)
    unit.infused(vein_to_vein=16, at=_this_month(unit, 5))  # outside the target

    for person in (coordinator, qp, site_admin):
        html = client_for(person).get("/").content.decode()
        assert PANEL in html, person
        panel = html[html.index(PANEL):]
        panel = panel[:panel.index("</section>")]
        assert DASHBOARD_LINK in panel
        assert "<strong>16</strong>" in panel
        assert "outside target" in panel
        assert "1 batch in flight, by stage" in panel
        assert "QC and QP release" in panel
    for person in (technician, verifier, qc_analyst, auditor):
        html = client_for(person).get("/").content.decode()
        assert PANEL not in html, person
        with pytest.raises(PermissionRefused):
            dashboard_summary_for_user(person, site=unit.site)


def test_another_sites_batches_are_never_counted(unit, client_for, coordinator, other_site, other_product, technician,
                                                 other_site_user):
    unit.batch(state=BatchState.PLANNED, collected_days_ago=1)
    unit.infused(vein_to_vein=8, at=_this_month(unit, 10))
    away = Unit(other_site, other_product, make_mbr(other_product), technician)
    for _ in range(3):
        away.batch(state=BatchState.IN_PROCESS, collected_days_ago=4)
    away.infused(vein_to_vein=25, at=_this_month(away, 10))

    ours = dashboard_summary_for_user(coordinator, site=unit.site)
    theirs = dashboard_summary_for_user(other_site_user, site=other_site)

    assert (ours.in_flight, ours.this_month.infusions, ours.this_month.median_days) == (1, 1, 8.0)
    assert (theirs.in_flight, theirs.this_month.infusions, theirs.this_month.median_days) == (3, 1, 25.0)
    with pytest.raises(PermissionRefused):
        dashboard_summary_for_user(other_site_user, site=unit.site)
    html = client_for(coordinator).get("/").content.decode()
    panel = html[html.index(PANEL):]
    panel = panel[:panel.index("</section>")]
    assert "1 batch in flight, by stage" in panel
    assert "<strong>8</strong>" in panel


def _home_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/").status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["coordinator", "qp", "site_admin"])
def test_the_home_page_reads_a_fixed_number_of_queries_whatever_the_number_of_batches(unit, client_for, request, who):
    client = client_for(request.getfixturevalue(who))

    def add_some():
        unit.batch(state=BatchState.PLANNED, collected_days_ago=1, planned_in_days=10)
        unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=5)
        unit.batch(state=BatchState.AWAITING_RELEASE, collected_days_ago=12)
        unit.infused(vein_to_vein=9, at=_this_month(unit, 3))

    add_some()
    client.get("/")  # first visit: session, content types and other per-process caches
    few = _home_queries(client)
    for _ in range(4):
        add_some()
    many = _home_queries(client)

    assert few == many
