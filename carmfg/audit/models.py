"""The append-only, hash-chained audit trail (21 CFR 11.10(e), EU GMP Annex 11 §9).

Each site has its own chain (events with no site, such as failed logins for unknown
users, form chain 0), so one site's trail can be verified, exported and embedded in
its signed records without another hospital's events. Triggers installed by the
migrations refuse UPDATE and DELETE on ``audit_auditevent``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_noop

from carmfg.canonical import GENESIS_HASH


class Action(models.TextChoices):
    CREATE = "create", gettext_noop("Created")
    UPDATE = "update", gettext_noop("Updated")
    DELETE = "delete", gettext_noop("Deleted")
    SIGN = "sign", gettext_noop("Signed")
    SIGN_REFUSED = "sign_refused", gettext_noop("Signature refused")
    VOID = "void", gettext_noop("Signature voided")
    TRANSITION = "transition", gettext_noop("State changed")
    BLOCKED = "blocked", gettext_noop("Action blocked")
    VIEW_EXPORT = "view_export", gettext_noop("Exported")
    PRINT = "print", gettext_noop("Printed")
    LOGIN = "login", gettext_noop("Logged in")
    LOGIN_FAILED = "login_failed", gettext_noop("Login failed")
    LOGOUT = "logout", gettext_noop("Logged out")
    LOCKED_OUT = "locked_out", gettext_noop("Locked out")
    SITE_SWITCH = "site_switch", gettext_noop("Switched site")


class AuditEvent(models.Model):
    chain = models.PositiveBigIntegerField(help_text="Site id, or 0 for events of no site.")
    seq = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)
    actor_name = models.CharField(max_length=300, blank=True)
    site = models.ForeignKey("accounts.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=Action.choices)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    # The record the event belongs to for review (e.g. the batch of a step record).
    root_type = models.CharField(max_length=100, blank=True)
    root_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # The exact bytes (UTF-8) that ``hash`` is the SHA-256 of, stored when the event is
    # written, so that a chain of millions of events is verified by hashing stored text
    # (in PostgreSQL itself) instead of re-serialising every row. The verifier also
    # checks that the columns above say what this text says. NULL for events written
    # before the column existed: those are checked by re-serialising their columns.
    canonical = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001 (NULL = not stored, see above)

    class Meta:
        ordering = ["chain", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_gap_free_sequence_per_chain")]
        indexes = [
            models.Index(fields=["site", "-occurred_at"], name="audit_site_time"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["root_type", "root_id", "seq"], name="audit_root"),
            models.Index(fields=["actor", "-occurred_at"], name="audit_actor_time"),
            # The audit list reads each chain newest first (keyset pagination, see
            # selectors.audit_event_page_for_user), with or without its common filters.
            models.Index(fields=["chain", "-occurred_at", "-id"], name="audit_chain_time"),
            models.Index(fields=["chain", "action", "-occurred_at", "-id"], name="audit_chain_action_time"),
            models.Index(fields=["chain", "actor_username", "-occurred_at", "-id"], name="audit_chain_user_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.chain}.{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def hash_payload(self) -> dict:
        """Everything the event's hash covers, including the previous event's hash."""
        return {
            "chain": self.chain,
            "seq": self.seq,
            "occurred_at": self.occurred_at,
            "actor_id": self.actor_id,
            "actor_username": self.actor_username,
            "actor_name": self.actor_name,
            "site_id": self.site_id,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "root_type": self.root_type,
            "root_id": self.root_id,
            "changes": self.changes,
            "reason": self.reason,
            "request_id": self.request_id,
            "prev_hash": self.prev_hash,
        }


class ChainHead(models.Model):
    """The last event of each chain. Locked with SELECT FOR UPDATE to serialise writers."""

    chain = models.PositiveBigIntegerField(primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"chain {self.chain} at {self.seq}"
