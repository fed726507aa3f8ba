"""What a container label's barcodes carry, and reading a scan of them back.

Every label carries the donation's DIN twice, and the DataMatrix also names the
container, so one scan says *whose* material this is and *which* container:

* **Code 128**: ``=`` + DIN (13 characters) + 2 flags, ISBT 128 data structure 001
  and nothing else, so any ISBT 128 reader (apheresis unit, blood bank) reads it:
  ``=W00012600004200``.
* **DataMatrix**: the same, then ``/`` and the container code:
  ``=W00012600004200/FP-2``. ``/`` can appear neither in a DIN nor in a container
  code, so the two parts never run into each other.

Container codes are a two-letter prefix per container type and a number, unique per
donation and never reused (a destroyed FP-2 is replaced by a new FP-n):
``AB`` apheresis bag, ``CV`` culture vessel, ``QC`` QC sample, ``FP`` final product bag.

A keyboard-wedge scanner types either symbol into the scan field; people may also
type the DIN from the label. :func:`parse_label_scan` reads all of these; a DIN
without a container code identifies the donation but not the container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext_noop

from batches.isbt128 import MAX_RAW_INPUT_LENGTH, Din, DinError, parse_din
from batches.models import ContainerType
from carmfg.exceptions import InvalidInput

CONTAINER_SEPARATOR = "/"
CONTAINER_PREFIXES: dict[str, str] = {
    ContainerType.APHERESIS_BAG: "AB",
    ContainerType.CULTURE_VESSEL: "CV",
    ContainerType.QC_SAMPLE: "QC",
    ContainerType.FINAL_PRODUCT_BAG: "FP",
}
_TYPE_BY_PREFIX = {prefix: ContainerType(kind) for kind, prefix in CONTAINER_PREFIXES.items()}
MAX_CONTAINER_NUMBER = 999
_CONTAINER_CODE_RE = re.compile(r"(AB|CV|QC|FP)-([1-9][0-9]{0,2})")
# A scan longer than this is not one of ours (the longest is 16 + 1 + 6 characters).
MAX_SCAN_LENGTH = MAX_RAW_INPUT_LENGTH + 8
# What an audit event or a message shows of a scan: enough to investigate, bounded.
SHOWN_SCAN_LENGTH = 120


class ScanError(InvalidInput):
    """What was scanned is not a label of ours."""

    default_message = gettext_noop("This scan is not a container label.")

    def __init__(self, message: str | None = None, *, field: str | None = "scanned_code",
                 params: dict[str, object] | None = None) -> None:
        super().__init__(message, field=field, params=params)


@dataclass(frozen=True)
class LabelScan:
    din: Din
    container_code: str | None


def container_code(container_type: str, number: int) -> str:
    """``FP-2``: the container code of the ``number``-th container of a type."""
    if not 1 <= number <= MAX_CONTAINER_NUMBER:
        raise InvalidInput(gettext_noop("A donation has at most %(max)s labels of one container type."),
                           params={"max": MAX_CONTAINER_NUMBER})
    return f"{CONTAINER_PREFIXES[container_type]}-{number}"


def container_number(code: str) -> int:
    match = _CONTAINER_CODE_RE.fullmatch(code)
    if match is None:
        raise ScanError(gettext_noop("%(code)s is not a container code (e.g. AB-1, FP-2)."), params={"code": shown(code)})
    return int(match.group(2))


def container_type_of(code: str) -> ContainerType:
    match = _CONTAINER_CODE_RE.fullmatch(code)
    if match is None:
        raise ScanError(gettext_noop("%(code)s is not a container code (e.g. AB-1, FP-2)."), params={"code": shown(code)})
    return _TYPE_BY_PREFIX[match.group(1)]


def din_of(donation) -> Din:
    """The ``Din`` of a donation record, with the flags its labels print."""
    return Din(facility=donation.din[:5], year=donation.din[5:7], sequence=donation.din[7:], flags=donation.flags)


def label_scan_data(din: Din, code: str) -> str:
    """What the DataMatrix of the label of container ``code`` encodes."""
    container_type_of(code)
    return din.barcode_data + CONTAINER_SEPARATOR + code


def parse_label_scan(scanned: object) -> LabelScan:
    """Read a scanned or typed label; raises ``ScanError`` naming what is wrong."""
    if not isinstance(scanned, str):
        raise ScanError(gettext_noop("A scan must be text."))
    if len(scanned) > MAX_SCAN_LENGTH:
        raise ScanError(gettext_noop("The scan is %(length)s characters long: no label of ours is that long."),
                        params={"length": f"{len(scanned):,}"})
    text = scanned.strip()
    if not text:
        raise ScanError(gettext_noop("Nothing was scanned."))
    din_part, separator, code_part = text.rpartition(CONTAINER_SEPARATOR)
    if not separator:
        din_part, code_part = text, ""
    try:
        din = parse_din(din_part)
    except DinError as exc:
        raise ScanError(exc.template, params=exc.params) from None
    if not separator:
        return LabelScan(din=din, container_code=None)
    code = code_part.strip().upper()
    if not code.isascii() or _CONTAINER_CODE_RE.fullmatch(code) is None:
        raise ScanError(
            gettext_noop("After the DIN the scan holds %(code)s, which is not a container code (e.g. AB-1, FP-2)."),
            params={"code": shown(code_part)},
        )
    return LabelScan(din=din, container_code=code)


def shown(scanned: object) -> str:
    """A scan as it may be shown and audited: printable, bounded, control characters
    written out (a scanner may send a tab or a group separator)."""
    if not isinstance(scanned, str):
        return f"<{type(scanned).__name__}>"
    out = []
    for ch in scanned.strip():
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    text = "".join(out)
    if len(text) > SHOWN_SCAN_LENGTH:
        text = text[: SHOWN_SCAN_LENGTH - 1] + "…"
    return text or "(nothing)"
