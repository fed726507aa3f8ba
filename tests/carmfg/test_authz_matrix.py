"""The authorisation matrix: every URL × every role × own / other site × every method.

Routes are discovered from the URL resolver, so a new page or API route is covered the
moment it is added: without an entry in ``tests/carmfg/authz_expectations.py`` this
test fails and says what to add. Each request runs in a transaction that is rolled
back, so a POST that an allowed role gets through changes nothing for the next one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client

from carmfg.accounts.models import Role
from tests.carmfg import authz_expectations as ex
from tests.carmfg.authz_matrix import Route, build_url, discover_routes, outcome_of
from tests.carmfg.authz_objects import SiteActors, site_records
from tests.conftest import PASSWORD

PERSONAS = ex.ROLES


def routes() -> list[Route]:
    return [r for r in discover_routes() if not ex.is_ignored(r.name, r.pattern)]


def test_every_route_has_a_name_and_a_declared_expectation():
    missing = []
    for route in routes():
        if not route.name:
            missing.append(f"  {route.pattern}: give this route a name= (the matrix keys on names)")
            continue
        expect = ex.expectation_for(route.name)
        if expect is None:
            missing.append(f"  {route.name} ({route.pattern}): add ROUTES[{route.name!r}] = Expect(...)")
            continue
        for method in route.methods():
            if expect.access(method) is None:
                missing.append(f"  {route.name} accepts {method.upper()}: declare {method}= in its Expect(...)")
        for kwarg in route.kwarg_names:
            if expect.source_of(kwarg) is None:
                missing.append(f"  {route.name}: say which record fills <{kwarg}> (objects={{{kwarg!r}: ...}})")
    assert not missing, (
        "Routes without a declared authorisation expectation (tests/carmfg/authz_expectations.py):\n"
        + "\n".join(missing)
    )


def test_the_api_schema_names_no_path_the_resolver_does_not_know(client_for, site_admin):
    """The OpenAPI schema and the URL resolver agree, so the matrix covers every API path."""
    response = client_for(site_admin).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    known = [route.pattern for route in discover_routes()]
    unknown = [p for p in paths if not any(_same_path(p, k) for k in known)]
    assert not unknown, f"schema paths the resolver does not list: {unknown}"


def _same_path(schema_path: str, pattern: str) -> bool:
    import re

    schema_re = re.sub(r"\{[^}]+\}", "X", schema_path.lstrip("/"))
    pattern = pattern.lstrip("^").rstrip("$")
    pattern = re.sub(r"<(?:\w+:)?\w+>|\(\?P<\w+>[^)]*\)", "X", pattern)
    return schema_re == pattern.replace("\\", "")


@pytest.fixture
def matrix_world(make_user, site, other_site, technician, verifier, qc_analyst, qc_reviewer, qp, coordinator,
                 auditor, site_admin):
    personas = {
        "technician": technician, "verifier": verifier, "qc_analyst": qc_analyst, "qc_reviewer": qc_reviewer,
        "qp": qp, "coordinator": coordinator, "auditor": auditor, "site_admin": site_admin,
    }
    own = site_records(site, SiteActors(technician, verifier, qc_analyst, qp, coordinator, site_admin), n=1)
    away = {role: make_user(f"away_{role}", roles=[role], site=other_site) for role in Role.values}
    away_verifier = make_user("away_verifier2", roles=[Role.TECHNICIAN, Role.VERIFIER], site=other_site)
    other = site_records(other_site, SiteActors(
        away[Role.TECHNICIAN], away_verifier, away[Role.QC_ANALYST], away[Role.QUALIFIED_PERSON],
        away[Role.COORDINATOR], away[Role.SITE_ADMIN]), n=2)
    return personas, {"own": own, "other": other}


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _request(client: Client, method: str, url: str):
    """One request whose effects are rolled back. The body is minimal: the personas'
    password (so that a signature's re-authentication is not what refuses) and nothing
    else, so a role that gets through meets the view's own validation."""
    with transaction.atomic():
        if method == "post":
            response = client.post(url, {"password": PASSWORD})
        elif method in ("put", "patch"):
            response = getattr(client, method)(url, data=json.dumps({"password": PASSWORD}),
                                               content_type="application/json")
        else:
            response = getattr(client, method)(url)
        transaction.set_rollback(True)
    return response


def test_authorisation_matrix(matrix_world, settings):
    settings.AXES_ENABLED = False
    personas, records = matrix_world
    clients = {role: _client(user) for role, user in personas.items()}
    clients["anonymous"] = _client(None)
    mismatches: list[str] = []
    table: list[str] = []
    checked = 0
    for route in routes():
        expect = ex.expectation_for(route.name)
        if expect is None:
            continue  # reported by test_every_route_has_a_name_and_a_declared_expectation
        sides = ("own", "other") if route.kwarg_names and expect.site_scoped else ("own",)
        for side in sides:
            values = {k: expect.value_for(k, records[side]) for k in route.kwarg_names}
            url = build_url(route, values)
            for method in route.methods():
                for who in (*PERSONAS, "anonymous"):
                    wanted = expect.outcome(method, who, side)
                    if wanted is None:
                        continue
                    response = _request(clients[who], method, url)
                    session = clients[who].cookies.get(django_settings.SESSION_COOKIE_NAME)
                    if who != "anonymous" and (session is None or not session.value):
                        clients[who] = _client(personas[who])  # signed out (the logout route): sign in again
                    got = outcome_of(response, api=route.is_api)
                    checked += 1
                    table.append(f"{route.name}\t{side}\t{method}\t{who}\t{got}\t{response.status_code}")
                    if got != wanted:
                        mismatches.append(f"  {method.upper():6} {url:55} {who:12} {side:5} expected {wanted}, "
                                          f"got {got} ({response.status_code})")
    dump = os.environ.get("AUTHZ_MATRIX_DUMP")
    if dump:
        Path(dump).write_text("\n".join(table) + "\n")
    assert checked > 1000
    assert not mismatches, f"{len(mismatches)} of {checked} requests broke the authorisation matrix:\n" + "\n".join(
        mismatches)
