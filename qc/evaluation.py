"""Judging a QC result against its test definition.

Real results are often censored ("≤ 0.5 EU/mL", "< LOQ", "> 5 copies"). A result is
judged by the interval of true values it allows: "≤ 0.5" allows (−∞, 0.5], which lies
inside a "≤ 0.5" limit, so it passes. If the interval lies entirely inside the limit
the result passes; entirely outside, it fails; partly inside (e.g. "< 20" against
"≤ 10"), it cannot be judged and the analyst is told to report a value that can:
never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_noop

from carmfg.exceptions import InvalidInput
from carmfg.texts import Text

QUALIFIERS = {"": "", "=": "", "<": "<", "<=": "<=", "≤": "<=", ">": ">", ">=": ">=", "≥": ">="}
QUALITATIVE_PAIRS = {
    "no_growth": ("no_growth", "growth"),
    "not_detected": ("not_detected", "detected"),
    "conforms": ("conforms", "does_not_conform"),
}


@dataclass(frozen=True)
class Interval:
    """The set of true values a reported result allows; bounds may be open."""

    low: Decimal | None
    low_open: bool
    high: Decimal | None
    high_open: bool


def result_interval(qualifier: str, value: Decimal) -> Interval:
    q = QUALIFIERS[qualifier]
    if q == "":
        return Interval(value, False, value, False)
    if q == "<":
        return Interval(None, True, value, True)
    if q == "<=":
        return Interval(None, True, value, False)
    if q == ">":
        return Interval(value, True, None, True)
    return Interval(value, False, None, True)


def limit_interval(limit_type: str, low: Decimal | None, high: Decimal | None) -> Interval:
    if limit_type == "gte":
        return Interval(low, False, None, True)
    if limit_type == "gt":
        return Interval(low, True, None, True)
    if limit_type == "lte":
        return Interval(None, True, high, False)
    if limit_type == "lt":
        return Interval(None, True, high, True)
    if limit_type == "range":
        return Interval(low, False, high, False)
    raise ValueError(f"{limit_type} has no numeric interval")


def _below_low(x: Decimal, x_open: bool, low: Decimal, low_open: bool) -> bool:
    """Is the lower end (x, open?) of a result interval below the limit's lower bound?"""
    if x < low:
        return True
    return x == low and low_open and not x_open


def _above_high(x: Decimal, x_open: bool, high: Decimal, high_open: bool) -> bool:
    if x > high:
        return True
    return x == high and high_open and not x_open


def _inside(res: Interval, lim: Interval) -> bool:
    """Every value the result allows meets the limit."""
    low_ok = lim.low is None or (res.low is not None and not _below_low(res.low, res.low_open, lim.low, lim.low_open))
    high_ok = lim.high is None or (
        res.high is not None and not _above_high(res.high, res.high_open, lim.high, lim.high_open)
    )
    return low_ok and high_ok


def _disjoint(res: Interval, lim: Interval) -> bool:
    """No value the result allows meets the limit (entirely below or entirely above)."""
    below = (
        lim.low is not None and res.high is not None
        and (res.high < lim.low or (res.high == lim.low and (res.high_open or lim.low_open)))
    )
    above = (
        lim.high is not None and res.low is not None
        and (res.low > lim.high or (res.low == lim.high and (res.low_open or lim.high_open)))
    )
    return below or above


@dataclass(frozen=True)
class Evaluation:
    outcome: str  # "pass", "fail", "reported"
    detail: str


def parse_number(raw: object, *, field: str = gettext_noop("Value")) -> tuple[str, Decimal]:
    """Parse what an analyst typed: "0.5", "≤0.5", "< 0.5", "1.2e9". Returns (qualifier, value)."""
    if isinstance(raw, Decimal):
        return "", raw
    if not isinstance(raw, str):
        raise InvalidInput(gettext_noop("%(field)s: expected a number."),
                           params={"field": Text(field)}, field=field.lower())
    text = raw.strip().replace(",", ".").replace(" ", "")
    qualifier = ""
    for q in ("<=", ">=", "≤", "≥", "<", ">", "="):
        if text.startswith(q):
            qualifier, text = QUALIFIERS[q], text[len(q):]
            break
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise InvalidInput(gettext_noop("%(field)s: %(raw)s is not a number (write e.g. 0.5, ≤0.5 or 1.2e9)."),
                           params={"field": Text(field), "raw": repr(raw)},
                           field=field.lower()) from None
    if not value.is_finite() or abs(value) >= Decimal("1e18"):
        raise InvalidInput(gettext_noop("%(field)s: %(raw)s is out of range."),
                           params={"field": Text(field), "raw": repr(raw)}, field=field.lower())
    return qualifier, value


def evaluate(test, *, qualifier: str = "", value: Decimal | None = None, qualitative: str = "") -> Evaluation:
    """Evaluate one result against ``test`` (a TestDefinition or anything with its fields)."""
    if test.limit_type == "report":
        return Evaluation("reported", gettext_noop("Reported only; no acceptance limit."))
    if test.limit_type == "qualitative":
        passing = test.passing_result
        allowed = QUALITATIVE_PAIRS.get(passing, (passing,))
        if qualitative not in allowed:
            raise InvalidInput(gettext_noop("%(test)s: the result must be one of %(allowed)s."),
                               params={"test": test.name, "allowed": ', '.join(allowed)}, field="qualitative")
        ok = qualitative == passing
        # Stored in English; the QC page translates it (qc_tags.evaluation_detail_text).
        return Evaluation("pass" if ok else "fail",
                          gettext_noop("Required: %(result)s.") % {"result": passing.replace("_", " ")})
    if value is None:
        raise InvalidInput(gettext_noop("%(test)s: a numeric result is required."),
                           params={"test": test.name}, field="value")
    if qualifier not in QUALIFIERS:
        raise InvalidInput(gettext_noop("%(test)s: unknown qualifier %(qualifier)s."),
                           params={"test": test.name, "qualifier": repr(qualifier)}, field="value")
    res = result_interval(qualifier, value)
    lim = limit_interval(test.limit_type, test.low, test.high)
    if _inside(res, lim):
        return Evaluation("pass", gettext_noop("Within the limit."))
    if _disjoint(res, lim):
        return Evaluation("fail", gettext_noop("Outside the limit."))
    raise InvalidInput(
        gettext_noop("%(test)s: the censored result %(qualifier)s%(value)s can neither meet nor fail the limit; "
                     "report a value the limit can judge (e.g. re-test with a lower limit of quantification)."),
        params={"test": test.name, "qualifier": QUALIFIERS[qualifier], "value": value},
        field="value",
    )
