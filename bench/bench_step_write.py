"""Recording one manufacturing step, as the batch page does, against a bare insert.

``batches.services.execution.step_record`` — site permission, the technician's password
checked again (Part 11 §11.200), the batch locked, its plan loaded, limits evaluated,
the step row inserted, its audit event appended to the chain and the performer's
signature applied (with its own audit event) — against ``StepRecord.objects.create``
of a row with the same content in its own transaction, measured in the same run.

A second baseline, measured in the same loop, is what the goal really compares with:
the same rows the service writes — the step record, its CREATE audit event, the
performer's signature and its SIGN audit event, with the same content and hashes —
inserted bare with the ORM in one transaction, without any of the rules (no permission,
password, batch lock, plan, limits, chain-head lock or signature checks).

Each comparison twice: with the password hasher the settings configure (what a
technician waits for), and with a cheap hasher, which shows what the record keeping
itself costs. The cost of one password check alone is given in the notes.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django.contrib.auth.hashers import get_hasher
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from batches.models import StepRecord
from batches.services.execution import step_record
from bench.result import Result
from bench.world import PASSWORD, batches_in_process, world_create
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import event_seal, model_label
from carmfg.canonical import GENESIS_HASH, content_hash, to_jsonable
from carmfg.esign.models import Meaning, Signature

GOAL_RATIO = 1.5
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


class _BareRows:
    """The rows ``step_record`` writes, written bare: same tables, content and hashes.
    The two audit events go to a chain of their own (no chain head to lock); the
    sequence and previous hash are kept in memory."""

    def __init__(self, world) -> None:
        self.world = world
        self.chain = 10**12 + world.site.pk
        self.seq, self.prev = 0, GENESIS_HASH
        self.step_type = ContentType.objects.get_for_model(StepRecord)

    def _event(self, action: str, record: StepRecord, batch, changes: dict) -> AuditEvent:
        tech = self.world.technician
        self.seq += 1
        event = AuditEvent(
            chain=self.chain, seq=self.seq, occurred_at=timezone.now(), actor=tech, actor_username=tech.username,
            actor_name=tech.get_full_name(), site=self.world.site, action=action, object_type=model_label(record),
            object_id=str(record.pk), object_repr=f"{batch.number} · {self.world.step.title}",
            root_type=model_label(batch), root_id=str(batch.pk), changes=to_jsonable(changes), reason="",
            request_id="", prev_hash=self.prev)
        event_seal(event)
        event.save(force_insert=True)
        self.prev = event.hash
        return event

    def write(self, batch) -> None:
        world, tech = self.world, self.world.technician
        with transaction.atomic():
            record = StepRecord.objects.create(
                site=world.site, batch=batch, definition=world.step, occurrence=1, value=Decimal("92.500000"),
                unit="%", limit_result="within", performed_by=tech, performed_at=timezone.now())
            content = record.signable_content()
            self._event(Action.CREATE, record, batch, content)
            digest = content_hash(content)
            sign = self._event(Action.SIGN, record, batch, {"meaning": Meaning.PERFORMED, "content_hash": digest})
            Signature.objects.create(
                content_type=self.step_type, object_id=str(record.pk), site=world.site, meaning=Meaning.PERFORMED,
                signer=tech, signer_name=tech.get_full_name(), signed_at=sign.occurred_at, content_hash=digest,
                audit_event=sign)


def _measure(n: int, label: str) -> list[Result]:
    world, _ = world_create()
    # One value step per batch: every write sees a batch of the same size, as on the floor.
    warm = 2
    recorded = batches_in_process(world, n + warm)
    bare = batches_in_process(world, n + warm)
    bare_rows = batches_in_process(world, n + warm)
    tech, step = world.technician, world.step
    rows = _BareRows(world)

    def service(batch) -> None:
        step_record(actor=tech, batch=batch, definition=step, password=PASSWORD, expected_occurrence=1,
                    value="92.5", comment="")

    def insert(batch) -> None:
        with transaction.atomic():
            StepRecord.objects.create(site=world.site, batch=batch, definition=step, occurrence=1,
                                      value=Decimal("92.5"), unit="%", limit_result="none", performed_by=tech,
                                      performed_at=timezone.now())

    for batch in recorded[:warm]:  # warm-up
        service(batch)
    for batch in bare[:warm]:
        insert(batch)
    for batch in bare_rows[:warm]:
        rows.write(batch)
    service_s = insert_s = rows_s = 0.0
    block = 10
    for start in range(warm, n + warm, block):
        t0 = time.perf_counter()
        for batch in recorded[start:start + block]:
            service(batch)
        t1 = time.perf_counter()
        for batch in bare[start:start + block]:
            insert(batch)
        t2 = time.perf_counter()
        for batch in bare_rows[start:start + block]:
            rows.write(batch)
        t3 = time.perf_counter()
        service_s += t1 - t0
        insert_s += t2 - t1
        rows_s += t3 - t2
    value, baseline, rows_ms = service_s / n * 1e3, insert_s / n * 1e3, rows_s / n * 1e3
    hasher = get_hasher()
    t0 = time.perf_counter()
    checks = 3
    for _ in range(checks):
        tech.check_password(PASSWORD)
    password_ms = (time.perf_counter() - t0) / checks * 1e3
    notes = (f"{n} steps each, alternated in blocks of {block}; one password check with {hasher.algorithm} "
             f"({getattr(hasher, 'iterations', '-')} iterations) takes {password_ms:.1f} ms")
    return [
        Result(
            name=f"step write via step_record ({label}) vs bare ORM insert",
            value=round(value, 2), unit="ms/step", baseline=round(baseline, 2), ratio=round(value / baseline, 2),
            goal=f"ratio <= {GOAL_RATIO}", met=value / baseline <= GOAL_RATIO, notes=notes,
        ),
        Result(
            name=(f"step write via step_record ({label}) vs the same 4 rows bare (step record, 2 audit "
                  "events, signature; ORM, one transaction, no rules)"),
            value=round(value, 2), unit="ms/step", baseline=round(rows_ms, 2), ratio=round(value / rows_ms, 2),
            goal=f"ratio <= {GOAL_RATIO}", met=value / rows_ms <= GOAL_RATIO,
            notes=notes + f"; {value - rows_ms:.1f} ms/step is the rules (password check included)",
        ),
    ]


def run(quick: bool) -> list[Result]:
    results = _measure(6 if quick else 30, "configured password hasher")
    with override_settings(PASSWORD_HASHERS=[FAST_HASHER]):
        results += _measure(30 if quick else 200, "MD5 hasher: record keeping only")
    return results
