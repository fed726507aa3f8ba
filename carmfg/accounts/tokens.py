"""API tokens: created by their owner in the UI, shown once, hashed at rest, revocable,
every creation and revocation audited."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_noop

from carmfg.accounts.models import ApiToken
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.textinput import clean_text

MAX_TOKENS_PER_USER = 10


def api_token_list_for_user(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created")


def api_token_create(*, actor, name: str, days: int = 90) -> tuple[ApiToken, str]:
    """Create a token for ``actor``; returns the row and the token text (shown once)."""
    from carmfg.exceptions import InvalidInput

    name = clean_text(name, field=gettext_noop("Name"), max_length=100, required=True)
    if not 1 <= days <= 366:
        raise InvalidInput(gettext_noop("A token lives between 1 and 366 days."), field="days")
    with transaction.atomic():
        if ApiToken.objects.select_for_update().filter(user=actor).count() >= MAX_TOKENS_PER_USER:
            raise InvalidInput(gettext_noop("You already hold %(count)s tokens: revoke one first."),
                               params={"count": MAX_TOKENS_PER_USER})
        token, text = ApiToken.objects.create(user=actor, expiry=dt.timedelta(days=days), name=name)
        audit_record(actor=actor, action=Action.CREATE, obj=actor, object_type="accounts.apitoken",
                     object_id=token.token_key, object_repr=f"API token {name!r}",
                     changes={"name": name, "token_key": token.token_key, "expiry": token.expiry})
    return token, text


def api_token_revoke(*, actor, token_key: str) -> None:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(user=actor, token_key=token_key).first()
        if token is None:
            raise Http404("No such token.")
        audit_record(actor=actor, action=Action.DELETE, obj=actor, object_type="accounts.apitoken",
                     object_id=token.token_key, object_repr=f"API token {token.name!r}",
                     changes={"name": token.name, "token_key": token.token_key}, reason="Revoked by its owner")
        token.delete()
