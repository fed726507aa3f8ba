"""Pages at hospital-network scale: batch list, the QP's release queue, audit search.

``manage.py seed_scale`` fills the database (full: 20 sites, 10,000 batches, 1,000,000
audit events; quick: 2 sites, 200 batches, 20,000 events), and one more site is made
with no batches at all. Each page is requested ≥ 50 times through the Django test
client by the role that uses it, at a scale site and at the empty site; the figure is
the p95 at scale against the p95 of the same page on the empty site, with the medians
and query counts in the notes. Goal: p95 ≤ 150 ms, and no more queries at scale than at
a site with one batch in each state (an empty list skips its rows' detail queries).
"""

from __future__ import annotations

import io
import statistics
import time
import uuid

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from bench.result import Result

GOAL_P95_MS = 150.0

PAGES = [
    ("batch list", "tech", lambda: reverse("batches:index")),
    ("QP release queue", "qp", lambda: reverse("qc:release")),
    ("audit search: action filter, page 3", "auditor", lambda: reverse("audit_list") + "?action=sign&before={page3}"),
    ("audit search: one batch's trail", "auditor", lambda: reverse("audit_list") + "?root=batches.batch:{batch}"),
]


def _third_page_cursor(username: str) -> str:
    """Where "Older" twice leads from the newest signatures (the list pages by cursor)."""
    from carmfg.audit.selectors import AuditFilter, audit_event_page_for_user

    user, flt = get_user_model().objects.get(username=username), AuditFilter(action="sign")
    cursor = None
    for _ in range(2):
        cursor = audit_event_page_for_user(user, flt, before=cursor).older
        if cursor is None:
            return ""
    return str(cursor)


def _client(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username),
                       backend="django.contrib.auth.backends.ModelBackend")
    return client


def _timed(client: Client, url: str, n: int) -> tuple[list[float], int]:
    client.get(url)  # warm-up: session, caches
    # Counted by hand: the bench runs outside a test transaction, so the connection is
    # closed after each request (CONN_MAX_AGE=0), which CaptureQueriesContext does not survive.
    saved, connection.force_debug_cursor = connection.force_debug_cursor, True
    try:
        response = client.get(url)  # request_started empties queries_log first
        queries = len(connection.queries_log)
    finally:
        connection.force_debug_cursor = saved
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1e3)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return times, queries


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[18]


def run(quick: bool) -> list[Result]:
    from batches.models import Batch

    tag, empty_tag = "p" + uuid.uuid4().hex[:4], "e" + uuid.uuid4().hex[:4]
    sites, batches, events = (2, 200, 20_000) if quick else (20, 10_000, 1_000_000)
    out = io.StringIO()
    started = time.perf_counter()
    call_command("seed_scale", "--sites", str(sites), "--batches", str(batches), "--audit-events", str(events),
                 "--prefix", tag, stdout=out)
    seed_s = time.perf_counter() - started
    call_command("seed_scale", "--sites", "1", "--batches", "0", "--audit-events", "0", "--prefix", empty_tag,
                 stdout=io.StringIO())
    few_tag = "f" + uuid.uuid4().hex[:4]
    call_command("seed_scale", "--sites", "1", "--batches", "8", "--audit-events", "0", "--prefix", few_tag,
                 stdout=io.StringIO())
    scale_code, empty_code, few_code = f"{tag}01", f"{empty_tag}01", f"{few_tag}01"
    def released(code: str) -> int:
        found = Batch.objects.filter(site__code=code, state="released").order_by("pk").first()
        return found.pk if found else 0

    n = 50 if quick else 100
    results = []
    for name, who, url_of in PAGES:
        def url(code: str, url_of=url_of) -> str:
            return url_of().format(batch=released(code), page3=_third_page_cursor(f"auditor-{code}"))

        scale_times, scale_queries = _timed(_client(f"{who}-{scale_code}"), url(scale_code), n)
        empty_times, empty_queries = _timed(_client(f"{who}-{empty_code}"), url(empty_code), n)
        _, few_queries = _timed(_client(f"{who}-{few_code}"), url(few_code), 0)
        p95, p95_empty = _p95(scale_times), _p95(empty_times)
        # An empty list skips the queries of its rows' details; the count must not grow
        # from one batch per state (few, which takes every branch of a row) to thousands.
        met = p95 <= GOAL_P95_MS and scale_queries <= few_queries
        results.append(Result(
            name=f"page at scale: {name}", value=round(p95, 1), unit="ms p95", baseline=round(p95_empty, 1),
            ratio=round(p95 / p95_empty, 2), goal=f"p95 <= {GOAL_P95_MS:.0f} ms, queries <= with 8 batches", met=met,
            notes=(f"{n} requests each; median {statistics.median(scale_times):.1f} ms at scale vs "
                   f"{statistics.median(empty_times):.1f} ms empty; queries {scale_queries} at scale, "
                   f"{few_queries} with one batch per state, {empty_queries} empty; scale = {sites} sites, {batches:,} batches, {events:,} audit events "
                   f"(seeded in {seed_s:.0f} s)"),
        ))
    return results
