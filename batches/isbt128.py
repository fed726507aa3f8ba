"""ISBT 128 donation identification numbers (DIN): check character, parsing, numbering.

One DIN follows a patient's cells from apheresis to infusion; every label, sample and
scan in the chain of identity carries it. A DIN is 13 characters:

    G1234 17 654321
    ^^^^^ facility identification number (FIN): a letter and 4 letters or digits
          ^^ year (2 digits)
             ^^^^^^ sequence number within the facility and year (6 digits)

Labels print it with 2 flag characters and a boxed check character (ISO/IEC 7064
mod 37-2 over the 13 characters). The barcodes carry ISBT 128 data structure 001:
``=`` (the data identifier) + the 13 characters + the 2 flags, never the check
character. Flags are 2 digits: 00 means "not used", 01-59 are for local process
control, 60-96 carry the check value + 60 (so a scanner can verify the DIN) and
97-99 are reserved.

``parse_din`` reads what a person types or a keyboard-wedge scanner sends. Surrounding
whitespace is dropped, and so are spaces inside (people type the DIN as printed, in
groups); the text must be ASCII and is upper-cased; one leading ``=`` is removed. What
is left is read by its length alone, so no input has two readings:

    13  DIN                               typed without check character
    14  DIN + check character             typed from the label; or a scanner set to
                                          turn type 2 flags into the check character
    15  DIN + 2 flag characters           a scanned Code 128 or DataMatrix
    16  DIN + 2 flags + check character   typed in the label's reading order

A check character, where given, must match; flags 60-96 must match the check value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from django.utils.translation import gettext_noop

from carmfg.exceptions import InvalidInput

# ISO/IEC 7064 mod 37-2 alphabet: a character's value is its index.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_VALUES = {ch: value for value, ch in enumerate(ALPHABET)}
_DIN_CHARACTERS = frozenset(ALPHABET[:36])

DATA_IDENTIFIER = "="
NO_FLAGS = "00"
# Type 2 flags: the check value + 60 (ISBT 128 data structure 001).
TYPE2_FLAGS_BASE = 60

DIN_LENGTH = 13
# "=" + 13 + 2 flags + check character, once spaces are removed.
MAX_DIN_INPUT_LENGTH = 17
# Longer raw input is refused before any other work: nothing valid is that long, even
# with the spaces of the printed groups and a scanner's trailing CR/LF.
MAX_RAW_INPUT_LENGTH = 64
SEQUENCE_MAX = 999_999

_FIN_RE = re.compile(r"[A-Z][A-Z0-9]{4}")
_YEAR_RE = re.compile(r"[0-9]{2}")
_SEQUENCE_RE = re.compile(r"[0-9]{6}")
_FLAGS_RE = re.compile(r"[0-9]{2}")


class DinError(InvalidInput):
    """A donation identification number was malformed or failed its check character."""

    default_message = gettext_noop("This is not a valid donation identification number (DIN).")

    def __init__(self, message: str | None = None, *, field: str | None = "din",
                 params: dict[str, object] | None = None) -> None:
        super().__init__(message, field=field, params=params)


def check_character(din13: str) -> str:
    """Return the ISO/IEC 7064 mod 37-2 check character of a 13-character DIN."""
    if not isinstance(din13, str) or len(din13) != DIN_LENGTH:
        raise DinError(gettext_noop("A DIN has %(length)s characters; got %(got)s."),
                       params={"length": DIN_LENGTH, "got": repr(din13)})
    s = 0
    for ch in din13:
        if ch not in _DIN_CHARACTERS:
            raise DinError(
                gettext_noop("%(char)s cannot appear in a DIN: only capital letters A-Z and digits 0-9 can."),
                params={"char": repr(ch)},
            )
        s = ((s + _VALUES[ch]) * 2) % 37
    return ALPHABET[(38 - s) % 37]


@dataclass(frozen=True, slots=True)
class Din:
    """A valid DIN. Two ``Din`` are equal when they name the same donation: flags,
    which only mark process steps or carry the check value, are not compared."""

    facility: str
    year: str
    sequence: str
    flags: str | None = field(default=None, compare=False)
    check: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.facility, str) or not _FIN_RE.fullmatch(self.facility):
            raise DinError(
                gettext_noop("The facility identification number must be a letter followed by 4 letters "
                             "or digits; got %(got)s."),
                params={"got": repr(self.facility)},
            )
        if not isinstance(self.year, str) or not _YEAR_RE.fullmatch(self.year):
            raise DinError(gettext_noop("The year must be 2 digits; got %(got)s."), params={"got": repr(self.year)})
        if not isinstance(self.sequence, str) or not _SEQUENCE_RE.fullmatch(self.sequence):
            raise DinError(gettext_noop("The sequence number must be 6 digits; got %(got)s."),
                           params={"got": repr(self.sequence)})
        if self.flags is not None and (
            not isinstance(self.flags, str) or not _FLAGS_RE.fullmatch(self.flags)
        ):
            raise DinError(gettext_noop("The flag characters must be 2 digits; got %(got)s."),
                           params={"got": repr(self.flags)})
        check = check_character(self.din13)
        object.__setattr__(self, "check", check)
        if self.flags is not None and int(self.flags) - TYPE2_FLAGS_BASE in range(len(ALPHABET)):
            flagged = ALPHABET[int(self.flags) - TYPE2_FLAGS_BASE]
            if flagged != check:
                raise DinError(
                    gettext_noop("The flag characters %(flags)s stand for check character %(flagged)s "
                                 "but the DIN's is %(check)s (flags %(check_flags)s)."),
                    params={"flags": self.flags, "flagged": flagged, "check": check,
                            "check_flags": TYPE2_FLAGS_BASE + _VALUES[check]},
                )

    @property
    def din13(self) -> str:
        """The 13 characters that identify the donation."""
        return f"{self.facility}{self.year}{self.sequence}"

    @property
    def din14(self) -> str:
        """The 13 characters and the check character: what a person keys in."""
        return self.din13 + self.check

    @property
    def barcode_flags(self) -> str:
        """The flags as encoded in a barcode: ``00`` ("not used") when there are none."""
        return self.flags if self.flags is not None else NO_FLAGS

    @property
    def barcode_data(self) -> str:
        """Data structure 001 as a scanner reads it: ``=`` + 13 characters + 2 flags."""
        return DATA_IDENTIFIER + self.din13 + self.barcode_flags

    @property
    def display(self) -> str:
        """The eye-readable form, in the label's groups: ``G1234 17 654321 00 [A]``.

        The check character is shown boxed as ``[A]``; the flags, when there are any,
        stand before it as on a printed label.
        """
        parts = [self.facility, self.year, self.sequence]
        if self.flags is not None:
            parts.append(self.flags)
        parts.append(f"[{self.check}]")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.display


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"{ch!r} ({name})" if name else repr(ch)


def parse_din(scanned: str) -> Din:
    """Read a DIN as typed or scanned (see the module docstring for the accepted forms).

    Raises ``DinError`` naming what is wrong; nothing else for any text.
    """
    if not isinstance(scanned, str):
        raise DinError(gettext_noop("A DIN must be text; got %(type)s."), params={"type": type(scanned).__name__})
    if "\x00" in scanned:
        raise DinError(gettext_noop("The scanned DIN contains a NUL byte, which is not allowed."))
    if len(scanned) > MAX_RAW_INPUT_LENGTH:
        raise DinError(
            gettext_noop("The scanned DIN is too long: %(length)s characters, where a DIN with "
                         "its '=', flags and check character has at most %(max)s."),
            params={"length": f"{len(scanned):,}", "max": MAX_DIN_INPUT_LENGTH},
        )
    text = scanned.strip()
    if not text:
        raise DinError(gettext_noop("No DIN was entered."))
    text = text.replace(" ", "")
    for ch in text:
        # Checked before upper-casing: "ı".upper() is "I" and "ﬀ".upper() is "FF", and a
        # look-alike must never turn into a valid DIN.
        if not ch.isascii() or not ch.isprintable():
            raise DinError(
                gettext_noop("The DIN contains %(char)s, which cannot appear in a DIN: only "
                             "letters A-Z, digits 0-9, a leading '=' and a '*' check character can."),
                params={"char": _describe(ch)},
            )
    text = text.upper()
    if text.startswith(DATA_IDENTIFIER):
        text = text[len(DATA_IDENTIFIER) :]
        if text and not text[0].isalnum():
            raise DinError(
                gettext_noop("This is not a DIN barcode: '=%(char)s' starts another ISBT 128 data "
                             "structure (a DIN starts with '=' and the facility's letter)."),
                params={"char": text[0]},
            )
    elif text[0] == "&":
        raise DinError(
            gettext_noop("This is not a DIN barcode: '&%(char)s' starts another ISBT 128 data structure."),
            params={"char": text[1:2]},
        )
    if len(text) > MAX_DIN_INPUT_LENGTH - len(DATA_IDENTIFIER):
        raise DinError(
            gettext_noop("The DIN is too long: %(length)s characters, where a DIN with its flags and "
                         "check character has at most 16."),
            params={"length": len(text)},
        )
    if len(text) < DIN_LENGTH:
        raise DinError(
            gettext_noop("The DIN is too short: %(length)s characters, where a DIN has %(din_length)s "
                         "(5 facility, 2 year, 6 sequence)."),
            params={"length": len(text), "din_length": DIN_LENGTH},
        )
    body = text[:DIN_LENGTH]
    rest = text[DIN_LENGTH:]
    flags: str | None = None
    given_check: str | None = None
    if len(rest) == 1:
        given_check = rest
    elif len(rest) == 2:
        flags = rest
    elif len(rest) == 3:
        flags, given_check = rest[:2], rest[2]

    din = Din(facility=body[:5], year=body[5:7], sequence=body[7:13], flags=flags)
    if given_check is not None:
        if given_check not in _VALUES:
            raise DinError(
                gettext_noop("The check character must be a letter, a digit or '*'; got %(got)s."),
                params={"got": repr(given_check)},
            )
        if given_check != din.check:
            raise DinError(
                gettext_noop("The check character is %(given)s but the DIN's is %(check)s: "
                             "re-scan or re-type the DIN."),
                params={"given": given_check, "check": din.check},
            )
    return din


def next_din(fin: str, year: int, last_sequence: int) -> Din:
    """The DIN after ``last_sequence`` (0 when none was issued) for ``fin`` and ``year``.

    ``year`` is the calendar year (2025) or its last 2 digits (25). A full sequence
    raises instead of wrapping, which would issue a DIN a second time.
    """
    if not isinstance(fin, str) or not _FIN_RE.fullmatch(fin):
        raise DinError(
            gettext_noop("The facility identification number must be a letter followed by 4 letters "
                         "or digits; got %(got)s."),
            params={"got": repr(fin)},
        )
    if isinstance(year, bool) or not isinstance(year, int):
        raise DinError(gettext_noop("The year must be a whole number; got %(got)s."), params={"got": repr(year)})
    if 2000 <= year <= 2099:
        year %= 100
    elif not 0 <= year <= 99:
        raise DinError(gettext_noop("The year must be a calendar year 2000-2099 or 0-99; got %(got)s."),
                       params={"got": year})
    if isinstance(last_sequence, bool) or not isinstance(last_sequence, int):
        raise DinError(gettext_noop("The last sequence number must be a whole number; got %(got)s."),
                       params={"got": repr(last_sequence)})
    if not 0 <= last_sequence <= SEQUENCE_MAX:
        raise DinError(
            gettext_noop("The last sequence number must be between 0 and %(max)s; got %(got)s."),
            params={"max": SEQUENCE_MAX, "got": last_sequence},
        )
    if last_sequence == SEQUENCE_MAX:
        raise DinError(
            gettext_noop("All %(count)s DINs of facility %(fin)s for year %(year)s are used: "
                         "no DIN can be issued until the next year (a wrap would reuse a DIN)."),
            params={"count": f"{SEQUENCE_MAX:,}", "fin": fin, "year": f"{year:02d}"},
        )
    return Din(facility=fin, year=f"{year:02d}", sequence=f"{last_sequence + 1:06d}")
