"""QC results are judged by the server, censored values included (DOMAIN §3)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from carmfg.exceptions import InvalidInput
from qc.evaluation import evaluate, parse_number


@dataclass
class T:
    limit_type: str
    low: Decimal | None = None
    high: Decimal | None = None
    passing_result: str = ""
    name: str = "test"


D = Decimal


@pytest.mark.parametrize(
    ("test", "raw", "outcome"),
    [
        (T("lte", high=D("0.5")), "≤0.5", "pass"),       # "≤ 0.5" meets a "≤ 0.5" limit
        (T("lte", high=D("0.5")), "<0.5", "pass"),
        (T("lte", high=D("0.5")), "0.5", "pass"),
        (T("lte", high=D("0.5")), "0.51", "fail"),
        (T("lt", high=D("0.5")), "0.5", "fail"),         # strict limits differ from non-strict
        (T("gte", low=D("70")), "70", "pass"),
        (T("gt", low=D("70")), "70", "fail"),
        (T("gt", low=D("70")), ">70", "pass"),
        (T("gte", low=D("20")), "<10", "fail"),          # wholly below the limit
        (T("lte", high=D("10")), ">12", "fail"),
        (T("range", low=D("2"), high=D("10")), "10", "pass"),
        (T("range", low=D("2"), high=D("10")), "1.99", "fail"),
    ],
)
def test_numeric_and_censored_results_are_judged_by_the_values_they_allow(test, raw, outcome):
    qualifier, value = parse_number(raw)
    assert evaluate(test, qualifier=qualifier, value=value).outcome == outcome


@pytest.mark.parametrize(("test", "raw"), [(T("lte", high=D("10")), ">5"), (T("gt", low=D("70")), "≥70"),
                                           (T("lte", high=D("0.5")), "<1")])
def test_a_censored_result_that_can_neither_meet_nor_fail_is_refused_not_passed(test, raw):
    qualifier, value = parse_number(raw)
    with pytest.raises(InvalidInput, match="neither meet nor fail"):
        evaluate(test, qualifier=qualifier, value=value)


def test_qualitative_results():
    sterility = T("qualitative", passing_result="no_growth", name="Sterility")
    assert evaluate(sterility, qualitative="no_growth").outcome == "pass"
    assert evaluate(sterility, qualitative="growth").outcome == "fail"
    with pytest.raises(InvalidInput, match="must be one of"):
        evaluate(sterility, qualitative="detected")


def test_report_only_tests_are_reported_not_judged():
    assert evaluate(T("report"), value=D("1234")).outcome == "reported"


@pytest.mark.parametrize("raw", ["", "abc", "1..2", "NaN", "inf", "1e400", "\x00", "≤"])
def test_unreadable_numbers_are_refused_with_a_message(raw):
    with pytest.raises(InvalidInput, match="Value"):
        parse_number(raw)


@pytest.mark.parametrize(("raw", "expected"), [("0,5", ("", D("0.5"))), (" <= 0.5 ", ("<=", D("0.5"))),
                                               ("1.2e9", ("", D("1.2e9"))), ("≥70", (">=", D("70")))])
def test_what_analysts_type_is_parsed(raw, expected):
    assert parse_number(raw) == expected


numbers = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
limit_types = st.sampled_from(["gte", "gt", "lte", "lt", "range"])


def _meets(limit: T, x: Decimal) -> bool:
    assert limit.low is not None
    assert limit.high is not None
    return {
        "gte": lambda: x >= limit.low, "gt": lambda: x > limit.low, "lte": lambda: x <= limit.high,
        "lt": lambda: x < limit.high, "range": lambda: limit.low <= x <= limit.high,
    }[limit.limit_type]()


@given(limit_types, numbers, numbers, numbers)
def test_exact_values_agree_with_plain_comparison(kind, a, b, x):
    low, high = min(a, b), max(a, b)
    limit = T(kind, low=low, high=high)
    assert evaluate(limit, value=x).outcome == ("pass" if _meets(limit, x) else "fail")


@given(limit_types, numbers, numbers, numbers, st.sampled_from(["<", "<=", ">", ">="]), st.lists(numbers, max_size=30))
def test_a_censored_verdict_holds_for_every_value_it_allows(kind, a, b, x, qualifier, probes):
    low, high = min(a, b), max(a, b)
    limit = T(kind, low=low, high=high)
    allowed = [p for p in [*probes, x, x - D("0.01"), x + D("0.01"), low, high]
               if {"<": p < x, "<=": p <= x, ">": p > x, ">=": p >= x}[qualifier]]
    assume(allowed)
    try:
        outcome = evaluate(limit, qualifier=qualifier, value=x).outcome
    except InvalidInput:
        return  # undecidable: refused, never guessed
    verdicts = {_meets(limit, p) for p in allowed}
    assert verdicts == {outcome == "pass"}
