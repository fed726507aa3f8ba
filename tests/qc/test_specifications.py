"""Release specifications: versioned, approved by two people, pinned by batches."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batches.exceptions import NotReady
from carmfg.accounts.models import Role
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused, StaleRecord
from qc.models import ResultEvaluation, Specification, SpecStatus
from qc.services.specifications import (
    clean_test_fields,
    specification_approve,
    specification_clone,
    specification_create_from_data,
    specification_make_effective,
    specification_review,
    specification_test_add,
    specification_test_update,
    specification_update,
)
from tests.conftest import PASSWORD
from tests.qc.conftest import enter


@pytest.fixture
def draft(spec, qc_analyst):
    return specification_clone(actor=qc_analyst, specification=spec, change_summary="Viability limit raised to 80 %")


def approve(draft, reviewer, qp):
    draft = specification_review(actor=reviewer, specification=draft, password=PASSWORD,
                                 expected_revision=draft.revision)
    return specification_approve(actor=qp, specification=draft, password=PASSWORD, expected_revision=draft.revision)


def test_a_clone_is_a_new_draft_version_with_every_test(spec, draft):
    assert draft.version == spec.version + 1
    assert draft.status == SpecStatus.DRAFT
    assert draft.based_on_id == spec.pk
    assert [t.definition_content() for t in draft.tests.all()] == [t.definition_content() for t in spec.tests.all()]


def test_approval_takes_a_qc_review_and_a_qp_approval_by_two_people(draft, qc_reviewer, qp):
    draft = specification_review(actor=qc_reviewer, specification=draft, password=PASSWORD,
                                 expected_revision=draft.revision)
    assert draft.status == SpecStatus.DRAFT
    draft = specification_approve(actor=qp, specification=draft, password=PASSWORD, expected_revision=draft.revision)

    assert draft.status == SpecStatus.APPROVED
    meanings = {v.signature.meaning: v.signature.signer_id for v in signatures_for_record(draft) if v.is_valid}
    assert meanings == {Meaning.REVIEWED: qc_reviewer.pk, Meaning.APPROVED: qp.pk}


def test_the_reviewer_of_a_specification_cannot_also_approve_it(draft, make_user, site):
    both = make_user("qcqp", roles=[Role.QC_ANALYST, Role.QUALIFIED_PERSON], site=site)
    draft = specification_review(actor=both, specification=draft, password=PASSWORD, expected_revision=draft.revision)

    with pytest.raises(SegregationOfDuties, match="two different people"):
        specification_approve(actor=both, specification=draft, password=PASSWORD, expected_revision=draft.revision)


def test_a_qp_cannot_approve_a_specification_no_qc_analyst_reviewed(draft, qp):
    with pytest.raises(NotReady, match="must review"):
        specification_approve(actor=qp, specification=draft, password=PASSWORD, expected_revision=draft.revision)


def test_only_a_qc_analyst_reviews_and_only_a_qp_approves(draft, qp, qc_analyst, technician):
    with pytest.raises(PermissionRefused):
        specification_review(actor=qp, specification=draft, password=PASSWORD, expected_revision=draft.revision)
    with pytest.raises(PermissionRefused):
        specification_clone(actor=technician, specification=draft, change_summary="x")


def test_editing_a_reviewed_draft_voids_the_review(draft, qc_reviewer, qc_analyst):
    draft = specification_review(actor=qc_reviewer, specification=draft, password=PASSWORD,
                                 expected_revision=draft.revision)
    viability = draft.tests.get(code="viability")
    specification_test_update(actor=qc_analyst, test=viability, expected_revision=draft.revision, reason="80 %",
                              low="80")

    draft.refresh_from_db()
    [view] = signatures_for_record(draft)
    assert view.status == "voided"


def test_a_stale_edit_is_refused(draft, qc_analyst):
    specification_update(actor=qc_analyst, specification=draft, expected_revision=draft.revision,
                         title="Anti-CD19 CAR-T release specification v2")

    with pytest.raises(StaleRecord):
        specification_update(actor=qc_analyst, specification=draft, expected_revision=1, title="Other")


def test_an_approved_specification_cannot_be_edited(draft, qc_reviewer, qp, qc_analyst):
    draft = approve(draft, qc_reviewer, qp)

    with pytest.raises(InvalidTransition, match="only a draft"):
        specification_update(actor=qc_analyst, specification=draft, expected_revision=draft.revision, title="x")


def test_making_a_version_effective_supersedes_the_one_in_force(spec, draft, qc_reviewer, qp):
    draft = approve(draft, qc_reviewer, qp)

    specification_make_effective(actor=qp, specification=draft)

    spec.refresh_from_db()
    draft.refresh_from_db()
    assert spec.status == SpecStatus.SUPERSEDED
    assert draft.status == SpecStatus.EFFECTIVE
    assert draft.effective_at is not None
    assert Specification.objects.filter(product=spec.product, status=SpecStatus.EFFECTIVE).count() == 1


def test_a_draft_cannot_be_made_effective(draft, qp):
    with pytest.raises(InvalidTransition):
        specification_make_effective(actor=qp, specification=draft)


def test_a_specification_change_does_not_affect_a_pinned_batch(make_batch, spec, draft, qc_analyst, qc_reviewer, qp):
    old_batch = make_batch()
    viability = draft.tests.get(code="viability")
    specification_test_update(actor=qc_analyst, test=viability, expected_revision=draft.revision,
                              reason="Raise the viability limit to 80 %", low="80")
    draft.refresh_from_db()
    specification_make_effective(actor=qp, specification=approve(draft, qc_reviewer, qp))
    new_batch = make_batch()

    assert old_batch.specification_pin.specification_id == spec.pk
    assert new_batch.specification_pin.specification_id == draft.pk
    outcome = {"viability": ("75.0", "% of nucleated cells")}
    assert enter(old_batch, "viability", qc_analyst, outcome=outcome).evaluation == ResultEvaluation.PASS
    assert enter(new_batch, "viability", qc_analyst, outcome=outcome).evaluation == ResultEvaluation.FAIL


def test_a_specification_is_built_from_the_shipped_data(product, qc_analyst):
    created = specification_create_from_data(actor=qc_analyst, product=product, change_summary="site copy")

    assert created.status == SpecStatus.DRAFT
    assert created.tests.get(code="sterility").oos_deviation_class == "critical"
    assert created.tests.get(code="viability").low == Decimal("70")


def test_a_composite_group_needs_two_tests_before_approval(draft, qc_analyst, qc_reviewer):
    specification_test_add(actor=qc_analyst, specification=draft, expected_revision=draft.revision,
                           code="cytotox_survival", name="Surviving target cells", method="Flow cytometry co-culture",
                           unit="% of target cells", limit_type="lt", high="70", composite_group="potency")
    draft.refresh_from_db()

    with pytest.raises(NotReady, match="Composite group potency has one test only"):
        specification_review(actor=qc_reviewer, specification=draft, password=PASSWORD, expected_revision=draft.revision)


@pytest.mark.parametrize(("values", "message"), [
    ({"limit_type": "gte"}, "the low limit is required"),
    ({"limit_type": "lte", "low": "1"}, "leave the low limit empty"),
    ({"limit_type": "range", "low": "5", "high": "1"}, "low limit is above"),
    ({"limit_type": "gte", "low": "70", "unit": ""}, "needs its unit and basis"),
    ({"limit_type": "qualitative", "passing_result": "growth", "unit": ""}, "Passing result"),
    ({"limit_type": "gte", "low": "1,5"}, "comma"),
    ({"limit_type": "bogus"}, "not a limit type"),
    ({"limit_type": "gte", "low": "70", "code": "Bad Code"}, "Code"),
    ({"limit_type": "gte", "low": "70", "turnaround_days": "-1"}, "Turnaround"),
])
def test_a_test_definition_is_refused_with_a_clear_message(values, message):
    base = {"code": "viability", "name": "Viability", "method": "7-AAD", "unit": "% of nucleated cells"}
    with pytest.raises(InvalidInput, match=message):
        clean_test_fields({**base, **values})


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_free_text_of_a_test_definition_is_accepted_or_refused_clearly(text):
    values = {"code": "t1", "name": text, "method": text or "m", "unit": "EU/mL", "limit_type": "lte", "high": "0.5",
              "sample_type": text}
    try:
        cleaned, message = clean_test_fields(values), ""
    except InvalidInput as exc:
        cleaned, message = None, exc.message
    if cleaned is None:
        assert message
    else:
        assert "\x00" not in cleaned["name"]
