"""Errors of manufacturing and chain of identity that a user can cause."""

from carmfg.exceptions import GMPError, InvalidTransition, StaleRecord  # noqa: F401  (re-exported)


class IdentityMismatch(GMPError):
    """A scanned label is not the one the step expects. Blocks the step, always."""

    status_code = 409

    def __init__(self, *, expected: str, scanned: str, message: str | None = None, cause: str = "") -> None:
        self.expected = expected
        self.scanned = scanned
        # Why it does not match, in one sentence (shown above expected vs scanned).
        self.cause = cause
        super().__init__(message or f"Wrong container: expected {expected}, scanned {scanned}. The step is blocked.")


class LimitExceeded(GMPError):
    status_code = 409
    default_message = "The value is outside its limits."


class ConfirmationRequired(GMPError):
    """Outside alert limits: the user must confirm and comment."""

    status_code = 409
    default_message = "The value is outside the alert limits: confirm it and give a comment."


class MaterialNotUsable(GMPError):
    status_code = 409
    default_message = "This material lot may not be used."


class EquipmentNotUsable(GMPError):
    status_code = 409
    default_message = "This equipment may not be used."


class OutOfOrder(GMPError):
    status_code = 409
    default_message = "Earlier steps must be done first."


class NotReady(GMPError):
    status_code = 409
    default_message = "The record is not ready for this action."
