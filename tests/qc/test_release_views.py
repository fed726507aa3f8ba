"""The QC and release pages: login, site isolation (404), roles, bad input, query counts."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from batches.models import BatchState
from carmfg.accounts.models import Role
from qc.checklist import release_checklist
from qc.models import Alert, CertificationKind, ResultStatus, TestResult
from qc.services.samples import samples_create_from_steps
from tests.conftest import PASSWORD, assert_hidden
from tests.qc.conftest import FAILING, enter


@pytest.fixture
def ready(make_batch, qc_passed):
    batch = make_batch()
    qc_passed(batch)
    return batch


@pytest.fixture
def failing_result(make_batch, qc_analyst):
    return enter(make_batch(), "viability", qc_analyst, outcome=FAILING)


def object_urls(batch, result, spec, alert, sample) -> list[str]:
    test = spec.tests.first()
    return [
        reverse("qc:sample_receive", args=[sample.pk]),
        reverse("qc:batch", args=[batch.pk]),
        reverse("qc:result_enter", args=[batch.pk]),
        reverse("qc:samples_from_steps", args=[batch.pk]),
        reverse("qc:result_review", args=[result.pk]),
        reverse("qc:result_invalidate", args=[result.pk]),
        reverse("qc:oos", args=[result.oos.pk]),
        reverse("qc:specification", args=[spec.pk]),
        reverse("qc:specification_action", args=[spec.pk, "clone"]),
        reverse("qc:specification_test_action", args=[test.pk, "edit"]),
        reverse("qc:alert_acknowledge", args=[alert.pk]),
        reverse("qc:batch_release", args=[batch.pk]),
        reverse("qc:certify", args=[batch.pk]),
        reverse("qc:reject", args=[batch.pk]),
    ]


@pytest.fixture
def site_objects(failing_result, spec, qp, qc_analyst, site):
    alert = Alert.objects.create(site=site, batch=failing_result.batch, recipient=qp, title="t", message="m",
                                 created_at=failing_result.entered_at)
    [sample] = samples_create_from_steps(actor=qc_analyst, batch=failing_result.batch)
    return failing_result.batch, failing_result, spec, alert, sample


def test_every_qc_page_is_hidden_from_another_site(site_objects, client_for, other_site_user):
    client = client_for(other_site_user)
    for url in object_urls(*site_objects):
        post_only = url.endswith(("/results/", "/samples/", "/review/", "/invalidate/", "/clone/", "/edit/",
                                  "/acknowledge/", "/certify/", "/reject/", "/receive/"))
        assert_hidden(client, url, methods=("post",) if post_only else ("get", "post"))


def test_every_qc_page_needs_a_login(site_objects):
    client = Client()
    for url in object_urls(*site_objects) + [reverse("qc:index"), reverse("qc:release"), reverse("qc:alerts"),
                                              reverse("qc:specifications")]:
        response = client.post(url) if url.endswith(("/certify/", "/reject/")) else client.get(url)
        assert response.status_code in (302, 405), url
        if response.status_code == 302:
            assert reverse("login") in response["Location"]


def test_the_work_lists_of_another_site_show_nothing_of_this_one(site_objects, client_for, other_site_user):
    batch = site_objects[0]
    client = client_for(other_site_user)
    for name in ("qc:index", "qc:release", "qc:specifications", "qc:alerts"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert batch.number.encode() not in response.content


def test_an_alert_is_acknowledged_only_by_its_recipient(site_objects, client_for, qc_analyst):
    alert = site_objects[3]

    response = client_for(qc_analyst).post(reverse("qc:alert_acknowledge", args=[alert.pk]))

    assert response.status_code == 404
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_the_release_queue_lists_batches_with_age_and_exceptions(ready, failing_result, client_for, qp):
    response = client_for(qp).get(reverse("qc:release"))

    assert response.status_code == 200
    text = response.content.decode()
    assert ready.number in text
    assert failing_result.batch.number in text
    assert "1 result out of specification" in text
    assert "1 major/critical deviation open" in text
    assert "since collection" in text


def test_the_release_queue_takes_a_bounded_number_of_queries(make_batch, client_for, qp,
                                                             django_assert_max_num_queries):
    client = client_for(qp)
    make_batch()
    client.get(reverse("qc:release"))  # warm the per-user caches
    with django_assert_max_num_queries(30) as one:
        client.get(reverse("qc:release"))
    for _ in range(4):
        make_batch()
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(reverse("qc:release"))
    assert response.content.decode().count("qbatch") == 5


def test_a_qp_certifies_provisionally_from_the_release_page(ready, client_for, qp):
    client = client_for(qp)
    page = client.get(reverse("qc:batch_release", args=[ready.pk]))
    assert b"Sign: released (provisional)" in page.content
    fingerprint = release_checklist(ready, kind=CertificationKind.PROVISIONAL).fingerprint

    response = client.post(reverse("qc:certify", args=[ready.pk]), {
        "kind": "provisional", "version": ready.version, "checklist": fingerprint, "password": PASSWORD})

    assert response.status_code == 302
    ready.refresh_from_db()
    assert ready.state == BatchState.PROVISIONALLY_RELEASED


def test_the_release_page_shows_why_certification_is_refused(make_batch, client_for, qp):
    batch = make_batch()

    response = client_for(qp).get(reverse("qc:batch_release", args=[batch.pk]))

    text = response.content.decode()
    assert "Viability: no result yet." in text
    assert "Certification is not possible while an item fails." in text
    assert "Sign: released (provisional)" not in text


def test_a_refused_certification_is_a_clear_message_not_an_error(make_batch, client_for, qp):
    batch = make_batch()

    response = client_for(qp).post(reverse("qc:certify", args=[batch.pk]), {
        "kind": "provisional", "version": batch.version, "password": PASSWORD})

    assert response.status_code == 409
    assert "Certification refused." in response.content.decode()


def test_a_qc_analyst_cannot_certify(ready, client_for, qc_analyst):
    response = client_for(qc_analyst).post(reverse("qc:certify", args=[ready.pk]), {
        "kind": "provisional", "version": ready.version, "password": PASSWORD})

    assert response.status_code == 403
    ready.refresh_from_db()
    assert ready.state == BatchState.AWAITING_RELEASE


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"kind": "provisional", "version": "abc", "password": PASSWORD}, 400, "out of date"),
    ({"kind": "provisional", "version": "999", "password": PASSWORD}, 409, "changed by someone else"),
    ({"kind": "sideways", "version": "1", "password": PASSWORD}, 400, "certification kind"),
    ({"kind": "provisional", "version": "1", "password": "x" * 30_000}, 400, "too long"),
])
def test_bad_certification_input_gets_a_message(ready, client_for, qp, data, status, message):
    data = {**data, "version": str(ready.version) if data["version"] == "1" else data["version"]}

    response = client_for(qp).post(reverse("qc:certify", args=[ready.pk]), data)

    assert response.status_code == status
    assert message in response.content.decode()


def test_a_stale_checklist_is_refused(ready, client_for, qp):
    response = client_for(qp).post(reverse("qc:certify", args=[ready.pk]), {
        "kind": "provisional", "version": ready.version, "checklist": "0" * 64, "password": PASSWORD})

    assert response.status_code == 409
    assert "checklist changed" in response.content.decode()


def test_rejection_from_the_release_page(make_batch, client_for, qp):
    batch = make_batch()

    response = client_for(qp).post(reverse("qc:reject", args=[batch.pk]), {
        "version": batch.version, "failure_reason": "insufficient_expansion", "reason": "Only 40 × 10⁶ cells",
        "password": PASSWORD})

    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == BatchState.REJECTED


# --- QC pages ----------------------------------------------------------------------------


def test_a_result_is_entered_and_reviewed_through_the_pages(make_batch, client_for, qc_analyst, qc_reviewer):
    batch = make_batch()
    test = batch.specification_pin.specification.tests.get(code="viability")

    response = client_for(qc_analyst).post(reverse("qc:result_enter", args=[batch.pk]), {
        "test": test.pk, "value": "84.5", "unit": "% of nucleated cells", "password": PASSWORD})
    assert response.status_code == 302
    result = TestResult.objects.get(batch=batch, test=test)
    response = client_for(qc_reviewer).post(reverse("qc:result_review", args=[result.pk]), {
        "version": result.version, "password": PASSWORD})

    assert response.status_code == 302
    result.refresh_from_db()
    assert result.status == ResultStatus.REVIEWED


def test_a_value_in_another_unit_is_refused_on_the_page_and_the_input_kept(make_batch, client_for, qc_analyst):
    batch = make_batch()
    test = batch.specification_pin.specification.tests.get(code="car_pos")

    response = client_for(qc_analyst).post(reverse("qc:result_enter", args=[batch.pk]), {
        "test": test.pk, "value": "38.5", "unit": "% of viable cells", "password": PASSWORD})

    assert response.status_code == 400
    text = response.content.decode()
    assert "specified in “% of CD3+”" in text
    assert 'value="38.5"' in text
    assert not TestResult.objects.exists()


@pytest.mark.parametrize("value", ["8\x004", "x" * 50_000, "12abc"])
def test_bad_result_input_gets_a_message(make_batch, client_for, qc_analyst, value):
    batch = make_batch()
    test = batch.specification_pin.specification.tests.get(code="viability")

    response = client_for(qc_analyst).post(reverse("qc:result_enter", args=[batch.pk]), {
        "test": test.pk, "value": value, "unit": "% of nucleated cells", "password": PASSWORD})

    assert response.status_code == 400
    assert not TestResult.objects.exists()


def test_a_test_of_no_specification_of_the_batch_is_refused(make_batch, client_for, qc_analyst):
    batch = make_batch()

    response = client_for(qc_analyst).post(reverse("qc:result_enter", args=[batch.pk]), {
        "test": "999999", "value": "1", "unit": "x", "password": PASSWORD})

    assert response.status_code == 400


def test_the_qc_work_list_shows_results_to_enter_and_to_review(make_batch, client_for, qc_analyst, qc_reviewer):
    batch = make_batch()
    enter(batch, "viability", qc_analyst)

    text = client_for(qc_reviewer).get(reverse("qc:index")).content.decode()

    assert "Results to review" in text
    assert "85.0 % of nucleated cells" in text
    assert "CD3+ T cells" in text  # still to enter


def test_pages_render_for_each_role(make_batch, failing_result, spec, client_for, qc_analyst, qp, auditor, technician):
    urls = [reverse("qc:index"), reverse("qc:release"), reverse("qc:specifications"), reverse("qc:alerts"),
            reverse("qc:batch", args=[failing_result.batch_id]), reverse("qc:oos", args=[failing_result.oos.pk]),
            reverse("qc:specification", args=[spec.pk]), reverse("qc:batch_release", args=[failing_result.batch_id])]
    for user in (qc_analyst, qp, auditor, technician):
        client = client_for(user)
        for url in urls:
            assert client.get(url).status_code == 200, (user, url)


def test_the_nav_shows_qc_and_release(client_for, qp):
    text = client_for(qp).get(reverse("home")).content.decode()

    assert 'data-nav="qc"' in text
    assert 'data-nav="release"' in text
    assert "Awaiting your decision" in text


def test_specification_editing_through_the_page(spec, client_for, qc_analyst, make_user, site):
    client = client_for(qc_analyst)
    response = client.post(reverse("qc:specification_action", args=[spec.pk, "clone"]),
                           {"change_summary": "Raise viability to 80 %"})
    assert response.status_code == 302
    draft = spec.product.specifications.get(version=2)
    viability = draft.tests.get(code="viability")
    fields = {name: getattr(viability, name) for name in ("code", "name", "method", "unit", "limit_type",
                                                           "turnaround_days", "decimal_places", "sample_type",
                                                           "oos_deviation_class")}
    response = client.post(reverse("qc:specification_test_action", args=[viability.pk, "edit"]), {
        **fields, "low": "80", "high": "", "passing_result": "", "composite_group": "",
        "required_for_provisional": "on", "revision": draft.revision, "reason": "Site decision"})

    assert response.status_code == 302
    viability.refresh_from_db()
    assert viability.low == 80
    assert client.get(reverse("qc:specification", args=[draft.pk])).status_code == 200
    stale = client.post(reverse("qc:specification_action", args=[draft.pk, "edit"]), {
        "revision": "1", "title": "x", "dose_min_cells_per_kg": "400000", "dose_max_cells_per_kg": "5000000",
        "dose_tolerance_percent": "20"})
    assert stale.status_code == 409


def test_a_technician_cannot_edit_specifications(spec, client_for, technician):
    response = client_for(technician).post(reverse("qc:specification_action", args=[spec.pk, "clone"]),
                                           {"change_summary": "x"})

    assert response.status_code == 403


def test_a_qp_at_two_sites_is_told_per_site(make_user, site, other_site):
    user = make_user("qp2", roles=[Role.QUALIFIED_PERSON], site=site)
    from carmfg.accounts.services import membership_set_roles

    membership_set_roles(actor=None, user=user, site=other_site, roles=[Role.QUALIFIED_PERSON])
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    assert client.get(reverse("qc:release")).status_code == 200


def test_a_sample_is_received_through_the_page_and_a_wrong_label_refused(make_batch, client_for, qc_analyst):
    batch = make_batch()
    [sample] = samples_create_from_steps(actor=qc_analyst, batch=batch)
    client = client_for(qc_analyst)

    wrong = client.post(reverse("qc:sample_receive", args=[sample.pk]), {"scanned_code": "=W000126999999\x00"})
    right = client.post(reverse("qc:sample_receive", args=[sample.pk]),
                        {"scanned_code": f"={batch.donation.din}00/QC-1"})

    assert wrong.status_code in (400, 409)
    assert right.status_code == 302
    sample.refresh_from_db()
    assert sample.received_by == qc_analyst
