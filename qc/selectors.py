"""Reads of the `qc` app, scoped to the user's sites: a view cannot forget it.

Objects of other sites raise ``Http404``: their existence is not revealed. The QC
state of a batch (:func:`batch_test_status`) is one read model for the services
(may this result be entered? may the QP certify?) and the pages, built in a fixed
number of queries whatever the size of the batch.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.models import Batch, BatchState, Deviation, DeviationClass, DeviationStatus
from carmfg.accounts.selectors import site_ids_for_user
from carmfg.texts import Text, joined
from qc.models import (
    Alert,
    BatchRecordDocument,
    BatchSpecification,
    Certification,
    CertificationDecision,
    NotificationEmail,
    OosInvestigation,
    OosStatus,
    ResultEvaluation,
    ResultStatus,
    Sample,
    Specification,
    TestDefinition,
    TestResult,
)


def _scoped(qs: QuerySet, user, field_name: str = "site_id") -> QuerySet:
    return qs.filter(**{f"{field_name}__in": site_ids_for_user(user)})


def _get(qs: QuerySet, user, field_name: str = "site_id", **lookup):
    obj = _scoped(qs, user, field_name).filter(**lookup).first()
    if obj is None:
        raise Http404("Not found.")
    return obj


# --- specifications ------------------------------------------------------------------------


def specification_list_for_user(user, *, site=None) -> QuerySet[Specification]:
    qs = _scoped(Specification.objects.select_related("site", "product", "based_on").annotate(test_count=Count("tests")),
                 user)
    return (qs.filter(site=site) if site is not None else qs).order_by("product__name", "-version")


def specification_get_for_user(user, pk) -> Specification:
    return _get(Specification.objects.select_related("site", "product", "based_on", "created_by"), user, pk=pk)


def test_definition_get_for_user(user, pk) -> TestDefinition:
    return _get(TestDefinition.objects.select_related("specification__site", "specification__product"), user,
                "specification__site_id", pk=pk)


def pinned_specification(batch: Batch) -> Specification:
    pin = BatchSpecification.objects.filter(batch=batch).select_related("specification").first()
    if pin is None:
        raise Http404("This batch has no pinned specification.")
    return pin.specification


# --- samples, results, OOS ------------------------------------------------------------------


def sample_get_for_user(user, pk) -> Sample:
    return _get(Sample.objects.select_related("site", "batch__donation", "label"), user, pk=pk)


def result_get_for_user(user, pk) -> TestResult:
    return _get(TestResult.objects.select_related("site", "batch__site", "batch__donation", "test", "entered_by",
                                                  "reviewed_by"), user, pk=pk)


def oos_get_for_user(user, pk) -> OosInvestigation:
    return _get(OosInvestigation.objects.select_related("site", "result__batch__site", "result__test",
                                                        "result__entered_by", "deviation"), user, pk=pk)


def oos_list_for_user(user, *, site=None, open_only: bool = True) -> QuerySet[OosInvestigation]:
    qs = _scoped(OosInvestigation.objects.select_related("result__batch", "result__test", "deviation"), user)
    if site is not None:
        qs = qs.filter(site=site)
    if open_only:
        qs = qs.exclude(status=OosStatus.CLOSED)
    return qs.order_by("opened_at")


def oos_for_results(results: list[TestResult]) -> list[OosInvestigation]:
    return list(OosInvestigation.objects.filter(result__in=results).select_related("deviation", "result__test")
                .order_by("opened_at"))


def oos_of_batch_by_ids(batch: Batch, ids: list[int]) -> list[OosInvestigation]:
    """The investigations ``ids`` if they all belong to results of ``batch`` (else fewer)."""
    return list(OosInvestigation.objects.filter(pk__in=ids, result__batch=batch).select_related("result"))


def major_deviations_of_batch(batch: Batch) -> list[Deviation]:
    """The batch's major deviations, newest first: those an exceptional release may be
    recorded under."""
    return list(Deviation.objects.filter(batch=batch, classification=DeviationClass.MAJOR).order_by("-raised_at"))


def deviation_of_batch(batch: Batch, pk: int) -> Deviation | None:
    """The deviation ``pk`` if it is one of ``batch`` (None otherwise: never another batch's)."""
    return Deviation.objects.filter(pk=pk, batch=batch).first()


@dataclass
class TestStatus:
    """One test of the pinned specification for one batch: its current result (the
    latest one not invalidated) and its whole history, invalidated originals included."""

    __test__ = False

    test: TestDefinition
    history: list[TestResult] = field(default_factory=list)
    sample: Sample | None = None
    expected_on: dt.date | None = None

    @property
    def current(self) -> TestResult | None:
        valid = [r for r in self.history if r.status != ResultStatus.INVALIDATED]
        return valid[-1] if valid else None

    @property
    def state(self) -> str:
        """missing / unreviewed / failing / passing."""
        current = self.current
        if current is None:
            return "missing"
        if current.evaluation == ResultEvaluation.FAIL:
            return "failing"
        if current.status != ResultStatus.REVIEWED:
            return "unreviewed"
        return "passing"

    @property
    def last_invalidated(self) -> TestResult | None:
        invalid = [r for r in self.history if r.status == ResultStatus.INVALIDATED]
        return invalid[-1] if invalid else None


@dataclass
class Requirement:
    """An acceptance criterion: one test, or a composite group of tests of which any
    one passing is enough (e.g. two potency read-outs)."""

    key: str
    label: str
    members: list[TestStatus]

    @property
    def is_group(self) -> bool:
        return len(self.members) > 1 or bool(self.members[0].test.composite_group)

    @property
    def required_for_provisional(self) -> bool:
        return any(m.test.required_for_provisional for m in self.members)

    @property
    def state(self) -> str:
        states = [m.state for m in self.members]
        if "passing" in states:
            return "passing"
        if all(s == "failing" for s in states):
            return "failing"
        if "unreviewed" in states:
            return "unreviewed"
        return "missing"

    @property
    def expected_on(self) -> dt.date | None:
        dates = [m.expected_on for m in self.members if m.expected_on is not None]
        return max(dates) if dates else None

    def describe(self) -> Text:
        """The state in words, for the checklist and the signature page (English, translatable)."""
        if not self.is_group:
            member = self.members[0]
            current = member.current
            template = {
                "missing": gettext_noop("%(test)s: no result yet."),
                "unreviewed": gettext_noop("%(test)s: %(value)s awaits review by a second QC person."),
                "failing": gettext_noop("%(test)s: %(value)s is out of specification."),
                "passing": gettext_noop("%(test)s: %(value)s meets the limit."),
            }[self.state]
            return Text(template, {"test": self.label, "value": current.display_value if current else ""})
        parts = []
        for m in self.members:
            current = m.current
            state = {"failing": gettext_noop("fails"), "passing": gettext_noop("passing"),
                     "unreviewed": gettext_noop("unreviewed"), "missing": gettext_noop("missing")}[m.state]
            parts.append(Text("%(test)s %(value)s (%(state)s)",
                              {"test": m.test.name, "value": current.display_value if current else
                               Text(gettext_noop("no result")), "state": Text(state)}))
        template = {"passing": gettext_noop("%(criterion)s passes (one read-out meets its limit): %(parts)s."),
                    "failing": gettext_noop("%(criterion)s fails (no read-out meets its limit): %(parts)s."),
                    "unreviewed": gettext_noop("%(criterion)s awaits review: %(parts)s."),
                    "missing": gettext_noop("%(criterion)s is not complete: %(parts)s.")}[self.state]
        return Text(template, {"criterion": self.label, "parts": joined(parts, "; ")})


@dataclass
class BatchQc:
    batch: Batch
    specification: Specification
    tests: list[TestStatus]
    samples: list[Sample]

    @property
    def requirements(self) -> list[Requirement]:
        out: list[Requirement] = []
        groups: dict[str, Requirement] = {}
        for status in self.tests:
            group = status.test.composite_group
            if not group:
                out.append(Requirement(key=status.test.code, label=status.test.name, members=[status]))
            elif group in groups:
                groups[group].members.append(status)
            else:
                groups[group] = Requirement(key=f"group:{group}", label=Text(gettext_noop("Composite criterion “%(group)s”"),
                                                                             {"group": group}),
                                            members=[status])
                out.append(groups[group])
        return out

    def by_code(self, code: str) -> TestStatus | None:
        return next((t for t in self.tests if t.test.code == code), None)


def _sample_for(samples: list[Sample], code: str) -> Sample | None:
    return next((s for s in samples if code in (s.test_codes or [])), None)


def batch_test_status(batch: Batch, *, specification: Specification | None = None) -> BatchQc:
    """Every test of the batch's pinned specification with its results, in four queries."""
    spec = specification or pinned_specification(batch)
    tests = list(TestDefinition.objects.filter(specification=spec).order_by("order"))
    results = list(
        TestResult.objects.filter(batch=batch).select_related("entered_by", "reviewed_by", "oos")
        .order_by("entered_at", "pk")
    )
    samples = list(Sample.objects.filter(batch=batch).select_related("taken_by", "received_by", "label")
                   .order_by("taken_at", "pk"))
    by_test: dict[int, list[TestResult]] = defaultdict(list)
    for result in results:
        by_test[result.test_id].append(result)
    zone = batch.site.zone
    statuses = []
    for test in tests:
        sample = _sample_for(samples, test.code)
        start = sample.taken_at if sample is not None else batch.completed_at
        expected = (start.astimezone(zone).date() + dt.timedelta(days=test.turnaround_days)) if start else None
        for r in by_test.get(test.pk, []):
            r.test = test
        statuses.append(TestStatus(test=test, history=by_test.get(test.pk, []), sample=sample, expected_on=expected))
    return BatchQc(batch=batch, specification=spec, tests=statuses, samples=samples)


# --- work lists ---------------------------------------------------------------------------

QC_ACTIVE_STATES = (BatchState.IN_PROCESS, BatchState.AWAITING_RELEASE, BatchState.PROVISIONALLY_RELEASED,
                    BatchState.ON_HOLD)


def qc_batches_for_user(user, *, site) -> QuerySet[Batch]:
    """Batches whose QC is under way at ``site``: made, not yet finally decided."""
    return _scoped(Batch.objects.filter(site=site, state__in=QC_ACTIVE_STATES), user).select_related(
        "site", "product", "order__patient", "donation").order_by("created_at")


def results_to_review_for_user(user, *, site) -> QuerySet[TestResult]:
    """Results entered at ``site`` and not yet reviewed (someone else's: one cannot review one's own)."""
    return _scoped(TestResult.objects.filter(site=site, status=ResultStatus.ENTERED), user).exclude(
        entered_by=user).select_related("batch", "test", "entered_by").order_by("entered_at")


def results_to_enter_for_user(user, *, site, limit: int = 200) -> list[dict]:
    """Tests of QC-active batches with no current result, oldest expected date first."""
    # A batch still in manufacturing has nothing to test until QC has its samples.
    batches = list(qc_batches_for_user(user, site=site).filter(
        ~Q(state=BatchState.IN_PROCESS) | Q(qc_samples__isnull=False)).distinct()[:limit])
    if not batches:
        return []
    pins = {p.batch_id: p.specification_id for p in BatchSpecification.objects.filter(batch__in=batches)}
    tests_by_spec: dict[int, list[TestDefinition]] = defaultdict(list)
    for test in TestDefinition.objects.filter(specification_id__in=set(pins.values())).order_by("order"):
        tests_by_spec[test.specification_id].append(test)
    current = set(
        TestResult.objects.filter(batch__in=batches).exclude(status=ResultStatus.INVALIDATED)
        .values_list("batch_id", "test_id")
    )
    samples: dict[int, list[Sample]] = defaultdict(list)
    for taken in Sample.objects.filter(batch__in=batches).order_by("taken_at"):
        samples[taken.batch_id].append(taken)
    rows: list[dict[str, Any]] = []
    for batch in batches:
        for test in tests_by_spec.get(pins.get(batch.pk, 0), []):
            if (batch.pk, test.pk) in current:
                continue
            sample = _sample_for(samples[batch.pk], test.code)
            start = sample.taken_at if sample else batch.completed_at
            expected = start.astimezone(site.zone).date() + dt.timedelta(days=test.turnaround_days) if start else None
            rows.append({"batch": batch, "test": test, "sample": sample, "expected_on": expected,
                         "overdue": expected is not None and expected < timezone.now().astimezone(site.zone).date()})
    # Grouped by batch (the page shows each batch once), the batch with the earliest due test first.
    first_due: dict[int, dt.date] = {}
    for r in rows:
        due = r["expected_on"] or dt.date.max
        first_due[r["batch"].pk] = min(first_due.get(r["batch"].pk, dt.date.max), due)
    rows.sort(key=lambda r: (first_due[r["batch"].pk], r["batch"].number, r["expected_on"] or dt.date.max))
    return rows


# --- release -------------------------------------------------------------------------------


def certification_list_for_batch(batch: Batch) -> list[Certification]:
    return list(Certification.objects.filter(batch=batch).select_related("qp").prefetch_related("investigations")
                .order_by("signed_at"))


def released_provisionally(batch: Batch) -> bool:
    """Was the fresh product released (so that any later failing result is a late one)?"""
    return Certification.objects.filter(
        batch=batch, decision__in=(CertificationDecision.RELEASED, CertificationDecision.RELEASED_EXCEPTIONAL),
    ).exists()


@dataclass
class QueueRow:
    batch: Batch
    stage: str  # provisional / final / single
    age_days: int | None
    age_basis: str
    completed_days: int | None
    failing: int = 0
    unreviewed: int = 0
    missing: int = 0
    deviations: int = 0
    open_oos: int = 0
    late_failure: bool = False

    @property
    def exceptions(self) -> int:
        return self.failing + self.deviations + self.open_oos

    @property
    def outstanding(self) -> int:
        return self.unreviewed + self.missing


QUEUE_PAGE_SIZE = 25
WAITING_FOR_QP = (Q(state=BatchState.AWAITING_RELEASE) | Q(state=BatchState.PROVISIONALLY_RELEASED)
                  | Q(state=BatchState.ON_HOLD, state_before_hold__in=(BatchState.AWAITING_RELEASE,
                                                                       BatchState.PROVISIONALLY_RELEASED)))


def release_candidates_for_user(user, *, site, final: bool | None = None) -> QuerySet[Batch]:
    """Batches waiting for a QP decision at ``site``: provisional (or single) on completed
    batches, final on provisionally released ones (also those on hold after a late
    failing result); only those of one stage if ``final`` is given. Annotated
    ``is_final`` (a release was certified) and ``waiting_since`` (the end of the
    collection, else the batch's creation), the patient waiting longest first: sections
    and pages are cut in SQL."""
    released = Exists(Certification.objects.filter(
        batch=OuterRef("pk"), decision__in=(CertificationDecision.RELEASED, CertificationDecision.RELEASED_EXCEPTIONAL)))
    qs = _scoped(Batch.objects.filter(WAITING_FOR_QP, site=site), user)
    if final is not None:
        qs = qs.filter(released if final else ~released)
    return qs.annotate(
        is_final=released, waiting_since=Coalesce("donation__intake__collection_ended_at", "created_at"),
    ).select_related("product", "order__patient", "donation__intake").order_by("waiting_since", "number", "pk")


def release_queue_rows(batches: list[Batch]) -> list[QueueRow]:
    """The queue rows of ``batches`` (from :func:`release_candidates_for_user`), in their
    order: results, deviations and OOS counted per requirement of the stage. A fixed
    number of queries, whatever the number of rows; only the rows shown should be asked for."""
    if not batches:
        return []
    ids = [b.pk for b in batches]
    pins = dict(BatchSpecification.objects.filter(batch_id__in=ids).values_list("batch_id", "specification_id"))
    tests_by_spec: dict[int, list[TestDefinition]] = defaultdict(list)
    for test in TestDefinition.objects.filter(specification_id__in=set(pins.values())).order_by("order"):
        tests_by_spec[test.specification_id].append(test)
    results: dict[int, list[TestResult]] = defaultdict(list)
    # Only what a requirement's state reads: a queue of 50 batches has some 500 results.
    for result in (TestResult.objects.filter(batch_id__in=ids).only("batch_id", "test_id", "status", "evaluation")
                   .order_by("entered_at", "pk")):
        results[result.batch_id].append(result)
    deviations = dict(
        Deviation.objects.filter(batch_id__in=ids, classification__in=(DeviationClass.MAJOR, DeviationClass.CRITICAL))
        .exclude(status=DeviationStatus.CLOSED).values("batch_id").annotate(n=Count("pk")).values_list("batch_id", "n")
    )
    open_oos = dict(
        OosInvestigation.objects.filter(result__batch_id__in=ids).exclude(status=OosStatus.CLOSED)
        .values("result__batch_id").annotate(n=Count("pk")).values_list("result__batch_id", "n")
    )
    today = timezone.now()
    rows = []
    for batch in batches:
        is_final = batch.is_final  # type: ignore[attr-defined]
        stage = "final" if is_final else ("single" if batch.product.release_model == "single" else "provisional")
        intake = getattr(batch.donation, "intake", None)
        if intake is not None:
            age_days, basis = (today - intake.collection_ended_at).days, "collection"
        else:
            age_days, basis = (today - batch.created_at).days, "batch created"
        row = QueueRow(batch=batch, stage=stage, age_days=age_days, age_basis=basis,
                       completed_days=(today - batch.completed_at).days if batch.completed_at else None,
                       deviations=deviations.get(batch.pk, 0), open_oos=open_oos.get(batch.pk, 0))
        statuses = []
        by_test: dict[int, list[TestResult]] = defaultdict(list)
        for r in results[batch.pk]:
            by_test[r.test_id].append(r)
        for test in tests_by_spec.get(pins.get(batch.pk, 0), []):
            statuses.append(TestStatus(test=test, history=by_test.get(test.pk, [])))
        qc = BatchQc(batch=batch, specification=None, tests=statuses, samples=[])  # type: ignore[arg-type]
        for requirement in qc.requirements:
            if stage == "provisional" and not requirement.required_for_provisional:
                continue
            state = requirement.state
            if state == "failing":
                row.failing += 1
                # A failing result still to be reviewed is also outstanding work.
                if any(m.current is not None and m.current.status != ResultStatus.REVIEWED for m in requirement.members):
                    row.unreviewed += 1
            elif state == "unreviewed":
                row.unreviewed += 1
            elif state == "missing":
                row.missing += 1
        row.late_failure = is_final and row.failing > 0
        rows.append(row)
    return rows


def release_queue_for_user(user, *, site, limit: int | None = None) -> list[QueueRow]:
    """The queue of ``site``, both stages together, the patient waiting longest first;
    its first ``limit`` rows only if given."""
    candidates = release_candidates_for_user(user, site=site)
    return release_queue_rows(list(candidates[:limit] if limit is not None else candidates))


@dataclass
class ReleaseQueuePages:
    """One page of each section of the queue; the pages' ``object_list`` are
    :class:`QueueRow`; ``paginator.count`` is the section's total."""

    provisional: Page
    final: Page


def release_queue_pages_for_user(user, *, site, provisional_page: Any = 1, final_page: Any = 1,
                                 per_page: int = QUEUE_PAGE_SIZE) -> ReleaseQueuePages:
    """The queue of ``site`` in its two sections (awaiting a provisional or single
    decision; awaiting the final one), each paged in SQL. A page number as typed in
    the address: garbage gives the first page, one past the end the last. Four queries
    (both totals; the ids on each section's page; those batches), then the details of
    both pages' rows in one set."""
    candidates = release_candidates_for_user(user, site=site)
    totals = candidates.aggregate(final=Count("pk", filter=Q(is_final=True)), all=Count("pk"))
    sections = []
    for final, total, number in ((False, totals["all"] - totals["final"], provisional_page),
                                 (True, totals["final"], final_page)):
        # The paginator only checks the number against the total (counted above for both).
        page = Paginator(range(total), per_page).get_page(number)
        first = (page.number - 1) * per_page
        ids = list(release_candidates_for_user(user, site=site, final=final).values_list("pk", flat=True)
                   [first:first + per_page]) if total else []
        sections.append((page, ids))
    # The batches of both pages in one query (ids first: ordering and cutting them is cheap).
    found = {b.pk: b for b in candidates.filter(pk__in=[pk for _, ids in sections for pk in ids])}
    shown = [[found[pk] for pk in ids if pk in found] for _, ids in sections]
    rows: Any = release_queue_rows(shown[0] + shown[1])
    (provisional, _), (final_, _) = sections
    provisional.object_list, final_.object_list = rows[:len(shown[0])], rows[len(shown[0]):]
    return ReleaseQueuePages(provisional=provisional, final=final_)


def notifications_for_batch(batch: Batch) -> dict:
    """Who was told what about the batch, and when: e-mails sent (or not yet) and the
    in-app alerts with their acknowledgement."""
    return {
        "emails": list(NotificationEmail.objects.filter(batch=batch).order_by("created_at", "pk")),
        "alerts": list(Alert.objects.filter(batch=batch).exclude(key__startswith="overdue:")
                       .select_related("recipient").order_by("created_at", "pk")),
    }


def alert_list_for_user(user, *, site=None, open_only: bool = True) -> QuerySet[Alert]:
    qs = Alert.objects.filter(recipient=user, site_id__in=site_ids_for_user(user)).select_related("batch", "site")
    if site is not None:
        qs = qs.filter(site=site)
    if open_only:
        qs = qs.filter(acknowledged_at__isnull=True)
    return qs.order_by("-created_at")


def alert_get_for_user(user, pk) -> Alert:
    alert = alert_list_for_user(user, open_only=False).filter(pk=pk).first()
    if alert is None:
        raise Http404("Not found.")
    return alert


# --- signed batch records -------------------------------------------------------------------------


def record_document_list_for_batch(user, batch: Batch) -> QuerySet[BatchRecordDocument]:
    """The batch's signed records, newest first, for people who may read the site's
    records (QPs and auditors); nobody else sees them listed. Pages and the API."""
    from carmfg.accounts.permissions import SitePerm, has_site_perm

    if not has_site_perm(user, batch.site, SitePerm.AUDIT):
        return BatchRecordDocument.objects.none()
    return BatchRecordDocument.objects.filter(batch=batch).select_related("requested_by").order_by("-version")


def record_document_get_for_user(user, pk) -> BatchRecordDocument:
    """One signed record, only at a site whose records ``user`` may read (else 404)."""
    from carmfg.audit.selectors import audit_sites_for_user

    site_ids = [site.pk for site in audit_sites_for_user(user)]
    document = BatchRecordDocument.objects.select_related("batch", "site", "requested_by").filter(
        pk=pk, site_id__in=site_ids).first()
    if document is None:
        raise Http404("Not found.")
    return document
