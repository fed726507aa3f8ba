"""Writing the audit trail. Every GMP service calls :func:`audit_record` inside its
own transaction, so the record and its audit event are committed together or not at
all (21 CFR 11.10(e): secure, computer-generated, time-stamped)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext_noop

from carmfg.audit.context import current_request_id
from carmfg.audit.models import Action, AuditEvent, ChainHead
from carmfg.canonical import GENESIS_HASH, canonical_json, to_jsonable
from carmfg.exceptions import ReasonRequired
from carmfg.textinput import REASON_MAX_LENGTH, clean_text

REASON_REQUIRED_ACTIONS = frozenset({Action.UPDATE, Action.DELETE, Action.VOID})


def model_label(obj: Model) -> str:
    return f"{obj._meta.app_label}.{obj._meta.model_name}"


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_json(event.hash_payload())).hexdigest()


def event_seal(event: AuditEvent) -> AuditEvent:
    """Set ``canonical`` and ``hash`` from the event's content (and its ``prev_hash``).
    The one place an event's hash is made: ``audit_record`` and bulk loaders call it."""
    blob = canonical_json(event.hash_payload())
    event.canonical = blob.decode("utf-8")
    event.hash = hashlib.sha256(blob).hexdigest()
    return event


def _locked_head(chain: int) -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(chain=chain).first()
    if head is None:
        # First event of a new chain: create the head once, whoever wins the race.
        ChainHead.objects.bulk_create([ChainHead(chain=chain, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        head = ChainHead.objects.select_for_update().get(chain=chain)
    return head


def _actor_fields(actor) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_username": "", "actor_name": ""}
    return {
        "actor": actor,
        "actor_username": actor.get_username(),
        "actor_name": actor.get_full_name() or actor.get_username(),
    }


def audit_record(
    *,
    actor,
    action: str,
    obj: Model | None = None,
    site=None,
    changes: dict[str, Any] | None = None,
    reason: str = "",
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    root: Model | None = None,
    actor_username: str = "",
) -> AuditEvent:
    """Append one event to the site's chain, in the caller's transaction.

    ``changes`` maps field names to ``{"old": …, "new": …}`` (or to a value for
    creations). The chain head row is locked, so concurrent writers queue and the
    sequence stays gap-free.
    """
    reason = clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH)
    if action in REASON_REQUIRED_ACTIONS and not reason:
        # Part 11 / Annex 11 §9: a change to GMP data after first entry says why.
        raise ReasonRequired()
    if obj is not None:
        object_type = object_type or model_label(obj)
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
        if site is None:
            site = getattr(obj, "audit_site", None) or getattr(obj, "site", None)
        if root is None and hasattr(obj, "audit_root"):
            root = obj.audit_root()
    if root is None and obj is not None:
        root = obj
    jsonable_changes = to_jsonable(changes or {})
    _refuse_nul(jsonable_changes)
    chain = site.pk if site is not None else 0
    with transaction.atomic(savepoint=False):
        head = _locked_head(chain)
        fields = _actor_fields(actor)
        if not fields["actor_username"] and actor_username:
            fields["actor_username"] = clean_text(actor_username, field=gettext_noop("Username"), max_length=150)
        event = AuditEvent(
            chain=chain,
            seq=head.seq + 1,
            occurred_at=timezone.now(),
            site=site,
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr,
            root_type=model_label(root) if root is not None else "",
            root_id=str(root.pk) if root is not None else "",
            changes=jsonable_changes,
            reason=reason,
            request_id=current_request_id(),
            prev_hash=head.hash,
            **fields,
        )
        event_seal(event)
        event.save(force_insert=True)
        head.seq = event.seq
        head.hash = event.hash
        head.save(update_fields=["seq", "hash"])
    return event


def _refuse_nul(value: Any) -> None:
    if isinstance(value, str):
        clean_text(value, field=gettext_noop("Value"), max_length=1_000_000)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_nul(item)


def diff_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``changes`` of an update: only the fields whose value differs."""
    out = {}
    for key in sorted(set(before) | set(after)):
        old, new = to_jsonable(before.get(key)), to_jsonable(after.get(key))
        if old != new:
            out[key] = {"old": old, "new": new}
    return out
