"""The audit list pages by cursor (keyset pagination): newest first, "Older" and "Newer"
links that never skip or repeat an event, whatever is appended meanwhile, with the
same two queries on page 1 and page 1,000; a cursor that is not one shows the newest
events. Links keep the filters."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.utils import timezone

from carmfg.accounts.models import Role
from carmfg.accounts.services import membership_set_roles
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.selectors import AuditCursor, AuditFilter, audit_event_page_for_user
from carmfg.audit.services import audit_record

pytestmark = pytest.mark.django_db


def _events(actor, site, count: int, *, action=Action.CREATE, object_type="batches.batch") -> None:
    for i in range(count):
        audit_record(actor=actor, action=action, site=site, object_type=object_type, object_id=str(i))


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a class="btn" rel="{rel}" href="([^"]+)"', html)
    return unescape(found[1]) if found else None


def _must_link(html: str, rel: str) -> str:
    link = _link(html, rel)
    assert link is not None, f"no {rel} link"
    return link


def _walk(client, start: str, rel: str) -> list[list[int]]:
    """The event ids of each page, following ``rel`` links from ``start``."""
    pages = []
    url: str | None = start
    while url is not None:
        response = client.get("/audit/" + url if url.startswith("?") else url)
        assert response.status_code == 200
        pages.append([e.pk for e in response.context["page"].object_list])
        url = _link(response.content.decode(), rel)
    return pages


def _in_scope_newest_first(chains: list[int], usernames: set[str]) -> list[int]:
    events = AuditEvent.objects.filter(chain__in=chains) | AuditEvent.objects.filter(chain=0, actor_username__in=usernames)
    return list(events.order_by("-occurred_at", "-id").values_list("id", flat=True))


def test_older_and_newer_links_walk_the_whole_trail_once_each_way(client_for, auditor, technician, site,
                                                                   other_site, other_site_user):
    _events(technician, site, 70)
    _events(other_site_user, other_site, 30)  # another hospital: never shown
    _events(technician, site, 40, action=Action.SIGN)
    client = client_for(auditor)  # logs in: a login event of a person of the site (chain 0)
    expected = _in_scope_newest_first([site.pk], {"tech", auditor.username})
    assert len(expected) > 110

    older = _walk(client, "/audit/", "next")

    assert [len(p) for p in older] == [50, 50, len(expected) - 100]
    assert [pk for page in older for pk in page] == expected
    # From the last page, "Newer" leads back through the same pages to the newest.
    last = "?before=" + str(AuditCursor.of(AuditEvent.objects.get(pk=older[1][-1])))
    assert _walk(client, last, "prev") == older[::-1]


def test_events_appended_while_reading_do_not_shift_the_older_pages(client_for, auditor, technician, site):
    _events(technician, site, 120)
    client = client_for(auditor)
    first = client.get("/audit/")
    second_url = _must_link(first.content.decode(), "next")

    _events(technician, site, 30)  # 30 new events arrive at the top
    second = client.get("/audit/" + second_url)

    shown_first = [e.pk for e in first.context["page"].object_list]
    shown_second = [e.pk for e in second.context["page"].object_list]
    assert shown_second[0] < shown_first[-1]
    assert shown_second == [pk for pk in _in_scope_newest_first([site.pk], {"tech", "auditor"})
                            if pk < shown_first[-1]][:50]


def test_events_with_the_same_time_are_paged_by_id_without_loss(auditor, technician, site, monkeypatch):
    moment = timezone.now()
    monkeypatch.setattr("carmfg.audit.services.timezone.now", lambda: moment)
    _events(technician, site, 75)
    monkeypatch.undo()

    flt = AuditFilter(include_logins=False)
    first = audit_event_page_for_user(auditor, flt)
    second = audit_event_page_for_user(auditor, flt, before=first.older)
    back = audit_event_page_for_user(auditor, flt, after=second.newer)

    ids = [e.pk for e in first] + [e.pk for e in second]
    assert ids == sorted(AuditEvent.objects.filter(chain=site.pk).values_list("pk", flat=True), reverse=True)
    assert second.older is None
    assert [e.pk for e in back] == [e.pk for e in first]
    assert back.newer is None


def test_an_auditor_of_two_sites_reads_both_chains_merged_by_time(make_user, site, other_site, technician,
                                                                    other_site_user):
    reader = make_user("reader", roles=[Role.AUDITOR], site=site)
    membership_set_roles(actor=None, user=reader, site=other_site, roles=[Role.AUDITOR])
    for _ in range(30):
        _events(technician, site, 1)
        _events(other_site_user, other_site, 1)

    first = audit_event_page_for_user(reader, AuditFilter(), size=20)
    rest = audit_event_page_for_user(reader, AuditFilter(), before=first.older, size=100)

    assert [e.pk for e in first] + [e.pk for e in rest] == _in_scope_newest_first(
        [site.pk, other_site.pk], {"tech", "stranger", "reader"})
    assert {e.chain for e in first} == {site.pk, other_site.pk}


def test_links_keep_the_filters(client_for, auditor, technician, site):
    _events(technician, site, 60, action=Action.SIGN)
    _events(technician, site, 60)
    client = client_for(auditor)

    pages = _walk(client, "/audit/?action=sign", "next")

    assert [len(p) for p in pages] == [50, 10]
    assert {AuditEvent.objects.get(pk=pk).action for page in pages for pk in page} == {Action.SIGN}
    html = client.get("/audit/", {"action": "sign"}).content.decode()
    assert _must_link(html, "next").startswith("?action=sign&before=")


def test_newer_from_the_second_page_after_new_events_shows_the_full_newest_page(client_for, auditor, technician,
                                                                                 site):
    _events(technician, site, 120)
    client = client_for(auditor)
    second = client.get("/audit/" + _must_link(client.get("/audit/").content.decode(), "next"))
    _events(technician, site, 10)  # new events: the 50 just newer than page 2 are no longer the top

    back = client.get("/audit/" + _must_link(second.content.decode(), "prev"))  # the 50 just newer: still a page
    top = client.get("/audit/" + _must_link(back.content.decode(), "prev"))  # only 10 newer left: the newest 50

    assert len(back.context["page"].object_list) == 50
    assert [e.pk for e in top.context["page"].object_list] == _in_scope_newest_first(
        [site.pk], {"tech", "auditor"})[:50]
    assert top.context["page"].newer is None


@pytest.mark.parametrize(("param", "value"), [
    ("before", "yesterday"), ("before", "12-\x00"), ("before", "9" * 19 + "-1"), ("after", "-1-5"),
    ("after", "1" * 40), ("before", ""),
])
def test_a_cursor_that_is_not_one_shows_the_newest_events(client_for, auditor, technician, site, param, value):
    _events(technician, site, 60)
    client = client_for(auditor)
    newest = [e.pk for e in client.get("/audit/").context["page"].object_list]

    response = client.get("/audit/", {param: value})

    assert response.status_code == 200
    assert [e.pk for e in response.context["page"].object_list] == newest


def test_newer_than_the_newest_event_shows_the_newest_page(client_for, auditor, technician, site):
    _events(technician, site, 10)
    client = client_for(auditor)
    newest_page = [e.pk for e in client.get("/audit/").context["page"].object_list]

    response = client.get("/audit/", {"after": str(AuditCursor.of(AuditEvent.objects.get(pk=newest_page[0])))})

    assert [e.pk for e in response.context["page"].object_list] == newest_page
    assert response.context["page"].newer is None


def test_a_cursor_does_not_open_another_sites_events(client_for, auditor, technician, site, other_site,
                                                      other_site_user):
    _events(other_site_user, other_site, 20)
    foreign = AuditEvent.objects.filter(chain=other_site.pk).latest("id")
    later = AuditCursor(foreign.occurred_at + dt.timedelta(days=1), foreign.pk + 1)

    response = client_for(auditor).get("/audit/", {"before": str(later)})

    assert not [e for e in response.context["page"].object_list if e.chain == other_site.pk]


def test_the_cursor_round_trips_to_the_microsecond():
    at = dt.datetime(2026, 11, 23, 17, 30, 1, 123456, tzinfo=dt.UTC)
    cursor = AuditCursor(at, 42)
    assert AuditCursor.parse(str(cursor)) == cursor
