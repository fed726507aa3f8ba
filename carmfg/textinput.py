"""Validation of free text typed or scanned by users.

PostgreSQL refuses NUL bytes in text (a 500 if unchecked) and control characters make
records illegible, so free text is checked in the service layer, whatever the form.
"""

from __future__ import annotations

import unicodedata

from django.utils.translation import gettext_noop

from carmfg.exceptions import InvalidInput
from carmfg.texts import label

REASON_MAX_LENGTH = 2000
ALLOWED_CONTROL = {"\n", "\r", "\t"}


def clean_text(value: object, *, field: str, max_length: int, required: bool = False) -> str:
    """Return ``value`` stripped, or raise ``InvalidInput`` naming what is wrong.

    ``field`` is the English name of the field, marked with ``gettext_noop`` where it is
    written: the message shows it translated (``InvalidInput.text``)."""
    field = label(field)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(gettext_noop("%(field)s: expected text."), params={"field": field}, field=field)
    if "\x00" in value:
        raise InvalidInput(gettext_noop("%(field)s: contains a NUL byte, which is not allowed."),
                           params={"field": field}, field=field)
    bad = [ch for ch in value if unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROL]
    if bad:
        raise InvalidInput(gettext_noop("%(field)s: contains control characters, which are not allowed."),
                           params={"field": field}, field=field)
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput(
            gettext_noop("%(field)s: is %(length)s characters long; at most %(max)s are allowed."),
            params={"field": field, "length": f"{len(value):,}", "max": f"{max_length:,}"}, field=field,
        )
    if required and not value:
        raise InvalidInput(gettext_noop("%(field)s: is required."), params={"field": field}, field=field)
    return value
