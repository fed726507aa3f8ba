"""Container labels for the chain of identity: one DIN on every bag, vessel and sample.

Each label is a page of 100 mm x 60 mm, the size of a common thermal-transfer label
stock, and carries the DIN three ways: eye-readable with its boxed check character,
as Code 128 and as DataMatrix (both ``=`` + 13 characters + 2 flags, ISBT 128 data
structure 001), so a hand scanner of either kind reads the same data. A label with a
container code (``FP-2``) prints it large and adds it to the DataMatrix after a ``/``
(see ``batches.scans``): one scan then names the donation and the container.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_noop
from weasyprint import HTML
from weasyprint.document import Document
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from batches.barcodes import code128_svg, datamatrix_svg, svg_data_uri
from batches.isbt128 import Din
from batches.models import ContainerType
from batches.scans import container_type_of, label_scan_data
from carmfg.exceptions import InvalidInput
from carmfg.textinput import clean_text

LABEL_TEMPLATE = "documents/labels/labels.html"
LABEL_WIDTH_MM = 100
LABEL_HEIGHT_MM = 60
MAX_COPIES = 50
MAX_PAGES = 500
EARLIEST_BIRTH_YEAR = 1900

# Longest texts that still fit their place on the label at the printed size.
MAX_LENGTHS = {
    "product_name": 40,
    "product_code": 10,
    "patient_pseudonym": 16,
    "patient_initials": 5,
    "sample_text": 40,
    "statement": 56,
    "site_name": 60,
    "container_code": 6,
}
OPTIONAL_TEXTS = frozenset({"sample_text", "statement", "container_code"})

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class LabelError(InvalidInput):
    default_message = gettext_noop("The label cannot be printed.")


@dataclass(frozen=True)
class LabelData:
    """What one label shows. Times are aware datetimes, printed in ``time_zone``;
    a ``date`` prints without a time."""

    din: Din
    container_type: ContainerType
    product_name: str
    product_code: str
    patient_pseudonym: str
    patient_initials: str
    patient_birth_year: int
    collected_at: date | datetime
    expires_at: date | datetime | None
    site_name: str
    time_zone: str = "UTC"
    sample_text: str = ""
    statement: str = ""
    container_code: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.din, Din):
            raise LabelError(gettext_noop("A label needs a parsed DIN."), field="din")
        try:
            container = ContainerType(self.container_type)
        except ValueError:
            raise LabelError(
                gettext_noop("Unknown container type %(type)s; expected one of %(expected)s."),
                params={"type": repr(self.container_type), "expected": ", ".join(ContainerType.values)},
                field="container_type",
            ) from None
        object.__setattr__(self, "container_type", container)
        for name, max_length in MAX_LENGTHS.items():
            required = name not in OPTIONAL_TEXTS
            try:
                value = clean_text(
                    getattr(self, name), field=name, max_length=max_length, required=required
                )
            except InvalidInput as exc:
                raise LabelError(exc.template, params=exc.params, field=name) from None
            if "\n" in value or "\r" in value or "\t" in value:
                raise LabelError(gettext_noop("%(field)s: must be on one line."), params={"field": name}, field=name)
            object.__setattr__(self, name, value)
        if self.container_code:
            try:
                kind = container_type_of(self.container_code)
            except InvalidInput as exc:
                raise LabelError(exc.template, params=exc.params, field="container_code") from None
            if kind != container:
                raise LabelError(
                    gettext_noop("container_code: %(code)s is the code of a %(kind)s, not of a %(expected)s."),
                    params={"code": self.container_code, "kind": kind.label.lower(),
                            "expected": container.label.lower()},
                    field="container_code",
                )
        year = self.patient_birth_year
        this_year = timezone.now().year
        if isinstance(year, bool) or not isinstance(year, int):
            raise LabelError(gettext_noop("patient_birth_year: must be a year."), field="patient_birth_year")
        if not EARLIEST_BIRTH_YEAR <= year <= this_year:
            raise LabelError(
                gettext_noop("patient_birth_year: %(year)s is not between %(earliest)s and %(latest)s."),
                params={"year": year, "earliest": EARLIEST_BIRTH_YEAR, "latest": this_year},
                field="patient_birth_year",
            )
        zone = _zone(self.time_zone)
        _check_moment(self.collected_at, "collected_at")
        if self.expires_at is not None:
            _check_moment(self.expires_at, "expires_at")
            expires, collected = self.expires_at, self.collected_at
            if isinstance(expires, datetime) and isinstance(collected, datetime):
                in_order = expires > collected
            else:
                in_order = _local_date(expires, zone) >= _local_date(collected, zone)
            if not in_order:
                raise LabelError(
                    gettext_noop("expires_at: the expiry is not after the collection."), field="expires_at"
                )
        elif container is ContainerType.FINAL_PRODUCT_BAG:
            raise LabelError(gettext_noop("expires_at: a final product bag needs an expiry."), field="expires_at")


def _check_moment(value: object, field: str) -> None:
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise LabelError(gettext_noop("%(field)s: needs a time zone (an aware datetime)."), params={"field": field},
                             field=field)
    elif not isinstance(value, date):
        raise LabelError(gettext_noop("%(field)s: must be a date or a datetime."), params={"field": field}, field=field)


def _zone(name: object) -> zoneinfo.ZoneInfo:
    try:
        if not isinstance(name, str) or not name:
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise LabelError(
            gettext_noop("time_zone: %(name)s is not a known IANA time zone."), params={"name": repr(name)},
            field="time_zone",
        ) from None


def _local_date(value: date | datetime, zone: zoneinfo.ZoneInfo) -> date:
    return value.astimezone(zone).date() if isinstance(value, datetime) else value


def format_label_moment(value: date | datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``12 JAN 2025`` or ``12 JAN 2025 14:30 MSK``: month as letters, so no reader
    mistakes day and month."""
    if isinstance(value, datetime):
        local = value.astimezone(zone)
        return (
            f"{local.day:02d} {MONTHS[local.month - 1]} {local.year} {local:%H:%M} {local.tzname()}"
        )
    return f"{value.day:02d} {MONTHS[value.month - 1]} {value.year}"


def _label_context(label: LabelData) -> dict[str, object]:
    zone = _zone(label.time_zone)
    din = label.din
    data = din.barcode_data
    matrix_data = label_scan_data(din, label.container_code) if label.container_code else data
    return {
        "label": label,
        "din": din,
        "container": label.container_type.label,
        "collected": format_label_moment(label.collected_at, zone),
        "expires": format_label_moment(label.expires_at, zone) if label.expires_at else "",
        "code128_uri": svg_data_uri(code128_svg(data)),
        "datamatrix_uri": svg_data_uri(datamatrix_svg(matrix_data)),
    }


def render_labels_html(labels: list[LabelData], *, copies: int = 1) -> str:
    """The HTML that ``render_labels_pdf`` prints: each label ``copies`` times in a row."""
    if not labels:
        raise LabelError(gettext_noop("There are no labels to print."))
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
        raise LabelError(gettext_noop("copies: must be a whole number from 1 to %(max)s; got %(got)s."),
                         params={"max": MAX_COPIES, "got": repr(copies)})
    if len(labels) * copies > MAX_PAGES:
        raise LabelError(
            gettext_noop("%(count)s labels in one print job; at most %(max)s are allowed."),
            params={"count": len(labels) * copies, "max": MAX_PAGES},
        )
    for label in labels:
        if not isinstance(label, LabelData):
            raise LabelError(gettext_noop("Every label must be a LabelData."))
    pages = []
    for label in labels:
        context = _label_context(label)
        pages.extend([context] * copies)
    return render_to_string(
        LABEL_TEMPLATE,
        {"pages": pages, "width_mm": LABEL_WIDTH_MM, "height_mm": LABEL_HEIGHT_MM},
    )


def render_labels_pdf(labels: list[LabelData], *, copies: int = 1) -> bytes:
    """A PDF with one 100 mm x 60 mm page per label, each label ``copies`` times in a row.

    A label whose text does not fit its page is refused, never clipped or overprinted.
    """
    html = render_labels_html(labels, copies=copies)
    document = _layout(html)
    if len(document.pages) != len(labels) * copies:
        for number, label in enumerate(labels, start=1):
            if len(_layout(render_labels_html([label])).pages) != 1:
                raise LabelError(
                    gettext_noop("Label %(number)s (DIN %(din)s) does not fit on one %(width)s x %(height)s mm "
                                 "label: shorten its product name, site name, sample text or statement."),
                    params={"number": number, "din": label.din.display, "width": LABEL_WIDTH_MM,
                            "height": LABEL_HEIGHT_MM},
                )
        raise RuntimeError("The labels laid out on more pages than there are labels.")
    return document.write_pdf()


def _layout(html: str) -> Document:
    # Only the data: URIs of the barcodes may load, and a failed load stops the job: a
    # label without its barcode must never be printed.
    fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    try:
        return HTML(string=html, url_fetcher=fetcher).render()
    except FatalURLFetchingError as exc:
        raise RuntimeError(f"A label resource failed to load: {exc}") from exc
