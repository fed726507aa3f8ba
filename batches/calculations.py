"""Calculations of the batch record, done by the server from recorded values.

A closed registry: a master batch record names a calculation and maps each of its
inputs to a source (a recorded step, a lot's titer, the patient's weight…); nothing
a user types is ever evaluated. Every function takes and returns ``Decimal`` so the
result shown is the result recorded, and each is tested against hand-worked examples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

from django.utils.translation import gettext_noop

from carmfg.exceptions import InvalidInput
from carmfg.texts import Text

HUNDRED = Decimal(100)
MAX_FRACTIONS = 10


class CalculationError(InvalidInput):
    default_message = gettext_noop("The calculation cannot be done with these inputs.")


def _positive(value: Decimal, label: str) -> Decimal:
    """``value``, refused unless a positive number; ``label`` names it (marked with gettext_noop)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise CalculationError(gettext_noop("%(label)s is not a number."), params={"label": Text(label)})
    if value <= 0:
        raise CalculationError(gettext_noop("%(label)s must be greater than zero (it is %(value)s)."),
                               params={"label": Text(label), "value": value})
    return value


# --- the functions ---------------------------------------------------------------------


def moi(*, titer_tu_per_ml: Decimal, volume_ml: Decimal, viable_cells: Decimal) -> Decimal:
    """Multiplicity of infection: transducing units added per viable cell."""
    _positive(titer_tu_per_ml, gettext_noop("The vector titer"))
    _positive(volume_ml, gettext_noop("The vector volume"))
    _positive(viable_cells, gettext_noop("The viable cell count"))
    return titer_tu_per_ml * volume_ml / viable_cells


def fold_expansion(*, final_cells: Decimal, initial_cells: Decimal) -> Decimal:
    _positive(final_cells, gettext_noop("The final viable cell count"))
    _positive(initial_cells, gettext_noop("The initial viable cell count"))
    return final_cells / initial_cells


def viability_pct(*, viable_cells: Decimal, total_cells: Decimal) -> Decimal:
    _positive(total_cells, gettext_noop("The total cell count"))
    if viable_cells < 0:
        raise CalculationError(gettext_noop("The viable cell count cannot be negative."))
    if viable_cells > total_cells:
        raise CalculationError(
            gettext_noop("More viable cells (%(viable)s) than cells in total (%(total)s): check both counts."),
            params={"viable": viable_cells, "total": total_cells},
        )
    return viable_cells / total_cells * HUNDRED


def _log2(value: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        return value.ln() / Decimal(2).ln()


def cumulative_population_doublings(passages: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    """Sum over culture passages of log2(cells at the end / cells seeded).

    A closed system (one passage) gives log2(final / initial); with splits, each
    passage counts from the cells it was seeded with.
    """
    if not passages:
        raise CalculationError(gettext_noop("No cell counts to compute population doublings from."))
    total = Decimal(0)
    for seeded, harvested in passages:
        total += _log2(fold_expansion(final_cells=harvested, initial_cells=seeded))
    return total


def car_positive_cells(*, viable_cells: Decimal, car_positive_pct: Decimal) -> Decimal:
    _positive(viable_cells, gettext_noop("The viable cell count"))
    if not Decimal(0) <= car_positive_pct <= HUNDRED:
        raise CalculationError(gettext_noop("CAR+ must be between 0 and 100 %%; it is %(value)s %%."),
                               params={"value": car_positive_pct})
    return viable_cells * car_positive_pct / HUNDRED


@dataclass(frozen=True)
class Dose:
    """The dose formulated for the patient: the order's target, or every CAR+ cell
    there is when the batch cannot reach the target (then limits decide)."""

    dose_cells_per_kg: Decimal
    dose_cells_total: Decimal
    achievable_cells_per_kg: Decimal
    target_reached: bool


def dose_per_kg(*, car_positive_cells: Decimal, weight_kg: Decimal, target_cells_per_kg: Decimal) -> Dose:
    _positive(car_positive_cells, gettext_noop("The number of CAR+ viable cells"))
    _positive(weight_kg, gettext_noop("The patient's weight"))
    _positive(target_cells_per_kg, gettext_noop("The target dose"))
    achievable = car_positive_cells / weight_kg
    reached = achievable >= target_cells_per_kg
    per_kg = target_cells_per_kg if reached else achievable
    total = (per_kg * weight_kg).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if total > car_positive_cells:  # rounding may not promise a cell that does not exist
        total = car_positive_cells.quantize(Decimal(1), rounding="ROUND_FLOOR")
    return Dose(dose_cells_per_kg=per_kg, dose_cells_total=total, achievable_cells_per_kg=achievable,
                target_reached=reached)


def check_fraction_percents(percents: Sequence) -> list[Decimal]:
    """Split-dosing percentages (e.g. 10/30/60): positive, at most ten, adding up to 100."""
    if not isinstance(percents, list | tuple) or not percents:
        raise CalculationError(gettext_noop("The product defines no dose fractions (e.g. 10, 30, 60 %)."))
    if len(percents) > MAX_FRACTIONS:
        raise CalculationError(gettext_noop("At most %(count)s fractions are allowed."), params={"count": MAX_FRACTIONS})
    values = []
    for item in percents:
        if isinstance(item, bool) or not isinstance(item, int | str | Decimal):
            raise CalculationError(gettext_noop("Fraction %(item)s is not a percentage."), params={"item": repr(item)})
        try:
            value = Decimal(str(item))
        except ArithmeticError:
            raise CalculationError(gettext_noop("Fraction %(item)s is not a percentage."), params={"item": repr(item)}) from None
        if not value.is_finite() or value <= 0:
            raise CalculationError(gettext_noop("Each fraction must be more than 0 %%; got %(item)s."), params={"item": item})
        values.append(value)
    if sum(values) != HUNDRED:
        raise CalculationError(gettext_noop("The fractions add up to %(sum)s %%, not 100 %%."), params={"sum": sum(values)})
    return values


def fractions(*, total_cells: Decimal, percents: Sequence) -> list[Decimal]:
    """Whole cells per fraction. Every fraction but the last is rounded down and the
    last (the largest, given last) takes the rest, so the fractions add up to exactly the
    dose and none is ever negative."""
    _positive(total_cells, gettext_noop("The dose (cells in total)"))
    shares = check_fraction_percents(percents)
    total = total_cells.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    cells = [(total * share / HUNDRED).quantize(Decimal(1), rounding=ROUND_DOWN) for share in shares[:-1]]
    cells.append(total - sum(cells, Decimal(0)))
    return cells


def fill_volumes(*, fraction_cells: Sequence[Decimal], concentration_cells_per_ml: Decimal) -> list[Decimal]:
    """Volume of formulated suspension per bag: cells in the fraction / concentration."""
    _positive(concentration_cells_per_ml, gettext_noop("The concentration of the formulated product"))
    if not fraction_cells:
        raise CalculationError(gettext_noop("There are no fractions to fill."))
    return [_positive(Decimal(c), gettext_noop("A fraction's cell number")) / concentration_cells_per_ml for c in fraction_cells]


# --- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class CalcInput:
    name: str
    label: str
    unit: str = ""
    is_list: bool = False


@dataclass(frozen=True)
class CalcOutput:
    name: str
    label: str
    unit: str
    places: int
    is_list: bool = False


@dataclass(frozen=True)
class CalcResult:
    value: Decimal
    outputs: dict[str, Decimal | list[Decimal]] = field(default_factory=dict)


@dataclass(frozen=True)
class Calculation:
    name: str
    label: str
    formula: str
    inputs: tuple[CalcInput, ...]
    compute: Callable[[Mapping], CalcResult]
    outputs: tuple[CalcOutput, ...] = ()

    @property
    def input_names(self) -> frozenset[str]:
        return frozenset(i.name for i in self.inputs)


def _dose(values: Mapping) -> CalcResult:
    dose = dose_per_kg(car_positive_cells=values["car_positive_cells"], weight_kg=values["weight_kg"],
                       target_cells_per_kg=values["target_cells_per_kg"])
    return CalcResult(dose.dose_cells_per_kg, {
        "dose_cells_total": dose.dose_cells_total,
        "achievable_cells_per_kg": dose.achievable_cells_per_kg,
        "target_reached": Decimal(1 if dose.target_reached else 0),
    })


def _fractions(values: Mapping) -> CalcResult:
    cells = fractions(total_cells=values["total_cells"], percents=values["percents"])
    return CalcResult(Decimal(len(cells)), {"cells": cells})


def _fill(values: Mapping) -> CalcResult:
    volumes = fill_volumes(fraction_cells=values["fraction_cells"],
                           concentration_cells_per_ml=values["concentration_cells_per_ml"])
    return CalcResult(sum(volumes, Decimal(0)), {"volumes_ml": volumes})


def _single(func: Callable[..., Decimal]) -> Callable[[Mapping], CalcResult]:
    return lambda values: CalcResult(func(**values))


CELLS = "cells"
REGISTRY: dict[str, Calculation] = {
    c.name: c
    for c in (
        Calculation(
            "moi", "Multiplicity of infection (MOI)", "MOI = titer × volume ÷ viable cells",
            (CalcInput("titer_tu_per_ml", "Vector titer", "TU/mL"), CalcInput("volume_ml", "Vector volume", "mL"),
             CalcInput("viable_cells", "Viable cells", CELLS)),
            _single(moi),
        ),
        Calculation(
            "fold_expansion", "Fold expansion", "fold = final viable cells ÷ initial viable cells",
            (CalcInput("final_cells", "Final viable cells", CELLS), CalcInput("initial_cells", "Initial viable cells", CELLS)),
            _single(fold_expansion),
        ),
        Calculation(
            "viability_pct", "Viability", "viability % = viable cells ÷ total cells × 100",
            (CalcInput("viable_cells", "Viable cells", CELLS), CalcInput("total_cells", "Total cells", CELLS)),
            _single(viability_pct),
        ),
        Calculation(
            "cumulative_population_doublings", "Cumulative population doublings",
            "PD = log₂(final viable cells ÷ initial viable cells)",
            (CalcInput("final_cells", "Final viable cells", CELLS), CalcInput("initial_cells", "Initial viable cells", CELLS)),
            lambda v: CalcResult(cumulative_population_doublings([(v["initial_cells"], v["final_cells"])])),
        ),
        Calculation(
            "car_positive_cells", "CAR+ viable cells", "CAR+ cells = viable cells × CAR+ % ÷ 100",
            (CalcInput("viable_cells", "Viable cells", CELLS), CalcInput("car_positive_pct", "CAR+", "%")),
            _single(car_positive_cells),
        ),
        Calculation(
            "dose_per_kg", "Dose per kg",
            "dose = target per kg, or CAR+ cells ÷ weight when fewer cells are available",
            (CalcInput("car_positive_cells", "CAR+ viable cells available", CELLS),
             CalcInput("weight_kg", "Patient weight", "kg"),
             CalcInput("target_cells_per_kg", "Target dose (order)", "CAR+ cells/kg")),
            _dose,
            (CalcOutput("dose_cells_total", "Dose in total", "CAR+ cells", 0),
             CalcOutput("achievable_cells_per_kg", "Achievable with all CAR+ cells", "CAR+ cells/kg", 0),
             CalcOutput("target_reached", "Target reached (1 = yes)", "", 0)),
        ),
        Calculation(
            "fractions", "Split dose", "cells in fraction = dose × fraction % ÷ 100",
            (CalcInput("total_cells", "Dose in total", "CAR+ cells"),
             CalcInput("percents", "Fractions (product)", "%", is_list=True)),
            _fractions,
            (CalcOutput("cells", "CAR+ cells per bag", "CAR+ cells", 0, is_list=True),),
        ),
        Calculation(
            "fill_volumes", "Fill volume per bag", "volume = cells in fraction ÷ concentration",
            (CalcInput("fraction_cells", "CAR+ cells per bag", "CAR+ cells", is_list=True),
             CalcInput("concentration_cells_per_ml", "Concentration of formulated product", "CAR+ cells/mL")),
            _fill,
            (CalcOutput("volumes_ml", "Volume per bag", "mL", 1, is_list=True),),
        ),
    )
}


def calculation_get(name: str) -> Calculation:
    try:
        return REGISTRY[name]
    except KeyError:
        raise CalculationError(gettext_noop("There is no calculation named %(name)s."), params={"name": repr(name)}) from None


def calculation_run(name: str, values: Mapping) -> CalcResult:
    """Run ``name`` on ``values`` (input name → Decimal or list of Decimals).

    Outputs other than the primary value are rounded to their declared places; the
    primary value is rounded by the caller to the step's decimal places.
    """
    calc = calculation_get(name)
    missing = calc.input_names - set(values)
    if missing:
        raise CalculationError(gettext_noop("%(calculation)s: missing input %(missing)s."),
                               params={"calculation": calc.label, "missing": ", ".join(sorted(missing))})
    result = calc.compute({key: values[key] for key in calc.input_names})
    outputs: dict[str, Decimal | list[Decimal]] = {}
    for out in calc.outputs:
        raw = result.outputs[out.name]
        if isinstance(raw, list):
            outputs[out.name] = [_round(v, out.places) for v in raw]
        else:
            outputs[out.name] = _round(raw, out.places)
    return CalcResult(result.value, outputs)


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
