"""Recording one manufacturing step, as the batch page does, against a bare insert.

``batches.services.execution.step_record`` — site permission, the technician's password
checked again (Part 11 §11.200), the batch locked, its plan loaded, limits evaluated,
the step row inserted, its audit event appended to the chain and the performer's
signature applied (with its own audit event) — against ``StepRecord.objects.create``
of a row with the same content in its own transaction, measured in the same run.

Two figures: with the password hasher the settings configure (what a technician
waits for), and with a cheap hasher, which shows what the record keeping itself costs
on top of the insert. The cost of one password check alone is given in the notes.
"""

from __future__ import annotations

import time
from decimal import Decimal

from django.contrib.auth.hashers import get_hasher
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from batches.models import StepRecord
from batches.services.execution import step_record
from bench.result import Result
from bench.world import PASSWORD, batches_in_process, world_create

GOAL_RATIO = 1.5
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


def _measure(n: int, label: str) -> Result:
    world, _ = world_create()
    # One value step per batch: every write sees a batch of the same size, as on the floor.
    warm = 2
    recorded = batches_in_process(world, n + warm)
    bare = batches_in_process(world, n + warm)
    tech, step = world.technician, world.step

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
    service_s = insert_s = 0.0
    block = 10
    for start in range(warm, n + warm, block):
        t0 = time.perf_counter()
        for batch in recorded[start:start + block]:
            service(batch)
        t1 = time.perf_counter()
        for batch in bare[start:start + block]:
            insert(batch)
        t2 = time.perf_counter()
        service_s += t1 - t0
        insert_s += t2 - t1
    value, baseline = service_s / n * 1e3, insert_s / n * 1e3
    ratio = value / baseline
    hasher = get_hasher()
    t0 = time.perf_counter()
    checks = 3
    for _ in range(checks):
        tech.check_password(PASSWORD)
    password_ms = (time.perf_counter() - t0) / checks * 1e3
    return Result(
        name=f"step write via step_record ({label}) vs bare ORM insert",
        value=round(value, 2), unit="ms/step", baseline=round(baseline, 2), ratio=round(ratio, 2),
        goal=f"ratio <= {GOAL_RATIO}", met=ratio <= GOAL_RATIO,
        notes=(f"{n} steps each; one password check with {hasher.algorithm} "
               f"({getattr(hasher, 'iterations', '-')} iterations) takes {password_ms:.1f} ms"),
    )


def run(quick: bool) -> list[Result]:
    results = [_measure(6 if quick else 30, "configured password hasher")]
    with override_settings(PASSWORD_HASHERS=[FAST_HASHER]):
        results.append(_measure(30 if quick else 200, "MD5 hasher: record keeping only"))
    return results
