"""Recomputing the audit chain, the check behind ``manage.py verify_audit_chain``.

Every event stores the canonical text its hash was made from (``AuditEvent.canonical``,
written by ``audit_record`` through ``event_seal``). An event is intact when

* its sequence number follows the one before it (no gap, nothing deleted),
* its ``prev_hash`` is the stored hash of the event before it (the link),
* the SHA-256 of its canonical text is its stored hash, and its columns (what every page,
  export and PDF shows) say exactly what that text says.

On PostgreSQL the check runs in the database and only suspects come back to Python.
The columns are guarded by a CHECK constraint (``audit_columns_match_canonical``,
migration 0004): PostgreSQL refuses, on every INSERT and UPDATE, an event whose columns
do not say what its text says (JSONB comparison; numbers compare by value). A
constraint cannot be switched off like a trigger, only dropped or replaced, so the
verifier first makes sure it is present, validated (every stored event satisfied it)
and exactly the expected one (compared with the same constraint added to a temporary
copy of the table: made once per run over several chains, ``verify_chains``). With the guard intact, one parallel scan checks every event's link
to the event before it (a join on ``seq - 1``: gaps, deleted or reordered events) and
the SHA-256 of its stored text. With the guard missing, weakened or not validated, or
with ``deep=True``, the chain is reported broken for that reason and every event's
columns are compared with its text as well (``jsonb_build_object``), which is about
ten times slower. Elsewhere (SQLite), and for events without stored text, Python
re-serialises the columns with ``carmfg.canonical.canonical_json`` — the writer's own
serialisation — and compares bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction

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
def _pg_columns_as_json(table: str = "") -> str:
    prefix = f"{table}." if table else ""
    return "jsonb_build_object(" + ", ".join(
        f"'{c}', " + (
            f"""to_char({prefix}occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
            if c == "occurred_at" else f'{prefix}"{c}"'
        )
        for c in _PAYLOAD
    ) + ")"


_PG_COLUMNS_AS_JSON = _pg_columns_as_json()

# The constraint of migration 0004 (keep the two texts identical: the verifier compares
# the live constraint with this one).
PG_GUARD = "audit_columns_match_canonical"
PG_UNIQUE_SEQUENCE = "audit_gap_free_sequence_per_chain"  # the links check relies on it
PG_GUARD_CHECK = f"canonical IS NULL OR canonical::jsonb = {_PG_COLUMNS_AS_JSON}"

# Guard intact: links and stored-text hashes in one scan that PostgreSQL can run in
# parallel workers (a hash join on seq - 1, no ordering needed).
_PG_SUSPECTS = """
SELECT e.seq FROM audit_auditevent e
LEFT JOIN audit_auditevent p ON p.chain = e.chain AND p.seq = e.seq - 1
WHERE e.chain = %(chain)s AND (
    e.prev_hash IS DISTINCT FROM (CASE WHEN e.seq = 1 THEN %(genesis)s ELSE p.hash END)
    OR e.canonical IS NULL
    OR encode(sha256(convert_to(e.canonical, 'UTF8')), 'hex') IS DISTINCT FROM e.hash
)
ORDER BY e.seq
"""
# Guard not to be trusted (or deep=True): the same, and every column against the text.
_PG_SUSPECTS_DEEP = _PG_SUSPECTS.replace(
    "OR e.canonical IS NULL", f"OR e.canonical IS NULL OR e.canonical::jsonb <> {_pg_columns_as_json('e')}",
)
# The join's hash table in memory, and the scan split over parallel workers even for one
# site's chain: the defaults are tuned for small OLTP queries and chose one process, which
# measured 1.5 s instead of 0.9 s for 200,000 events on 2 cores (2026-11-23).
_PG_SCAN_SETTINGS = [
    "SET LOCAL work_mem = '64MB'",
    "SET LOCAL parallel_setup_cost = 0",
    "SET LOCAL parallel_tuple_cost = 0",
    "SET LOCAL min_parallel_table_scan_size = 0",
]


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


class GuardUnverifiable(Exception):
    """The guard could not be compared here (e.g. a read-only standby cannot create the
    temporary table): the chain is then checked column by column, which is complete."""


@dataclass(frozen=True)
class GuardReference:
    """What the live guard is compared with: its definition as this very server prints
    it, or None when this connection cannot build it (see ``GuardUnverifiable``). It
    depends on the server, not on the data, so one run makes it once for all its chains
    (``guard_reference``); each chain still reads the live constraint in its own snapshot."""

    definition: str | None
    why_not: str = ""


def guard_reference() -> GuardReference:
    """The reference for a run over several chains (PostgreSQL)."""
    try:
        return GuardReference(definition=_expected_guard_definition())
    except GuardUnverifiable as exc:
        return GuardReference(definition=None, why_not=str(exc))


def pg_guard_problem(reference: GuardReference | None = None) -> str | None:
    """Why the column guard of migration 0004 (and the gap-free sequence it relies on)
    cannot be trusted, or None when it can. ``reference`` is made here when not given.
    Raises GuardUnverifiable when this connection cannot compare it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, contype, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'audit_auditevent'::regclass AND conname IN (%s, %s)",
            [PG_GUARD, PG_UNIQUE_SEQUENCE],
        )
        live = {name: (kind, validated, definition) for name, kind, validated, definition in cursor.fetchall()}
    if live.get(PG_UNIQUE_SEQUENCE, ("",))[0] != "u" or live[PG_UNIQUE_SEQUENCE][2] != "UNIQUE (chain, seq)":
        return (f"the database no longer keeps one event per sequence number: constraint {PG_UNIQUE_SEQUENCE} "
                "was removed or changed (every event was checked column by column instead)")
    if PG_GUARD not in live or live[PG_GUARD][0] != "c":
        return (f"the database no longer guards the audit columns: constraint {PG_GUARD} was removed "
                "(every event was checked column by column instead)")
    reference = reference or guard_reference()
    if reference.definition is None:
        raise GuardUnverifiable(reference.why_not)
    _kind, validated, definition = live[PG_GUARD]
    if definition.removesuffix(" NOT VALID") != reference.definition:
        return (f"the database's guard of the audit columns was changed (constraint {PG_GUARD}); "
                "every event was checked column by column instead")
    if not validated:
        return (f"the database's guard of the audit columns is not validated (constraint {PG_GUARD} was "
                "re-added NOT VALID, so stored events may break it); every event was checked column by column")
    return None


def _expected_guard_definition() -> str:
    """The guard's definition as this very server prints it: the same constraint on an
    empty temporary copy of the table, dropped again at once."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS pg_temp.carmfg_guard_probe")
            cursor.execute("CREATE TEMPORARY TABLE carmfg_guard_probe (LIKE audit_auditevent) ON COMMIT DROP")
            cursor.execute(f"ALTER TABLE carmfg_guard_probe ADD CONSTRAINT {PG_GUARD} CHECK ({PG_GUARD_CHECK})")
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'carmfg_guard_probe'::regclass AND conname = %s", [PG_GUARD],
            )
            expected = cursor.fetchone()[0]
            cursor.execute("DROP TABLE pg_temp.carmfg_guard_probe")
    except DatabaseError as exc:  # read-only transaction, standby, no TEMP privilege
        raise GuardUnverifiable(str(exc)) from exc
    return expected


def _pg_suspects(chain: int, *, deep: bool) -> Iterator[tuple[tuple, int, str, bool]]:
    """The events that fail a check in PostgreSQL, or have no stored text (checked here),
    each with the event before it."""
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in _PG_SCAN_SETTINGS:
            cursor.execute(setting)
        cursor.execute(_PG_SUSPECTS_DEEP if deep else _PG_SUSPECTS, {"chain": chain, "genesis": GENESIS_HASH})
        seqs = [seq for (seq,) in cursor.fetchall()]
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


def verify_chain(chain: int, *, deep: bool = False, guard: GuardReference | None = None) -> ChainReport:
    """Check one chain. On PostgreSQL the columns are compared with the sealed text event
    by event only with ``deep=True`` or when the database's guard cannot be trusted;
    everything is read in one snapshot (repeatable read), so writers may go on. ``guard``:
    the reference of a run over several chains (``verify_chains``); made here otherwise."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _verify(chain, deep=deep, guard=guard)


def verify_chains(chains: list[int], *, deep: bool = False) -> Iterator[ChainReport]:
    """Each chain's report, in order; on PostgreSQL the guard's reference is made once for
    the run (a temporary table) instead of once per chain."""
    guard = guard_reference() if chains and connection.vendor == "postgresql" else None
    for chain in chains:
        yield verify_chain(chain, deep=deep, guard=guard)


def _verify(chain: int, *, deep: bool, guard: GuardReference | None = None) -> ChainReport:
    report = ChainReport(chain=chain)
    head = ChainHead.objects.filter(chain=chain).first()
    guard_problem = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), coalesce(max(seq), 0) FROM audit_auditevent WHERE chain = %s", [chain]
            )
            report.count, report.head_seq = cursor.fetchone()
            cursor.execute("SELECT hash FROM audit_auditevent WHERE chain = %s ORDER BY seq DESC LIMIT 1", [chain])
            last = cursor.fetchone()
            report.head_hash = (last[0] or "") if last else GENESIS_HASH
        try:
            guard_problem = pg_guard_problem(guard)
            trusted = guard_problem is None
        except GuardUnverifiable:
            trusted = False
        checked = _pg_suspects(chain, deep=deep or not trusted)
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
    if report.count != report.head_seq:
        report.problems.append(
            f"{report.count} events for sequence numbers 1 to {report.head_seq}: "
            "an event was added twice or a sequence number is missing"
        )
    if head is not None and (head.seq, head.hash) != (report.head_seq, report.head_hash):
        report.problems.append(
            f"chain head says event {head.seq} ({head.hash[:12]}…) but the events end at "
            f"{report.head_seq} ({report.head_hash[:12]}…): events were removed from the end"
        )
        if report.first_broken_seq is None:
            report.first_broken_seq = report.head_seq + 1
    if guard_problem:
        report.problems.append(guard_problem)
    return report


def chains_in_use() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain FROM audit_chainhead UNION SELECT DISTINCT chain FROM audit_auditevent ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]
