"""A role that may never take an action is refused before its form is read.

Found by the authorisation matrix: with an empty or half-filled form, pages such as the
MBR editor, equipment maintenance or a batch's start answered a technician, a QC
analyst or an auditor with the form's validation errors (200/400) or a redirect, and
showed the MBR and equipment edit pages to everyone; only a complete form reached the
service that refused. Now the route refuses them first (403) and says why.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.urls import path

from carmfg.accounts.permissions import RoutePerm, SitePerm, guard_routes
from tests.qc.conftest import make_mbr


@pytest.fixture
def mbr(site):
    from batches.models import Product, RegulatoryPathway

    product = Product.objects.create(site=site, code="cd19", name="Anti-CD19 CAR-T",
                                     pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S0001")
    return make_mbr(product)


def test_a_technician_is_refused_the_mbr_editor_before_the_form_is_read(client_for, technician, mbr):
    client = client_for(technician)
    for response in (client.get(f"/batches/mbr/{mbr.pk}/edit/"), client.post(f"/batches/mbr/{mbr.pk}/edit/", {})):
        assert response.status_code == 403
        assert "do not allow you to edit master batch records" in response.content.decode()


def test_the_site_admin_still_reaches_the_mbr_editor(client_for, site_admin, mbr):
    assert client_for(site_admin).get(f"/batches/mbr/{mbr.pk}/edit/").status_code == 200


def test_an_auditor_posting_an_empty_form_to_start_a_batch_gets_403_not_a_form_error(client_for, auditor, mbr):
    response = client_for(auditor).post("/batches/1/start/", {})
    assert response.status_code == 403


def test_a_guarded_route_still_sends_anonymous_users_to_the_login_page(client, mbr):
    response = client.get(f"/batches/mbr/{mbr.pk}/edit/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_route_rule_for_a_route_that_does_not_exist_is_refused_at_startup():
    patterns = [path("x/", lambda request: HttpResponse("x"), name="x")]
    with pytest.raises(ImproperlyConfigured, match="unknown routes"):
        guard_routes(patterns, {"renamed": RoutePerm((SitePerm.ADMIN,), "do things")})
