"""Alerts that must be acknowledged, and e-mails the system owes people.

Both are written in the transaction that decided them, so the record shows who was
told what and when; e-mails leave after commit through a Celery task
(``qc.alerts_tasks``), which marks each one sent, so a redelivered job sends nothing twice.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from carmfg.accounts.models import Role
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import PermissionRefused
from carmfg.textinput import clean_text
from carmfg.texts import Text
from qc.models import Alert, NotificationEmail

User = get_user_model()


def site_users_with_role(site, role: str):
    """Active users holding ``role`` at ``site``."""
    return User.objects.filter(
        is_active=True, memberships__site=site, memberships__roles__name=role,
    ).distinct().order_by("pk")


def site_qualified_persons(site):
    return site_users_with_role(site, Role.QUALIFIED_PERSON)


def alert_create(*, actor, site, recipient, title: str, message: str, batch=None, key: str = "") -> Alert | None:
    """One alert for ``recipient``, in the caller's transaction. With a ``key``, at most
    one alert per recipient and key ever exists: a second call creates nothing and
    returns None (so a daily job can run twice). A title or message given as a
    ``carmfg.texts.Text`` is stored in English and shown in the recipient's language."""
    with transaction.atomic(savepoint=False):
        if key and Alert.objects.filter(recipient=recipient, key=key).exists():
            return None
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    site=site, batch=batch, recipient=recipient, key=key,
                    title=clean_text(title, field=gettext_noop("Title"), max_length=200, required=True),
                    message=clean_text(message, field=gettext_noop("Message"), max_length=10_000, required=True),
                    texts={part: value.as_json() for part, value in (("title", title), ("message", message))
                           if isinstance(value, Text)},
                    created_at=timezone.now(),
                )
        except IntegrityError:
            return None  # a concurrent run created it first
        audit_record(actor=actor, action=Action.CREATE, obj=alert, site=site,
                     changes={"recipient": recipient.get_username(), "title": alert.title, "key": key})
    return alert


def alert_acknowledge(*, actor, alert: Alert) -> Alert:
    """The recipient confirms they read the alert; audited (who knew what, when)."""
    if alert.recipient_id != actor.pk:
        raise PermissionRefused(gettext_noop("Only the person an alert is addressed to can acknowledge it."))
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.acknowledged_at is not None:
            return locked
        locked.acknowledged_at = timezone.now()
        locked.save(update_fields=["acknowledged_at"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"acknowledged_at": {"old": None, "new": locked.acknowledged_at}})
    return locked


def notification_email_queue(*, actor, site, to: str, subject: str, body: str, batch=None) -> NotificationEmail:
    """Record an e-mail owed to ``to`` and send it once the transaction commits."""
    from qc.alerts_tasks import notification_email_send

    with transaction.atomic(savepoint=False):
        email = NotificationEmail.objects.create(
            site=site, batch=batch, to=to, subject=clean_text(subject, field=gettext_noop("Subject"), max_length=200, required=True),
            body=clean_text(body, field=gettext_noop("Body"), max_length=20_000, required=True), created_at=timezone.now(),
        )
        audit_record(actor=actor, action=Action.CREATE, obj=email, site=site,
                     changes={"to": to, "subject": email.subject})
        transaction.on_commit(lambda: notification_email_send.delay(email.pk))
    return email
