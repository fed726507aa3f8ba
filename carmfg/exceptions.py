"""Domain errors a user can cause. Views and the API turn them into clear messages.

Each carries a message the user can act on. Apps define their own subclasses in
their ``exceptions.py``. Messages stay English in what is stored (audit events keep
stable text); constant ones are marked with ``gettext_noop`` so that pages translate
them when they show them (``{% translate error.message %}``).
"""

from __future__ import annotations

from django.utils.translation import gettext_noop


class GMPError(Exception):
    """A GMP rule refused the action; nothing was changed."""

    status_code = 400
    default_message = gettext_noop("The action was refused.")

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or self.default_message
        self.field = field
        super().__init__(self.message)


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
