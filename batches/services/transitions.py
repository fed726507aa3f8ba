"""Batch state changes: only through here, only along ``ALLOWED_TRANSITIONS``."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.models import ALLOWED_TRANSITIONS, Batch, BatchState
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import InvalidTransition, StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text


def batch_transition(
    *, actor, batch: Batch, to_state: str, reason: str = "", expected_version: int | None = None,
    failure_reason: str = "",
) -> Batch:
    """Move ``batch`` to ``to_state`` if the transition is allowed; audited.

    Call inside the business transaction that justifies the change (the batch row is
    locked, so two concurrent transitions cannot both succeed).
    """
    reason = clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH)
    with transaction.atomic(savepoint=False):
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if expected_version is not None and locked.version != expected_version:
            raise StaleRecord()
        if to_state not in ALLOWED_TRANSITIONS[locked.state]:
            raise InvalidTransition(
                gettext_noop("Batch %(batch)s is %(state)s; it cannot become %(to)s."),
                params={"batch": locked.number, "state": locked.get_state_display().lower(),
                        "to": BatchState(to_state).label.lower()},
            )
        old = locked.state
        if to_state == BatchState.ON_HOLD:
            locked.state_before_hold = old
        elif old == BatchState.ON_HOLD:
            locked.state_before_hold = ""
        now = timezone.now()
        if to_state == BatchState.IN_PROCESS and locked.started_at is None:
            locked.started_at = now
        if to_state == BatchState.AWAITING_RELEASE and locked.completed_at is None:
            locked.completed_at = now
        if failure_reason:
            locked.failure_reason = failure_reason
        locked.state = to_state
        locked.version += 1
        locked.save()
        changes: dict[str, object] = {"state": {"old": old, "new": to_state}}
        if failure_reason:
            changes["failure_reason"] = failure_reason
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked, changes=changes, reason=reason)
        # Imported here: the order services themselves move batches (an order cancelled).
        from batches.services.patients import order_follow_batch

        order_follow_batch(actor=actor, batch=locked)
    batch.refresh_from_db()
    return locked
