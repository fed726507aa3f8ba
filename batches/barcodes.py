"""Barcode symbols for labels, as SVG, sized in millimetres for the label printer.

Code 128 comes from python-barcode and DataMatrix (ECC 200) from ppf-datamatrix; this
module only chooses sizes and draws the DataMatrix modules. Sizes follow ISBT 128 label
practice: Code 128 X dimension 0.254 mm (0.010 in, a whole number of dots on 203 and
300 dpi printers), bars at least 10 mm high, quiet zones of at least 10 X.
"""

from __future__ import annotations

import base64

from barcode import Code128
from barcode.writer import SVGWriter
from django.utils.translation import gettext_noop
from ppf.datamatrix import DataMatrix

from carmfg.exceptions import InvalidInput

CODE128_MODULE_MM = 0.254
CODE128_HEIGHT_MM = 10.0
CODE128_QUIET_ZONE_MM = 10 * CODE128_MODULE_MM
DATAMATRIX_MODULE_MM = 0.508
DATAMATRIX_QUIET_MODULES = 2
MAX_BARCODE_DATA_LENGTH = 64


class BarcodeError(InvalidInput):
    default_message = gettext_noop("This text cannot be encoded in a barcode.")


def _check_data(data: str) -> None:
    if not isinstance(data, str) or not data:
        raise BarcodeError(gettext_noop("Barcode data must be non-empty text."))
    if len(data) > MAX_BARCODE_DATA_LENGTH:
        raise BarcodeError(
            gettext_noop("Barcode data is %(length)s characters long; labels encode at most %(max)s."),
            params={"length": len(data), "max": MAX_BARCODE_DATA_LENGTH},
        )
    bad = [ch for ch in data if not (ch.isascii() and ch.isprintable())]
    if bad:
        raise BarcodeError(gettext_noop("Barcode data may hold printable ASCII only; got %(got)s."),
                           params={"got": repr(bad[0])})


def code128_modules(data: str) -> str:
    """The Code 128 symbol as a string of modules, ``1`` dark and ``0`` light."""
    _check_data(data)
    return Code128(data).build()[0]


def code128_svg(data: str) -> str:
    """A Code 128 symbol with its quiet zones, no text (the label prints its own)."""
    _check_data(data)
    writer = SVGWriter()
    svg = Code128(data, writer=writer).render(
        writer_options={
            "module_width": CODE128_MODULE_MM,
            "module_height": CODE128_HEIGHT_MM,
            "quiet_zone": CODE128_QUIET_ZONE_MM,
            "margin_top": 0,
            "margin_bottom": 0,
            "write_text": False,
            "compress": True,
            "with_doctype": False,
        }
    )
    return svg.decode("utf-8")


def datamatrix_matrix(data: str) -> list[list[int]]:
    """The DataMatrix symbol's modules, row by row, ``1`` dark; no quiet zone."""
    _check_data(data)
    return DataMatrix(data).matrix


def datamatrix_svg(data: str) -> str:
    """A square DataMatrix symbol with a quiet zone, sized in millimetres.

    ppf-datamatrix's own SVG is sized in pixels with a 1-module margin; drawing the
    matrix here lets the label set the module size and a wider quiet zone.
    """
    matrix = datamatrix_matrix(data)
    q = DATAMATRIX_QUIET_MODULES
    rows, cols = len(matrix), len(matrix[0])
    width, height = cols + 2 * q, rows + 2 * q
    # One path of unit squares merged per row run: no hairline gaps between modules.
    path = []
    for y, row in enumerate(matrix):
        x = 0
        while x < cols:
            if row[x]:
                start = x
                while x < cols and row[x]:
                    x += 1
                path.append(f"M{start + q},{y + q}h{x - start}v1h{start - x}z")
            else:
                x += 1
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{width * DATAMATRIX_MODULE_MM:.3f}mm" '
        f'height="{height * DATAMATRIX_MODULE_MM:.3f}mm" '
        f'viewBox="0 0 {width} {height}" shape-rendering="crispEdges">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path d="{"".join(path)}" fill="#000"/></svg>'
    )


def svg_data_uri(svg: str) -> str:
    """``svg`` as a data: URI, for an ``<img>`` that needs no file or network fetch."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
