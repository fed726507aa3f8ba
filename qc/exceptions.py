"""QC refusals whose values are sentences themselves (the problems a checklist names).

Each keeps the name of the error it refines, so the API's problem title stays the same.
"""

from __future__ import annotations

from batches import exceptions as batches_exceptions
from carmfg import exceptions as carmfg_exceptions
from carmfg.esign import exceptions as esign_exceptions
from qc.texts import translate


class _TranslatedValues:
    """``.text`` translates the values that are ``qc.texts.Text`` along with the message."""

    template: str
    params: dict
    message: str

    @property
    def text(self) -> str:
        return translate(self.template, self.params, english=self.message)


class NotReady(_TranslatedValues, batches_exceptions.NotReady):
    pass


class SegregationOfDuties(_TranslatedValues, esign_exceptions.SegregationOfDuties):
    pass


class InvalidInput(_TranslatedValues, carmfg_exceptions.InvalidInput):
    pass


class InvalidTransition(_TranslatedValues, carmfg_exceptions.InvalidTransition):
    pass
