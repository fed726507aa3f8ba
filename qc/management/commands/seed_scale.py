"""Fill a test database with hospital-network scale data, for benchmarks and load tests.

    manage.py seed_scale --batches 10000 --audit-events 1000000     (20 sites, minutes on PostgreSQL)
    manage.py seed_scale --batches 40 --audit-events 2000 --sites 2  (what the tests use)

Sites, people and roles go through the services (so memberships and object permissions
are real); everything else is written in bulk: per site a product, an effective
specification and master batch record, and batches spread over every state with their
patient, order and donation, step records with performer (and verifier) signatures, QC
results, deviations and certifications. The audit trail gets the asked number of events
spread over the sites' chains — the creation, signing and release events of those
records first, then routine events (exports, logins, views) — each sealed by
``carmfg.audit.services.event_seal`` exactly as ``audit_record`` seals it, so
``verify_audit_chain`` finds every chain intact.

On PostgreSQL the bulk rows go in with ``COPY`` (primary keys taken from the tables' own
sequences first; every value converted by its field's ``get_db_prep_save``, as an INSERT
converts it), and audit events are never model instances: a slotted row object that
borrows ``AuditEvent.hash_payload`` is sealed by ``event_seal`` and copied. Elsewhere
(SQLite, the tests) records go through ``bulk_create`` and events through one prepared
INSERT (``executemany``).

The records are not made through the GMP services (that would take days at this size),
so the command refuses to run with ``CARMFG_ENV=production``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.db.models import Model
from django.utils import timezone

from batches.isbt128 import next_din
from batches.models import (
    Batch,
    BatchState,
    Deviation,
    DeviationClass,
    DeviationSource,
    DeviationStatus,
    Donation,
    LimitResult,
    MasterBatchRecord,
    MbrStatus,
    Order,
    Patient,
    Product,
    RegulatoryPathway,
    StageDefinition,
    StepDefinition,
    StepRecord,
)
from carmfg.accounts.models import Role, Site
from carmfg.accounts.services import membership_set_roles, site_create
from carmfg.audit.models import Action, AuditEvent, ChainHead
from carmfg.audit.services import event_seal
from carmfg.esign.models import Meaning, Signature
from qc.models import (
    BatchSpecification,
    Certification,
    CertificationDecision,
    CertificationKind,
    ResultEvaluation,
    ResultStatus,
    Specification,
    SpecStatus,
    TestDefinition,
    TestResult,
)
from qc.spec_data import ARI_0001_LIKE, definition_rows

CHUNK = 5000
# The columns of an audit event that a seeded event sets (its id comes from the table's sequence).
AUDIT_COLUMNS = ("chain", "seq", "occurred_at", "actor_id", "actor_username", "actor_name", "site_id", "action",
                 "object_type", "object_id", "object_repr", "root_type", "root_id", "changes", "reason", "request_id",
                 "prev_hash", "hash", "canonical")

# Share of batches per state: most history is released; a working day has some in flight.
STATE_WEIGHTS = [
    (BatchState.PLANNED, 8), (BatchState.IN_PROCESS, 12), (BatchState.ON_HOLD, 3),
    (BatchState.AWAITING_RELEASE, 10), (BatchState.PROVISIONALLY_RELEASED, 7), (BatchState.RELEASED, 52),
    (BatchState.REJECTED, 4), (BatchState.CANCELLED, 4),
]
STARTED = {s for s, _ in STATE_WEIGHTS} - {BatchState.PLANNED, BatchState.CANCELLED}
COMPLETE = STARTED - {BatchState.IN_PROCESS, BatchState.ON_HOLD}
# How many days ago batches in each state were created (older ones: up to ten years of history).
AGE_DAYS = {
    BatchState.PLANNED: (0, 2), BatchState.IN_PROCESS: (2, 8), BatchState.ON_HOLD: (2, 8),
    BatchState.AWAITING_RELEASE: (10, 14), BatchState.PROVISIONALLY_RELEASED: (12, 25),
}
CERTIFIED = {BatchState.PROVISIONALLY_RELEASED, BatchState.RELEASED, BatchState.REJECTED}

# A compact recipe: (stage, [(code, title, kind, unit, action limits, needs verification)]).
RECIPE: list[tuple[str, str, list[tuple[str, str, str, str, tuple[Decimal, Decimal] | None, bool]]]] = [
    ("activation", "Selection & activation", [
        ("line_clearance", "Line clearance", "instruction", "", None, False),
        ("cd3_count", "CD3+ cells at seeding", "value", "×10⁶", (Decimal("100"), Decimal("5000")), False),
        ("viability_d0", "Viability at seeding", "value", "%", (Decimal("70"), Decimal("100")), True),
    ]),
    ("transduction", "Transduction", [
        ("vector_added", "Vector added", "instruction", "", None, True),
        ("moi", "Multiplicity of infection", "value", "", (Decimal("1"), Decimal("10")), False),
    ]),
    ("expansion", "Expansion", [
        ("count_d5", "Viable cells day 5", "value", "×10⁶", (Decimal("50"), Decimal("20000")), False),
        ("count_d8", "Viable cells day 8", "value", "×10⁶", (Decimal("100"), Decimal("50000")), False),
    ]),
    ("harvest", "Harvest & formulation", [
        ("harvest_volume", "Harvest volume", "value", "mL", (Decimal("20"), Decimal("500")), False),
        ("final_viability", "Final viability", "value", "%", (Decimal("70"), Decimal("100")), True),
        ("bag_sealed", "Final bag sealed and labelled", "instruction", "", None, True),
    ]),
]


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    it = iter(items)
    while block := list(itertools.islice(it, size)):
        yield block


class SeedEvent:
    """An audit event's columns without a model instance (a million AuditEvent instances
    cost minutes). ``hash_payload`` is AuditEvent's own, so ``event_seal`` seals it
    exactly as it seals an AuditEvent."""

    __slots__ = ("id", *AUDIT_COLUMNS)
    hash_payload = AuditEvent.hash_payload
    id: int  # 0 until written
    chain: int
    seq: int
    occurred_at: dt.datetime
    actor_id: int | None
    site_id: int | None
    changes: dict[str, Any]
    prev_hash: str
    hash: str

    def __init__(self, **values: Any) -> None:
        self.id = 0
        for name in AUDIT_COLUMNS:
            setattr(self, name, values.get(name, ""))


def _next_ids(model: type[Model], n: int) -> list[int]:
    """``n`` primary keys from the table's own sequence (PostgreSQL), in one round trip."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, n])
        return [row[0] for row in cursor.fetchall()]


def _copy(model: type[Model], columns: list[str], rows: Iterable[list[Any]]) -> None:
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def insert_objects(model: type[Model], objs: list[Any]) -> None:
    """What ``bulk_create(objs)`` does here: rows inserted, primary keys set on the
    objects, no signals. On PostgreSQL by COPY."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=CHUNK)
        return
    db = connections[connection.alias]  # not the thread-local proxy: it is asked once per value
    fields = list(model._meta.concrete_fields)
    pk = model._meta.pk
    for block in chunks(objs):
        for obj, new_id in zip(block, _next_ids(model, len(block)), strict=True):
            setattr(obj, pk.attname, new_id)
        _copy(model, [str(f.column) for f in fields],
              ([f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields] for obj in block))
        for obj in block:
            obj._state.adding, obj._state.db = False, db.alias


def insert_events(events: list[SeedEvent]) -> None:
    """Write sealed events of one chain, in sequence order, and set their ``id``. The
    timestamp and the JSON are converted by their fields; the other columns are plain
    text and integers already."""
    if not events:
        return
    db = connections[connection.alias]
    convert = [(AUDIT_COLUMNS.index(f.attname), f) for f in AuditEvent._meta.concrete_fields
               if f.attname in ("occurred_at", "changes")]

    def row(e: SeedEvent) -> list[Any]:
        values = [getattr(e, name) for name in AUDIT_COLUMNS]
        for i, field in convert:
            values[i] = field.get_db_prep_save(values[i], db)
        return values

    quote = db.ops.quote_name
    table = quote(AuditEvent._meta.db_table)
    if db.vendor == "postgresql":
        for event, new_id in zip(events, _next_ids(AuditEvent, len(events)), strict=True):
            event.id = new_id
        _copy(AuditEvent, ["id", *AUDIT_COLUMNS], ([e.id, *row(e)] for e in events))
        return
    # Elsewhere (SQLite): one prepared INSERT for every row, then the ids by (chain, seq).
    first, last = events[0], events[-1]
    if any(e.chain != first.chain for e in events) or last.seq - first.seq != len(events) - 1:
        raise ValueError("insert_events writes consecutive events of one chain")
    # Only the model's own table and column names go into the SQL text; values are parameters.
    columns = ", ".join(quote(name) for name in AUDIT_COLUMNS)
    insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(AUDIT_COLUMNS))})"  # noqa: S608
    select = f"SELECT id FROM {table} WHERE chain = %s AND seq BETWEEN %s AND %s ORDER BY seq"  # noqa: S608
    with db.cursor() as cursor:
        cursor.executemany(insert, [row(e) for e in events])
        cursor.execute(select, [first.chain, first.seq, last.seq])
        ids = [r[0] for r in cursor.fetchall()]
    for event, new_id in zip(events, ids, strict=True):
        event.id = new_id


class Command(BaseCommand):
    help = "Bulk-load scale data (sites, batches in every state, steps, QC, deviations, audit events) for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--batches", type=int, default=10_000)
        parser.add_argument("--audit-events", type=int, default=1_000_000,
                            help="total events to reach (the records' own events count; routine events fill up)")
        parser.add_argument("--sites", type=int, default=20)
        parser.add_argument("--prefix", default="scale", help="site codes are PREFIX01, PREFIX02, …")
        parser.add_argument("--seed", type=int, default=10, help="random seed (same seed, same data)")

    def handle(self, *args, **options):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("seed_scale writes records without the GMP services: never on a production database.")
        n_sites, n_batches, n_events = options["sites"], options["batches"], options["audit_events"]
        if not 1 <= n_sites <= 99 or n_batches < 0 or n_events < 0:
            raise CommandError("--sites must be 1–99; --batches and --audit-events must not be negative.")
        prefix = options["prefix"]
        codes = [f"{prefix}{i:02d}" for i in range(1, n_sites + 1)]
        if not re.fullmatch(r"[a-z][a-z0-9]{0,19}", prefix):
            raise CommandError("--prefix: 1–20 lower-case letters or digits, starting with a letter.")
        # ISBT 128 facility numbers (a letter and 4 characters), unique like the site codes.
        self.fin_stem = (prefix.upper() + "XX")[:3]
        fins = [f"{self.fin_stem}{i:02d}" for i in range(1, n_sites + 1)]
        if Site.objects.filter(code__in=codes).exists() or Site.objects.filter(facility_identification_number__in=fins).exists():
            raise CommandError(f"Sites {codes[0]}… (or their FINs {fins[0]}…) already exist: use another --prefix.")
        self.rng = random.Random(options["seed"])  # noqa: S311 (made-up data, reproducible)
        self.now = timezone.now()
        started = time.perf_counter()
        self.password = make_password(settings.CARMFG_DEMO_PASSWORD)  # hashed once, shared
        sites = [self._site(code, i) for i, code in enumerate(codes, start=1)]
        self._log(f"{len(sites)} sites with people and recipes", started)
        per_site = [n_batches // n_sites + (1 if i < n_batches % n_sites else 0) for i in range(n_sites)]
        made: dict[str, int] = {}
        for site, count in zip(sites, per_site, strict=True):
            with transaction.atomic():
                self._batches(site, count, made)
        self._log(f"records: {made}", started)
        chains = [s["site"].pk for s in sites]
        with transaction.atomic():
            self._filler_events(sites, n_events - AuditEvent.objects.filter(chain__in=chains).count())
        self._log(f"{AuditEvent.objects.filter(chain__in=chains).count():,} audit events", started)
        if connection.vendor == "postgresql":
            # After a bulk load the planner's statistics describe the empty tables until
            # autovacuum gets round to them; PostgreSQL's advice is ANALYZE (docs,
            # "Populating a Database"), as a restore or migration of real data would.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self._log("statistics updated (ANALYZE)", started)

    def _log(self, what: str, started: float) -> None:
        self.stdout.write(f"[{time.perf_counter() - started:7.1f} s] {what}")

    # --- sites, people, recipes ------------------------------------------------------------

    def _site(self, code: str, n: int) -> dict[str, Any]:
        site = site_create(actor=None, code=code, name=f"Cell Therapy Unit {code.upper()}", time_zone="Europe/Madrid",
                           facility_identification_number=f"{self.fin_stem}{n:02d}")
        User = get_user_model()
        people = {}
        for role, who in [(Role.TECHNICIAN, "tech"), (Role.VERIFIER, "verifier"), (Role.QC_ANALYST, "qc"),
                          (Role.QUALIFIED_PERSON, "qp"), (Role.COORDINATOR, "coord"), (Role.AUDITOR, "auditor")]:
            user = User.objects.create(username=f"{who}-{code}", first_name=who.title(), last_name=code.upper(),
                                       email=f"{who}-{code}@scale.invalid", password=self.password)
            roles: list[str] = [Role.TECHNICIAN, Role.VERIFIER] if role == Role.VERIFIER else [role]
            membership_set_roles(actor=None, user=user, site=site, roles=roles)
            people[who] = user
        product = Product.objects.create(site=site, code="cd19-cart", name="Anti-CD19 CAR-T",
                                         pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S1234",
                                         fraction_percents=[10, 30, 60])
        spec = Specification.objects.create(
            site=site, product=product, version=1, status=SpecStatus.EFFECTIVE, effective_at=self.now,
            **{k: v for k, v in ARI_0001_LIKE.items() if k != "tests"},
        )
        tests = TestDefinition.objects.bulk_create(TestDefinition(specification=spec, **row) for row in definition_rows())
        mbr = MasterBatchRecord.objects.create(site=site, product=product, version=1, title="CD19 CAR-T (scale)",
                                               status=MbrStatus.EFFECTIVE, effective_at=self.now)
        steps = []
        order = 0
        for s_order, (s_code, s_name, rows) in enumerate(RECIPE, start=1):
            stage = StageDefinition.objects.create(mbr=mbr, order=s_order, code=s_code, name=s_name)
            for code, title, kind, unit, limits, verify in rows:
                order += 1
                steps.append(StepDefinition.objects.create(
                    stage=stage, order=order, code=code, title=title, kind=kind, unit=unit, decimal_places=1,
                    action_min=limits[0] if limits else None, action_max=limits[1] if limits else None,
                    requires_verification=verify,
                ))
        return {"site": site, "people": people, "product": product, "spec": spec, "tests": tests, "mbr": mbr,
                "steps": steps, "n": n, "events": []}

    # --- batches and their records -------------------------------------------------------------

    def _batches(self, ctx: dict[str, Any], count: int, made: dict[str, int]) -> int:
        """Batches of one site with their records; returns the audit events written."""
        site, people, rng = ctx["site"], ctx["people"], self.rng
        states = [s for s, _ in STATE_WEIGHTS]
        weights = [w for _, w in STATE_WEIGHTS]
        patients, orders, donations, batches = [], [], [], []
        for i in range(1, count + 1):
            # The first batches of a site take every state once; the rest are drawn by weight.
            state = states[i - 1] if i <= len(states) else rng.choices(states, weights)[0]
            lo, hi = AGE_DAYS.get(state, (30, 3650))
            created = self.now - dt.timedelta(days=rng.randint(lo, hi), minutes=rng.randint(0, 1440))
            patients.append(Patient(
                site=site, pseudonym=f"PT-{i:05d}", initials=rng.choice(["KM", "AL", "JR", "MG", "PS"]),
                birth_year=rng.randint(1950, 2015), hospital_record_number=f"HRN-{site.code}-{i}",
                wristband_code=f"WB-{site.code}-{i:06d}", weight_kg=Decimal(rng.randint(200, 1100)) / 10,
                weight_measured_on=created.date()))
            orders.append(Order(
                site=site, number=f"ORD-{site.code.upper()}-{i:05d}", product=ctx["product"], indication="Relapsed B-ALL",
                treating_physician="Dr. A. Ivanova", target_dose_cells_per_kg=Decimal("1000000"),
                planned_collection_date=created.date()))
            din = next_din(site.facility_identification_number, created.year, i)
            donations.append(Donation(site=site, din=din.din13, check_character=din.check,
                                      collection_date=created.date(), registered_by=people["coord"]))
            batches.append(Batch(
                site=site, number=f"B-{site.code.upper()}-{i:05d}", product=ctx["product"], mbr=ctx["mbr"], state=state,
                created_at=created,
                started_at=created + dt.timedelta(hours=2) if state in STARTED else None,
                completed_at=created + dt.timedelta(days=9) if state in COMPLETE else None,
                state_before_hold=BatchState.IN_PROCESS if state == BatchState.ON_HOLD else ""))
        insert_objects(Patient, patients)
        for order, patient in zip(orders, patients, strict=True):
            order.patient = patient
        insert_objects(Order, orders)
        for donation, order in zip(donations, orders, strict=True):
            donation.order = order
        insert_objects(Donation, donations)
        for batch, order, donation in zip(batches, orders, donations, strict=True):
            batch.order, batch.donation = order, donation
        insert_objects(Batch, batches)  # no signals: pins below
        insert_objects(BatchSpecification, [BatchSpecification(batch=b, specification=ctx["spec"]) for b in batches])

        events: list[SeedEvent] = []
        for batch in batches:
            events.append(self._event(ctx, people["coord"], Action.CREATE, batch, batch.created_at,
                                      {"number": batch.number, "state": BatchState.PLANNED}))
        records = self._steps(ctx, batches, events)
        signatures = self._signatures(ctx, records, events)
        results = self._results(ctx, batches, events)
        deviations = self._deviations(ctx, batches, events)
        certifications = self._certifications(ctx, batches, events)
        written = self._write_events(ctx, events, signatures)  # never cut: every record keeps its events
        for key, value in [("batches", len(batches)), ("step records", len(records)), ("signatures", len(signatures)),
                           ("qc results", len(results)), ("deviations", len(deviations)),
                           ("certifications", len(certifications))]:
            made[key] = made.get(key, 0) + value
        return written

    def _event(self, ctx, actor, action, obj, when, changes, root=None) -> SeedEvent:
        root = root or obj
        return SeedEvent(
            chain=ctx["site"].pk, occurred_at=when, actor_id=actor.pk, actor_username=actor.username,
            actor_name=actor.get_full_name(), site_id=ctx["site"].pk, action=action,
            object_type=f"{obj._meta.app_label}.{obj._meta.model_name}", object_id=str(obj.pk), object_repr=str(obj)[:300],
            root_type=f"{root._meta.app_label}.{root._meta.model_name}", root_id=str(root.pk), changes=changes, reason="",
        )

    def _steps(self, ctx, batches: list[Batch], events: list[SeedEvent]) -> list[StepRecord]:
        rng, steps, tech = self.rng, ctx["steps"], ctx["people"]["tech"]
        records = []
        for batch in batches:
            if batch.state not in STARTED:
                continue
            done = len(steps) if batch.state in COMPLETE else rng.randint(1, len(steps) - 1)
            begun = batch.started_at or batch.created_at
            for k, definition in enumerate(steps[:done]):
                value = None
                if definition.kind == "value":
                    lo, hi = definition.action_min, definition.action_max
                    value = (lo + (hi - lo) * Decimal(rng.randint(20, 80)) / 100).quantize(Decimal("0.1"))
                records.append(StepRecord(
                    site=ctx["site"], batch=batch, definition=definition, occurrence=1, value=value,
                    unit=definition.unit, limit_result=LimitResult.WITHIN if value is not None else LimitResult.NONE,
                    performed_by=tech, performed_at=begun + dt.timedelta(hours=6 * k)))
        insert_objects(StepRecord, records)
        for record in records:
            events.append(self._event(ctx, tech, Action.CREATE, record, record.performed_at,
                                      {"value": None if record.value is None else str(record.value), "unit": record.unit},
                                      root=record.batch))
        return records

    def _signatures(self, ctx, records: list[StepRecord], events: list[SeedEvent]) -> list[tuple[Signature, SeedEvent]]:
        """Performer (and, where needed, verifier) signatures; each with its SIGN event."""
        from carmfg.canonical import content_hash

        step_type = ContentType.objects.get_for_model(StepRecord)
        pairs = []
        for record in records:
            digest = content_hash(record.signable_content())
            signers = [(ctx["people"]["tech"], Meaning.PERFORMED)]
            if record.definition.requires_verification:
                signers.append((ctx["people"]["verifier"], Meaning.VERIFIED))
            for offset, (signer, meaning) in enumerate(signers):
                when = record.performed_at + dt.timedelta(minutes=1 + 30 * offset)
                event = self._event(ctx, signer, Action.SIGN, record, when, {"meaning": meaning, "content_hash": digest},
                                    root=record.batch)
                events.append(event)
                pairs.append((Signature(content_type=step_type, object_id=str(record.pk), site=ctx["site"], meaning=meaning,
                                        signer=signer, signer_name=signer.get_full_name(), signed_at=when,
                                        content_hash=digest), event))
        return pairs

    def _results(self, ctx, batches: list[Batch], events: list[SeedEvent]) -> list[TestResult]:
        analyst, reviewer = ctx["people"]["qc"], ctx["people"]["verifier"]
        results = []
        for batch in batches:
            if batch.state not in COMPLETE:
                continue
            completed = batch.completed_at or batch.created_at
            for test in ctx["tests"]:
                reviewed = batch.state != BatchState.AWAITING_RELEASE or self.rng.random() < 0.5
                entered = completed + dt.timedelta(hours=1 + test.order)
                value = None
                if test.low is not None or test.high is not None:
                    value = test.low if test.low is not None else test.high
                results.append(TestResult(
                    site=ctx["site"], batch=batch, test=test, value=value, qualitative=test.passing_result or "",
                    unit=test.unit, evaluation=ResultEvaluation.PASS,
                    status=ResultStatus.REVIEWED if reviewed else ResultStatus.ENTERED, entered_by=analyst,
                    entered_at=entered, reviewed_by=reviewer if reviewed else None,
                    reviewed_at=entered + dt.timedelta(hours=4) if reviewed else None))
        insert_objects(TestResult, results)
        for result in results:
            events.append(self._event(ctx, analyst, Action.CREATE, result, result.entered_at,
                                      {"test": result.test.code, "value": None if result.value is None else str(result.value)},
                                      root=result.batch))
        return results

    def _deviations(self, ctx, batches: list[Batch], events: list[SeedEvent]) -> list[Deviation]:
        rng, tech = self.rng, ctx["people"]["tech"]
        deviations: list[Deviation] = []
        for batch in batches:
            if batch.state not in STARTED or (rng.random() > 0.12 and batch.state != BatchState.ON_HOLD):
                continue
            begun = batch.started_at or batch.created_at
            closed = batch.state in COMPLETE and batch.state != BatchState.AWAITING_RELEASE
            deviations.append(Deviation(
                site=ctx["site"], number=f"DEV-{ctx['site'].code.upper()}-{len(deviations) + 1:05d}", batch=batch,
                source=DeviationSource.MANUAL if rng.random() < 0.5 else DeviationSource.OUT_OF_LIMIT,
                classification=rng.choice([DeviationClass.MINOR, DeviationClass.MINOR, DeviationClass.MAJOR]),
                status=DeviationStatus.CLOSED if closed else DeviationStatus.OPEN,
                title="Incubator door alarm during expansion", description="Door alarm for 3 min on day 6; "
                "temperature stayed within 37 ± 1 °C.", raised_by=tech, raised_at=begun + dt.timedelta(days=6),
                closed_at=begun + dt.timedelta(days=12) if closed else None))
        insert_objects(Deviation, deviations)
        for deviation in deviations:
            events.append(self._event(ctx, tech, Action.CREATE, deviation, deviation.raised_at,
                                      {"title": deviation.title, "classification": deviation.classification},
                                      root=deviation.batch))
        return deviations

    def _certifications(self, ctx, batches: list[Batch], events: list[SeedEvent]) -> list[Certification]:
        qp = ctx["people"]["qp"]
        certifications = []
        for batch in batches:
            if batch.state not in CERTIFIED:
                continue
            completed = batch.completed_at or batch.created_at
            kinds = [CertificationKind.PROVISIONAL]
            if batch.state == BatchState.RELEASED:
                kinds.append(CertificationKind.FINAL)
            for offset, kind in enumerate(kinds):
                decision = CertificationDecision.REJECTED if batch.state == BatchState.REJECTED else CertificationDecision.RELEASED
                certifications.append(Certification(
                    site=ctx["site"], batch=batch, kind=kind, decision=decision, checklist={"items": [], "scale": True},
                    pending_tests=[], specification=ctx["spec"], qp=qp,
                    signed_at=completed + dt.timedelta(days=1 + 14 * offset)))
        insert_objects(Certification, certifications)
        for cert in certifications:
            events.append(self._event(ctx, qp, Action.SIGN, cert, cert.signed_at,
                                      {"kind": cert.kind, "decision": cert.decision}, root=cert.batch))
        return certifications

    # --- the audit trail -------------------------------------------------------------------------

    def _write_events(self, ctx, events: list[SeedEvent], signatures: list[tuple[Signature, SeedEvent]]) -> int:
        """Append ``events`` to the site's chain in time order, sealed as audit_record seals them."""
        events.sort(key=lambda e: e.occurred_at)
        self._append(ctx["site"].pk, events)
        for signature, event in signatures:
            signature.audit_event_id = event.id
        insert_objects(Signature, [signature for signature, _ in signatures])
        return len(events)

    def _append(self, chain: int, events: Iterable[SeedEvent]) -> None:
        head = ChainHead.objects.select_for_update().filter(chain=chain).first()
        seq, prev = (head.seq, head.hash) if head else (0, "0" * 64)
        for block in chunks(events):
            for event in block:
                seq += 1
                event.seq, event.prev_hash = seq, prev
                event_seal(event)  # duck-typed: AuditEvent's hash_payload, see SeedEvent
                prev = event.hash
            insert_events(block)
        ChainHead.objects.update_or_create(chain=chain, defaults={"seq": seq, "hash": prev})

    def _filler_events(self, sites: list[dict[str, Any]], total: int) -> None:
        """Routine events (exports, logins, views of records) up to the asked total."""
        if total <= 0:
            return
        rng = self.rng
        per_site = [total // len(sites) + (1 if i < total % len(sites) else 0) for i in range(len(sites))]
        for ctx, count in zip(sites, per_site, strict=True):
            batch_ids = list(Batch.objects.filter(site=ctx["site"]).values_list("pk", "number")[:500]) or [(0, "—")]
            people = list(ctx["people"].values())
            start = self.now - dt.timedelta(days=1)
            step = dt.timedelta(days=1) / max(count, 1)

            def gen(ctx=ctx, count=count, batch_ids=batch_ids, people=people, start=start, step=step) -> Iterator[SeedEvent]:
                for k in range(count):
                    actor = rng.choice(people)
                    pk, number = rng.choice(batch_ids)
                    action = rng.choice([Action.VIEW_EXPORT, Action.LOGIN, Action.LOGOUT, Action.PRINT])
                    yield SeedEvent(
                        chain=ctx["site"].pk, occurred_at=start + step * k, actor_id=actor.pk,
                        actor_username=actor.username, actor_name=actor.get_full_name(), site_id=ctx["site"].pk,
                        action=action, object_type="batches.batch" if action in (Action.VIEW_EXPORT, Action.PRINT) else "",
                        object_id=str(pk) if action in (Action.VIEW_EXPORT, Action.PRINT) else "",
                        object_repr=number if action in (Action.VIEW_EXPORT, Action.PRINT) else "",
                        root_type="batches.batch" if action in (Action.VIEW_EXPORT, Action.PRINT) else "",
                        root_id=str(pk) if action in (Action.VIEW_EXPORT, Action.PRINT) else "",
                        changes={"format": "csv"} if action == Action.VIEW_EXPORT else {}, reason="",
                        request_id=f"{rng.getrandbits(64):016x}")

            self._append(ctx["site"].pk, gen())
