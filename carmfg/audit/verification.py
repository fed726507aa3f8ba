"""Recomputing the audit chain, the check behind ``manage.py verify_audit_chain``.

Every event stores the canonical text its hash was made from (``AuditEvent.canonical``,
written by ``audit_record`` through ``event_seal``). An event is intact when

* its sequence number follows the one before it (no gap, nothing deleted),
* its ``prev_hash`` is the stored hash of the event before it (the link),
* the SHA-256 of its canonical text is its stored hash, and its columns (what every page,
  export and PDF shows) say exactly what that text says.

On PostgreSQL the whole check runs in the database: one ordered scan of the chain with
``lag()`` for the links, ``sha256()`` over the stored text and a JSONB comparison of the
text with the columns (``jsonb_build_object``; numbers compare by value), returning only
the events that fail (or that predate the ``canonical`` column). Elsewhere (SQLite), and for
events without stored text, Python re-serialises the columns with
``carmfg.canonical.canonical_json`` — the writer's own serialisation — and compares bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection

from carmfg.audit.models import ChainHead
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


# The columns of AuditEvent.hash_payload(), in its order (database column names).
_PAYLOAD = [
    "chain", "seq", "occurred_at", "actor_id", "actor_username", "actor_name", "site_id", "action",
    "object_type", "object_id", "object_repr", "root_type", "root_id", "changes", "reason",
    "request_id", "prev_hash",
]
_SELECT = ", ".join(f'"{c}"' for c in [*_PAYLOAD, "hash", "canonical"])
_SEQ, _PREV, _HASH, _CANONICAL = 1, 16, 17, 18

# What the canonical text must say, built from the columns (PostgreSQL). Keep in step with
# AuditEvent.hash_payload() and carmfg.canonical.to_jsonable (datetimes: UTC, microseconds).
_PG_COLUMNS_AS_JSON = "jsonb_build_object(" + ", ".join(
    f"'{c}', " + (
        """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
        if c == "occurred_at" else f'"{c}"'
    )
    for c in _PAYLOAD
) + ")"

# Two scans, so that the expensive one can run in parallel workers: the links need the
# events in order (a window), the content check does not.
_PG_BROKEN_LINKS = """
SELECT seq FROM (
    SELECT seq, prev_hash, lag(seq, 1, 0::bigint) OVER w AS before_seq, lag(hash, 1, %(genesis)s::varchar) OVER w AS before_hash
    FROM audit_auditevent WHERE chain = %(chain)s
    WINDOW w AS (ORDER BY seq)
) AS e
WHERE seq <> before_seq + 1 OR prev_hash <> before_hash
ORDER BY seq LIMIT 1
"""
_PG_NOT_SEALED_OR_ALTERED = f"""
SELECT seq FROM audit_auditevent
WHERE chain = %(chain)s AND seq <= %(upto)s AND (
    canonical IS NULL
    OR encode(sha256(convert_to(canonical, 'UTF8')), 'hex') <> hash
    OR canonical::jsonb <> {_PG_COLUMNS_AS_JSON}
)
ORDER BY seq
"""  # noqa: S608 (built from constants only)


def _payload(row: tuple) -> dict:
    payload = dict(zip(_PAYLOAD, row[:_HASH], strict=True))
    occurred = payload["occurred_at"]
    if isinstance(occurred, str):  # SQLite hands datetimes back as text (UTC)
        occurred = dt.datetime.fromisoformat(occurred)
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=dt.UTC)
    payload["occurred_at"] = occurred
    if isinstance(payload["changes"], str):  # JSON comes back as text from a plain cursor
        payload["changes"] = json.loads(payload["changes"])
    return payload


def _content_intact(row: tuple) -> bool:
    """Re-serialise the columns the writer's way; the bytes must hash to the stored hash
    and, where the event stores its canonical text, be that text."""
    blob = canonical_json(_payload(row))
    if hashlib.sha256(blob).hexdigest() != row[_HASH]:
        return False
    return row[_CANONICAL] is None or row[_CANONICAL].encode("utf-8") == blob


def _python_rows(chain: int, page: int = 5000) -> Iterator[tuple[tuple, int, str, bool]]:
    """Every event of the chain with (row, seq before, hash before, content intact)."""
    before_seq, before_hash = 0, GENESIS_HASH
    sql = f"SELECT {_SELECT} FROM audit_auditevent WHERE chain = %s AND seq > %s ORDER BY seq LIMIT %s"  # noqa: S608
    with connection.cursor() as cursor:
        while True:  # keyset pages keep memory flat over millions of events
            cursor.execute(sql, [chain, before_seq, page])
            rows = cursor.fetchall()
            if not rows:
                return
            for row in rows:
                yield row, before_seq, before_hash, _content_intact(row)
                before_seq, before_hash = row[_SEQ], row[_HASH]


def _pg_suspects(chain: int) -> Iterator[tuple[tuple, int, str, bool]]:
    """Only the events that fail a check in PostgreSQL, or have no stored text (checked
    here), up to the first broken link; each with the event before it."""
    params: dict[str, int | str] = {"chain": chain, "genesis": GENESIS_HASH}
    with connection.cursor() as cursor:
        cursor.execute(_PG_BROKEN_LINKS, params)
        broken = cursor.fetchone()
    # Past the first broken link nothing more is reported, so the content scan stops there.
    params["upto"] = broken[0] if broken else 2**63 - 1
    with connection.cursor() as cursor:
        cursor.execute(_PG_NOT_SEALED_OR_ALTERED, params)
        seqs = [seq for (seq,) in cursor.fetchall()]
    if broken and broken[0] not in seqs:
        seqs.append(broken[0])
    for start in range(0, len(seqs), 2000):
        yield from _pg_rows(chain, seqs[start:start + 2000])


def _pg_rows(chain: int, seqs: list[int]) -> Iterator[tuple[tuple, int, str, bool]]:
    if not seqs:
        return
    wanted = set(seqs) | {seq - 1 for seq in seqs}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_SELECT} FROM audit_auditevent WHERE chain = %s AND seq = ANY(%s) ORDER BY seq",  # noqa: S608
                       [chain, sorted(wanted)])
        rows = {row[_SEQ]: row for row in cursor.fetchall()}
    for seq in seqs:
        row = rows[seq]
        if seq - 1 in rows:
            before_seq, before_hash = seq - 1, rows[seq - 1][_HASH]
        else:  # a gap before it: the event stored before it
            before_seq, before_hash = _previous(chain, seq)
        yield row, before_seq, before_hash, _content_intact(row)


def _previous(chain: int, seq: int) -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM audit_auditevent WHERE chain = %s AND seq < %s ORDER BY seq DESC LIMIT 1",
                       [chain, seq])
        found = cursor.fetchone()
    return (found[0], found[1]) if found else (0, GENESIS_HASH)


def _problem(row: tuple, before_seq: int, before_hash: str, intact: bool) -> str | None:
    seq = row[_SEQ]
    if seq != before_seq + 1:
        return f"event {seq}: expected sequence number {before_seq + 1} (a gap or a deleted event)"
    if row[_PREV] != before_hash:
        return f"event {seq}: previous-hash link broken (an event before it was changed or removed)"
    if not intact:
        return f"event {seq}: content does not match its hash (the event was altered)"
    return None


def verify_chain(chain: int) -> ChainReport:
    report = ChainReport(chain=chain)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), coalesce(max(seq), 0) FROM audit_auditevent WHERE chain = %s", [chain]
            )
            report.count, report.head_seq = cursor.fetchone()
            cursor.execute("SELECT hash FROM audit_auditevent WHERE chain = %s ORDER BY seq DESC LIMIT 1", [chain])
            last = cursor.fetchone()
            report.head_hash = last[0] if last else GENESIS_HASH
        checked = _pg_suspects(chain)
    else:
        checked = _python_rows(chain)
    for row, before_seq, before_hash, intact in checked:
        if connection.vendor != "postgresql":
            report.count += 1
            report.head_seq, report.head_hash = row[_SEQ], row[_HASH]
        problem = _problem(row, before_seq, before_hash, intact)
        if problem and report.first_broken_seq is None:
            report.first_broken_seq = row[_SEQ]
            report.problems.append(problem)
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
