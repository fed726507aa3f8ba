"""schemathesis against /api/schema/, as every role: generated requests to every
operation give no server error, a documented status code and a body that matches the
documented schema.

Path ids are drawn from real records of the caller's site and of another site as
well as generated numbers, so the checks reach records and not only 404s. Examples
are bounded so the whole run stays well under two minutes.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from batches.models import CustodyEvent, Deviation, Patient, StepRecord
from batches.services.deviations import deviation_raise_manual
from carmfg.accounts.models import Role
from carmfg.accounts.tokens import api_token_create
from qc import documents
from qc.models import DocumentPurpose, TestResult
from tests.qc.conftest import enter

MAX_EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]

# Path prefix -> the records whose ids a generated path may name.
POOLS = {
    "patients": lambda: list(Patient.objects.values_list("pk", flat=True)),
    "orders": lambda: list(Patient.objects.values_list("orders__pk", flat=True)),
    "batches": lambda: list(StepRecord.objects.values_list("batch_id", flat=True).distinct()),
    "step-records": lambda: list(StepRecord.objects.values_list("pk", flat=True)),
    "donations": lambda: list(CustodyEvent.objects.values_list("donation_id", flat=True).distinct()),
    "deviations": lambda: list(Deviation.objects.values_list("pk", flat=True)),
    "qc-results": lambda: list(TestResult.objects.values_list("pk", flat=True)),
    "batch-records": lambda: list(documents.BatchRecordDocument.objects.values_list("pk", flat=True)),
}


def fuzz(operation, pool: list[int], headers: dict[str, str]) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), data=st.data())
    def run(case, data):
        if case.path_parameters and "id" in case.path_parameters and pool:
            case.path_parameters["id"] = data.draw(st.sampled_from([*pool, case.path_parameters["id"]]))
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, called in-process on the test's own database
    connection: as Django's test client does, the connection is not closed at the end
    of each request (on PostgreSQL that would close the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(make_batch, site, other_site, technician, qc_analyst, auditor):
    """A finished batch with steps, custody, a QC result, a deviation and a queued record at
    the caller's site; a patient at another site."""
    batch = make_batch()
    enter(batch, "viability", qc_analyst)
    deviation_raise_manual(actor=technician, site=site, classification="minor", title="Door open",
                           description="Grade B door open.", batch=batch)
    documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)
    Patient.objects.create(site=other_site, pseudonym="PT-9999", initials="ZZ", birth_year=1970,
                           hospital_record_number="H-9", wristband_code="W-9", weight_kg=Decimal("60.0"),
                           weight_measured_on=dt.date(2026, 1, 1))
    return batch


ROLES = [Role.COORDINATOR, Role.TECHNICIAN, Role.VERIFIER, Role.QC_ANALYST, Role.QUALIFIED_PERSON, Role.AUDITOR,
         Role.SITE_ADMIN]


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_conforms_to_the_schema_as_every_role(role, world, site, make_user, wsgi_app):
    user = make_user(f"fuzz-{role}", roles=[role], site=site)
    _, token = api_token_create(actor=user, name="schemathesis")
    headers = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=headers)
    pools = {prefix: [pk for pk in ids() if pk is not None] for prefix, ids in POOLS.items()}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 25

    failures: list[str] = []
    for operation in operations:
        prefix = re.match(r"/api/v1/([^/]+)/", operation.path)
        try:
            fuzz(operation, pools.get(prefix.group(1), []) if prefix else [], headers)
        except Exception as exc:  # noqa: BLE001  (collect every operation's failure, then report them all)
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
