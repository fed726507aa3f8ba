"""ISBT 128 DINs: the check character, what scanners and people enter, numbering."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from batches.isbt128 import (
    ALPHABET,
    Din,
    DinError,
    check_character,
    next_din,
    parse_din,
)
from carmfg.exceptions import InvalidInput

LETTERS = string.ascii_uppercase
ALNUM = string.digits + string.ascii_uppercase

# DOMAIN.md section 4, and the worked example of the UK transfusion guidelines' annex
# on the ISBT 128 check character (G123498654321 -> H).
VECTORS = [
    ("G123417654321", "A"),
    ("A999921123456", "3"),
    ("W000009123456", "G"),
    ("A999818123456", "N"),
    ("G123498654321", "H"),
]


def _value(ch: str) -> int:
    return ALPHABET.index(ch)


def _weights() -> list[int]:
    """The weight of each of the 14 positions (13 DIN characters, then the check)."""
    return [pow(2, 13 - i, 37) for i in range(13)] + [1]


fins = st.builds(
    lambda first, rest: first + "".join(rest),
    st.sampled_from(LETTERS),
    st.lists(st.sampled_from(ALNUM), min_size=4, max_size=4),
)
digits = st.sampled_from(string.digits)


@st.composite
def dins(draw: st.DrawFn) -> Din:
    fin = draw(fins)
    year = "".join(draw(st.lists(digits, min_size=2, max_size=2)))
    sequence = "".join(draw(st.lists(digits, min_size=6, max_size=6)))
    check = check_character(fin + year + sequence)
    flags = draw(
        st.one_of(
            st.none(),
            st.integers(0, 59).map(lambda n: f"{n:02d}"),
            st.integers(97, 99).map(str),
            st.just(f"{60 + _value(check)}"),
        )
    )
    return Din(facility=fin, year=year, sequence=sequence, flags=flags)


def scanner_forms(din: Din) -> list[str]:
    """Every form a keyboard-wedge scanner or a person may send for ``din``."""
    flags = din.barcode_flags
    bodies = [
        din.din13,
        din.din13 + din.check,
        din.din13 + flags,
        din.din13 + flags + din.check,
        f"{din.facility} {din.year} {din.sequence} {din.check}",
    ]
    forms = []
    for body in bodies:
        for prefix in ("", "="):
            for text in (prefix + body, (prefix + body).lower()):
                forms.extend([text, f"  {text}\r\n", f"\t{text} "])
    return forms


# -- check character --------------------------------------------------------------


@pytest.mark.parametrize(("din13", "expected"), VECTORS)
def test_check_character_matches_published_vectors(din13, expected):
    assert check_character(din13) == expected


@given(dins())
def test_a_valid_din_with_its_check_character_sums_to_one_mod_37(din):
    # ISO/IEC 7064 pure system: sum of value x weight over all 14 characters is 1 mod 37.
    total = sum(_value(ch) * w for ch, w in zip(din.din14, _weights(), strict=True))
    assert total % 37 == 1


def test_mod_37_2_detects_every_single_substitution_at_every_position():
    # Proof by exhaustion of the algebra, for any DIN: replacing value a by b at a
    # position of weight w changes the checked sum by (b - a) * w. 37 is prime and no
    # weight (a power of 2) is 0 mod 37, so the change is never 0 mod 37: a single
    # substituted character, check character included, always fails the check.
    for w in _weights():
        assert w % 37 != 0
        for a in range(37):
            for b in range(37):
                if a != b:
                    assert ((b - a) * w) % 37 != 0, (w, a, b)


def test_mod_37_2_detects_every_adjacent_transposition():
    # Swapping a and b at neighbouring positions of weights 2w and w changes the sum by
    # (a - b) * (2w - w) = (a - b) * w: never 0 mod 37 when a != b.
    weights = _weights()
    for i in range(len(weights) - 1):
        for a in range(37):
            for b in range(37):
                if a != b:
                    delta = (b * weights[i] + a * weights[i + 1]) - (
                        a * weights[i] + b * weights[i + 1]
                    )
                    assert delta % 37 != 0, (i, a, b)


@pytest.mark.parametrize(("din13", "check"), VECTORS)
def test_parse_din_rejects_every_single_substitution_of_a_vector(din13, check):
    keyed = din13 + check
    for position in range(len(keyed)):
        for replacement in ALPHABET:
            if replacement == keyed[position]:
                continue
            wrong = keyed[:position] + replacement + keyed[position + 1 :]
            with pytest.raises(DinError):
                parse_din(wrong)


@given(dins(), st.integers(0, 13), st.sampled_from(ALPHABET))
def test_parse_din_rejects_a_single_substitution_in_any_din(din, position, replacement):
    keyed = din.din14
    if replacement == keyed[position]:
        return
    wrong = keyed[:position] + replacement + keyed[position + 1 :]
    with pytest.raises(DinError):
        parse_din(wrong)


@given(dins(), st.integers(0, 12))
def test_parse_din_rejects_an_adjacent_transposition_in_any_din(din, position):
    keyed = din.din14
    if keyed[position] == keyed[position + 1]:
        return
    swapped = keyed[:position] + keyed[position + 1] + keyed[position] + keyed[position + 2 :]
    with pytest.raises(DinError):
        parse_din(swapped)


@pytest.mark.parametrize("bad", ["G12341765432", "g123417654321", "G12341765432*", 123])
def test_check_character_refuses_what_is_not_13_din_characters(bad):
    with pytest.raises(DinError):
        check_character(bad)


# -- parsing ----------------------------------------------------------------------


@given(dins())
def test_every_din_parses_back_from_every_scanner_form(din):
    for text in scanner_forms(din):
        parsed = parse_din(text)
        assert parsed == din, text
        assert parsed.din13 == din.din13
        assert parsed.check == din.check


@given(dins())
def test_the_barcode_data_parses_back_with_its_flags(din):
    parsed = parse_din(din.barcode_data)
    assert parsed.flags == din.barcode_flags
    assert parsed.barcode_data == din.barcode_data


def test_din_parts_and_forms():
    din = parse_din("=G12341765432100")
    assert (din.facility, din.year, din.sequence, din.flags, din.check) == (
        "G1234",
        "17",
        "654321",
        "00",
        "A",
    )
    assert din.din13 == "G123417654321"
    assert din.din14 == "G123417654321A"
    assert din.barcode_data == "=G12341765432100"
    assert din.display == "G1234 17 654321 00 [A]"
    assert str(din) == din.display


def test_a_din_without_flags_is_encoded_with_flags_00_and_displayed_without():
    din = parse_din("G123417654321A")
    assert din.flags is None
    assert din.barcode_data == "=G12341765432100"
    assert din.display == "G1234 17 654321 [A]"


def test_the_same_donation_with_other_flags_is_the_same_din():
    assert (
        parse_din("G12341765432101") == parse_din("G12341765432102") == parse_din("G123417654321")
    )
    assert parse_din("G123417654321") != parse_din("G123417654322")


@pytest.mark.parametrize(
    "text",
    [
        "G123417654321",  # 13: DIN only
        "G123417654321A",  # 14: DIN + check
        "G12341765432100",  # 15: DIN + flags
        "G12341765432100A",  # 16: DIN + flags + check
        "G12341765432170A",  # type 2 flags (60 + 10) agree with check A
        "=G123417654321A",  # scanner turning type 2 flags into the check character
        "  =g12341765432100\r\n",
        "G1234 17 654321 A",
    ],
)
def test_accepted_forms(text):
    assert parse_din(text).din13 == "G123417654321"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("G123417654321K", "The check character is K but the DIN's is A"),
        ("G12341765432100K", "The check character is K but the DIN's is A"),
        (
            "1G23417654321",
            "facility identification number must be a letter followed by 4 letters or digits",
        ),
        (
            "G12-417654321",
            "facility identification number must be a letter followed by 4 letters or digits",
        ),
        ("G12341X654321", "The year must be 2 digits"),
        ("G1234170654X1", "The sequence number must be 6 digits"),
        ("G123417654321A0", "The flag characters must be 2 digits"),
        (
            "G12341765432161",
            "The flag characters 61 stand for check character 1 but the DIN's is A",
        ),
        ("G123417654321\x00", "NUL byte"),
        ("G12341765432", "too short: 12 characters"),
        ("G1234176543210000", "too long: 17 characters"),
        ("G" * 65, "too long: 65 characters"),
        ("", "No DIN was entered"),
        ("   \r\n", "No DIN was entered"),
        ("=<E0001V00", "not a DIN barcode"),
        ("&>0250991200", "not a DIN barcode"),
        ("G1234\t17654321", "'\\t'"),
        ("G123417654321\u00c4", "LATIN CAPITAL LETTER A WITH DIAERESIS"),
        ("G12341765432\u0131", "DOTLESS I"),  # upper-cases to a plain "I"
        ("G12341765432\uff11", "FULLWIDTH DIGIT ONE"),
        ("G123417654321-", "The check character must be a letter, a digit or '*'"),
    ],
)
def test_parse_din_says_exactly_what_is_wrong(text, message):
    with pytest.raises(DinError) as excinfo:
        parse_din(text)
    assert message in excinfo.value.message
    assert excinfo.value.field == "din"


def test_din_error_is_an_invalid_input():
    assert issubclass(DinError, InvalidInput)


def test_parse_din_refuses_what_is_not_text():
    with pytest.raises(DinError, match="must be text"):
        parse_din(b"G123417654321")  # type: ignore[arg-type]


@given(st.text(max_size=80))
@example("=")
@example("=G")
@example("G123417654321*")
@example("ﬀ" * 13)
def test_arbitrary_text_parses_or_raises_only_din_error(text):
    try:
        din = parse_din(text)
    except DinError as exc:
        message = exc.message
    else:
        assert isinstance(din, Din)
        assert parse_din(din.din14) == din
        return
    assert message


@given(st.from_regex(r"\A=?[A-Za-z0-9*&<>%= ]{10,18}\Z"))
def test_near_miss_scans_parse_or_raise_only_din_error(text):
    try:
        din = parse_din(text)
    except DinError:
        return
    assert check_character(din.din13) == din.check


# -- the value type ---------------------------------------------------------------


def test_a_din_cannot_be_built_with_a_wrong_part():
    with pytest.raises(DinError, match="year must be 2 digits"):
        Din(facility="G1234", year="2017", sequence="654321")
    with pytest.raises(DinError, match="facility identification number"):
        Din(facility="g1234", year="17", sequence="654321")


def test_a_din_computes_its_own_check_character():
    assert Din(facility="G1234", year="17", sequence="654321").check == "A"


# -- numbering --------------------------------------------------------------------


def test_next_din_follows_the_last_sequence():
    din = next_din("W0001", 2025, 41)
    assert din.din13 == "W000125000042"
    assert din.check == check_character("W000125000042")
    assert next_din("W0001", 25, 41) == din


def test_the_first_din_of_a_year_is_sequence_1():
    assert next_din("W0001", 2026, 0).sequence == "000001"


def test_next_din_refuses_to_wrap_the_sequence():
    assert next_din("W0001", 2025, 999_998).sequence == "999999"
    with pytest.raises(DinError, match="are used"):
        next_din("W0001", 2025, 999_999)


@pytest.mark.parametrize(
    ("fin", "year", "last", "message"),
    [
        ("w0001", 2025, 1, "facility identification number"),
        ("10001", 2025, 1, "facility identification number"),
        ("W0001", 1999, 1, "calendar year"),
        ("W0001", 100, 1, "calendar year"),
        ("W0001", "2025", 1, "whole number"),
        ("W0001", 2025, -1, "between 0 and 999999"),
        ("W0001", 2025, 1_000_000, "between 0 and 999999"),
        ("W0001", 2025, True, "whole number"),
    ],
)
def test_next_din_refuses_bad_arguments(fin, year, last, message):
    with pytest.raises(DinError, match=message):
        next_din(fin, year, last)


@given(fins, st.integers(2000, 2099), st.integers(0, 999_998))
def test_next_din_always_gives_a_valid_din_that_parses_back(fin, year, last):
    din = next_din(fin, year, last)
    assert int(din.sequence) == last + 1
    assert parse_din(din.barcode_data) == din
    assert parse_din(din.din14) == din
