"""Choices shown in forms, in the reader's language.

Model choice labels stay English in the code and in what is stored (they are marked
with ``gettext_noop`` for the catalogue); a form translates them only when it renders.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy


def translated_choices(choices: Iterable[tuple[str, str]]) -> list[tuple[str, str | Promise]]:
    return [(value, gettext_lazy(label)) for value, label in choices]
