"""Container labels: the PDF prints, and its barcodes scan back to the label's DIN.

Barcodes are decoded for real: the PDF is rasterised with pdfium (pypdfium2) at the
resolutions of thermal label printers (203 and 300 dpi) and read with zxing-cpp, as a
hand scanner would read the printed label.
"""

from __future__ import annotations

import io
import string
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from pypdf import PdfReader

from batches.barcodes import (
    BarcodeError,
    code128_modules,
    code128_svg,
    datamatrix_matrix,
    datamatrix_svg,
)
from batches.isbt128 import ALPHABET, Din, check_character, next_din, parse_din
from batches.labels import (
    MAX_LENGTHS,
    LabelData,
    LabelError,
    _layout,
    format_label_moment,
    render_labels_html,
    render_labels_pdf,
)
from batches.models import ContainerType
from carmfg.exceptions import InvalidInput

PRINTER_DPIS = (203, 300)
MM_PER_PT = 25.4 / 72
SCANNER = zxingcpp.BarcodeFormats(
    [zxingcpp.BarcodeFormat.Code128, zxingcpp.BarcodeFormat.DataMatrix]
)


def make_label(din: Din | None = None, **overrides) -> LabelData:
    fields: dict[str, Any] = {
        "din": din or parse_din("=G12341765432100"),
        "container_type": ContainerType.FINAL_PRODUCT_BAG,
        "product_name": "ARI-0001 CAR-T cells, fresh",
        "product_code": "S1234V00",
        "patient_pseudonym": "PSN-2025-0042",
        "patient_initials": "A.B.",
        "patient_birth_year": 1968,
        "collected_at": datetime(2025, 1, 10, 5, 30, tzinfo=UTC),
        "expires_at": datetime(2025, 1, 22, 17, 0, tzinfo=UTC),
        "site_name": "Cell Therapy Unit, Hospital Clinic",
        "time_zone": "Europe/Madrid",
        "sample_text": "Fraction 2 of 3 - 30 % of dose",
        "statement": "For autologous use only",
    }
    fields.update(overrides)
    return LabelData(**fields)


def scan_pages(pdf: bytes, dpi: int) -> list[list[tuple[zxingcpp.BarcodeFormat, str]]]:
    """What a scanner reads on each page, printed at ``dpi``."""
    document = pdfium.PdfDocument(pdf)
    try:
        pages = []
        for page in document:
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            found = zxingcpp.read_barcodes(
                image, formats=SCANNER, text_mode=zxingcpp.TextMode.Plain
            )
            pages.append(sorted((r.format, r.text) for r in found))
        return pages
    finally:
        document.close()


def expected_scan(din: Din) -> list[tuple[zxingcpp.BarcodeFormat, str]]:
    return sorted(
        [
            (zxingcpp.BarcodeFormat.Code128, din.barcode_data),
            (zxingcpp.BarcodeFormat.DataMatrix, din.barcode_data),
        ]
    )


# -- the PDF ----------------------------------------------------------------------


def test_labels_render_as_a_pdf_with_one_label_sized_page_per_copy():
    labels = [make_label(), make_label(next_din("W0001", 2025, 41), container_type="qc_sample")]
    pdf = render_labels_pdf(labels, copies=3)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 6
    for page in reader.pages:
        assert float(page.mediabox.width) * MM_PER_PT == pytest.approx(100, abs=0.1)
        assert float(page.mediabox.height) * MM_PER_PT == pytest.approx(60, abs=0.1)


@pytest.mark.parametrize("dpi", PRINTER_DPIS)
def test_both_barcodes_on_every_page_scan_back_to_that_labels_din(dpi):
    dins = [parse_din("=G12341765432100"), next_din("W0001", 2025, 41), parse_din("AB1C229999999I")]
    pdf = render_labels_pdf([make_label(din) for din in dins], copies=2)
    pages = scan_pages(pdf, dpi)
    # Each label's copies come together, in the order given.
    assert pages == [expected_scan(din) for din in dins for _ in range(2)]
    for page in pages:
        for _, text in page:
            assert parse_din(text) in dins


def test_the_label_shows_the_din_with_its_check_character_and_who_it_belongs_to():
    page = PdfReader(io.BytesIO(render_labels_pdf([make_label()]))).pages[0]
    text = " ".join(page.extract_text().split())
    for expected in [
        "G1234 17 654321 A",  # the DIN, then its boxed check character
        "FINAL PRODUCT BAG",
        "ARI-0001 CAR-T cells, fresh",
        "S1234V00",
        "PSN-2025-0042",
        "A.B.",
        "1968",
        "10 JAN 2025 06:30 CET",  # collection, in the site's time zone
        "22 JAN 2025 18:00 CET",  # expiry
        "Fraction 2 of 3 - 30 % of dose",
        "FOR AUTOLOGOUS USE ONLY",
        "Cell Therapy Unit, Hospital Clinic",
    ]:
        assert expected in text, expected


def test_each_container_type_prints_its_name():
    for container in ContainerType:
        html = render_labels_html([make_label(container_type=container)])
        assert container.label in html


def test_a_label_of_realistic_maximum_length_fits_on_one_page():
    def fill(name: str) -> str:
        words = "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"
        return words[: MAX_LENGTHS[name]]

    label = make_label(
        product_name=fill("product_name"),
        product_code="S1234V00B2"[: MAX_LENGTHS["product_code"]],
        patient_pseudonym="PSN-2025-000042"[: MAX_LENGTHS["patient_pseudonym"]],
        patient_initials="M.M.W",
        site_name=fill("site_name"),
        sample_text=fill("sample_text"),
        statement=fill("statement"),
        time_zone="America/Argentina/Buenos_Aires",
    )
    pdf = render_labels_pdf([label])
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1


def test_a_label_whose_text_does_not_fit_is_refused_not_clipped():
    wide = make_label(
        product_name="W" * MAX_LENGTHS["product_name"],
        site_name="W" * MAX_LENGTHS["site_name"],
        sample_text="W" * MAX_LENGTHS["sample_text"],
        statement="W" * MAX_LENGTHS["statement"],
    )
    with pytest.raises(LabelError, match=r"Label 2 \(DIN .*\) does not fit"):
        render_labels_pdf([make_label(), wide])


def test_a_label_never_loads_anything_but_its_own_barcodes():
    html = render_labels_html([make_label()]).replace(
        "</section>", '<img src="file:///etc/hostname"></section>'
    )
    with pytest.raises(RuntimeError, match="failed to load"):
        _layout(html)


# -- what a label may hold --------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"collected_at": datetime(2025, 1, 10, 5, 30)}, "needs a time zone"),  # noqa: DTZ001
        ({"expires_at": datetime(2025, 1, 9, tzinfo=UTC)}, "expiry is not after the collection"),
        (
            {"expires_at": datetime(2025, 1, 10, 5, 30, tzinfo=UTC)},
            "expiry is not after the collection",
        ),
        ({"expires_at": None}, "final product bag needs an expiry"),
        ({"product_name": "CAR-T\x00"}, "NUL byte"),
        ({"product_name": ""}, "is required"),
        ({"patient_pseudonym": "P" * 17}, "at most 16"),
        ({"sample_text": "line one\nline two"}, "one line"),
        ({"patient_birth_year": 1850}, "not between 1900"),
        ({"patient_birth_year": "1968"}, "must be a year"),
        ({"time_zone": "Mars/Olympus"}, "not a known IANA time zone"),
        ({"time_zone": "../../etc/passwd"}, "not a known IANA time zone"),
        ({"time_zone": ""}, "not a known IANA time zone"),
        ({"container_type": "blood_bag"}, "Unknown container type"),
        ({"din": "G123417654321A"}, "parsed DIN"),
    ],
)
def test_label_data_refuses_what_cannot_be_printed_correctly(overrides, message):
    with pytest.raises(LabelError) as excinfo:
        make_label(**overrides)
    assert message in excinfo.value.message


def test_label_errors_are_invalid_input():
    assert issubclass(LabelError, InvalidInput)
    assert issubclass(BarcodeError, InvalidInput)


def test_a_qc_sample_may_have_no_expiry_and_a_date_without_time():
    label = make_label(
        container_type=ContainerType.QC_SAMPLE, collected_at=date(2025, 3, 1), expires_at=None
    )
    html = render_labels_html([label])
    assert "01 MAR 2025" in html
    assert "Expires" not in html


@pytest.mark.parametrize("copies", [0, -1, 51, 1.0, True])
def test_copies_must_be_a_sensible_whole_number(copies):
    with pytest.raises(LabelError, match="copies"):
        render_labels_pdf([make_label()], copies=copies)


def test_an_empty_print_job_is_refused():
    with pytest.raises(LabelError, match="no labels"):
        render_labels_pdf([])


def test_dates_print_with_the_month_in_letters_in_the_sites_zone():
    from zoneinfo import ZoneInfo

    moment = datetime(2025, 6, 30, 21, 15, tzinfo=UTC)
    assert format_label_moment(moment, ZoneInfo("Europe/Moscow")) == "01 JUL 2025 00:15 MSK"
    assert format_label_moment(date(2025, 12, 5), ZoneInfo("UTC")) == "05 DEC 2025"


# -- the barcode encoders, for any DIN --------------------------------------------

LETTERS = string.ascii_uppercase
ALNUM = string.digits + string.ascii_uppercase


@st.composite
def dins(draw: st.DrawFn) -> Din:
    fin = draw(st.sampled_from(LETTERS)) + "".join(
        draw(st.lists(st.sampled_from(ALNUM), min_size=4, max_size=4))
    )
    year = f"{draw(st.integers(0, 99)):02d}"
    sequence = f"{draw(st.integers(0, 999_999)):06d}"
    check = check_character(fin + year + sequence)
    type2 = str(60 + ALPHABET.index(check))
    flags = draw(st.sampled_from([None, "00", "01", "59", "97", type2]))
    return Din(facility=fin, year=year, sequence=sequence, flags=flags)


def _decode(image: Image.Image) -> list[tuple[zxingcpp.BarcodeFormat, str]]:
    found = zxingcpp.read_barcodes(image, formats=SCANNER, text_mode=zxingcpp.TextMode.Plain)
    return [(r.format, r.text) for r in found]


def _draw_code128(modules: str, px: int = 3) -> Image.Image:
    quiet = 10 * px
    image = Image.new("L", (len(modules) * px + 2 * quiet, 60), 255)
    draw = ImageDraw.Draw(image)
    for i, module in enumerate(modules):
        if module == "1":
            x = quiet + i * px
            draw.rectangle([x, 5, x + px - 1, 54], fill=0)
    return image


def _draw_matrix(matrix: list[list[int]], px: int = 6) -> Image.Image:
    quiet = 3 * px
    rows, cols = len(matrix), len(matrix[0])
    image = Image.new("L", (cols * px + 2 * quiet, rows * px + 2 * quiet), 255)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                left, top = quiet + x * px, quiet + y * px
                draw.rectangle([left, top, left + px - 1, top + px - 1], fill=0)
    return image


@settings(max_examples=60, deadline=None)
@given(dins())
def test_code128_encoding_of_any_din_decodes_to_its_barcode_data(din):
    assert _decode(_draw_code128(code128_modules(din.barcode_data))) == [
        (zxingcpp.BarcodeFormat.Code128, din.barcode_data)
    ]


@settings(max_examples=60, deadline=None)
@given(dins())
def test_datamatrix_encoding_of_any_din_decodes_to_its_barcode_data(din):
    assert _decode(_draw_matrix(datamatrix_matrix(din.barcode_data))) == [
        (zxingcpp.BarcodeFormat.DataMatrix, din.barcode_data)
    ]


def test_barcode_svgs_are_sized_in_millimetres():
    data = parse_din("G123417654321").barcode_data
    code128 = code128_svg(data)
    assert 'height="10.000mm"' in code128
    assert "<text" not in code128  # the label prints the DIN itself, with its check character
    assert 'width="10.160mm"' in datamatrix_svg(data)  # 16 modules + 2 x 2 quiet, 0.508 mm


@pytest.mark.parametrize("data", ["", "=G1234\x0017654321", "Ä", "x" * 65])
def test_barcode_data_must_be_short_printable_ascii(data):
    with pytest.raises(BarcodeError):
        code128_svg(data)
    with pytest.raises(BarcodeError):
        datamatrix_svg(data)


def test_an_expiry_one_minute_after_collection_is_accepted():
    collected = datetime(2025, 1, 10, 5, 30, tzinfo=UTC)
    label = make_label(collected_at=collected, expires_at=collected + timedelta(minutes=1))
    assert label.expires_at is not None
    assert label.expires_at > label.collected_at
