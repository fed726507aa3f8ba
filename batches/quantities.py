"""Numbers as technicians type them and read them back.

A recorded value is a ``Decimal``: what a person entered, never a float. Cell counts
are large, so ``1.2e9``, ``1.2x10^9`` and ``1.2×10⁹`` are all accepted and shown back
as ``1.20 × 10⁹``. A comma is refused rather than guessed: ``1,200`` is 1.2 in Moscow
and Barcelona but 1200 in a US SOP.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils.translation import gettext_noop

from carmfg.exceptions import InvalidInput

MAX_INPUT_LENGTH = 40
# StepRecord.value is DecimalField(max_digits=24, decimal_places=6).
MAX_ABS_VALUE = Decimal("1e18")
MAX_DECIMAL_PLACES = 6

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_TIMES_TEN = re.compile(r"^(?P<mantissa>[-+]?[0-9]*\.?[0-9]+)\s*[x×*·]\s*10\s*\^?\s*(?P<exp>[-+]?[0-9]{1,3})$")
_PLAIN = re.compile(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?$")


def parse_decimal(text: object, *, field: str = "Value") -> Decimal:
    """The number in ``text``, or ``InvalidInput`` saying what is wrong with it."""
    if isinstance(text, Decimal):
        value = text
    elif isinstance(text, int) and not isinstance(text, bool):
        value = Decimal(text)
    elif isinstance(text, str):
        value = _parse_text(text, field=field)
    else:
        raise InvalidInput(gettext_noop("%(field)s: expected a number."), params={"field": field}, field=field)
    if not value.is_finite():
        raise InvalidInput(gettext_noop("%(field)s: must be a finite number."), params={"field": field}, field=field)
    if abs(value) >= MAX_ABS_VALUE:
        raise InvalidInput(gettext_noop("%(field)s: %(value)s is too large to be a measured value."),
                           params={"field": field, "value": text}, field=field)
    return value


def _parse_text(text: str, *, field: str) -> Decimal:
    if "\x00" in text:
        raise InvalidInput(gettext_noop("%(field)s: contains a NUL byte, which is not allowed."),
                           params={"field": field}, field=field)
    raw = text.strip()
    if not raw:
        raise InvalidInput(gettext_noop("%(field)s: enter a number."), params={"field": field}, field=field)
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidInput(gettext_noop("%(field)s: %(length)s characters is too long for a number."),
                           params={"field": field, "length": len(raw)}, field=field)
    if "," in raw:
        raise InvalidInput(
            gettext_noop("%(field)s: “%(raw)s” contains a comma. Write the decimal separator as a point (72.5) "
                         "and no thousands separators (1200000 or 1.2e6)."),
            params={"field": field, "raw": raw}, field=field,
        )
    compact = raw.translate(_SUPERSCRIPTS).replace(" ", "").replace("\u2009", "").replace("\u2212", "-")
    match = _TIMES_TEN.match(compact)
    try:
        if match:
            return Decimal(match["mantissa"]).scaleb(int(match["exp"]))
        if _PLAIN.match(compact):
            return Decimal(compact)
    except InvalidOperation:
        pass
    raise InvalidInput(
        gettext_noop("%(field)s: “%(raw)s” is not a number. Examples: 72.5, 1200000, 1.2e9, 1.2x10^9."),
        params={"field": field, "raw": raw}, field=field,
    )


def decimal_places_of(value: Decimal) -> int:
    """How many places after the point the value needs (trailing zeros do not count)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_decimal_places(value: Decimal, places: int, *, field: str = "Value") -> Decimal:
    """``value`` written with ``places`` places; refused if it was given more precisely."""
    if decimal_places_of(value) > places:
        if places == 0:
            template = gettext_noop("%(field)s: %(value)s has %(count)s decimal places; "
                                    "this step records no decimal places.")
        elif places == 1:
            template = gettext_noop("%(field)s: %(value)s has %(count)s decimal places; "
                                    "this step records at most 1 decimal place.")
        else:
            template = gettext_noop("%(field)s: %(value)s has %(count)s decimal places; "
                                    "this step records at most %(places)s decimal places.")
        raise InvalidInput(template, params={"field": field, "value": f"{value.normalize():f}",
                                             "count": decimal_places_of(value), "places": places}, field=field)
    return value.quantize(Decimal(1).scaleb(-places))


def round_to(value: Decimal, places: int) -> Decimal:
    """Results of calculations, rounded half up (the convention of paper batch records)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


_SUPER = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def format_value(value, places: int | None = None) -> str:
    """A value for people: ``72.5``, ``1.20 × 10⁹`` for large or small magnitudes."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            return value
    if isinstance(value, int | float):
        value = Decimal(str(value))
    if not isinstance(value, Decimal) or not value.is_finite():
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100_000 or (0 < magnitude < Decimal("0.001")):
        exponent = magnitude.adjusted()
        mantissa = value.scaleb(-exponent).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if abs(mantissa) >= 10:  # 9.995 rounds up to 10.00
            exponent += 1
            mantissa = value.scaleb(-exponent).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return f"{mantissa} × 10{str(exponent).translate(_SUPER)}"
    if places is not None:
        return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value.normalize():f}"
