"""Faults while steps are saved (PostgreSQL, real connections):

- the database connection dies in the middle of a technician's save: the page says
  "not saved, try again" (503, not 500), nothing of the save is left (no step record,
  no signature, no orphan audit event), and the same save then works;
- eight people write to one batch at the same moment: no lost update, one signature
  per step and meaning, and the site's audit chain stays valid.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest
from django.db import close_old_connections, connection

from batches.models import StepCorrection, StepRecord
from batches.progress import load_plan
from batches.services.execution import batch_start, step_correct, step_record, step_verify
from batches.services.mbr import mbr_approve, mbr_load, mbr_make_effective
from carmfg.accounts.models import Role
from carmfg.audit.models import AuditEvent
from carmfg.audit.verification import verify_chain
from carmfg.esign.models import Meaning, Signature
from carmfg.exceptions import GMPError
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 8


@pytest.fixture
def batch(product, site_admin, qp, technician, make_batch):
    """A started batch of a small recipe: a verified instruction, a value, a repeatable count."""
    mbr = mbr_load(actor=site_admin, product=product, data={"title": "Fault tests", "stages": [{
        "code": "s", "name": "Stage", "steps": [
            {"code": "clearance", "kind": "instruction", "title": "Line clearance", "requires_verification": True},
            {"code": "viability", "kind": "value", "title": "Viability", "unit": "%", "decimal_places": 1,
             "action_min": "50", "action_max": "100"},
            {"code": "bag_check", "kind": "instruction", "title": "Bag checked", "repeatable": True,
             "allow_out_of_order": True}]}]})
    mbr_approve(actor=site_admin, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision)
    mbr_approve(actor=qp, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision)
    mbr_make_effective(actor=qp, mbr=mbr)
    batch = make_batch(product, mbr=mbr)
    return batch_start(actor=technician, batch=batch, expected_version=batch.version)


def _definition(batch, code):
    return load_plan(batch).by_code[code].definition


def _signatures(record, meaning=None):
    found = Signature.objects.filter(object_id=str(record.pk), content_type__model="steprecord", voided_at__isnull=True)
    return found.filter(meaning=meaning) if meaning else found


# --- the connection dies during a save --------------------------------------------------------


class BackendKiller:
    """Kills this connection's PostgreSQL backend from another connection just before a
    statement matching ``marker`` runs: the server ends the session mid-transaction,
    as when it restarts while the technician saves."""

    def __init__(self, marker: str):
        self.marker = marker
        self.fired = 0

    def __call__(self, execute, sql, params, many, context):
        if self.fired == 0 and self.marker in sql:
            self.fired += 1
            pid = connection.connection.info.backend_pid
            settings = connection.settings_dict
            with psycopg.connect(dbname=settings["NAME"], user=settings["USER"] or None,
                                 password=settings["PASSWORD"] or None, host=settings["HOST"] or None,
                                 port=settings["PORT"] or None, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        return execute(sql, params, many, context)


def test_a_save_cut_off_by_the_database_says_not_saved_try_again_and_leaves_nothing(
    batch, technician, client_for
):
    client = client_for(technician)
    url = f"/batches/{batch.pk}/steps/{_definition(batch, 'clearance').pk}/record/"
    events_before = AuditEvent.objects.count()
    # The step row is already inserted in the transaction when the audit event is written.
    killer = BackendKiller('INSERT INTO "audit_auditevent"')

    with connection.execute_wrapper(killer):
        response = client.post(url, {"password": PASSWORD, "expected_occurrence": 1})

    assert killer.fired == 1
    assert response.status_code == 503
    html = response.content.decode()
    assert "Not saved" in html
    assert "try again" in html
    assert not StepRecord.objects.filter(batch=batch).exists()
    assert AuditEvent.objects.count() == events_before
    assert not Signature.objects.filter(content_type__model="steprecord").exists()

    again = client.post(url, {"password": PASSWORD, "expected_occurrence": 1})

    assert again.status_code == 302
    [record] = StepRecord.objects.filter(batch=batch)
    assert _signatures(record, Meaning.PERFORMED).count() == 1
    assert AuditEvent.objects.filter(object_type="batches.steprecord", object_id=str(record.pk)).count() >= 1
    report = verify_chain(batch.site_id)
    assert report.ok, report.problems


# --- eight writers at once ---------------------------------------------------------------------


def _all_at_once(people, action: Callable) -> tuple[list, list[GMPError]]:
    """Run ``action(person, n)`` for each person in its own thread and connection, released together."""
    start = threading.Barrier(len(people))
    results: list = []
    refusals: list[GMPError] = []
    crashes: list[BaseException] = []

    def run(person, n):
        try:
            start.wait(timeout=30)
            results.append(action(person, n))
        except GMPError as exc:
            refusals.append(exc)
        except BaseException as exc:  # reported to the test below
            crashes.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(person, n)) for n, person in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not crashes, crashes  # a refusal is a domain error with a message, never a crash
    return results, refusals


@pytest.fixture
def crew(make_user, site):
    return [make_user(f"crew{n}", roles=[Role.TECHNICIAN, Role.VERIFIER], site=site) for n in range(WRITERS)]


def test_eight_writers_on_one_batch_lose_no_update_and_sign_each_step_once(batch, crew):
    clearance = _definition(batch, "clearance")

    # All record the same step: one record, one performer signature, the others told.
    recorded, refused = _all_at_once(crew, lambda person, n: step_record(
        actor=person, batch=batch, definition=clearance, password=PASSWORD, expected_occurrence=1))
    assert len(recorded) == 1
    assert len(refused) == WRITERS - 1
    [record] = StepRecord.objects.filter(batch=batch, definition=clearance)
    assert _signatures(record, Meaning.PERFORMED).count() == 1

    # All (but the performer) verify it: one verification signature.
    others = [p for p in crew if p != record.performed_by]
    verified, refused = _all_at_once(others, lambda person, n: step_verify(
        actor=person, record=record, password=PASSWORD, expected_version=record.version))
    assert len(verified) == 1
    assert len(refused) == len(others) - 1
    assert _signatures(record, Meaning.VERIFIED).count() == 1

    # All correct the same value from the same version: exactly one correction wins,
    # and the stored value is the winner's (no update silently overwritten).
    viability = _definition(batch, "viability")
    value = step_record(actor=crew[0], batch=batch, definition=viability, password=PASSWORD, expected_occurrence=1,
                        value="71.0", unit="%")
    corrected, refused = _all_at_once(crew, lambda person, n: step_correct(
        actor=person, record=value, password=PASSWORD, reason=f"typing error ({n})", expected_version=value.version,
        value=f"{80 + n}.0", unit="%"))
    assert len(corrected) == 1
    assert len(refused) == WRITERS - 1
    value.refresh_from_db()
    [winner] = corrected
    assert value.version == 2
    assert value.value == winner.value
    [correction] = StepCorrection.objects.filter(step_record=value)
    assert Decimal(correction.new_content["value"]) == winner.value
    performed = _signatures(value, Meaning.PERFORMED)
    assert [s.signer_id for s in performed] == [correction.corrected_by_id]

    # All add an occurrence of a repeatable step, retrying when someone was faster:
    # every one of the eight is kept, numbered 1..8.
    bag_check = _definition(batch, "bag_check")

    def add_occurrence(person, n):
        for _attempt in range(WRITERS * 2):
            occurrence = load_plan(batch).by_pk[bag_check.pk].count + 1
            try:
                return step_record(actor=person, batch=batch, definition=bag_check, password=PASSWORD,
                                   expected_occurrence=occurrence)
            except GMPError:
                continue
        raise AssertionError(f"writer {n} never got its occurrence recorded")

    added, refused = _all_at_once(crew, add_occurrence)
    assert len(added) == WRITERS
    assert not refused
    occurrences = StepRecord.objects.filter(batch=batch, definition=bag_check)
    assert sorted(occurrences.values_list("occurrence", flat=True)) == list(range(1, WRITERS + 1))
    assert Counter(occurrences.values_list("performed_by", flat=True)) == Counter(p.pk for p in crew)

    # One active signature per record and meaning, over the whole batch.
    per_meaning = Counter(
        Signature.objects.filter(content_type__model="steprecord", voided_at__isnull=True)
        .values_list("object_id", "meaning")
    )
    assert per_meaning
    assert set(per_meaning.values()) == {1}
    report = verify_chain(batch.site_id)
    assert report.ok, report.problems
