"""Domain errors a user can cause. Views and the API turn them into clear messages.

Each carries a message the user can act on. Apps define their own subclasses in
their ``exceptions.py``. A message is an English template marked with
``gettext_noop`` plus its values::

    raise LimitExceeded(gettext_noop("%(value)s is above the limit of %(high)s."),
                        params={"value": value, "high": high})

``error.message`` is the English text, what audit events, logs and tests keep (stable
whatever the user's language); ``error.text`` is the same message in the active
language, what pages and the API show. Templates with values use ``%(name)s``
placeholders (and ``%%`` for a literal per cent sign), so that ``compilemessages``
checks that every translation keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext, gettext_noop


class GMPError(Exception):
    """A GMP rule refused the action; nothing was changed."""

    status_code = 400
    default_message = gettext_noop("The action was refused.")

    def __init__(
        self, message: str | None = None, *, field: str | None = None, params: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = message or self.default_message
        self.params = dict(params or {})
        self.message = _render(self.template, self.params)
        self.field = field
        super().__init__(self.message)

    @property
    def text(self) -> str:
        """The message in the active language (English where no translation exists). A
        value that is itself a translatable sentence (anything with a ``.text``, such as
        ``batches.exceptions.Phrase`` or ``qc.texts.Text``) is shown translated too."""
        if not self.template:
            return self.message  # gettext("") would be the catalogue's header
        try:
            return _render(gettext(self.template), {name: shown(value) for name, value in self.params.items()})
        except (KeyError, ValueError, TypeError):  # a broken translation never hides the error
            return self.message


def shown(value: Any) -> Any:
    """A value as a page shows it: a translatable sentence in the active language."""
    text = getattr(value, "text", None)
    return text if isinstance(text, str) else value


class Label(str):
    """A fixed English label from our code used as a value in a message: a field's name
    ("Comment"), what a permission allows ("complete batches"). The string is the English
    (``.message``, audit, logs); ``.text`` is its translation, so ``GMPError.text`` shows
    it in the reader's language. Mark the literal with ``gettext_noop`` where it is
    written, so that it is extracted into the catalogue."""

    __slots__ = ()

    @property
    def text(self) -> str:
        english = str.__str__(self)
        return gettext(english) if english else english


def label(value: Any) -> Any:
    """``value`` as a :class:`Label` when it is a plain string; anything else as it is."""
    return Label(value) if type(value) is str else value


def _render(template: str, params: Mapping[str, Any]) -> str:
    return template % params if params else template


class InvalidInput(GMPError):
    default_message = gettext_noop("The input is not valid.")


class ReasonRequired(GMPError):
    default_message = gettext_noop("A reason is required to change a value after its first entry.")


class PermissionRefused(GMPError):
    status_code = 403
    default_message = gettext_noop("Your roles at this site do not allow this action.")


class StaleRecord(GMPError):
    status_code = 409
    default_message = gettext_noop("This record was changed by someone else since you opened it. Reload and try again.")


class DatabaseUnavailable(GMPError):
    """The database connection failed mid-request: the transaction was rolled back."""

    status_code = 503
    default_message = gettext_noop(
        "Not saved: the connection to the database was lost, so nothing was recorded. "
        "Check the entry and try again in a moment."
    )


class InvalidTransition(GMPError):
    status_code = 409
    default_message = gettext_noop("This action is not possible in the record's current state.")
