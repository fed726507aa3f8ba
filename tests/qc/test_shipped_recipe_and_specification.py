"""The shipped recipe and the shipped specification speak of the same QC tests: every
test a sampling step samples for is judged by the specification, and every test of the
specification has a sampling step that takes its sample."""

from __future__ import annotations

from batches.demo_mbr import shipped_mbr_data
from qc.spec_data import definition_rows


def _sampling_steps() -> list[dict]:
    return [step for stage in shipped_mbr_data()["stages"] for step in stage["steps"] if step["kind"] == "sample"]


def test_the_shipped_recipe_has_sampling_steps_that_name_tests():
    steps = _sampling_steps()
    assert steps
    assert all(step.get("sample_tests") for step in steps)


def test_every_sample_test_of_the_shipped_recipe_is_a_test_of_the_shipped_specification():
    spec_codes = {row["code"] for row in definition_rows()}
    unknown = {step["code"]: sorted(set(step["sample_tests"]) - spec_codes) for step in _sampling_steps()}
    assert {code: tests for code, tests in unknown.items() if tests} == {}


def test_every_specification_test_has_a_sampling_step_in_the_shipped_recipe():
    sampled = {code for step in _sampling_steps() for code in step["sample_tests"]}
    assert sorted({row["code"] for row in definition_rows()} - sampled) == []


def test_tests_required_for_provisional_release_are_sampled_before_the_late_ones():
    """The provisional-release sample must carry every test the provisional certification
    needs; a test pending at release may not be the only thing the first sample is for."""
    steps = _sampling_steps()
    first = set(steps[0]["sample_tests"])
    provisional = {row["code"] for row in definition_rows() if row["required_for_provisional"]}
    assert provisional <= first
