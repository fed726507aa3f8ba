"""Numbers as the reader's language writes them.

Values are formatted once, language-neutral (``batches.quantities.format_value``: the
same text goes into signatures, audit events and PDFs' data files); pages swap the
decimal point for the active language's separator only when they show the value
(``72.5`` in English, ``72,5`` in Russian).
"""

from __future__ import annotations

import re

from django.utils import formats

_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")


def localize_number_text(text: str) -> str:
    """``"1.20 × 10⁹"`` -> ``"1,20 × 10⁹"`` where the active language uses a decimal comma."""
    separator = formats.get_format("DECIMAL_SEPARATOR")
    if separator == "." or not isinstance(text, str):
        return text
    return _DECIMAL_POINT.sub(separator, text)
