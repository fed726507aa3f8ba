"""Recomputing the audit chain, the check behind ``manage.py verify_audit_chain``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection

from carmfg.audit.models import AuditEvent, ChainHead
from carmfg.canonical import GENESIS_HASH, canonical_json


@dataclass
class ChainReport:
    chain: int
    count: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)
    first_broken_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


_FIELDS = [
    "chain", "seq", "occurred_at", "actor_id", "actor_username", "actor_name", "site_id", "action",
    "object_type", "object_id", "object_repr", "root_type", "root_id", "changes", "reason",
    "request_id", "prev_hash", "hash",
]


def _rows(chain: int, batch_size: int = 5000) -> Iterator[tuple]:
    # Keyset pagination keeps memory flat over millions of events.
    last = 0
    while True:
        rows = list(
            AuditEvent.objects.filter(chain=chain, seq__gt=last).order_by("seq").values_list(*_FIELDS)[:batch_size]
        )
        if not rows:
            return
        yield from rows
        last = rows[-1][1]


def verify_chain(chain: int) -> ChainReport:
    report = ChainReport(chain=chain)
    expected_prev = GENESIS_HASH
    expected_seq = 1
    sha256 = hashlib.sha256
    for row in _rows(chain):
        payload = dict(zip(_FIELDS[:-1], row[:-1], strict=True))
        stored_hash = row[-1]
        seq = payload["seq"]
        if isinstance(payload["changes"], str):  # some backends hand JSON back as text
            payload["changes"] = json.loads(payload["changes"])
        problem = None
        if seq != expected_seq:
            problem = f"event {seq}: expected sequence number {expected_seq} (a gap or a deleted event)"
        elif payload["prev_hash"] != expected_prev:
            problem = f"event {seq}: previous-hash link broken (an event before it was changed or removed)"
        else:
            # The same serialisation the writer hashed (carmfg.canonical), never a copy of it.
            computed = sha256(canonical_json(payload)).hexdigest()
            if computed != stored_hash:
                problem = f"event {seq}: content does not match its hash (the event was altered)"
        if problem and report.first_broken_seq is None:
            report.first_broken_seq = seq
            report.problems.append(problem)
        report.count += 1
        expected_prev = stored_hash
        expected_seq = seq + 1
    report.head_seq = expected_seq - 1
    report.head_hash = expected_prev
    head = ChainHead.objects.filter(chain=chain).first()
    if head is not None and (head.seq, head.hash) != (report.head_seq, report.head_hash):
        report.problems.append(
            f"chain head says event {head.seq} ({head.hash[:12]}…) but the events end at "
            f"{report.head_seq} ({report.head_hash[:12]}…): events were removed from the end"
        )
        if report.first_broken_seq is None:
            report.first_broken_seq = report.head_seq + 1
    return report


def chains_in_use() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain FROM audit_chainhead UNION SELECT DISTINCT chain FROM audit_auditevent ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]
