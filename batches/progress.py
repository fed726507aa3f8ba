"""Where a batch stands against its pinned master batch record.

One read model for the services (is this step allowed now?) and the pages (what is
next, what is missing): it loads the recipe, the step records and their signatures in
a fixed number of queries, whatever the size of the batch.

Order rules (21 CFR 11.10(f), sequencing of steps):

* a step needs every earlier step recorded, except earlier steps flagged
  ``allow_out_of_order`` (those may be done at any time, but are still required);
* the repeatable steps of a stage form a cycle (e.g. the daily count: viable cells,
  viability, temperature): occurrence *n* of a cycle step needs occurrence *n* of the
  cycle steps before it and occurrence *n − 1* of those after it; a step after the
  cycle needs every started occurrence finished; once a later step is recorded the
  cycle is closed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_noop

from batches.calculations import REGISTRY
from batches.models import Batch, StageDefinition, StepDefinition, StepKind, StepRecord
from batches.quantities import format_value
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.services import signable_hash
from carmfg.exceptions import GMPError
from carmfg.texts import Text

MAX_LISTED = 6


@dataclass
class SignatureState:
    signature: Signature
    status: str  # valid / invalidated / voided

    @property
    def is_valid(self) -> bool:
        return self.status == "valid"


@dataclass
class RecordState:
    record: StepRecord
    signatures: list[SignatureState] = field(default_factory=list)
    stale_inputs: bool = False

    def valid(self, meaning: str) -> SignatureState | None:
        return next((s for s in self.signatures if s.is_valid and s.signature.meaning == meaning), None)

    @property
    def performed(self) -> SignatureState | None:
        return self.valid(Meaning.PERFORMED)

    @property
    def verified(self) -> SignatureState | None:
        return self.valid(Meaning.VERIFIED)

    @property
    def needs_verification(self) -> bool:
        return self.record.definition.requires_verification and self.verified is None

    @property
    def is_complete(self) -> bool:
        return self.performed is not None and not self.needs_verification and not self.stale_inputs


@dataclass
class StepState:
    definition: StepDefinition
    index: int
    records: list[RecordState] = field(default_factory=list)
    can_record: bool = False
    refusal: str = ""  # why it cannot be recorded now, in English (what a refusal records)
    next_occurrence: int = 1
    # The same as an English template and its values: raise ``OutOfOrder(state.refusal_template,
    # params=state.refusal_params)``; pages show ``refusal_text`` (the reader's language).
    refusal_template: str = ""
    refusal_params: dict = field(default_factory=dict)

    @property
    def refusal_text(self) -> str:
        return GMPError(self.refusal_template, params=self.refusal_params).text if self.refusal_template else ""

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def latest(self) -> RecordState | None:
        return self.records[-1] if self.records else None


@dataclass
class StageState:
    stage: StageDefinition
    steps: list[StepState]

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.count and all(r.is_complete for r in s.records))


class Plan:
    """The batch's recipe with what was recorded against it."""

    def __init__(self, batch: Batch, definitions: list[StepDefinition], records: list[StepRecord],
                 signatures: list[Signature]) -> None:
        self.batch = batch
        by_definition: dict[int, list[StepRecord]] = defaultdict(list)
        for record in records:
            by_definition[record.definition_id].append(record)
        sigs: dict[str, list[Signature]] = defaultdict(list)
        for sig in signatures:
            sigs[sig.object_id].append(sig)
        self.steps: list[StepState] = []
        self.by_code: dict[str, StepState] = {}
        self.by_pk: dict[int, StepState] = {}
        for index, definition in enumerate(definitions):
            state = StepState(definition=definition, index=index)
            for record in sorted(by_definition.get(definition.pk, []), key=lambda r: r.occurrence):
                record.definition = definition
                state.records.append(RecordState(record=record, signatures=_signature_states(record, sigs[str(record.pk)])))
            self.steps.append(state)
            self.by_code[definition.code] = state
            self.by_pk[definition.pk] = state
        self.stages: list[StageState] = []
        for state in self.steps:
            stage = state.definition.stage
            if not self.stages or self.stages[-1].stage.pk != stage.pk:
                self.stages.append(StageState(stage=stage, steps=[]))
            self.stages[-1].steps.append(state)
        for state in self.steps:
            state.can_record, template, params, state.next_occurrence = self._check(state)
            state.refusal_template, state.refusal_params = template, params
            state.refusal = template % params if params else template
            for record_state in state.records:
                if state.definition.kind == StepKind.CALCULATION:
                    record_state.stale_inputs = self._calculation_is_stale(state, record_state.record)

    # --- order ------------------------------------------------------------------------

    def _cycle(self, state: StepState) -> list[StepState]:
        if not state.definition.repeatable:
            return []
        return [s for s in self.steps if s.definition.repeatable and s.definition.stage_id == state.definition.stage_id]

    def _check(self, state: StepState) -> tuple[bool, str, dict, int]:
        """Whether the step can be recorded now, else why (English template and values)."""
        definition = state.definition
        n = state.count + 1
        if not definition.repeatable and state.count:
            return (False, gettext_noop("“%(step)s” is recorded already; to change it, correct the record."),
                    {"step": definition.title}, state.count)
        cycle = self._cycle(state)
        if not definition.allow_out_of_order:
            missing = []
            for earlier in self.steps[: state.index]:
                if earlier.definition.allow_out_of_order:
                    continue
                if earlier in cycle:
                    if earlier.count < n:
                        missing.append(f"{_label(earlier)} #{n}")
                    continue
                if earlier.count == 0:
                    missing.append(_label(earlier))
                    continue
                other_cycle = self._cycle(earlier)
                if other_cycle and earlier.count < max(s.count for s in other_cycle):
                    missing.append(f"{_label(earlier)} #{earlier.count + 1}")
            if missing:
                listed = "; ".join(missing[:MAX_LISTED])
                if len(missing) > MAX_LISTED:
                    return (False, gettext_noop("Earlier steps must be done first: %(steps)s and %(more)s more."),
                            {"steps": listed, "more": len(missing) - MAX_LISTED}, n)
                return False, gettext_noop("Earlier steps must be done first: %(steps)s."), {"steps": listed}, n
        if cycle and n > 1:
            for later in self.steps[state.index + 1:]:
                if later in cycle:
                    if later.count < n - 1:
                        return (False, gettext_noop("Finish occurrence #%(occurrence)s first: %(step)s."),
                                {"occurrence": n - 1, "step": _label(later)}, n)
                elif later.count and not later.definition.allow_out_of_order:
                    return (False, gettext_noop("The stage has moved on (%(later)s is recorded): no further "
                                                "“%(step)s” can be added."),
                            {"later": _label(later), "step": definition.title}, n)
        return True, "", {}, n

    def check_can_record(self, definition_pk: int) -> StepState:
        return self.by_pk[definition_pk]

    # --- what next --------------------------------------------------------------------------

    def _open_cycle_start(self) -> StepState | None:
        """The first step of a cycle that has run at least once and may run again."""
        for state in self.steps:
            cycle = self._cycle(state)
            if cycle and cycle[0] is state and state.count and state.can_record:
                return state
        return None

    def _first_unrecorded(self) -> StepState | None:
        return next((s for s in self.steps if s.count == 0 and s.can_record), None)

    @property
    def next_step(self) -> StepState | None:
        """The step a technician should do now: an unfinished occurrence of a cycle
        first, then the next occurrence of a cycle still running (the daily count), then
        the first step not yet recorded."""
        for state in self.steps:
            cycle = self._cycle(state)
            if cycle and state.can_record and state.count < max(s.count for s in cycle):
                return state
        return self._open_cycle_start() or self._first_unrecorded()

    @property
    def move_on_step(self) -> StepState | None:
        """While a cycle runs: the step that ends it (e.g. the end of culture)."""
        if self.next_step is not None and self.next_step is self._open_cycle_start():
            return self._first_unrecorded()
        return None

    @property
    def cycle_continuation(self) -> StepState | None:
        """The first step of a running cycle, to start its next occurrence."""
        return self._open_cycle_start()

    @property
    def recordable_elsewhere(self) -> list[StepState]:
        """Steps that may be done now out of order."""
        nxt = self.next_step
        return [s for s in self.steps if s.definition.allow_out_of_order and s.can_record and s is not nxt]

    def completion_problems(self) -> list[Text]:
        """What keeps the batch from being complete, one sentence each (``.message`` in
        English, what a refusal records; ``.text`` in the reader's language); empty when it is."""
        problems = []
        for state in self.steps:
            if state.count == 0:
                problems.append(Text(gettext_noop("%(step)s: not recorded."), {"step": _label(state)}))
            for record_state in state.records:
                suffix = f" #{record_state.record.occurrence}" if state.definition.repeatable else ""
                step = {"step": f"{_label(state)}{suffix}"}
                if record_state.performed is None:
                    problems.append(Text(gettext_noop("%(step)s: needs the performer's signature."), step))
                elif record_state.needs_verification:
                    problems.append(Text(gettext_noop("%(step)s: needs verification by a second person."), step))
                if record_state.stale_inputs:
                    problems.append(Text(gettext_noop("%(step)s: an input changed after the calculation; "
                                                      "recalculate it."), {"step": _label(state)}))
        return problems

    @property
    def steps_total(self) -> int:
        return len(self.steps)

    @property
    def steps_done(self) -> int:
        return sum(1 for s in self.steps if s.count and all(r.is_complete for r in s.records))

    @property
    def awaiting_verification(self) -> list[RecordState]:
        return [r for s in self.steps for r in s.records if r.performed is not None and r.needs_verification]

    # --- calculations ---------------------------------------------------------------------------

    def resolve_inputs(self, definition: StepDefinition) -> dict[str, dict]:
        """Each input of a calculation step with its value, where it comes from, and
        ``missing`` when it is not recorded yet."""
        calc = REGISTRY[definition.calculation]
        resolved: dict[str, dict] = {}
        for spec in calc.inputs:
            source = definition.calculation_inputs.get(spec.name, "")
            value, origin = self._source_value(source)
            resolved[spec.name] = {
                "label": spec.label, "unit": spec.unit, "source": source, "origin": origin,
                "value": value, "missing": value is None,
            }
        return resolved

    def _source_value(self, source: str):
        order = self.batch.order
        if source == "patient:weight_kg":
            return order.patient.weight_kg, f"Patient {order.patient.pseudonym}, weighed {order.patient.weight_measured_on}"
        if source == "order:target_dose_cells_per_kg":
            return order.target_dose_cells_per_kg, f"Order {order.number}"
        if source == "product:fraction_percents":
            percents = self.batch.product.fraction_percents
            return ([Decimal(str(p)) for p in percents] if percents else None), f"Product {self.batch.product.code}"
        parts = source.split(":")
        state = self.by_code.get(parts[1]) if len(parts) > 1 else None
        if state is None:
            return None, source
        latest = state.latest.record if state.latest else None
        if latest is None:
            return None, f"step “{state.definition.title}”"
        origin = f"step “{state.definition.title}”" + (f" #{latest.occurrence}" if state.definition.repeatable else "")
        if parts[0] == "lot":
            lot = latest.material_lot
            if lot is None or lot.titer_tu_per_ml is None:
                return None, origin + " (lot without titer)"
            return lot.titer_tu_per_ml, f"lot {lot.lot_number} (certificate of analysis)"
        if len(parts) == 3:
            raw = latest.calculation_outputs.get(parts[2])
            if raw is None:
                return None, origin
            return ([Decimal(v) for v in raw] if isinstance(raw, list) else Decimal(raw)), origin
        return latest.value, origin

    def _calculation_is_stale(self, state: StepState, record: StepRecord) -> bool:
        if state.latest is None or record is not state.latest.record or state.definition.calculation not in REGISTRY:
            return False
        current = {name: _jsonable(item["value"]) for name, item in self.resolve_inputs(state.definition).items()}
        stored = {name: item.get("value") for name, item in (record.calculation_inputs or {}).items()}
        return current != stored


def _jsonable(value):
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value else str(value)
    return value


def input_snapshot(resolved: dict[str, dict]) -> dict[str, dict]:
    """What a calculation record keeps of its inputs (and compares later for staleness)."""
    return {
        name: {"value": _jsonable(item["value"]), "label": item["label"], "unit": item["unit"],
               "source": item["source"], "origin": item["origin"],
               "display": ", ".join(format_value(v) for v in item["value"]) if isinstance(item["value"], list)
               else format_value(item["value"])}
        for name, item in resolved.items()
    }


def _label(state: StepState) -> str:
    return f"{state.definition.stage.name} · {state.definition.title}"


def _signature_states(record: StepRecord, signatures: list[Signature]) -> list[SignatureState]:
    if not signatures:
        return []
    current = signable_hash(record)
    out = []
    for sig in signatures:
        if sig.voided_at is not None:
            status = "voided"
        elif sig.content_hash != current:
            status = "invalidated"
        else:
            status = "valid"
        out.append(SignatureState(signature=sig, status=status))
    return out


def load_plan(batch: Batch, *, for_update: bool = False) -> Plan:
    """The plan of ``batch`` in four queries (recipe, records, corrections, signatures)."""
    definitions = list(
        StepDefinition.objects.filter(stage__mbr_id=batch.mbr_id).select_related("stage").order_by("stage__order", "order")
    )
    records_qs = StepRecord.objects.filter(batch=batch).select_related(
        "material_lot", "equipment", "performed_by", "deviation"
    ).prefetch_related("corrections__corrected_by")
    if for_update:
        records_qs = StepRecord.objects.filter(batch=batch).select_related("material_lot", "equipment")
    records = list(records_qs)
    signatures = list(
        Signature.objects.filter(
            content_type=ContentType.objects.get_for_model(StepRecord),
            object_id__in=[str(r.pk) for r in records],
        ).order_by("signed_at", "pk")
    ) if records else []
    return Plan(batch, definitions, records, signatures)
