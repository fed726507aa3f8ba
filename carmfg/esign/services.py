"""Signing records. Part 11 rules enforced here, whatever the caller:

* every signature re-asks the password (11.200(a)); failures count towards the
  username + IP lockout and are audited;
* a signature covers the SHA-256 of the record's canonical content and is void
  once that content changes (11.70);
* segregation of duties: a signer may be excluded because of an earlier meaning
  they signed on the same record (performer ≠ verifier) or by the caller's rule
  (e.g. nobody certifies a batch they manufactured);
* one active signature per record and meaning (also a database constraint).

Call :func:`signature_reauthenticate` *before* opening the business transaction, so
that a refused attempt stays in the audit trail while the business write rolls back,
then :func:`signature_apply` inside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.canonical import content_hash
from carmfg.esign.exceptions import AlreadySigned, SegregationOfDuties, SignatureRefused
from carmfg.esign.models import Meaning, Signature
from carmfg.textinput import REASON_MAX_LENGTH, clean_text

# meaning -> meanings whose signer may not also sign with this meaning on the same record
SEGREGATION_RULES: dict[str, frozenset[str]] = {
    Meaning.VERIFIED: frozenset({Meaning.PERFORMED}),
    Meaning.REVIEWED: frozenset({Meaning.PERFORMED}),
    Meaning.APPROVED: frozenset({Meaning.PERFORMED}),
}

REAUTH_VALID_FOR = dt.timedelta(minutes=2)
PASSWORD_MAX_LENGTH = 4096


@dataclass(frozen=True)
class Reauthentication:
    """Proof that ``user_id`` re-entered their password at ``at`` (server time)."""

    user_id: int
    at: dt.datetime


def _service_request() -> HttpRequest:
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    return request


def signable_hash(obj: Model) -> str:
    return content_hash(obj.signable_content())  # type: ignore[attr-defined]


def signature_reauthenticate(*, actor, password: str, request: HttpRequest | None = None, obj: Model | None = None) -> Reauthentication:
    """Check the signer's password again (every signature, 11.200(a)(1)).

    A wrong password is audited (in its own transaction, so it survives the refusal)
    and counts towards the django-axes lockout of this username on this workstation.
    """
    if not isinstance(password, str) or not password or len(password) > PASSWORD_MAX_LENGTH or "\x00" in password:
        user = None
    else:
        user = authenticate(
            request or _service_request(), username=actor.get_username(), password=password, purpose="signature"
        )
    if user is None or user.pk != actor.pk or not user.is_active:
        locked = getattr(request, "axes_locked_out", False)
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=Action.SIGN_REFUSED,
                obj=obj,
                site=getattr(obj, "site", None) if obj is not None else None,
                changes={"cause": "account locked" if locked else "wrong password"},
            )
        if locked:
            raise SignatureRefused(
                gettext_noop("The signature was refused: your account is locked after repeated failures.")
            )
        raise SignatureRefused()
    return Reauthentication(user_id=actor.pk, at=timezone.now())


def _active_signatures(obj: Model, *, lock: bool) -> list[Signature]:
    qs = Signature.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk), voided_at__isnull=True
    )
    if lock:
        qs = qs.select_for_update()
    return list(qs)


def _void(actor, signature: Signature, obj: Model, reason: str) -> None:
    event = audit_record(
        actor=actor,
        action=Action.VOID,
        obj=obj,
        changes={"meaning": signature.meaning, "signer": signature.signer_name, "signed_hash": signature.content_hash},
        reason=reason,
    )
    signature.voided_at = event.occurred_at
    signature.void_reason = reason
    signature.void_event = event
    signature.save(update_fields=["voided_at", "void_reason", "void_event"])


def signature_apply(
    *,
    actor,
    reauth: Reauthentication,
    obj: Model,
    meaning: str,
    comment: str = "",
    excluded_meanings: Iterable[str] | None = None,
    excluded_signers: Iterable[int] = (),
    excluded_reason: str = "",
) -> Signature:
    """Sign ``obj`` with ``meaning`` in the caller's transaction."""
    if reauth.user_id != actor.pk or timezone.now() - reauth.at > REAUTH_VALID_FOR:
        raise SignatureRefused(gettext_noop("The signature was refused: please enter your password again."))
    if meaning not in Meaning.values:
        raise SignatureRefused(gettext_noop("Unknown signature meaning %(meaning)s."), params={"meaning": repr(meaning)})
    comment = clean_text(comment, field=gettext_noop("Comment"), max_length=REASON_MAX_LENGTH)
    excluded = frozenset(SEGREGATION_RULES.get(meaning, frozenset()) if excluded_meanings is None else excluded_meanings)
    with transaction.atomic(savepoint=False):
        current = signable_hash(obj)
        active = _active_signatures(obj, lock=True)
        if actor.pk in set(excluded_signers):
            raise SegregationOfDuties(excluded_reason or None)
        for sig in active:
            if sig.signer_id == actor.pk and sig.meaning in excluded:
                raise SegregationOfDuties(
                    gettext_noop("You signed this record as “%(signed)s”; "
                                 "a different person must sign it as “%(meaning)s”."),
                    params={"signed": sig.get_meaning_display(), "meaning": Meaning(meaning).label},
                )
        for sig in active:
            if sig.meaning == meaning:
                if sig.content_hash == current:
                    raise AlreadySigned(
                        gettext_noop("This record is already signed as “%(meaning)s” by %(signer)s."),
                        params={"meaning": sig.get_meaning_display(), "signer": sig.signer_name},
                    )
                _void(actor, sig, obj, "The record changed after it was signed.")
        event = audit_record(
            actor=actor,
            action=Action.SIGN,
            obj=obj,
            changes={"meaning": meaning, "content_hash": current},
            reason=comment,
        )
        if event.site is None:
            raise SignatureRefused(gettext_noop("Only records that belong to a site can be signed."))
        return Signature.objects.create(
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
            site=event.site,
            meaning=meaning,
            signer=actor,
            signer_name=actor.get_full_name() or actor.get_username(),
            signed_at=event.occurred_at,
            content_hash=current,
            comment=comment,
            audit_event=event,
        )


def signature_sign(
    *, actor, obj: Model, meaning: str, password: str, request: HttpRequest | None = None, comment: str = "", **rules
) -> Signature:
    """Re-authenticate and sign an existing record in one call."""
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=obj)
    with transaction.atomic():
        return signature_apply(actor=actor, reauth=reauth, obj=obj, meaning=meaning, comment=comment, **rules)


def signatures_void_changed(*, actor, obj: Model, reason: str) -> list[Signature]:
    """After a change to ``obj``: void every active signature whose hash no longer matches.

    Must run in the transaction that changed the record.
    """
    current = signable_hash(obj)
    voided = []
    for sig in _active_signatures(obj, lock=True):
        if sig.content_hash != current:
            _void(actor, sig, obj, reason)
            voided.append(sig)
    return voided
