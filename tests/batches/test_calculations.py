"""Calculations of the batch record against hand-worked examples, and their properties."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batches.calculations import (
    REGISTRY,
    CalculationError,
    calculation_run,
    car_positive_cells,
    cumulative_population_doublings,
    dose_per_kg,
    fill_volumes,
    fold_expansion,
    fractions,
    moi,
    viability_pct,
)
from batches.quantities import check_decimal_places, format_value, parse_decimal
from carmfg.exceptions import InvalidInput

# --- hand-worked examples (each worked on paper, as a QP would check it) -------------------


@pytest.mark.parametrize(
    ("titer", "volume", "cells", "expected"),
    [
        # 1.0e8 TU/mL × 5 mL = 5.0e8 TU over 1.0e8 cells
        (D("1e8"), D("5"), D("1e8"), D("5")),
        # 2.5e8 × 1.2 = 3.0e8 TU over 6.0e7 cells
        (D("2.5e8"), D("1.2"), D("6e7"), D("5")),
        # 3.2e8 × 0.75 = 2.4e8 TU over 1.2e8 cells
        (D("3.2e8"), D("0.75"), D("1.2e8"), D("2")),
    ],
)
def test_moi_is_titer_times_volume_over_viable_cells(titer, volume, cells, expected):
    assert moi(titer_tu_per_ml=titer, volume_ml=volume, viable_cells=cells) == expected


def test_fold_expansion_is_final_over_initial_cells():
    # 2.4e9 harvested from 1.0e8 seeded
    assert fold_expansion(final_cells=D("2.4e9"), initial_cells=D("1e8")) == D("24")


def test_viability_is_viable_over_total_cells_in_percent():
    # 9.2e8 viable of 1.0e9 counted
    assert viability_pct(viable_cells=D("9.2e8"), total_cells=D("1e9")) == D("92")


def test_viability_refuses_more_viable_than_total_cells():
    with pytest.raises(CalculationError, match="More viable cells"):
        viability_pct(viable_cells=D("2e9"), total_cells=D("1e9"))


def test_population_doublings_are_log2_of_the_expansion_summed_over_passages():
    # 1.6e9 / 1e8 = 16 = 2^4
    assert cumulative_population_doublings([(D("1e8"), D("1.6e9"))]) == D("4")
    # two passages: 1e8 → 4e8 (2 doublings), re-seeded 2e8 → 1.6e9 (3 doublings)
    assert cumulative_population_doublings([(D("1e8"), D("4e8")), (D("2e8"), D("1.6e9"))]) == D("5")
    # 24-fold: log2(24) = 4.58496…
    assert round(cumulative_population_doublings([(D("1e8"), D("2.4e9"))]), 4) == D("4.5850")


def test_car_positive_cells_are_viable_cells_times_car_percent():
    # 2.4e9 viable × 35 % = 8.4e8
    assert car_positive_cells(viable_cells=D("2.4e9"), car_positive_pct=D("35")) == D("8.4e8")


def test_dose_is_the_target_when_enough_car_cells_are_available():
    # 8.4e8 CAR+ for 70 kg could give 1.2e7/kg; the order asks 1e6/kg → 7e7 cells in total
    dose = dose_per_kg(car_positive_cells=D("8.4e8"), weight_kg=D("70"), target_cells_per_kg=D("1e6"))

    assert dose.dose_cells_per_kg == D("1e6")
    assert dose.dose_cells_total == D("70000000")
    assert dose.achievable_cells_per_kg == D("1.2e7")
    assert dose.target_reached


def test_dose_is_every_car_cell_when_the_target_cannot_be_reached():
    # 3.0e7 CAR+ for 60 kg: 5.0e5/kg (below the 1e6/kg target; limits then decide)
    dose = dose_per_kg(car_positive_cells=D("3e7"), weight_kg=D("60"), target_cells_per_kg=D("1e6"))

    assert dose.dose_cells_per_kg == D("5e5")
    assert dose.dose_cells_total == D("30000000")
    assert not dose.target_reached


def test_fractions_split_the_dose_10_30_60():
    assert fractions(total_cells=D("7e7"), percents=[10, 30, 60]) == [D("7000000"), D("21000000"), D("42000000")]


def test_fraction_rounding_goes_to_the_last_bag_so_nothing_is_lost():
    # 1,000,001 cells: 100,000.1 → 100,000; 300,000.3 → 300,000; the last bag holds 600,001
    assert fractions(total_cells=D("1000001"), percents=[10, 30, 60]) == [D("100000"), D("300000"), D("600001")]


@pytest.mark.parametrize("percents", [[10, 30, 50], [], [0, 100], [-10, 110], ["ten", 90], [True, 99], list(range(1, 15))])
def test_fractions_must_be_positive_percentages_adding_up_to_100(percents):
    with pytest.raises(CalculationError):
        fractions(total_cells=D("7e7"), percents=percents)


def test_fill_volume_is_cells_per_bag_over_concentration():
    # 7e6 / 21e6 / 42e6 CAR+ cells at 1.0e6 CAR+ cells/mL
    assert fill_volumes(fraction_cells=[D("7e6"), D("2.1e7"), D("4.2e7")], concentration_cells_per_ml=D("1e6")) == [
        D("7"), D("21"), D("42")]


def test_registry_runs_the_dose_with_its_outputs_rounded():
    result = calculation_run("dose_per_kg", {
        "car_positive_cells": D("8.4e8"), "weight_kg": D("70.0"), "target_cells_per_kg": D("1000000")})

    assert result.value == D("1000000")
    assert result.outputs["dose_cells_total"] == D("70000000")
    assert result.outputs["achievable_cells_per_kg"] == D("12000000")


def test_registry_rounds_fill_volumes_to_a_tenth_of_a_millilitre():
    result = calculation_run("fill_volumes", {"fraction_cells": [D("1000000"), D("2000000")],
                                              "concentration_cells_per_ml": D("3e5")})

    assert result.outputs["volumes_ml"] == [D("3.3"), D("6.7")]


def test_registry_refuses_an_unknown_calculation_and_missing_inputs():
    with pytest.raises(CalculationError, match="no calculation named"):
        calculation_run("__import__('os').system('x')", {})
    with pytest.raises(CalculationError, match="missing input"):
        calculation_run("moi", {"titer_tu_per_ml": D("1e8")})


@pytest.mark.parametrize("bad", [D(0), D(-1)])
def test_calculations_refuse_zero_or_negative_cell_counts(bad):
    with pytest.raises(CalculationError, match="greater than zero"):
        moi(titer_tu_per_ml=D("1e8"), volume_ml=D("1"), viable_cells=bad)


def test_every_registered_calculation_declares_its_inputs():
    for calc in REGISTRY.values():
        assert calc.inputs, calc.name
        assert calc.formula, calc.name


# --- properties ---------------------------------------------------------------------------

positive = st.decimals(min_value=D("0.001"), max_value=D("1e12"), allow_nan=False, allow_infinity=False, places=3)
cells = st.integers(min_value=1, max_value=10**12).map(D)


@given(titer=positive, volume=positive, viable=positive)
def test_moi_doubles_when_the_vector_volume_doubles(titer, volume, viable):
    assert moi(titer_tu_per_ml=titer, volume_ml=volume * 2, viable_cells=viable) == pytest.approx(
        2 * moi(titer_tu_per_ml=titer, volume_ml=volume, viable_cells=viable), rel=D("1e-20"))


@given(initial=cells, k=st.integers(min_value=0, max_value=20))
def test_population_doublings_of_a_power_of_two_expansion_are_its_exponent(initial, k):
    assert round(cumulative_population_doublings([(initial, initial * 2**k)]), 10) == k


@given(total=cells, split=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=5))
def test_fractions_always_add_up_to_the_dose(total, split):
    percents = [*split, 100 - sum(split)] if sum(split) < 100 else [100]
    parts = fractions(total_cells=total, percents=percents)

    assert sum(parts) == total
    assert all(part >= 0 for part in parts)


@given(car=cells, weight=st.integers(min_value=5, max_value=200).map(D), target=cells)
def test_the_dose_never_exceeds_the_target_nor_the_cells_available(car, weight, target):
    dose = dose_per_kg(car_positive_cells=car, weight_kg=weight, target_cells_per_kg=target)

    assert dose.dose_cells_per_kg <= target
    assert dose.dose_cells_total <= car


# --- how values are typed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("72.5", D("72.5")), (" 1200000 ", D("1200000")), ("1.2e9", D("1.2e9")), ("1.2E9", D("1.2e9")),
     ("1.2x10^9", D("1.2e9")), ("1.2×10⁹", D("1.2e9")), ("1.2 × 10^9", D("1.2e9")), ("-0.5", D("-0.5"))],
)
def test_values_may_be_typed_in_the_usual_scientific_forms(text, expected):
    assert parse_decimal(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1,5", "1.2.3", "1e9999999", "NaN", "inf", "1\x002", "9" * 41, "1e30"])
def test_values_that_are_not_plain_numbers_are_refused_with_a_message(text):
    with pytest.raises(InvalidInput) as exc:
        parse_decimal(text)
    assert exc.value.message


@given(st.text(max_size=60))
def test_any_text_either_parses_or_is_refused_as_invalid_input(text):
    try:
        value = parse_decimal(text)
    except InvalidInput:
        return
    assert value.is_finite()


def test_a_value_given_more_precisely_than_the_step_records_is_refused():
    assert check_decimal_places(D("72.50"), 1) == D("72.5")
    with pytest.raises(InvalidInput, match="decimal places"):
        check_decimal_places(D("72.55"), 1)


def test_large_numbers_are_shown_in_scientific_form():
    assert format_value(D("1200000000")) == "1.20 × 10⁹"
    assert format_value(D("72.5")) == "72.5"
    assert format_value(D("9.996e8")) == "1.00 × 10⁹"
