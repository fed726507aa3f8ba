"""Errors of manufacturing and chain of identity that a user can cause.

Messages follow ``carmfg.exceptions``: an English template marked with
``gettext_noop`` plus ``params``. A value may itself be a :class:`carmfg.texts.Text`
(a sentence with values of its own, e.g. why a scan was refused): ``.message`` keeps
it in English, ``.text`` translates it with the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_noop

from carmfg.exceptions import GMPError, InvalidTransition, StaleRecord  # noqa: F401  (re-exported)
from carmfg.texts import Text


def more_phrase(count: int) -> Text:
    """`` (and 3 more)`` after the first few problems listed; empty when none are left out."""
    if count <= 0:
        return Text("")
    return Text(gettext_noop(" (and %(count)s more)"), {"count": count})


class BatchError(GMPError):
    """A domain error of manufacturing or the chain of identity (its values may be
    sentences, ``carmfg.texts.Text``: ``GMPError.text`` translates them with the message)."""


class IdentityMismatch(BatchError):
    """A scanned label is not the one the step expects. Blocks the step, always."""

    status_code = 409

    def __init__(self, *, expected: str, scanned: str, message: str | None = None,
                 params: Mapping[str, Any] | None = None, cause: str = "") -> None:
        # What the step expects and what was scanned: English in ``expected`` and
        # ``scanned``, in the active language in ``expected_text`` and ``scanned_text``.
        self.expected_phrase = expected if isinstance(expected, Text) else Text.literal(expected)
        self.scanned_phrase = scanned if isinstance(scanned, Text) else Text.literal(scanned)
        self.expected = self.expected_phrase.message
        self.scanned = self.scanned_phrase.message
        # Why it does not match, in one sentence (shown above expected vs scanned):
        # ``cause`` in English, ``cause_text`` in the active language.
        self.cause_phrase = cause if isinstance(cause, Text) else Text.literal(cause)
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
