"""The batches API: the same services and selectors as the pages. Another site's
records are 404, a role that may not act gets 403, every write is audited and
signed through the service, and no input gives a 500."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from batches.models import (
    BatchState,
    CustodyEvent,
    CustodyStep,
    Deviation,
    Order,
    Patient,
    StepRecord,
)
from batches.services.execution import batch_start
from carmfg.accounts.tokens import api_token_create, api_token_revoke
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.models import Meaning, Signature
from tests.batches.coi_steps import a_batch, a_collection, a_patient, scan_of
from tests.conftest import PASSWORD

PROBLEM = "application/problem+json"


def api_for(user) -> Client:
    """An integration's client: authenticated by an API token only."""
    _, text = api_token_create(actor=user, name="integration test")
    return Client(HTTP_AUTHORIZATION=f"Token {text}")


def post(client: Client, url: str, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def patch(client: Client, url: str, body, **headers):
    return client.patch(url, json.dumps(body), content_type="application/json", headers=headers)


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


@pytest.fixture
def patient(coordinator, site):
    return a_patient(coordinator, site, n=1)


@pytest.fixture
def other_patient(make_user, other_site):
    from carmfg.accounts.models import Role

    coordinator = make_user("coord2", roles=[Role.COORDINATOR], site=other_site)
    return a_patient(coordinator, other_site, n=7)


@pytest.fixture
def batch(coordinator, technician, patient, product, small_mbr):
    """A batch in process on the small recipe (instruction, value with limits, verified step)."""
    batch = a_batch(coordinator, technician, patient, product)
    return batch_start(actor=technician, batch=batch, expected_version=batch.version)


@pytest.fixture
def other_batch(make_user, other_site, other_product):
    from django.utils import timezone

    from batches.models import MasterBatchRecord, MbrStatus, StageDefinition, StepDefinition
    from carmfg.accounts.models import Role

    mbr = MasterBatchRecord.objects.create(site=other_site, product=other_product, version=1, title="Other MBR",
                                           status=MbrStatus.EFFECTIVE, effective_at=timezone.now())
    stage = StageDefinition.objects.create(mbr=mbr, order=1, code="a", name="A")
    StepDefinition.objects.create(stage=stage, order=1, code="start", title="Start", kind="instruction")
    coordinator = make_user("coord3", roles=[Role.COORDINATOR], site=other_site)
    tech = make_user("tech3", roles=[Role.TECHNICIAN], site=other_site)
    return a_batch(coordinator, tech, a_patient(coordinator, other_site, n=9), other_product)


def step_def(batch, code):
    return batch.mbr.stages.get().steps.get(code=code)


# --- patients ----------------------------------------------------------------------------------------


def test_patients_list_shows_only_my_sites_and_hides_the_record_number_from_the_floor(
    patient, other_patient, coordinator, technician, client_for
):
    rows = client_for(coordinator).get("/api/v1/patients/").json()["results"]
    assert [r["pseudonym"] for r in rows] == [patient.pseudonym]
    assert rows[0]["hospital_record_number"] == patient.hospital_record_number

    floor = client_for(technician).get(f"/api/v1/patients/{patient.pk}/").json()
    assert floor["pseudonym"] == patient.pseudonym
    assert floor["hospital_record_number"] is None
    assert floor["wristband_code"] is None


def test_another_sites_patient_and_order_are_not_found(other_patient, coordinator, other_site_user, patient, client_for):
    assert_problem(client_for(coordinator).get(f"/api/v1/patients/{other_patient.pk}/"), 404)
    stranger = client_for(other_site_user)
    assert_problem(stranger.get(f"/api/v1/patients/{patient.pk}/"), 404)
    assert_problem(patch(stranger, f"/api/v1/patients/{patient.pk}/", {"initials": "X", "reason": "r", "version": 1}),
                   404)
    assert patient.pk not in [r["id"] for r in stranger.get("/api/v1/patients/").json()["results"]]


def test_a_coordinator_registers_a_patient_through_the_service_and_it_is_audited(coordinator, site):
    response = post(api_for(coordinator), "/api/v1/patients/", {
        "site": site.pk, "initials": "K.M.", "birth_year": 1987, "hospital_record_number": "HRN-77",
        "wristband_code": "WB0077", "weight_kg": "68.4", "weight_measured_on": "2026-01-05",
    })
    assert response.status_code == 201, response.content
    body = response.json()
    patient = Patient.objects.get(pk=body["id"])
    assert patient.pseudonym.startswith("PT-")
    assert body["pseudonym"] == patient.pseudonym
    assert response["ETag"] == f'"{patient.pk}-1"'
    event = AuditEvent.objects.get(object_type="batches.patient", object_id=str(patient.pk))
    assert event.action == Action.CREATE
    assert event.actor == coordinator


def test_a_technician_may_not_register_patients(technician, site):
    response = post(api_for(technician), "/api/v1/patients/", {
        "site": site.pk, "initials": "K.M.", "birth_year": 1987, "hospital_record_number": "HRN-77",
        "wristband_code": "WB0077", "weight_kg": "68.4", "weight_measured_on": "2026-01-05",
    })
    assert_problem(response, 403)
    assert not Patient.objects.exists()


@pytest.mark.parametrize(("field", "value"), [
    ("initials", "K\x00M"), ("initials", "K" * 1_000_000), ("birth_year", "nineteen"), ("birth_year", 1800),
    ("weight_kg", "NaN"), ("weight_kg", [1]), ("weight_measured_on", "yesterday"), ("hospital_record_number", "a b"),
    ("site", 2**40),
])
def test_bad_patient_input_is_a_field_level_problem_and_nothing_is_saved(coordinator, site, client_for, field, value):
    body = {"site": site.pk, "initials": "K.M.", "birth_year": 1987, "hospital_record_number": "HRN-77",
            "wristband_code": "WB0077", "weight_kg": "68.4", "weight_measured_on": "2026-01-05", field: value}
    assert_problem(post(client_for(coordinator), "/api/v1/patients/", body), 400, field)
    assert not Patient.objects.exists()


def test_another_sites_id_in_the_body_is_refused_without_saying_it_exists(coordinator, other_site, client_for):
    body = {"site": other_site.pk, "initials": "K.M.", "birth_year": 1987, "hospital_record_number": "HRN-77",
            "wristband_code": "WB0077", "weight_kg": "68.4", "weight_measured_on": "2026-01-05"}
    problem = assert_problem(post(client_for(coordinator), "/api/v1/patients/", body), 400, "site")
    assert "No such record" in problem["detail"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\x00\xff", b'{"site": {"$gt": 1}}'])
def test_malformed_bodies_are_refused_without_a_500(coordinator, client_for, raw):
    response = client_for(coordinator).post("/api/v1/patients/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def test_update_with_if_match_changes_the_patient_and_audits_the_reason(patient, coordinator, client_for):
    client = client_for(coordinator)
    etag = client.get(f"/api/v1/patients/{patient.pk}/")["ETag"]
    response = patch(client, f"/api/v1/patients/{patient.pk}/", {"weight_kg": "70.1", "reason": "Re-weighed"},
                     **{"If-Match": etag})
    assert response.status_code == 200, response.content
    assert response.json()["weight_kg"] == "70.1"
    assert response["ETag"] == f'"{patient.pk}-2"'
    event = AuditEvent.objects.filter(object_type="batches.patient", object_id=str(patient.pk)).latest("seq")
    assert (event.action, event.reason) == (Action.UPDATE, "Re-weighed")


def test_a_stale_if_match_is_412_and_changes_nothing(patient, coordinator, client_for):
    client = client_for(coordinator)
    etag = client.get(f"/api/v1/patients/{patient.pk}/")["ETag"]
    assert patch(client, f"/api/v1/patients/{patient.pk}/", {"weight_kg": "70.1", "reason": "first"},
                 **{"If-Match": etag}).status_code == 200
    response = patch(client, f"/api/v1/patients/{patient.pk}/", {"weight_kg": "80.0", "reason": "second"},
                     **{"If-Match": etag})
    problem = assert_problem(response, 412)
    assert "changed since you opened it" in problem["detail"]
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("70.1")


def test_an_update_without_if_match_or_version_is_428_and_a_stale_version_409(patient, coordinator, client_for):
    client = client_for(coordinator)
    assert_problem(patch(client, f"/api/v1/patients/{patient.pk}/", {"weight_kg": "70.1", "reason": "x"}), 428)
    assert_problem(patch(client, f"/api/v1/patients/{patient.pk}/", {"weight_kg": "70.1", "reason": "x",
                                                                     "version": 5}), 409)
    assert_problem(patch(client, f"/api/v1/patients/{patient.pk}/", {"weight_kg": "70.1", "reason": "x"},
                         **{"If-Match": '"999-1"'}), 412)
    patient.refresh_from_db()
    assert patient.version == 1


# --- orders ---------------------------------------------------------------------------------------


def test_a_coordinator_orders_a_product_and_changes_the_order_with_if_match(patient, product, coordinator):
    client = api_for(coordinator)
    response = post(client, "/api/v1/orders/", {
        "patient": patient.pk, "product": product.pk, "indication": "r/r B-ALL", "treating_physician": "Dr. Ortiz",
        "target_dose_cells_per_kg": "1000000", "planned_collection_date": "2026-03-02",
    })
    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    assert response.json()["status"] == "registered"
    assert AuditEvent.objects.filter(object_type="batches.order", object_id=str(order.pk), action=Action.CREATE).exists()

    response = patch(client, f"/api/v1/orders/{order.pk}/", {"treating_physician": "Dr. Ruiz", "reason": "Handover"},
                     **{"If-Match": response["ETag"]})
    assert response.status_code == 200, response.content
    assert response.json()["treating_physician"] == "Dr. Ruiz"
    assert response.json()["version"] == 2


def test_orders_filter_by_status_and_hide_other_sites(patient, product, coordinator, other_batch, client_for):
    order = a_collection(coordinator, patient, product).order
    client = client_for(coordinator)
    rows = client.get("/api/v1/orders/", {"status": "collected"}).json()["results"]
    assert [r["id"] for r in rows] == [order.pk]
    assert rows[0]["din"]
    assert rows[0]["donation"] == order.donation.pk
    assert client.get("/api/v1/orders/", {"status": "infused"}).json()["results"] == []
    assert_problem(client.get("/api/v1/orders/", {"status": "nonsense"}), 400, "status")
    assert_problem(client.get(f"/api/v1/orders/{other_batch.order_id}/"), 404)


def test_a_product_of_another_site_cannot_be_ordered(patient, other_product, coordinator, client_for):
    response = post(client_for(coordinator), "/api/v1/orders/", {
        "patient": patient.pk, "product": other_product.pk, "indication": "x", "treating_physician": "Dr. O",
        "target_dose_cells_per_kg": "1000000", "planned_collection_date": "2026-03-02",
    })
    assert_problem(response, 400, "product")
    assert not Order.objects.exists()


# --- batches, timeline -----------------------------------------------------------------------------


def test_batches_list_detail_and_timeline_for_my_site_only(batch, other_batch, auditor, client_for):
    client = client_for(auditor)
    rows = client.get("/api/v1/batches/").json()["results"]
    assert [r["number"] for r in rows] == [batch.number]
    assert client.get("/api/v1/batches/", {"state": "released"}).json()["results"] == []
    detail = client.get(f"/api/v1/batches/{batch.pk}/").json()
    assert detail["state"] == BatchState.IN_PROCESS
    assert detail["progress"] == {"recorded": 0, "total": 3, "open_deviations": 0}
    timeline = client.get(f"/api/v1/batches/{batch.pk}/timeline/").json()
    assert [e["kind"] for e in timeline][:1] == ["registered"]
    assert "batch" in [e["kind"] for e in timeline]
    for url in (f"/api/v1/batches/{other_batch.pk}/", f"/api/v1/batches/{other_batch.pk}/timeline/",
                f"/api/v1/batches/{other_batch.pk}/steps/"):
        assert_problem(client.get(url), 404)


@pytest.mark.parametrize("url", ["/api/v1/batches/99999999999999999999/", "/api/v1/batches/-1/",
                                 "/api/v1/batches/abc/timeline/", "/api/v1/step-records/0/", "/api/v1/nothing/"])
def test_odd_ids_and_unknown_paths_are_problem_404s(auditor, client_for, url):
    assert_problem(client_for(auditor).get(url), 404)


def test_filters_refuse_nul_bytes_without_a_500(coordinator, client_for):
    response = client_for(coordinator).get("/api/v1/patients/", {"pseudonym": "PT\x00"})
    assert_problem(response, 400, "pseudonym")


def test_page_size_is_bounded(coordinator, site, client_for):
    for n in range(3):
        a_patient(coordinator, site, n=n + 10)
    body = client_for(coordinator).get("/api/v1/patients/", {"page_size": 2}).json()
    assert (body["count"], len(body["results"])) == (3, 2)
    body = client_for(coordinator).get("/api/v1/patients/", {"page_size": 10**9}).json()
    assert len(body["results"]) == 3


# --- step records: record, sign, verify ---------------------------------------------------------------


def test_a_technician_records_a_step_with_the_password_and_signs_it(batch, technician):
    client = api_for(technician)
    response = post(client, f"/api/v1/batches/{batch.pk}/steps/", {
        "definition": step_def(batch, "line_clearance").pk, "expected_occurrence": 1, "password": PASSWORD,
    })
    assert response.status_code == 201, response.content
    record = StepRecord.objects.get(pk=response.json()["id"])
    assert [s["meaning"] for s in response.json()["signatures"]] == [Meaning.PERFORMED]
    assert Signature.objects.filter(object_id=str(record.pk), meaning=Meaning.PERFORMED, signer=technician).exists()
    assert AuditEvent.objects.filter(object_type="batches.steprecord", object_id=str(record.pk),
                                     action=Action.CREATE).exists()
    listed = client.get(f"/api/v1/batches/{batch.pk}/steps/").json()["results"]
    assert [r["step_code"] for r in listed] == ["line_clearance"]


def test_a_wrong_password_signs_nothing_and_is_audited(batch, technician, client_for):
    response = post(client_for(technician), f"/api/v1/batches/{batch.pk}/steps/", {
        "definition": step_def(batch, "line_clearance").pk, "expected_occurrence": 1, "password": "wrong",
    })
    assert_problem(response, 403)
    assert not StepRecord.objects.exists()
    assert AuditEvent.objects.filter(action=Action.SIGN_REFUSED, actor=technician).exists()


def test_the_api_keeps_the_services_rules_order_and_limits(batch, technician, client_for):
    client = client_for(technician)
    url = f"/api/v1/batches/{batch.pk}/steps/"
    out_of_order = post(client, url, {"definition": step_def(batch, "viability_day0").pk, "expected_occurrence": 1,
                                      "password": PASSWORD, "value": "85.0", "unit": "%"})
    assert_problem(out_of_order, 409)
    post(client, url, {"definition": step_def(batch, "line_clearance").pk, "expected_occurrence": 1,
                       "password": PASSWORD})
    alert = post(client, url, {"definition": step_def(batch, "viability_day0").pk, "expected_occurrence": 1,
                               "password": PASSWORD, "value": "75.0", "unit": "%"})
    assert_problem(alert, 409)
    assert StepRecord.objects.count() == 1


def test_roles_that_do_not_execute_may_not_record(batch, coordinator, auditor, client_for):
    for user in (coordinator, auditor):
        response = post(client_for(user), f"/api/v1/batches/{batch.pk}/steps/", {
            "definition": step_def(batch, "line_clearance").pk, "expected_occurrence": 1, "password": PASSWORD,
        })
        assert_problem(response, 403)
    assert not StepRecord.objects.exists()


def test_another_sites_batch_cannot_be_recorded(other_batch, other_site_user, technician, client_for):
    definition = other_batch.mbr.stages.get().steps.get()
    response = post(client_for(technician), f"/api/v1/batches/{other_batch.pk}/steps/", {
        "definition": definition.pk, "expected_occurrence": 1, "password": PASSWORD,
    })
    assert_problem(response, 404)


def test_a_definition_of_another_recipe_is_a_field_error(batch, other_batch, technician, client_for):
    definition = other_batch.mbr.stages.get().steps.get()
    response = post(client_for(technician), f"/api/v1/batches/{batch.pk}/steps/", {
        "definition": definition.pk, "expected_occurrence": 1, "password": PASSWORD,
    })
    assert_problem(response, 400, "definition")


def _recorded_seeding_check(batch, technician, client):
    for code in ("line_clearance", "viability_day0", "seeding_check"):
        body = {"definition": step_def(batch, code).pk, "expected_occurrence": 1, "password": PASSWORD}
        if code == "viability_day0":
            body.update(value="85.0", unit="%")
        response = post(client, f"/api/v1/batches/{batch.pk}/steps/", body)
        assert response.status_code == 201, response.content
    return StepRecord.objects.get(definition__code="seeding_check")


def test_a_second_person_verifies_with_if_match(batch, technician, verifier, client_for):
    record = _recorded_seeding_check(batch, technician, client_for(technician))
    client = client_for(verifier)
    etag = client.get(f"/api/v1/step-records/{record.pk}/")["ETag"]
    response = post(client, f"/api/v1/step-records/{record.pk}/verify/", {"password": PASSWORD}, **{"If-Match": etag})
    assert response.status_code == 200, response.content
    assert sorted(s["meaning"] for s in response.json()["signatures"]) == [Meaning.PERFORMED, Meaning.VERIFIED]


def test_the_performer_cannot_verify_and_a_stale_etag_is_412(batch, verifier, client_for):
    # The verifier also executes here: performing and verifying the same step is refused.
    record = _recorded_seeding_check(batch, verifier, client_for(verifier))
    client = client_for(verifier)
    etag = client.get(f"/api/v1/step-records/{record.pk}/")["ETag"]
    refused = post(client, f"/api/v1/step-records/{record.pk}/verify/", {"password": PASSWORD}, **{"If-Match": etag})
    assert refused.status_code in (400, 403, 409)
    stale = post(client, f"/api/v1/step-records/{record.pk}/verify/", {"password": PASSWORD},
                 **{"If-Match": f'"{record.pk}-{record.version + 1}"'})
    assert_problem(stale, 412)
    assert not Signature.objects.filter(object_id=str(record.pk), meaning=Meaning.VERIFIED).exists()


# --- custody ---------------------------------------------------------------------------------------


@pytest.fixture
def donation(coordinator, patient, product):
    return a_collection(coordinator, patient, product)


def test_a_matching_custody_scan_is_recorded_and_audited(donation, technician):
    client = api_for(technician)
    response = post(client, f"/api/v1/donations/{donation.pk}/custody-events/", {
        "step": CustodyStep.TRANSPORT, "scanned_code": scan_of(donation, "AB-1"), "location": "Ward 3",
        "temperature_c": "4.5",
    })
    assert response.status_code == 201, response.content
    assert response.json()["container_code"] == "AB-1"
    event = CustodyEvent.objects.get(pk=response.json()["id"])
    assert AuditEvent.objects.filter(object_type="batches.custodyevent", object_id=str(event.pk)).exists()
    assert [r["id"] for r in client.get(f"/api/v1/donations/{donation.pk}/custody-events/").json()["results"]] == [
        event.pk]


def test_another_patients_label_blocks_the_scan_with_409_and_is_audited(donation, coordinator, site, technician,
                                                                       product, client_for):
    other = a_collection(coordinator, a_patient(coordinator, site, n=2), product)
    response = post(client_for(technician), f"/api/v1/donations/{donation.pk}/custody-events/", {
        "step": CustodyStep.TRANSPORT, "scanned_code": scan_of(other, "AB-1"), "location": "Ward 3",
        "temperature_c": "4.5",
    })
    assert_problem(response, 409)
    assert not CustodyEvent.objects.exists()
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(donation.pk)).exists()


def test_custody_scans_are_refused_to_auditors_and_hidden_from_other_sites(donation, auditor, other_site_user,
                                                                          client_for):
    body = {"step": CustodyStep.TRANSPORT, "scanned_code": scan_of(donation, "AB-1"), "location": "Ward 3",
            "temperature_c": "4.5"}
    url = f"/api/v1/donations/{donation.pk}/custody-events/"
    assert_problem(post(client_for(auditor), url, body), 403)
    assert_problem(post(client_for(other_site_user), url, body), 404)
    assert_problem(client_for(other_site_user).get(url), 404)
    assert not CustodyEvent.objects.exists()


# --- deviations ---------------------------------------------------------------------------------------


def test_a_technician_raises_a_deviation_and_others_sites_do_not_see_it(batch, site, technician, coordinator,
                                                                       other_site_user, client_for):
    body = {"site": site.pk, "classification": "minor", "title": "Door left open",
            "description": "Grade B door open 2 minutes.", "batch": batch.pk}
    assert_problem(post(client_for(coordinator), "/api/v1/deviations/", body), 403)
    response = post(client_for(technician), "/api/v1/deviations/", body)
    assert response.status_code == 201, response.content
    deviation = Deviation.objects.get(pk=response.json()["id"])
    assert deviation.batch == batch
    assert AuditEvent.objects.filter(object_type="batches.deviation", object_id=str(deviation.pk)).exists()
    assert client_for(coordinator).get("/api/v1/deviations/", {"status": "open"}).json()["count"] == 1
    assert_problem(client_for(other_site_user).get(f"/api/v1/deviations/{deviation.pk}/"), 404)
    assert client_for(other_site_user).get("/api/v1/deviations/").json()["count"] == 0


# --- tokens -------------------------------------------------------------------------------------------


def test_a_token_reads_the_api_and_a_revoked_token_is_refused(batch, auditor):
    token, text = api_token_create(actor=auditor, name="LIMS")
    client = Client(HTTP_AUTHORIZATION=f"Token {text}")
    assert client.get(f"/api/v1/batches/{batch.pk}/").status_code == 200
    api_token_revoke(actor=auditor, token_key=token.token_key)
    assert_problem(client.get(f"/api/v1/batches/{batch.pk}/"), 401)


def test_anonymous_callers_get_401(batch):
    assert Client().get(f"/api/v1/batches/{batch.pk}/").status_code in (401, 403)


def test_list_endpoints_run_a_fixed_number_of_queries(coordinator, technician, site, product, small_mbr, client_for):
    client = client_for(coordinator)
    a_batch(coordinator, technician, a_patient(coordinator, site, n=1), product)

    def counts() -> dict[str, int]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        out = {}
        for url in ("/api/v1/patients/", "/api/v1/orders/", "/api/v1/batches/", "/api/v1/deviations/"):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url).status_code == 200
            out[url] = len(ctx.captured_queries)
        return out

    counts()  # first requests fill per-process caches (content types, permissions)
    one = counts()
    for n in range(2, 7):
        a_batch(coordinator, technician, a_patient(coordinator, site, n=n), product)
    assert counts() == one
