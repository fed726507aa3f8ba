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
checks that every translation keeps them. A value that is a sentence of its own (a
field's name, a choice label, a problem) is a :class:`carmfg.texts.Text`: English in
``.message``, translated in ``.text``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_noop

from carmfg.texts import Text, translate


class GMPError(Exception):
    """A GMP rule refused the action; nothing was changed."""

    status_code = 400
    default_message = gettext_noop("The action was refused.")

    def __init__(
        self, message: str | None = None, *, field: str | None = None, params: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = message or self.default_message
        self.params = dict(params or {})
        self.message = Text(self.template, self.params).message
        self.field = field
        super().__init__(self.message)

    @property
    def text(self) -> str:
        """The message in the active language (English where no translation exists); a
        value that is itself a :class:`carmfg.texts.Text` is shown translated too."""
        return translate(self.template, self.params, english=self.message)


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
