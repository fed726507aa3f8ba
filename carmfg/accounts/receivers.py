"""Every login success, failure, logout and lockout goes into the audit trail; a login
also applies the language chosen in the user's profile."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from carmfg.accounts.middleware import LANGUAGE_SESSION_KEY
from carmfg.accounts.selectors import profile_language_get
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record


def _ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(actor=user, action=Action.LOGIN, obj=user, object_repr=user.get_username(), changes={"ip": _ip(request)})


@receiver(user_logged_in)
def language_from_profile(sender, request, user, **kwargs):
    """From login on, pages speak the language the user chose in their profile."""
    if request is None or not hasattr(request, "session"):
        return
    language = profile_language_get(user)
    if language:
        request.session[LANGUAGE_SESSION_KEY] = language


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with transaction.atomic():
        audit_record(actor=user, action=Action.LOGOUT, obj=user, object_repr=user.get_username(), changes={"ip": _ip(request)})


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    if credentials.get("purpose") == "signature":
        return  # esign audits its own refusals, with the record they were for
    username = str(credentials.get("username") or "")[:150].replace("\x00", "")
    with transaction.atomic():
        audit_record(
            actor=None,
            action=Action.LOGIN_FAILED,
            actor_username=username,
            object_type="auth.user",
            object_repr=username,
            changes={"ip": _ip(request)},
        )


@receiver(user_locked_out)
def audit_locked_out(sender, request, username, ip_address, **kwargs):
    username = str(username or "")[:150].replace("\x00", "")
    with transaction.atomic():
        audit_record(
            actor=None,
            action=Action.LOCKED_OUT,
            actor_username=username,
            object_type="auth.user",
            object_repr=username,
            changes={"ip": ip_address},
        )
