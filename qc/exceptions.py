"""The domain errors QC raises: the project's own, re-exported here.

A QC refusal often names sentences as values (the problems a checklist lists, as
``carmfg.texts.Text``); ``GMPError.text`` translates such values with the message, so no
QC-specific subclass is needed and the API's problem titles are the base errors' names.
"""

from __future__ import annotations

from batches.exceptions import NotReady
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.exceptions import InvalidInput, InvalidTransition

__all__ = ["InvalidInput", "InvalidTransition", "NotReady", "SegregationOfDuties"]
