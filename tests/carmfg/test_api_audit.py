"""The audit trail through the API: read-only, only the sites whose trail the caller may
read, filtered, and paged by cursor (no COUNT, no OFFSET over the whole trail)."""

from __future__ import annotations

import json

from django.test import Client

from carmfg.accounts.models import Role
from carmfg.accounts.tokens import api_token_create
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record


def _events(site, actor, n: int) -> None:
    for i in range(n):
        audit_record(actor=actor, action=Action.UPDATE, obj=site, site=site, changes={"i": i}, reason=f"r{i}")


def _walk(client: Client, url: str) -> list[dict]:
    rows: list[dict] = []
    pages = 0
    while url:
        body = client.get(url).json()
        rows += body["results"]
        url = body["next"]
        pages += 1
        assert pages < 50
    return rows


def test_cursor_pages_cover_every_event_once_newest_first(site, auditor, site_admin, client_for):
    _events(site, site_admin, 12)
    client = client_for(auditor)
    first = client.get("/api/v1/audit-events/", {"page_size": 5}).json()
    assert set(first) == {"next", "previous", "results"}
    assert "cursor=" in first["next"]
    rows = _walk(client, "/api/v1/audit-events/?page_size=5")
    expected = list(AuditEvent.objects.filter(chain=site.pk).order_by("-occurred_at", "-pk").values_list("pk", flat=True))
    got = [r["id"] for r in rows if r["chain"] == site.pk]
    assert got == expected
    assert len({r["id"] for r in rows}) == len(rows)


def test_previous_links_lead_back_to_the_newest_page(site, auditor, site_admin, client_for):
    _events(site, site_admin, 12)
    client = client_for(auditor)
    newest = client.get("/api/v1/audit-events/", {"page_size": 5}).json()
    assert newest["previous"] is None
    second = client.get(newest["next"]).json()
    third = client.get(second["next"]).json()

    back = client.get(third["previous"]).json()
    top = client.get(back["previous"]).json()

    assert [r["id"] for r in back["results"]] == [r["id"] for r in second["results"]]
    assert [r["id"] for r in top["results"]] == [r["id"] for r in newest["results"]]
    assert top["previous"] is None
    assert client.get("/api/v1/audit-events/", {"cursor": "x1-1"}).status_code == 404
    assert client.get("/api/v1/audit-events/", {"cursor": "o1-\x00"}).status_code == 404


def test_audit_events_filter_by_action_and_object(site, auditor, site_admin, client_for):
    _events(site, site_admin, 3)
    client = client_for(auditor)
    rows = client.get("/api/v1/audit-events/", {"action": "update", "object_type": "accounts.site"}).json()["results"]
    assert len(rows) == 3
    assert {r["action"] for r in rows} == {"update"}
    assert client.get("/api/v1/audit-events/", {"action": "nonsense"}).status_code == 400
    assert client.get("/api/v1/audit-events/", {"occurred_after": "not-a-time"}).status_code == 400
    assert client.get("/api/v1/audit-events/", {"cursor": "garbage"}).status_code == 404


def test_another_sites_trail_is_never_listed(site, other_site, make_user, auditor, client_for):
    stranger_admin = make_user("admin2", roles=[Role.SITE_ADMIN], site=other_site)
    _events(other_site, stranger_admin, 4)
    rows = _walk(client_for(auditor), "/api/v1/audit-events/?site=" + str(other_site.pk))
    assert rows == []
    rows = _walk(client_for(auditor), "/api/v1/audit-events/")
    assert other_site.pk not in {r["chain"] for r in rows}


def test_roles_without_the_audit_trail_get_403(technician, coordinator, client_for):
    for user in (technician, coordinator):
        response = client_for(user).get("/api/v1/audit-events/")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"


def test_the_audit_trail_is_read_only(auditor, client_for):
    response = client_for(auditor).post("/api/v1/audit-events/", json.dumps({}), content_type="application/json")
    assert response.status_code == 405


def test_an_auditors_token_reads_the_trail(site, auditor, site_admin):
    _events(site, site_admin, 2)
    _, text = api_token_create(actor=auditor, name="export script")
    response = Client(HTTP_AUTHORIZATION=f"Token {text}").get("/api/v1/audit-events/")
    assert response.status_code == 200
    assert response.json()["results"]
