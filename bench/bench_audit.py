"""Audit trail: the cost of an audited write, and how fast a chain can be verified.

1. ``audit_record`` (locks the chain head, hashes the canonical event, inserts it, moves
   the head) inside a transaction, against a bare ORM insert of the same row into the
   same table in its own transaction: the price of the hash chain per GMP write.
2. ``verify_chain`` over N events (on PostgreSQL, with the column guard of audit
   migration 0004 checked, one parallel scan in the database: links by a join on
   seq - 1 and sha256() over the stored canonical text; elsewhere
   keyset reads, canonical JSON and SHA-256 per event in Python),
   against hashing the very same canonical bytes with hashlib alone: how far the
   verification is from its floor.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from bench.result import Result, seconds
from carmfg.accounts.services import site_create, user_create
from carmfg.audit.models import Action, AuditEvent, ChainHead
from carmfg.audit.services import audit_record, event_hash, event_seal
from carmfg.audit.verification import verify_chain
from carmfg.canonical import GENESIS_HASH
from qc.management.commands.seed_scale import SeedEvent, insert_events

# Chains of their own, far from any site id, so the two benchmarks never share one.
BARE_INSERT_CHAIN = 10**12
VERIFY_CHAIN = 10**12 + 1

WRITE_GOAL_RATIO = 4.0  # audited write at most 4x a bare insert (lock + hash + head update)
VERIFY_GOAL_RATE = 200_000  # events/s: a 1,000,000-event trail verified in 5 s (issue #10)


def _changes(i: int) -> dict:
    return {
        "volume_ml": {"old": None, "new": f"{100 + i % 50}.5"},
        "cells_total": {"old": None, "new": str(1_200_000_000 + i)},
        "lot": {"old": None, "new": f"LOT-{i % 97:04d}"},
    }


def _actors():
    suffix = uuid.uuid4().hex[:6]
    site = site_create(
        actor=None, code=f"b{suffix}", name="Benchmark unit", time_zone="UTC",
        facility_identification_number="B0001",
    )
    user = user_create(
        actor=None, username=f"bench{suffix}", full_name="Bench Technician",
        email="bench@bench.invalid", password=uuid.uuid4().hex,
    )
    return site, user


def _each(fn: Callable[[int], None], ids: range) -> None:
    for i in ids:
        fn(i)


def bench_audit_write(n: int, site, user) -> Result:
    bare_seq = iter(range(1, 10**9))

    def audited(i: int) -> None:
        with transaction.atomic():
            audit_record(
                actor=user, action=Action.UPDATE, site=site, object_type="batches.steprecord",
                object_id=str(i), object_repr=f"step {i}", changes=_changes(i), reason="bench",
            )

    def bare(i: int) -> None:
        with transaction.atomic():
            AuditEvent.objects.create(
                chain=BARE_INSERT_CHAIN, seq=next(bare_seq), occurred_at=timezone.now(), actor=user,
                actor_username=user.username, actor_name=user.get_full_name(), site=site,
                action=Action.UPDATE, object_type="batches.steprecord", object_id=str(i),
                object_repr=f"step {i}", root_type="batches.steprecord", root_id=str(i),
                changes=_changes(i), reason="bench", prev_hash=GENESIS_HASH, hash=uuid.uuid4().hex * 2,
            )

    for i in range(20):  # warm-up: connections, caches, first-row paths
        audited(i)
        bare(i)
    # Alternate in blocks so that drift of a shared machine hits both sides alike.
    block = 50
    audited_s = bare_s = 0.0
    for start in range(0, n, block):
        ids = range(start, min(start + block, n))
        audited_s += seconds(partial(_each, audited, ids))
        bare_s += seconds(partial(_each, bare, ids))
    value = audited_s / n * 1e6
    baseline = bare_s / n * 1e6
    ratio = value / baseline
    return Result(
        name="audit_record in a transaction vs bare ORM insert",
        value=round(value, 1), unit="µs/write", baseline=round(baseline, 1), ratio=round(ratio, 2),
        goal=f"ratio <= {WRITE_GOAL_RATIO}", met=ratio <= WRITE_GOAL_RATIO, notes=f"{n} writes each",
    )


def _build_chain(chain: int, n: int, user) -> list[bytes]:
    """A valid chain of n events written straight to the table (setting it up through
    audit_record would take minutes and is not what is measured): each sealed by
    ``event_seal`` as ``audit_record`` seals it, written in blocks by seed_scale's
    ``insert_events`` (COPY on PostgreSQL). Returns each event's canonical bytes, the
    input of its hash."""
    blobs = []
    prev = GENESIS_HASH
    now = timezone.now()
    block: list[SeedEvent] = []
    for seq in range(1, n + 1):
        # Duck-typed like seed_scale's: AuditEvent's own hash_payload, no model instance.
        event: Any = SeedEvent(
            chain=chain, seq=seq, occurred_at=now, actor_id=user.pk, actor_username=user.username,
            actor_name=user.get_full_name(), site_id=None, action=Action.UPDATE,
            object_type="batches.steprecord", object_id=str(seq), object_repr=f"step {seq}",
            root_type="batches.batch", root_id=str(seq // 100), changes=_changes(seq),
            reason="", request_id=uuid.uuid4().hex, prev_hash=prev,
        )
        event_seal(event)  # the writer's own sealing: canonical text and hash
        blob = str(event.canonical).encode("utf-8")
        assert event.hash == hashlib.sha256(blob).hexdigest()
        if seq % 10_000 == 1:
            assert event.hash == event_hash(event)
        blobs.append(blob)
        prev = event.hash
        block.append(event)
        if len(block) == 5000:
            insert_events(block)
            block = []
    insert_events(block)
    ChainHead.objects.update_or_create(chain=chain, defaults={"seq": n, "hash": prev})
    return blobs


def _hash_all(blobs: list[bytes]) -> None:
    sha256 = hashlib.sha256
    for blob in blobs:
        sha256(blob).hexdigest()


def bench_chain_verify(n: int, repeat: int, user) -> Result:
    chain = VERIFY_CHAIN
    blobs = _build_chain(chain, n, user)
    verify_chain(chain)  # warm-up: the table is in the page cache for every run
    best = float("inf")
    for _ in range(repeat):
        report = None

        def run() -> None:
            nonlocal report
            report = verify_chain(chain)

        best = min(best, seconds(run))
        assert report is not None
        assert report.ok, report.problems
        assert report.count == n

    hash_best = min(seconds(partial(_hash_all, blobs)) for _ in range(max(repeat, 3)))
    value = n / best
    baseline = n / hash_best
    ratio = baseline / value
    return Result(
        name=f"verify_chain over {n:,} events vs hashlib on the same bytes",
        value=round(value), unit="events/s", baseline=round(baseline), ratio=round(ratio, 1),
        goal=f">= {VERIFY_GOAL_RATE:,} events/s", met=value >= VERIFY_GOAL_RATE,
        notes=f"best of {repeat}; {best:.2f} s for the chain",
    )


def run(quick: bool) -> list[Result]:
    site, user = _actors()
    return [
        bench_audit_write(300 if quick else 2000, site, user),
        bench_chain_verify(20_000 if quick else 1_000_000, repeat=3 if quick else 2, user=user),
    ]
