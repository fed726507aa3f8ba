"""Apheresis acceptance criteria per site and product: set by a site administrator, signed
with a reason, old and new values in the audit trail; intakes keep the values they were
judged by."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from batches.models import IntakeCriteria, IntakeOutcome
from batches.services.intake import intake_criteria_for, intake_criteria_set
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SignatureRefused
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import InvalidInput, PermissionRefused
from tests.batches.coi_steps import a_collection, a_patient, an_intake
from tests.conftest import PASSWORD, assert_hidden

VALUES: dict[str, Any] = {"min_cd3_cells": "2000000000", "min_temperature_c": "2", "max_temperature_c": "10",
          "max_hours_collection_to_receipt": "36"}


def set_criteria(actor, product, **overrides):
    values = {**VALUES, **overrides}
    reason = values.pop("reason", "Validated transport box, SOP-APH-004 v3")
    return intake_criteria_set(actor=actor, product=product, reason=reason, password=PASSWORD, **values)


def test_a_site_admin_sets_the_criteria_signed_and_audited(site_admin, product):
    criteria = set_criteria(site_admin, product)

    assert (criteria.min_cd3_cells, criteria.max_temperature_c, criteria.max_hours_collection_to_receipt) == (
        Decimal("2000000000"), Decimal("10.0"), Decimal("36.0"))
    [sig] = [v for v in signatures_for_record(criteria) if v.is_valid]
    assert (sig.signature.meaning, sig.signature.signer_id) == (Meaning.APPROVED, site_admin.pk)
    event = AuditEvent.objects.filter(object_type="batches.intakecriteria", object_id=str(criteria.pk),
                                      action=Action.CREATE).get()
    assert Decimal(str(event.changes["max_temperature_c"]["old"])) == Decimal("8")
    assert Decimal(str(event.changes["max_temperature_c"]["new"])) == Decimal("10.0")
    assert event.reason == "Validated transport box, SOP-APH-004 v3"


def test_a_change_voids_the_previous_signature_and_signs_again(site_admin, product):
    first = set_criteria(site_admin, product)
    second = set_criteria(site_admin, product, max_temperature_c="9", reason="Back to the validated range")

    assert first.pk == second.pk
    views = signatures_for_record(second)
    assert [v.is_valid for v in views].count(True) == 1
    assert any(v.signature.voided_at is not None for v in views)
    update = AuditEvent.objects.filter(object_id=str(second.pk), object_type="batches.intakecriteria",
                                       action=Action.UPDATE).get()
    assert set(update.changes) == {"max_temperature_c"}


def test_new_intakes_are_judged_by_the_new_criteria(site, site_admin, coordinator, technician, product, small_mbr):
    set_criteria(site_admin, product, min_cd3_cells="5000000000")  # above the 3.2 × 10⁹ of the test intake

    intake = an_intake(technician, a_collection(coordinator, a_patient(coordinator, site), product))

    assert not intake.meets_criteria
    assert intake.outcome != IntakeOutcome.ACCEPTED


@pytest.mark.parametrize("persona", ["technician", "qp", "coordinator", "qc_analyst", "auditor"])
def test_only_a_site_admin_sets_the_criteria(request, persona, product):
    with pytest.raises(PermissionRefused):
        set_criteria(request.getfixturevalue(persona), product)
    assert not IntakeCriteria.objects.exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("min_cd3_cells", "0", "Minimum CD3\\+ cells"),
    ("min_cd3_cells", "lots", "expected a number"),
    ("max_temperature_c", "1", "lowest must be below the highest"),
    ("max_temperature_c", "900", "Highest transport temperature"),
    ("max_hours_collection_to_receipt", "-1", "collection to receipt"),
    ("reason", " ", "reason"),
])
def test_bad_criteria_are_refused_and_change_nothing(site_admin, product, field, value, message):
    with pytest.raises(InvalidInput, match=message):
        set_criteria(site_admin, product, **{field: value})
    assert intake_criteria_for(product.site, product).pk is None


def test_a_wrong_password_signs_nothing(site_admin, product):
    with pytest.raises(SignatureRefused):
        intake_criteria_set(actor=site_admin, product=product, reason="x", password="wrong", **VALUES)
    assert not IntakeCriteria.objects.exists()


def test_the_criteria_page_shows_and_changes_the_criteria(site_admin, product, client_for):
    client = client_for(site_admin)
    page = client.get(reverse("batches:intake_criteria")).content.decode()
    assert product.name in page
    assert reverse("batches:intake_criteria_edit", args=[product.pk]) in page

    response = client.post(reverse("batches:intake_criteria_edit", args=[product.pk]),
                           {**VALUES, "reason": "Validated transport box", "password": PASSWORD})

    assert response.status_code == 302
    assert intake_criteria_for(product.site, product).max_temperature_c == Decimal("10.0")


def test_a_refused_change_on_the_page_is_a_message_with_the_input_kept(site_admin, product, client_for):
    response = client_for(site_admin).post(reverse("batches:intake_criteria_edit", args=[product.pk]),
                                           {**VALUES, "max_temperature_c": "1", "reason": "x", "password": PASSWORD})

    assert response.status_code == 400
    page = response.content.decode()
    assert "lowest must be below the highest" in page
    assert 'value="1"' in page
    assert not IntakeCriteria.objects.exists()


def test_other_roles_see_the_criteria_without_the_form(technician, product, client_for):
    page = client_for(technician).get(reverse("batches:intake_criteria")).content.decode()

    assert product.name in page
    assert reverse("batches:intake_criteria_edit", args=[product.pk]) not in page


def test_another_sites_product_is_hidden(product, client_for, other_site_user):
    client = client_for(other_site_user)
    assert product.name not in client.get(reverse("batches:intake_criteria")).content.decode()
    assert_hidden(client, reverse("batches:intake_criteria_edit", args=[product.pk]), methods=("post",))
    assert not IntakeCriteria.objects.exists()
