"""The vein-to-vein dashboard: what a coordinator, a QP or a site admin needs to see the
unit's patients through from apheresis to infusion.

Reads only, for one site (the request's current site, one of the user's), in a fixed
number of queries whatever the number of batches:

- batches in flight (collected, not yet infused, not failed) by stage, with the days
  since collection and the planned infusion date;
- planned vs actual infusion date of the batches infused lately;
- the median vein-to-vein time (apheresis day to first infusion day) per month,
  against the point-of-care target of 7-14 days;
- manufacturing failures and their reasons;
- QC results still to come, by the date each is due.

It lives in ``qc`` because it reads QC (``batches`` must not import ``qc``).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from batches.models import Batch, BatchFailureReason, BatchState
from batches.selectors import next_steps_for_batches
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.exceptions import PermissionRefused
from qc.models import ResultStatus, TestResult
from qc.selectors import results_to_enter_for_user

# Point-of-care CAR-T: apheresis to infusion in one to two weeks (vs 3-5 for central
# manufacturing). A month whose median is outside it stands out on the chart.
TARGET_MIN_DAYS = 7
TARGET_MAX_DAYS = 14
MONTHS_SHOWN = 12
RECENT_INFUSIONS_SHOWN = 12
PENDING_QC_SHOWN = 25
IN_FLIGHT_LIMIT = 500  # a site has tens; the cap only bounds a runaway page

# The roles the dashboard serves, by the one permission each of them alone holds.
DASHBOARD_PERMS = (SitePerm.PATIENTS, SitePerm.CERTIFY, SitePerm.ADMIN)

FAILED_STATES = (BatchState.REJECTED, BatchState.CANCELLED)
# Collected (a batch is made for a collection), not infused yet, not failed; on a queryset
# annotated with ``first_infused_at``.
IN_FLIGHT = Q(first_infused_at__isnull=True) & ~Q(state__in=FAILED_STATES)
# Where a batch in flight is, in the order the process runs; in-process batches are
# shown by the stage of their next step, between "Planned" and "On hold".
STATE_ORDER: dict[str, int] = {
    BatchState.PLANNED: 0, BatchState.IN_PROCESS: 1, BatchState.ON_HOLD: 2, BatchState.AWAITING_RELEASE: 3,
    BatchState.PROVISIONALLY_RELEASED: 4, BatchState.RELEASED: 5,
}
STATE_STAGE_LABELS: dict[str, Any] = {
    BatchState.PLANNED: gettext_lazy("Planned (awaiting start)"),
    BatchState.ON_HOLD: gettext_lazy("On hold"),
    BatchState.AWAITING_RELEASE: gettext_lazy("QC and QP release"),
    BatchState.PROVISIONALLY_RELEASED: gettext_lazy("Released provisionally, awaiting infusion"),
    BatchState.RELEASED: gettext_lazy("Released, awaiting infusion"),
}


def may_view_dashboard(user, site) -> bool:
    return site is not None and any(has_site_perm(user, site, perm) for perm in DASHBOARD_PERMS)


@dataclass(frozen=True)
class InFlight:
    batch: Batch
    stage: str
    stage_key: tuple[int, int]
    collected_on: dt.date | None
    days_since_collection: int | None
    planned_infusion: dt.date | None
    days_to_planned: int | None          # negative: the planned date has passed


@dataclass(frozen=True)
class StageCount:
    stage: str
    count: int


@dataclass(frozen=True)
class Infused:
    batch: Batch
    collected_on: dt.date | None
    planned_infusion: dt.date | None
    infused_on: dt.date
    vein_to_vein_days: int | None
    days_late: int | None                # actual - planned; negative: earlier than planned

    @property
    def days_early(self) -> int:
        return -self.days_late if self.days_late is not None and self.days_late < 0 else 0


@dataclass(frozen=True)
class MonthMedian:
    month: dt.date                       # first day of the month
    infusions: int
    median_days: float | None
    within_target: bool | None


@dataclass(frozen=True)
class FailureReason:
    reason: str
    label: str
    count: int


@dataclass
class Dashboard:
    site: Any
    today: dt.date
    in_flight: list[InFlight] = field(default_factory=list)
    by_stage: list[StageCount] = field(default_factory=list)
    recent_infusions: list[Infused] = field(default_factory=list)
    months: list[MonthMedian] = field(default_factory=list)
    failures: list[Batch] = field(default_factory=list)
    failure_reasons: list[FailureReason] = field(default_factory=list)
    pending_qc: list[dict] = field(default_factory=list)
    pending_qc_total: int = 0
    results_to_review: int = 0
    window_infusions: int = 0            # batches first infused in the months shown
    window_median_days: float | None = None
    target_min_days: int = TARGET_MIN_DAYS
    target_max_days: int = TARGET_MAX_DAYS


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _months_back(first: dt.date, n: int) -> list[dt.date]:
    """``n`` month starts ending with ``first``, oldest first."""
    months = [first]
    for _month in range(n - 1):
        previous = months[-1] - dt.timedelta(days=1)
        months.append(previous.replace(day=1))
    return months[::-1]


def collection_day(batch: Batch) -> dt.date | None:
    """The apheresis day: the start of the collection recorded at intake (what the
    release queue counts from too), else the day printed on the labels."""
    donation = batch.donation
    intake = getattr(donation, "intake", None)
    if intake is not None:
        return intake.collection_started_at.astimezone(batch.site.zone).date()
    return donation.collection_date


def vein_to_vein_days(collected_on: dt.date | None, infused_on: dt.date) -> int | None:
    return (infused_on - collected_on).days if collected_on is not None else None


def monthly_medians(infused: list[Infused], months: list[dt.date]) -> list[MonthMedian]:
    """Median vein-to-vein days of the batches first infused in each month."""
    per_month: dict[dt.date, list[int]] = {m: [] for m in months}
    for row in infused:
        month = _month_start(row.infused_on)
        if month in per_month and row.vein_to_vein_days is not None:
            per_month[month].append(row.vein_to_vein_days)
    out = []
    for month in months:
        days = per_month[month]
        median = float(statistics.median(days)) if days else None
        within = None if median is None else TARGET_MIN_DAYS <= median <= TARGET_MAX_DAYS
        out.append(MonthMedian(month=month, infusions=len(days), median_days=median, within_target=within))
    return out


def _stage_of(batch: Batch, next_step) -> tuple[str, tuple[int, int]]:
    order = STATE_ORDER.get(batch.state, 9)
    if batch.state == BatchState.IN_PROCESS:
        if next_step is None:
            return _("Manufacturing: steps complete"), (order, 10_000)
        stage = next_step.definition.stage
        return _("Manufacturing: %(stage)s") % {"stage": stage.name}, (order, stage.order)
    label = STATE_STAGE_LABELS.get(batch.state)
    return (str(label) if label is not None else batch.get_state_display()), (order, 0)


def _batches(site):
    return Batch.objects.filter(site=site).select_related(
        "site", "product", "order__patient", "donation__intake").annotate(first_infused_at=Min("infusions__infused_at"))


def _in_flight(site, today: dt.date, flying: list[Batch] | None = None) -> list[InFlight]:
    """Batches collected and not yet infused nor failed, in process order: 1 query (none
    when ``flying`` is given) and 2 for the stage of those in process."""
    if flying is None:
        flying = list(_batches(site).filter(IN_FLIGHT).order_by("created_at")[:IN_FLIGHT_LIMIT])
    steps = next_steps_for_batches([b for b in flying if b.state == BatchState.IN_PROCESS])
    rows = []
    for batch in flying:
        stage, key = _stage_of(batch, steps.get(batch.pk))
        collected = collection_day(batch)
        planned = batch.order.planned_infusion_date
        rows.append(InFlight(
            batch=batch, stage=stage, stage_key=key, collected_on=collected,
            days_since_collection=(today - collected).days if collected else None,
            planned_infusion=planned, days_to_planned=(planned - today).days if planned else None))
    rows.sort(key=lambda row: (row.stage_key, -(row.days_since_collection or 0), row.batch.number))
    return rows


def _by_stage(in_flight: list[InFlight]) -> list[StageCount]:
    counts: dict[str, int] = Counter(row.stage for row in in_flight)
    seen: list[str] = []
    for row in in_flight:
        if row.stage not in seen:
            seen.append(row.stage)
    return [StageCount(stage=s, count=counts[s]) for s in seen]


def _since(site, start: dt.date) -> dt.datetime:
    return dt.datetime.combine(start, dt.time.min, tzinfo=site.zone)


def _infused_since(site, start: dt.date, batches: list | None = None) -> list[Infused]:
    """Batches first infused on ``start`` or later (site calendar), latest first: 1 query
    (none when ``batches``, in that order, is given)."""
    infused = []
    if batches is None:
        batches = list(_batches(site).filter(first_infused_at__gte=_since(site, start)).order_by("-first_infused_at"))
    for batch in batches:
        collected = collection_day(batch)
        infused_on = batch.first_infused_at.astimezone(site.zone).date()
        planned = batch.order.planned_infusion_date
        infused.append(Infused(
            batch=batch, collected_on=collected, planned_infusion=planned, infused_on=infused_on,
            vein_to_vein_days=vein_to_vein_days(collected, infused_on),
            days_late=(infused_on - planned).days if planned else None))
    return infused


def _refuse_unless_allowed(user, site) -> None:
    if not may_view_dashboard(user, site):
        raise PermissionRefused(
            gettext_noop("The vein-to-vein dashboard is for coordinators, QPs and site admins of %(site)s."),
            params={"site": str(site)})


@dataclass(frozen=True)
class Summary:
    """The dashboard in brief, for the home page."""

    in_flight: int
    by_stage: list[StageCount]
    this_month: MonthMedian
    target_min_days: int = TARGET_MIN_DAYS
    target_max_days: int = TARGET_MAX_DAYS


def dashboard_summary_for_user(user, *, site, today: dt.date | None = None) -> Summary:
    """Batches in flight by stage and this month's median vein-to-vein time at ``site``:
    one query for the batches, two more for the stage of those in process."""
    _refuse_unless_allowed(user, site)
    today = today or timezone.now().astimezone(site.zone).date()
    month = _month_start(today)
    since = _since(site, month)
    batches = list(_batches(site).filter(IN_FLIGHT | Q(first_infused_at__gte=since))
                   .order_by("created_at")[:IN_FLIGHT_LIMIT])
    in_flight = _in_flight(site, today, [b for b in batches if b.first_infused_at is None])
    infused = sorted((b for b in batches if b.first_infused_at is not None), key=lambda b: b.first_infused_at,
                     reverse=True)
    [this_month] = monthly_medians(_infused_since(site, month, infused), [month])
    return Summary(in_flight=len(in_flight), by_stage=_by_stage(in_flight), this_month=this_month)


def dashboard_for_user(user, *, site, today: dt.date | None = None) -> Dashboard:
    """The dashboard of ``site`` (the request's current site) for ``user``."""
    _refuse_unless_allowed(user, site)
    now_local = timezone.now().astimezone(site.zone)
    today = today or now_local.date()
    months = _months_back(_month_start(today), MONTHS_SHOWN)
    window_start = dt.datetime.combine(months[0], dt.time.min, tzinfo=site.zone)
    board = Dashboard(site=site, today=today)

    # 1 query: batches in flight; 2 more for the stage of those in process.
    board.in_flight = _in_flight(site, today)
    board.by_stage = _by_stage(board.in_flight)

    # 1 query: batches first infused in the window (the months of the chart).
    infused = _infused_since(site, months[0])
    board.recent_infusions = infused[:RECENT_INFUSIONS_SHOWN]
    board.months = monthly_medians(infused, months)
    days = [row.vein_to_vein_days for row in infused if row.vein_to_vein_days is not None]
    board.window_infusions = len(days)
    board.window_median_days = float(statistics.median(days)) if days else None

    # 1 query: batches that failed (rejected, or cancelled) and were made in the window.
    board.failures = list(Batch.objects.filter(site=site, state__in=FAILED_STATES, created_at__gte=window_start)
                          .select_related("order__patient", "product").order_by("-created_at"))
    labels = {value: _(label) for value, label in BatchFailureReason.choices}
    reasons = Counter(b.failure_reason for b in board.failures)
    board.failure_reasons = sorted(
        (FailureReason(reason=r, label=labels.get(r, _("Reason not recorded")), count=n) for r, n in reasons.items()),
        key=lambda f: (-f.count, f.label))

    # QC results still to come (fixed queries, see the selector), earliest due first.
    pending = results_to_enter_for_user(user, site=site)
    pending.sort(key=lambda r: (r["expected_on"] or dt.date.max, r["batch"].number, r["test"].order))
    board.pending_qc_total = len(pending)
    board.pending_qc = pending[:PENDING_QC_SHOWN]
    board.results_to_review = TestResult.objects.filter(site=site, status=ResultStatus.ENTERED).count()
    return board
