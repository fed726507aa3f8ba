"""Integration tokens: per user, shown once, hashed at rest, revocable, audited."""

from __future__ import annotations

import pytest
from django.test import Client

from carmfg.accounts.models import ApiToken
from carmfg.accounts.tokens import api_token_create, api_token_revoke
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import InvalidInput


def api(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def test_token_is_shown_once_and_only_its_hash_is_stored(auditor):
    token, text = api_token_create(actor=auditor, name="audit export script")
    row = ApiToken.objects.get(pk=token.pk)
    assert text.startswith("cmfg_")
    assert text not in {row.digest, row.token_key}
    assert all(text not in str(value) for value in ApiToken.objects.values_list("digest", "token_key", "name"))


def test_a_token_acts_as_its_owner_at_the_owners_sites_only(auditor, site, other_site):
    _, text = api_token_create(actor=auditor, name="script")
    response = api(text).get("/api/v1/sites/")
    assert response.status_code == 200
    assert [s["code"] for s in response.json()] == [site.code]


def test_revoked_and_unknown_tokens_are_refused_as_problem_details(auditor):
    token, text = api_token_create(actor=auditor, name="script")
    api_token_revoke(actor=auditor, token_key=token.token_key)
    for bad in (text, "cmfg_not-a-token"):
        response = api(bad).get("/api/v1/sites/")
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 401


def test_creation_and_revocation_are_audited(auditor):
    token, _ = api_token_create(actor=auditor, name="script")
    api_token_revoke(actor=auditor, token_key=token.token_key)
    actions = list(AuditEvent.objects.filter(object_type="accounts.apitoken").values_list("action", flat=True))
    assert actions == [Action.CREATE, Action.DELETE]


def test_nobody_revokes_another_persons_token(auditor, technician, client_for):
    token, text = api_token_create(actor=auditor, name="script")
    response = client_for(technician).post(f"/accounts/tokens/{token.token_key}/revoke/")
    assert response.status_code == 404
    assert api(text).get("/api/v1/sites/").status_code == 200


@pytest.mark.parametrize(("name", "days"), [("x\x00y", 30), ("", 30), ("n" * 5000, 30), ("ok", 0), ("ok", 10_000)])
def test_bad_token_requests_are_refused_with_a_message(auditor, name, days):
    with pytest.raises(InvalidInput):
        api_token_create(actor=auditor, name=name, days=days)
    assert not ApiToken.objects.exists()


def test_token_page_shows_the_new_token_once(auditor, client_for):
    client = client_for(auditor)
    response = client.post("/accounts/tokens/", {"name": "LIMS", "days": 30})
    text = response.context["created_token"]
    assert text in response.content.decode()
    assert text not in client.get("/accounts/tokens/").content.decode()


def test_token_page_refuses_nul_bytes_without_a_500(auditor, client_for):
    response = client_for(auditor).post("/accounts/tokens/", {"name": "a\x00b", "days": 30})
    assert response.status_code == 200
    assert not ApiToken.objects.exists()


def test_anonymous_api_calls_get_problem_details(db):
    response = Client().get("/api/v1/sites/")
    assert response.status_code in (401, 403)
    assert response.json()["title"]
