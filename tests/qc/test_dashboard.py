"""The vein-to-vein dashboard: what it counts (medians worked by hand), who sees it, and
that it reads a fixed number of queries whatever the number of batches.

The batches are starting states written as rows, dated in the past (a dashboard reads
history; the services only ever write "now"); the QC batch is made through the
execution services by the qc ``make_batch`` fixture.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.isbt128 import check_character
from batches.models import (
    Batch,
    BatchFailureReason,
    BatchState,
    Donation,
    Infusion,
    Order,
    Patient,
)
from carmfg.exceptions import PermissionRefused
from qc.dashboard import Infused, dashboard_for_user, monthly_medians
from qc.dashboard_charts import stage_chart_svg, vein_to_vein_chart_svg

pytestmark = pytest.mark.django_db

URL = "/qc/dashboard/"


# --- the arithmetic, by hand ---------------------------------------------------------------------


def _infused(infused_on: dt.date, days: int | None) -> Infused:
    collected = infused_on - dt.timedelta(days=days) if days is not None else None
    return Infused(batch=None, collected_on=collected, planned_infusion=None, infused_on=infused_on,  # type: ignore[arg-type]
                   vein_to_vein_days=days, days_late=None)


def test_the_monthly_median_is_the_middle_vein_to_vein_time_of_the_month_against_7_to_14_days():
    sep, oct_, nov = dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)
    rows = [
        # September: 9, 12, 20 -> sorted 9 12 20 -> median 12 (inside 7-14)
        _infused(dt.date(2026, 9, 3), 20), _infused(dt.date(2026, 9, 15), 9), _infused(dt.date(2026, 9, 30), 12),
        # October: 6 and 15 -> (6 + 15) / 2 = 10.5 (inside)
        _infused(dt.date(2026, 10, 1), 15), _infused(dt.date(2026, 10, 31), 6),
        # November: 16 18 21 30 -> (18 + 21) / 2 = 19.5 (outside); no collection day: not counted
        _infused(dt.date(2026, 11, 2), 30), _infused(dt.date(2026, 11, 4), 18), _infused(dt.date(2026, 11, 5), 16),
        _infused(dt.date(2026, 11, 9), 21), _infused(dt.date(2026, 11, 10), None),
        # August is not one of the months shown
        _infused(dt.date(2026, 8, 31), 3),
    ]

    months = monthly_medians(rows, [sep, oct_, nov, dt.date(2026, 12, 1)])

    assert [(m.month, m.infusions, m.median_days, m.within_target) for m in months] == [
        (sep, 3, 12.0, True),
        (oct_, 2, 10.5, True),
        (nov, 4, 19.5, False),
        (dt.date(2026, 12, 1), 0, None, None),
    ]


def test_a_median_on_the_edge_of_the_target_is_within_it():
    day = dt.date(2026, 5, 10)
    seven, fourteen = (monthly_medians([_infused(day, d)], [dt.date(2026, 5, 1)])[0] for d in (7, 14))
    six = monthly_medians([_infused(day, 6)], [dt.date(2026, 5, 1)])[0]
    assert (seven.within_target, fourteen.within_target, six.within_target) == (True, True, False)


# --- the page, on rows of the site ---------------------------------------------------------------


class Unit:
    """Rows of one site's patients, dated relative to today (site calendar)."""

    def __init__(self, site, product, mbr, technician):
        self.site, self.product, self.mbr, self.technician = site, product, mbr, technician
        self.n = 0
        self.now = timezone.now()
        self.today = self.now.astimezone(site.zone).date()

    def batch(self, *, state: str, collected_days_ago: int | None, planned_in_days: int | None = None,
              failure_reason: str = "") -> Batch:
        self.n += 1
        n, site = self.n, self.site
        patient = Patient.objects.create(
            site=site, pseudonym=f"PT-D{n:03d}", initials="AB", birth_year=1975, hospital_record_number=f"HD{n}",
            wristband_code=f"WD{n:06d}", weight_kg=Decimal("70.0"), weight_measured_on=self.today)
        collected = self.today - dt.timedelta(days=collected_days_ago) if collected_days_ago is not None else None
        order = Order.objects.create(
            site=site, number=f"ORD-D{n:03d}", patient=patient, product=self.product, indication="r/r DLBCL",
            treating_physician="Dr A", target_dose_cells_per_kg=Decimal("1000000"),
            planned_collection_date=collected or self.today,
            planned_infusion_date=self.today + dt.timedelta(days=planned_in_days) if planned_in_days is not None else None)
        din13 = f"{site.facility_identification_number}26{700000 + n:06d}"
        donation = Donation.objects.create(site=site, order=order, din=din13, check_character=check_character(din13),
                                           collection_date=collected)
        made = self.now - dt.timedelta(days=collected_days_ago or 0)
        return Batch.objects.create(site=site, number=f"B-D-{n:03d}", order=order, donation=donation,
                                    product=self.product, mbr=self.mbr, state=state, created_at=made,
                                    failure_reason=failure_reason)

    def infused(self, *, vein_to_vein: int, at: dt.datetime, planned_shift: int = 0) -> Batch:
        """A released batch whose first fraction was given at ``at``, ``vein_to_vein``
        days (site calendar) after its collection; planned for ``planned_shift`` days
        before (negative: after) the day it was given."""
        day = at.astimezone(self.site.zone).date()
        batch = self.batch(state=BatchState.RELEASED, collected_days_ago=(self.today - day).days + vein_to_vein)
        Order.objects.filter(pk=batch.order_id).update(planned_infusion_date=day - dt.timedelta(days=planned_shift))
        Batch.objects.filter(pk=batch.pk).update(created_at=at - dt.timedelta(days=vein_to_vein))
        for fraction, minutes in ((1, 0), (2, 30)):
            Infusion.objects.create(site=self.site, batch=batch, fraction_number=fraction, fraction_percent=Decimal(50),
                                    bag_scanned_code="x", wristband_scanned_code="y",
                                    infused_at=at + dt.timedelta(minutes=minutes), recorded_by=self.technician,
                                    recorded_at=at)
        return batch


@pytest.fixture
def unit(site, product, mbr, technician):
    return Unit(site, product, mbr, technician)


def test_batches_in_flight_are_shown_by_stage_with_days_since_collection_and_planned_infusion(unit, coordinator):
    planned = unit.batch(state=BatchState.PLANNED, collected_days_ago=1, planned_in_days=12)
    making = unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=6, planned_in_days=5)
    waiting = unit.batch(state=BatchState.AWAITING_RELEASE, collected_days_ago=16, planned_in_days=-2)
    unit.infused(vein_to_vein=10, at=unit.now - dt.timedelta(hours=1))  # infused: not in flight any more
    unit.batch(state=BatchState.REJECTED, collected_days_ago=20, failure_reason=BatchFailureReason.CONTAMINATION)

    board = dashboard_for_user(coordinator, site=unit.site)

    assert [(r.batch.number, r.stage, r.days_since_collection, r.days_to_planned) for r in board.in_flight] == [
        (planned.number, "Planned (awaiting start)", 1, 12),
        # the qc test recipe has one stage; nothing is recorded, so its first step is next
        (making.number, "Manufacturing: Harvest & formulation", 6, 5),
        (waiting.number, "QC and QP release", 16, -2),
    ]
    assert [(s.stage, s.count) for s in board.by_stage] == [
        ("Planned (awaiting start)", 1), ("Manufacturing: Harvest & formulation", 1), ("QC and QP release", 1)]


def test_planned_and_actual_infusion_and_this_months_median(unit, coordinator):
    now = unit.now
    # Three infused this month (site calendar): 8, 11 and 30 days -> median 11.
    first = unit.infused(vein_to_vein=8, at=now - dt.timedelta(minutes=30), planned_shift=0)
    unit.infused(vein_to_vein=11, at=now - dt.timedelta(minutes=20), planned_shift=2)   # 2 days late
    unit.infused(vein_to_vein=30, at=now - dt.timedelta(minutes=10), planned_shift=-3)  # 3 days early
    # Two in the month before: 15 and 16 -> median 15.5, outside the target.
    month_start = dt.datetime.combine(unit.today.replace(day=1), dt.time(12), tzinfo=unit.site.zone)
    unit.infused(vein_to_vein=15, at=month_start - dt.timedelta(days=3))
    unit.infused(vein_to_vein=16, at=month_start - dt.timedelta(days=4))

    board = dashboard_for_user(coordinator, site=unit.site)

    this_month, last_month = board.months[-1], board.months[-2]
    assert (this_month.infusions, this_month.median_days, this_month.within_target) == (3, 11.0, True)
    assert (last_month.infusions, last_month.median_days, last_month.within_target) == (2, 15.5, False)
    # all five: 8 11 15 16 30 -> 15
    assert (board.window_infusions, board.window_median_days) == (5, 15.0)
    assert [(r.vein_to_vein_days, r.days_late) for r in board.recent_infusions[:3]] == [(30, -3), (11, 2), (8, 0)]
    assert board.recent_infusions[2].batch == first
    assert board.recent_infusions[0].days_early == 3
    assert not board.in_flight


def test_vein_to_vein_counts_days_in_the_sites_calendar(unit, coordinator):
    # 22:30 UTC is already the next day in Moscow (UTC+3): collected on the 1st, given
    # on the 11th local time -> 10 days, not 9.
    local_day = unit.today - dt.timedelta(days=40)
    at = dt.datetime.combine(local_day, dt.time(1, 30), tzinfo=unit.site.zone)
    assert at.astimezone(dt.UTC).date() == local_day - dt.timedelta(days=1)
    unit.infused(vein_to_vein=10, at=at)

    board = dashboard_for_user(coordinator, site=unit.site)

    [row] = board.recent_infusions
    assert row.infused_on == local_day
    assert row.vein_to_vein_days == 10


def test_failures_are_counted_by_reason(unit, qp):
    unit.batch(state=BatchState.REJECTED, collected_days_ago=30, failure_reason=BatchFailureReason.CONTAMINATION)
    unit.batch(state=BatchState.REJECTED, collected_days_ago=40, failure_reason=BatchFailureReason.CONTAMINATION)
    unit.batch(state=BatchState.CANCELLED, collected_days_ago=50, failure_reason=BatchFailureReason.INSUFFICIENT_EXPANSION)
    unit.batch(state=BatchState.CANCELLED, collected_days_ago=60)
    unit.batch(state=BatchState.REJECTED, collected_days_ago=500, failure_reason=BatchFailureReason.OTHER)  # > 12 months

    board = dashboard_for_user(qp, site=unit.site)

    assert [(f.label, f.count) for f in board.failure_reasons] == [
        ("Contamination", 2), ("Insufficient expansion", 1), ("Reason not recorded", 1)]
    assert len(board.failures) == 4


def test_qc_results_still_to_come_are_listed_by_due_date(make_batch, site_admin, site):
    batch = make_batch()

    board = dashboard_for_user(site_admin, site=site)

    assert board.pending_qc_total > 0
    assert all(row["batch"] == batch for row in board.pending_qc)
    due = [row["expected_on"] or dt.date.max for row in board.pending_qc]
    assert due == sorted(due)
    assert board.pending_qc_total == len(board.pending_qc) or len(board.pending_qc) == 25


# --- who sees it -------------------------------------------------------------------------------


def test_coordinators_qps_and_site_admins_see_the_page_and_the_others_are_refused(
    unit, client_for, coordinator, qp, site_admin, technician, verifier, qc_analyst, auditor
):
    in_flight = unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=4)
    for person in (coordinator, qp, site_admin):
        response = client_for(person).get(URL)
        assert response.status_code == 200, person
        assert in_flight.number in response.content.decode()
    for person in (technician, verifier, qc_analyst, auditor):
        response = client_for(person).get(URL)
        assert response.status_code == 403, person
        assert in_flight.number not in response.content.decode()
        with pytest.raises(PermissionRefused):
            dashboard_for_user(person, site=unit.site)


def test_another_sites_batches_are_not_on_its_dashboard(unit, client_for, other_site_user):
    ours = unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=4)
    unit.infused(vein_to_vein=9, at=unit.now - dt.timedelta(days=2))

    response = client_for(other_site_user).get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert ours.number not in html
    assert "B-D-" not in html
    with pytest.raises(PermissionRefused):
        dashboard_for_user(other_site_user, site=unit.site)


def test_the_page_needs_a_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_navigation_links_the_dashboard_for_its_roles_only(client_for, coordinator, technician):
    assert f'href="{URL}"' in client_for(coordinator).get("/").content.decode()
    assert f'href="{URL}"' not in client_for(technician).get("/").content.decode()


# --- the page itself ---------------------------------------------------------------------------


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(URL).status_code == 200
    return len(ctx.captured_queries)


def test_the_page_reads_a_fixed_number_of_queries_whatever_the_number_of_batches(unit, client_for, coordinator):
    client = client_for(coordinator)

    def add_some():
        unit.batch(state=BatchState.PLANNED, collected_days_ago=1, planned_in_days=10)
        unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=5)
        unit.batch(state=BatchState.AWAITING_RELEASE, collected_days_ago=12)
        unit.batch(state=BatchState.REJECTED, collected_days_ago=20, failure_reason=BatchFailureReason.OTHER)
        unit.infused(vein_to_vein=9, at=unit.now - dt.timedelta(days=3))

    add_some()
    few = _queries(client)
    for _ in range(4):
        add_some()
    many = _queries(client)

    assert few == many
    assert many <= 30


def test_the_page_draws_both_charts_and_prints(unit, client_for, coordinator):
    unit.batch(state=BatchState.IN_PROCESS, collected_days_ago=5)
    unit.infused(vein_to_vein=9, at=unit.now - dt.timedelta(hours=2))

    html = client_for(coordinator).get(URL).content.decode()

    assert html.count("<svg") == 2
    assert "target 7–14 days" in html
    assert 'aria-labelledby="v2v-chart-title v2v-chart-desc"' in html
    assert "qc/dashboard.css" in html


def test_chart_text_is_escaped():
    from qc.dashboard import StageCount

    svg = stage_chart_svg([StageCount(stage="Manufacturing: <script>x</script>", count=2)])
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert vein_to_vein_chart_svg([], target_min=7, target_max=14) == ""
