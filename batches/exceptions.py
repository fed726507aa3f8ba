"""Errors of manufacturing and chain of identity that a user can cause.

Messages follow ``carmfg.exceptions``: an English template marked with
``gettext_noop`` plus ``params``. A value may itself be a :class:`Phrase` (a
sentence with values of its own, e.g. why a scan was refused): ``.message`` keeps it
in English, ``.text`` translates it with the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.translation import gettext, gettext_noop

from carmfg.exceptions import GMPError, InvalidTransition, StaleRecord  # noqa: F401  (re-exported)


class Phrase:
    """An English template (marked with ``gettext_noop``) and its values, translated when shown.

    ``str(phrase)`` and ``.message`` are the English text (audit events, logs);
    ``.text`` is the text in the active language.
    """

    __slots__ = ("params", "template")

    def __init__(self, template: str, params: Mapping[str, Any] | None = None) -> None:
        self.template = template
        self.params = dict(params or {})

    @classmethod
    def literal(cls, value: object) -> Phrase:
        """A value shown as it is, never looked up in the catalogue (e.g. what was scanned)."""
        return cls("%(value)s", {"value": value})

    @classmethod
    def of(cls, error: GMPError) -> Phrase:
        """The message of a domain error, kept translatable."""
        return cls(error.template, error.params)

    @classmethod
    def join(cls, separator: str, items: Sequence[Phrase | str]) -> Phrase:
        """Items (phrases or plain values) one after the other, each translated when shown."""
        names = [f"item{index}" for index in range(len(items))]
        return cls(separator.join(f"%({name})s" for name in names), dict(zip(names, items, strict=True)))

    @property
    def message(self) -> str:
        return _render(self.template, self.params)

    @property
    def text(self) -> str:
        return translate(self.template, self.params, english=self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"Phrase({self.message!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Phrase):
            return (self.template, self.params) == (other.template, other.params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.template)


class LowerLabel(Phrase):
    """A choice label inside a sentence ("apheresis bag"): the English record keeps it
    lower-cased as before; the translation only lower-cases its first letter, so that
    abbreviations stay as they are ("образец ОКК")."""

    __slots__ = ()

    def __init__(self, label: str) -> None:
        super().__init__(str(label))

    @property
    def message(self) -> str:
        return self.template.lower()

    @property
    def text(self) -> str:
        translated = gettext(self.template) if self.template else ""
        if translated == self.template:
            return self.message
        return translated[:1].lower() + translated[1:]


def _render(template: str, params: Mapping[str, Any]) -> str:
    return template % params if params else template


def translate(template: str, params: Mapping[str, Any], *, english: str) -> str:
    """``template`` with ``params`` in the active language; nested phrases are translated too."""
    if not template:
        return english  # gettext("") would be the catalogue's header
    values = {name: value.text if isinstance(value, Phrase) else value for name, value in params.items()}
    try:
        return _render(gettext(template), values)
    except (KeyError, ValueError, TypeError):  # a broken translation never hides the error
        return english


def more_phrase(count: int) -> Phrase:
    """`` (and 3 more)`` after the first few problems listed; empty when none are left out."""
    if count <= 0:
        return Phrase("")
    return Phrase(gettext_noop(" (and %(count)s more)"), {"count": count})


class BatchError(GMPError):
    """A domain error of manufacturing or the chain of identity (its values may be
    phrases: ``GMPError.text`` translates them with the message)."""


class IdentityMismatch(BatchError):
    """A scanned label is not the one the step expects. Blocks the step, always."""

    status_code = 409

    def __init__(self, *, expected: str | Phrase, scanned: str | Phrase, message: str | None = None,
                 params: Mapping[str, Any] | None = None, cause: str | Phrase = "") -> None:
        # What the step expects and what was scanned: English in ``expected`` and
        # ``scanned``, in the active language in ``expected_text`` and ``scanned_text``.
        self.expected_phrase = expected if isinstance(expected, Phrase) else Phrase.literal(expected)
        self.scanned_phrase = scanned if isinstance(scanned, Phrase) else Phrase.literal(scanned)
        self.expected = self.expected_phrase.message
        self.scanned = self.scanned_phrase.message
        # Why it does not match, in one sentence (shown above expected vs scanned):
        # ``cause`` in English, ``cause_text`` in the active language.
        self.cause_phrase = cause if isinstance(cause, Phrase) else Phrase.literal(cause)
        self.cause = self.cause_phrase.message
        if message is None:
            message = gettext_noop("Wrong container: expected %(expected)s, scanned %(scanned)s. The step is blocked.")
            params = {"expected": self.expected_phrase, "scanned": self.scanned_phrase}
        super().__init__(message, params=params)

    @property
    def cause_text(self) -> str:
        return self.cause_phrase.text

    @property
    def expected_text(self) -> str:
        return self.expected_phrase.text

    @property
    def scanned_text(self) -> str:
        return self.scanned_phrase.text


class LimitExceeded(BatchError):
    status_code = 409
    default_message = gettext_noop("The value is outside its limits.")


class ConfirmationRequired(BatchError):
    """Outside alert limits: the user must confirm and comment."""

    status_code = 409
    default_message = gettext_noop("The value is outside the alert limits: confirm it and give a comment.")


class MaterialNotUsable(BatchError):
    status_code = 409
    default_message = gettext_noop("This material lot may not be used.")


class EquipmentNotUsable(BatchError):
    status_code = 409
    default_message = gettext_noop("This equipment may not be used.")


class OutOfOrder(BatchError):
    status_code = 409
    default_message = gettext_noop("Earlier steps must be done first.")


class NotReady(BatchError):
    status_code = 409
    default_message = gettext_noop("The record is not ready for this action.")
