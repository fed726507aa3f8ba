"""The QP's release queue at hospital scale: each section is a page of 25 batches, the
patient waiting longest first, with the section's total; the work of the page is bounded
by its page size, not by the depth of the queue.

The deep queues come from ``seed_scale`` (batches without an apheresis intake: they wait
since their creation); the order by collection time comes from batches made on the floor.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_init
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from batches.models import ApheresisIntake, Batch, BatchState
from qc.models import Certification, CertificationDecision, TestResult

PER_SECTION = 25
RELEASED = (CertificationDecision.RELEASED, CertificationDecision.RELEASED_EXCEPTIONAL)


def _seed(prefix: str, batches: int) -> None:
    call_command("seed_scale", "--sites", "1", "--batches", str(batches), "--audit-events", "0", "--prefix", prefix,
                 stdout=io.StringIO())


@pytest.fixture
def deep_queue(db):
    """Site many01: 360 batches, of which 61 wait for a QP (31 for the first decision, 30 for the final one)."""
    _seed("many", 360)


def _client(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username),
                       backend="django.contrib.auth.backends.ModelBackend")
    return client


def _expected_queue(site_code: str) -> tuple[list[str], list[str]]:
    """The batch numbers of the two sections, worked out here from the records: the stage
    from the certifications, the order from the collection (or the batch's creation)."""
    waiting = [b for b in Batch.objects.filter(site__code=site_code).select_related("donation")
               if b.state in (BatchState.AWAITING_RELEASE, BatchState.PROVISIONALLY_RELEASED)
               or (b.state == BatchState.ON_HOLD
                   and b.state_before_hold in (BatchState.AWAITING_RELEASE, BatchState.PROVISIONALLY_RELEASED))]
    released = set(Certification.objects.filter(decision__in=RELEASED).values_list("batch_id", flat=True))
    intakes = dict(ApheresisIntake.objects.values_list("donation_id", "collection_ended_at"))

    def since(b: Batch) -> tuple[dt.datetime, str]:
        return intakes.get(b.donation_id, b.created_at), b.number

    waiting.sort(key=since)
    return [b.number for b in waiting if b.pk not in released], [b.number for b in waiting if b.pk in released]


def _sections(html: str) -> tuple[str, str]:
    start = html.index('aria-labelledby="q-prov"')
    middle = html.index('aria-labelledby="q-final"')
    return html[start:middle], html[middle:html.index("</section>", middle)]


def _numbers(section: str) -> list[str]:
    return re.findall(r'class="qbatch nowrap" href="[^"]+">([^<]+)</a>', section)


def _total(section: str) -> int:
    [count] = re.findall(r'<span class="count">(\d+)</span>', section)
    return int(count)


def _pager(section: str) -> str:
    found = re.findall(r'<nav class="pager".*?</nav>', section, re.S)
    return unescape(found[0]) if found else ""


def test_the_queue_runs_the_same_queries_and_loads_one_page_however_deep(deep_queue):
    _seed("few", 8)
    few_prov, few_final = _expected_queue("few01")
    many_prov, many_final = _expected_queue("many01")
    assert 1 <= len(few_prov) + len(few_final) <= 3
    assert len(many_prov) > PER_SECTION
    assert len(many_final) > PER_SECTION

    loaded: Counter[str] = Counter()

    def count(sender, **kwargs):
        loaded[sender.__name__] += 1

    counts = {}
    for code in ("few01", "many01"):
        client = _client(f"qp-{code}")
        client.get(reverse("qc:release"))  # first visit: session, content types and other per-process caches
        loaded.clear()
        post_init.connect(count, sender=Batch)
        post_init.connect(count, sender=TestResult)
        try:
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(reverse("qc:release"))
        finally:
            post_init.disconnect(count, sender=Batch)
            post_init.disconnect(count, sender=TestResult)
        assert response.status_code == 200
        counts[code] = len(ctx.captured_queries)

    assert counts["few01"] == counts["many01"], counts
    # 61 batches wait at many01; the page reads only the two pages it shows, and their results.
    assert loaded["Batch"] <= 2 * PER_SECTION
    shown = Batch.objects.filter(number__in=many_prov[:PER_SECTION] + many_final[:PER_SECTION])
    assert loaded["TestResult"] == TestResult.objects.filter(batch__in=shown).count()


def test_each_section_is_a_page_in_waiting_order_with_its_total(deep_queue, client_for, other_site_user):
    provisional, final = _expected_queue("many01")
    client = _client("qp-many01")
    url = reverse("qc:release")

    prov, fin = _sections(client.get(url).content.decode())

    assert _numbers(prov) == provisional[:PER_SECTION]
    assert _numbers(fin) == final[:PER_SECTION]
    assert _total(prov) == len(provisional)
    assert _total(fin) == len(final)
    # Each section has its own pager and page parameter.
    assert 'rel="next" href="?p=2"' in _pager(prov)
    assert 'rel="next" href="?f=2"' in _pager(fin)

    prov, fin = _sections(client.get(url, {"p": "2"}).content.decode())

    assert _numbers(prov) == provisional[PER_SECTION:2 * PER_SECTION]
    assert _numbers(fin) == final[:PER_SECTION]  # the other section stays on its page
    assert _total(prov) == len(provisional)
    assert 'rel="prev" href="?p=1"' in _pager(prov)
    assert 'rel="next" href="?p=2&f=2"' in _pager(fin)  # and its links keep this section's page

    prov, fin = _sections(client.get(url, {"p": "2", "f": "2"}).content.decode())

    assert _numbers(prov) == provisional[PER_SECTION:2 * PER_SECTION]
    assert _numbers(fin) == final[PER_SECTION:2 * PER_SECTION]

    # Another site's QP sees none of it.
    other = client_for(other_site_user).get(url).content.decode()
    assert not set(_numbers(other)) & set(provisional + final)


BAD_PAGES = [("abc", "first"), ("\x00", "first"), ("", "first"), ("2.5", "first"), ("1" * 5000, "first"),
             ("0", "last"), ("-3", "last"), ("999", "last"), ("99999999999999999999999", "last")]


def test_a_bad_page_number_shows_the_first_or_last_page_never_an_error(deep_queue):
    provisional, final = _expected_queue("many01")
    first, last = provisional[:PER_SECTION], provisional[(len(provisional) - 1) // PER_SECTION * PER_SECTION:]
    client = _client("qp-many01")
    for page, shown in BAD_PAGES:
        response = client.get(reverse("qc:release"), {"p": page, "f": page})

        assert response.status_code == 200, page
        prov, fin = _sections(response.content.decode())
        assert _numbers(prov) == (first if shown == "first" else last), page
        assert _total(prov) == len(provisional)
        assert _numbers(fin), page


def test_the_home_panel_shows_the_longest_waiting_batches_of_both_sections_and_the_total(deep_queue):
    provisional, final = _expected_queue("many01")
    waiting = sorted(Batch.objects.filter(number__in=provisional + final), key=lambda b: (b.created_at, b.number))

    html = _client("qp-many01").get("/").content.decode()

    panel = html[html.index('id="panel-release_queue"'):]
    panel = panel[:panel.index("</section>")]
    assert re.findall(r'<a href="/qc/release/\d+/">([^<]+)</a>', panel) == [b.number for b in waiting[:6]]
    assert f"Release queue ({len(waiting)})" in panel


def test_the_patient_waiting_longest_comes_first_to_the_hour(make_batch, client_for, qp):
    first, second, third = make_batch(), make_batch(), make_batch()
    # Collected on the same day as the first one, a few hours earlier: whole days would tie.
    now = dt.datetime.now(tz=dt.UTC)
    ApheresisIntake.objects.filter(donation=first.donation).update(collection_ended_at=now - dt.timedelta(days=12))
    ApheresisIntake.objects.filter(donation=second.donation).update(collection_ended_at=now - dt.timedelta(days=9))
    ApheresisIntake.objects.filter(donation=third.donation).update(
        collection_ended_at=now - dt.timedelta(days=12, hours=5))

    prov, _ = _sections(client_for(qp).get(reverse("qc:release")).content.decode())

    assert _numbers(prov) == [third.number, first.number, second.number]
    assert "12 days" in prov
    assert "9 days" in prov
