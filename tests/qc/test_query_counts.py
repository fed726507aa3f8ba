"""Every list and detail page runs a fixed number of queries, however many rows it shows.

Two sites are filled by ``seed_scale``: "few" has one batch in each state, "many" five
times as many batches (with their steps, signatures, QC results, deviations,
certifications and audit events). Each page is opened by the role that uses it at both
sites; the number of queries must be the same. A page that loads its rows one by one
(an N+1) fails here with both counts in the message.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Model, QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from batches.models import Batch, BatchState, Deviation, Order, Patient

FEW, MANY = "few01", "many01"


@pytest.fixture
def two_sites(db):
    call_command("seed_scale", "--sites", "1", "--batches", "8", "--audit-events", "0", "--prefix", "few",
                 stdout=io.StringIO())
    call_command("seed_scale", "--sites", "1", "--batches", "40", "--audit-events", "0", "--prefix", "many",
                 stdout=io.StringIO())


def _queries(site_code: str, who: str, url: str) -> tuple[int, int]:
    user = get_user_model().objects.get(username=f"{who}-{site_code}")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    client.get(url)  # first visit: session, content types and other per-process caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    return response.status_code, len(ctx.captured_queries)


LISTS = [
    ("batch list", "tech", lambda: reverse("batches:index")),
    ("patients", "coord", lambda: reverse("batches:patient_list")),
    ("orders", "coord", lambda: reverse("batches:order_list")),
    ("deviations", "tech", lambda: reverse("batches:deviation_list")),
    ("QC work list", "qc", lambda: reverse("qc:index")),
    ("release queue", "qp", lambda: reverse("qc:release")),
    ("audit trail", "auditor", lambda: reverse("audit_list")),
    ("audit trail, filtered", "auditor", lambda: reverse("audit_list") + "?action=sign"),
]


def test_list_pages_run_the_same_queries_for_few_and_many_rows(two_sites):
    assert Batch.objects.filter(site__code=MANY).count() == 5 * Batch.objects.filter(site__code=FEW).count()
    differing = []
    for name, who, url in LISTS:
        few_status, few = _queries(FEW, who, url())
        many_status, many = _queries(MANY, who, url())
        assert few_status == many_status == 200, (name, few_status, many_status)
        assert few > 0, f"{name}: no queries counted"
        if few != many:
            differing.append(f"{name}: {few} queries with few rows, {many} with many")
    assert not differing, differing


def _richest(qs: QuerySet, related: str) -> Model:
    return qs.annotate(n=Count(related)).order_by("-n", "pk").first()


def _poorest(qs: QuerySet, related: str) -> Model:
    return qs.annotate(n=Count(related)).order_by("n", "pk").first()


# (page, role, url of an object, how to choose objects of a site, the rows that vary)
DETAILS: list[tuple[str, str, Callable[[int], str], Callable[[str], QuerySet], str]] = [
    ("batch in process", "tech", lambda pk: reverse("batches:batch_detail", args=[pk]),
     lambda code: Batch.objects.filter(site__code=code, state=BatchState.IN_PROCESS), "step_records"),
    ("released batch", "tech", lambda pk: reverse("batches:batch_detail", args=[pk]),
     lambda code: Batch.objects.filter(site__code=code, state=BatchState.RELEASED), "deviations"),
    ("patient", "coord", lambda pk: reverse("batches:patient_detail", args=[pk]),
     lambda code: Patient.objects.filter(site__code=code), "orders"),
    ("order", "coord", lambda pk: reverse("batches:order_detail", args=[pk]),
     lambda code: Order.objects.filter(site__code=code, batch__state=BatchState.RELEASED), "batch__step_records"),
    ("deviation", "tech", lambda pk: reverse("batches:deviation_detail", args=[pk]),
     lambda code: Deviation.objects.filter(site__code=code), "batch__step_records"),
    ("QC of a batch", "qc", lambda pk: reverse("qc:batch", args=[pk]),
     lambda code: Batch.objects.filter(site__code=code, state=BatchState.RELEASED), "qc_results"),
    ("release page", "qp", lambda pk: reverse("qc:batch_release", args=[pk]),
     lambda code: Batch.objects.filter(site__code=code, state=BatchState.AWAITING_RELEASE), "qc_results"),
    ("batch documents", "auditor", lambda pk: reverse("qc:records_panel", args=[pk]),
     lambda code: Batch.objects.filter(site__code=code, state=BatchState.RELEASED), "certifications"),
]


def test_detail_pages_run_the_same_queries_for_few_and_many_related_rows(two_sites):
    differing = []
    for name, who, url, objects, related in DETAILS:
        few_obj = _poorest(objects(FEW), related)
        many_obj = _richest(objects(MANY), related)
        assert few_obj is not None, name
        assert many_obj is not None, name
        few_status, few = _queries(FEW, who, url(few_obj.pk))
        many_status, many = _queries(MANY, who, url(many_obj.pk))
        assert few_status == many_status == 200, (name, few_status, many_status)
        assert few > 0, f"{name}: no queries counted"
        if few != many:
            differing.append(f"{name}: {few} queries for #{few_obj.pk}, {many} for #{many_obj.pk}")
    assert not differing, differing
