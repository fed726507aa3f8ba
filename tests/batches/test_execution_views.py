"""The execution pages as people use them: site isolation, roles, bad input, stale
forms, refusals shown on the page, and bounded query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.demo_mbr import run_good_steps
from batches.models import (
    Deviation,
    DeviationStatus,
    Equipment,
    LotStatus,
    MasterBatchRecord,
    MaterialLot,
    MbrStatus,
    StepDefinition,
    StepRecord,
)
from batches.progress import load_plan
from batches.services.execution import batch_start
from tests.conftest import PASSWORD, assert_hidden

BATCH_PAGE_QUERIES = 30
LIST_QUERIES = 20


@pytest.fixture
def batch(started_batch):
    """The shared started batch of the shipped recipe (tests/batches/conftest.py)."""
    return started_batch


def _step(batch, code):
    return load_plan(batch).by_code[code]


def _record_url(batch, code):
    return f"/batches/{batch.pk}/steps/{_step(batch, code).definition.pk}/record/"


def _advance(batch, technician, verifier, stop_before):
    run_good_steps(batch=batch, technician=technician, verifier=verifier, password=PASSWORD, stop_before=stop_before)


# --- isolation and roles -------------------------------------------------------------------------


def test_every_page_of_a_batch_is_hidden_from_other_sites(batch, technician, verifier, other_site_user, client_for,
                                                          shipped_mbr):
    _advance(batch, technician, verifier, stop_before="apheresis_volume_ml")
    rec = StepRecord.objects.filter(batch=batch)[0]
    step = StepDefinition.objects.filter(stage__mbr=shipped_mbr)[0]
    deviation = Deviation.objects.create(site=batch.site, number="DEV-X", batch=batch, source="manual",
                                         classification="minor", title="t", description="d", raised_by=technician,
                                         raised_at=batch.created_at)
    lot, equipment = MaterialLot.objects.all()[0], Equipment.objects.all()[0]
    client = client_for(other_site_user)
    urls = [
        f"/batches/{batch.pk}/", f"/batches/{batch.pk}/start/", f"/batches/{batch.pk}/complete/",
        f"/batches/{batch.pk}/hold/", f"/batches/{batch.pk}/resume/",
        f"/batches/{batch.pk}/steps/{step.pk}/record/", f"/batches/{batch.pk}/steps/{step.pk}/request-use/",
        f"/batches/{batch.pk}/records/{rec.pk}/verify/", f"/batches/{batch.pk}/records/{rec.pk}/correct/",
        f"/batches/deviations/{deviation.pk}/", f"/batches/deviations/{deviation.pk}/approve-use/",
        f"/batches/deviations/{deviation.pk}/close/",
        f"/batches/mbr/{shipped_mbr.pk}/", f"/batches/mbr/{shipped_mbr.pk}/edit/", f"/batches/mbr/{shipped_mbr.pk}/clone/",
        f"/batches/mbr/{shipped_mbr.pk}/approve/", f"/batches/mbr/{shipped_mbr.pk}/make-effective/",
        f"/batches/mbr/{shipped_mbr.pk}/stages/new/", f"/batches/mbr/{shipped_mbr.pk}/stages/{step.stage.pk}/steps/new/",
        f"/batches/mbr/{shipped_mbr.pk}/steps/{step.pk}/", f"/batches/mbr/{shipped_mbr.pk}/steps/{step.pk}/move/",
        f"/batches/mbr/{shipped_mbr.pk}/steps/{step.pk}/delete/",
        f"/batches/materials/{lot.pk}/release/", f"/batches/materials/{lot.pk}/reject/",
        f"/batches/equipment/{equipment.pk}/edit/",
    ]
    read_only = {f"/batches/{batch.pk}/", f"/batches/mbr/{shipped_mbr.pk}/"}
    for url in urls:
        if url in read_only:
            methods: tuple[str, ...] = ("get",)  # a POST is 405 for any id: it says nothing
        elif url.endswith(("/start/", "/complete/", "/hold/", "/resume/", "/record/", "/request-use/", "/verify/",
                           "/correct/", "/approve-use/", "/close/", "/clone/", "/approve/", "/make-effective/",
                           "/move/", "/delete/", "/release/", "/reject/", "/stages/new/")):
            methods = ("post",)
        else:
            methods = ("get", "post")
        assert_hidden(client, url, methods=methods)


def test_lists_show_only_the_current_sites_records(batch, other_site_user, client_for):
    client = client_for(other_site_user)
    for url in ("/batches/", "/batches/deviations/?status=all", "/batches/mbr/", "/batches/materials/",
                "/batches/equipment/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert batch.number not in html
        assert "LOT-TA-7720" not in html
        assert "PRODIGY-01" not in html


def test_pages_need_a_login(batch, client):
    for url in ("/batches/", f"/batches/{batch.pk}/", "/batches/deviations/", "/batches/mbr/", "/batches/materials/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_an_auditor_reads_the_batch_but_gets_no_form_and_cannot_record(batch, auditor, client_for):
    client = client_for(auditor)
    page = client.get(f"/batches/{batch.pk}/")
    assert page.status_code == 200
    assert "Record and sign" not in page.content.decode()

    response = client.post(_record_url(batch, "line_clearance"),
                           {"password": PASSWORD, "expected_occurrence": 1})
    assert response.status_code == 403
    assert "do not allow you" in response.content.decode()
    assert not StepRecord.objects.filter(batch=batch).exists()


# --- recording through the page ------------------------------------------------------------------


def test_the_next_step_is_shown_with_its_scanner_field_focused(batch, technician, verifier, client_for):
    _advance(batch, technician, verifier, stop_before="transact")

    html = client_for(technician).get(f"/batches/{batch.pk}/").content.decode()

    assert "Activation reagent (TransAct)" in html
    assert 'name="lot_barcode"' in html
    field = html[html.index('name="lot_barcode"') - 200: html.index('name="lot_barcode"') + 200]
    assert "autofocus" in field


def test_a_scan_with_enter_is_checked_before_the_signature(batch, technician, verifier, client_for):
    _advance(batch, technician, verifier, stop_before="transact")

    response = client_for(technician).post(_record_url(batch, "transact"),
                                           {"lot_barcode": "LOT-TA-7720", "expected_occurrence": 1})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Checked" in html
    assert "TA-7720" in html
    assert not StepRecord.objects.filter(batch=batch, definition__code="transact").exists()


def test_recording_a_step_with_the_password_signs_it_and_moves_on(batch, technician, client_for):
    response = client_for(technician).post(_record_url(batch, "line_clearance"),
                                           {"password": PASSWORD, "expected_occurrence": 1, "comment": "Room B2"})

    assert response.status_code == 302
    saved = StepRecord.objects.get(batch=batch, definition__code="line_clearance")
    assert saved.comment == "Room B2"
    page = client_for(technician).get(response["Location"]).content.decode()
    assert "Scan the apheresis bag label" in page


def test_an_expired_lot_is_refused_on_the_page_with_a_way_to_ask_for_a_deviation(batch, technician, verifier,
                                                                               client_for):
    _advance(batch, technician, verifier, stop_before="transact")
    client = client_for(technician)

    response = client.post(_record_url(batch, "transact"),
                           {"lot_barcode": "LOT-TA-7318", "password": PASSWORD, "expected_occurrence": 1})

    assert response.status_code == 409
    html = response.content.decode()
    assert "REFUSED" in html
    assert "expired" in html
    assert "Raise a deviation for approval" in html
    assert not StepRecord.objects.filter(batch=batch, definition__code="transact").exists()

    step = _step(batch, "transact").definition
    asked = client.post(f"/batches/{batch.pk}/steps/{step.pk}/request-use/",
                        {"lot_barcode": "LOT-TA-7318", "justification": "No other lot in stock"})
    assert asked.status_code == 302
    deviation = Deviation.objects.get(batch=batch, source="material")
    assert deviation.permits["material_lot"] == MaterialLot.objects.get(barcode="LOT-TA-7318").pk


def test_a_value_outside_alert_limits_asks_for_confirmation_on_the_page(batch, technician, verifier, client_for):
    _advance(batch, technician, verifier, stop_before="apheresis_volume_ml")
    client = client_for(technician)
    data = {"value": "80.0", "unit": "mL", "password": PASSWORD, "expected_occurrence": 1}

    response = client.post(_record_url(batch, "apheresis_volume_ml"), data)
    assert response.status_code == 409
    assert 'name="confirmed"' in response.content.decode()

    response = client.post(_record_url(batch, "apheresis_volume_ml"),
                           data | {"confirmed": "on", "comment": "Collection stopped early"})
    assert response.status_code == 302
    assert StepRecord.objects.get(batch=batch, definition__code="apheresis_volume_ml").limit_result == "alert"


def test_a_value_outside_action_limits_asks_for_confirmation_on_the_page_before_the_deviation(
    batch, technician, verifier, client_for
):
    _advance(batch, technician, verifier, stop_before="apheresis_volume_ml")
    client = client_for(technician)
    data = {"value": "40.0", "unit": "mL", "password": PASSWORD, "expected_occurrence": 1}

    response = client.post(_record_url(batch, "apheresis_volume_ml"), data)
    assert response.status_code == 409
    page = response.content.decode()
    assert 'name="confirmed"' in page
    assert "outside the action limits" in page
    assert not StepRecord.objects.filter(batch=batch, definition__code="apheresis_volume_ml").exists()
    assert not Deviation.objects.filter(batch=batch, source="out_of_limit").exists()

    response = client.post(_record_url(batch, "apheresis_volume_ml"),
                           data | {"confirmed": "on", "comment": "Bag weighed twice"})
    assert response.status_code == 302
    saved = StepRecord.objects.get(batch=batch, definition__code="apheresis_volume_ml")
    assert saved.limit_result == "action"
    assert Deviation.objects.filter(batch=batch, source="out_of_limit").count() == 1


@pytest.mark.parametrize("bad", [
    {"value": "7\x002", "unit": "mL"},
    {"value": "9" * 100_000, "unit": "mL"},
    {"value": "212.0", "unit": "mL", "expected_occurrence": "abc"},
    {"value": ["1", "2"], "unit": "mL"},
    {"value": "212.0", "unit": "mL", "comment": "x" * 100_000},
    {"value": "212.0", "unit": "kg"},
])
def test_bad_input_gets_a_clear_message_never_a_500(batch, technician, verifier, client_for, bad):
    _advance(batch, technician, verifier, stop_before="apheresis_volume_ml")
    data = {"password": PASSWORD, "expected_occurrence": 1} | bad

    response = client_for(technician).post(_record_url(batch, "apheresis_volume_ml"), data)

    assert response.status_code in (400, 409)
    assert 'role="alert"' in response.content.decode()
    assert not StepRecord.objects.filter(batch=batch, definition__code="apheresis_volume_ml").exists()


def test_a_form_opened_before_someone_else_recorded_the_step_says_so(batch, technician, verifier, client_for):
    url = _record_url(batch, "line_clearance")
    client_for(technician).post(url, {"password": PASSWORD, "expected_occurrence": 1})

    response = client_for(verifier).post(url, {"password": PASSWORD, "expected_occurrence": 1})

    assert response.status_code == 409
    assert "since you opened it" in response.content.decode()
    assert StepRecord.objects.filter(batch=batch, definition__code="line_clearance").count() == 1


def test_verification_and_correction_through_the_page(batch, technician, verifier, client_for):
    client_for(technician).post(_record_url(batch, "line_clearance"), {"password": PASSWORD, "expected_occurrence": 1})
    saved = StepRecord.objects.get(batch=batch, definition__code="line_clearance")

    own = client_for(technician)
    refused = own.post(f"/batches/{batch.pk}/records/{saved.pk}/verify/",
                       {"password": PASSWORD, "expected_version": saved.version})
    assert refused.status_code == 403  # technician has no verifier role

    ok = client_for(verifier).post(f"/batches/{batch.pk}/records/{saved.pk}/verify/",
                                   {"password": PASSWORD, "expected_version": saved.version})
    assert ok.status_code == 302

    no_reason = own.post(f"/batches/{batch.pk}/records/{saved.pk}/correct/",
                         {"password": PASSWORD, "expected_version": saved.version, "comment": "B3"})
    assert no_reason.status_code == 400
    corrected = own.post(f"/batches/{batch.pk}/records/{saved.pk}/correct/",
                         {"password": PASSWORD, "expected_version": saved.version, "comment": "Room B3",
                          "reason": "Wrong room written"})
    assert corrected.status_code == 302
    page = own.get(f"/batches/{batch.pk}/").content.decode()
    assert "Wrong room written" in page
    assert "<del>" in page


# --- query counts ---------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_batch_page_query_count_does_not_grow_with_the_record(batch, technician, verifier, client_for,
                                                                  django_assert_max_num_queries):
    client = client_for(technician)
    url = f"/batches/{batch.pk}/"
    client.get(url)
    _advance(batch, technician, verifier, stop_before="apheresis_bag_scan")
    few = _queries(client, url)

    _advance(batch, technician, verifier, stop_before="fold_expansion")
    many = _queries(client, url)

    assert many == few
    with django_assert_max_num_queries(BATCH_PAGE_QUERIES):
        client.get(url)


def test_the_batch_list_query_count_does_not_grow_with_the_batches(shipped_mbr, make_batch, technician, client_for,
                                                                  django_assert_max_num_queries):
    client = client_for(technician)

    def started():
        batch = make_batch(shipped_mbr.product)
        return batch_start(actor=technician, batch=batch, expected_version=batch.version)

    started()
    client.get("/batches/")
    one = _queries(client, "/batches/")
    for _ in range(3):
        started()
        make_batch(shipped_mbr.product)

    assert _queries(client, "/batches/") == one
    assert _queries(client, "/batches/?state=in_process") == one
    with django_assert_max_num_queries(LIST_QUERIES):
        client.get("/batches/")


def test_a_bad_filter_is_a_message_not_an_error(batch, technician, client_for):
    response = client_for(technician).get("/batches/?state=melted&q=" + "x" * 500)
    assert response.status_code == 400


# --- recipes, lots, equipment, deviations through the pages ---------------------------------------


def test_a_recipe_is_cloned_edited_approved_and_made_effective_through_the_pages(shipped_mbr, site_admin, qp,
                                                                                 client_for):
    admin, qp_client = client_for(site_admin), client_for(qp)
    response = admin.post(f"/batches/mbr/{shipped_mbr.pk}/clone/", {"change_summary": "Viability alert at 85 %"})
    assert response.status_code == 302
    draft = MasterBatchRecord.objects.get(product=shipped_mbr.product, status=MbrStatus.DRAFT)
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")
    assert admin.get(f"/batches/mbr/{draft.pk}/edit/").status_code == 200

    form = admin.get(f"/batches/mbr/{draft.pk}/steps/{step.pk}/").context["form"]
    data = {k: v for k, v in form.initial.items() if v not in (None, False)} | {
        "alert_min": "85", "reason": "Tighter alert", "expected_revision": draft.revision}
    saved = admin.post(f"/batches/mbr/{draft.pk}/steps/{step.pk}/", data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    step.refresh_from_db()
    assert step.alert_min == 85

    draft.refresh_from_db()
    assert admin.post(f"/batches/mbr/{draft.pk}/approve/",
                      {"password": PASSWORD, "expected_revision": draft.revision}).status_code == 302
    assert qp_client.post(f"/batches/mbr/{draft.pk}/approve/",
                          {"password": PASSWORD, "expected_revision": draft.revision}).status_code == 302
    assert qp_client.post(f"/batches/mbr/{draft.pk}/make-effective/").status_code == 302
    draft.refresh_from_db()
    assert draft.status == MbrStatus.EFFECTIVE


def test_a_technician_cannot_edit_a_recipe_step_through_the_page(shipped_mbr, site_admin, technician, client_for):
    client_for(site_admin).post(f"/batches/mbr/{shipped_mbr.pk}/clone/", {"change_summary": "v2"})
    draft = MasterBatchRecord.objects.get(product=shipped_mbr.product, status=MbrStatus.DRAFT)
    step = StepDefinition.objects.get(stage__mbr=draft, code="harvest_viability")

    response = client_for(technician).post(f"/batches/mbr/{draft.pk}/steps/{step.pk}/", {
        "code": step.code, "title": "x", "kind": step.kind, "unit": "%", "decimal_places": 1,
        "expected_revision": draft.revision, "reason": "x"})
    assert response.status_code == 403


def test_lots_are_registered_by_the_admin_and_released_by_a_qp_with_a_signature(site, site_admin, qp, technician,
                                                                               client_for):
    admin = client_for(site_admin)
    response = admin.post("/batches/materials/", {
        "material_type": "il7", "name": "IL-7", "lot_number": "IL7-9", "barcode": "LOT-IL7-9",
        "expiry_date": "2099-01-01"})
    assert response.status_code == 302
    lot = MaterialLot.objects.get(barcode="LOT-IL7-9")
    assert lot.status == LotStatus.QUARANTINE

    assert client_for(technician).post("/batches/materials/", {
        "material_type": "il7", "name": "IL-7", "lot_number": "X", "barcode": "X", "expiry_date": "2099-01-01",
    }).status_code == 403
    client_for(qp).post(f"/batches/materials/{lot.pk}/release/", {"password": "wrong-one-here",
                                                                  "expected_version": lot.version})
    lot.refresh_from_db()
    assert lot.status == LotStatus.QUARANTINE
    client_for(qp).post(f"/batches/materials/{lot.pk}/release/", {"password": PASSWORD, "expected_version": lot.version})
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED


def test_a_deviation_is_raised_approved_and_shown(batch, technician, verifier, qp, client_for):
    _advance(batch, technician, verifier, stop_before="transact")
    step = _step(batch, "transact").definition
    client_for(technician).post(f"/batches/{batch.pk}/steps/{step.pk}/request-use/",
                                {"lot_barcode": "LOT-TA-7318", "justification": "Only lot"})
    deviation = Deviation.objects.get(batch=batch)

    page = client_for(qp).get(f"/batches/deviations/{deviation.pk}/").content.decode()
    assert "Approve use and sign" in page
    response = client_for(qp).post(f"/batches/deviations/{deviation.pk}/approve-use/",
                                   {"password": PASSWORD, "expected_version": deviation.version})
    assert response.status_code == 302
    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.APPROVED_FOR_USE
    assert "Use approval" in client_for(qp).get(f"/batches/deviations/{deviation.pk}/").content.decode()

    closing = client_for(qp).post(f"/batches/deviations/{deviation.pk}/close/",
                                  {"password": PASSWORD, "expected_version": deviation.version})
    assert closing.status_code == 409
    assert "impact assessment" in closing.content.decode()


def test_the_technicians_home_shows_the_next_step_of_each_batch_in_process(batch, technician, verifier, client_for):
    _advance(batch, technician, verifier, stop_before="transact")

    html = client_for(technician).get("/").content.decode()

    assert batch.number in html
    assert "Activation reagent (TransAct)" in html
