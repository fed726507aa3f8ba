"""Celery tasks of QC alerts: ids in, idempotent, no business rules of their own.

* ``notification_email_send`` sends one recorded e-mail and marks it sent; a
  redelivered job finds it sent and does nothing. A mail server that does not answer
  is retried with back-off; the attempt count and last error stay on the record.
* ``results_overdue_flag`` (Celery beat, daily) alerts QC and the QPs of a site once
  per pending test whose expected date has passed (see ``qc.services.results``).
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from qc.models import NotificationEmail

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=8)
def notification_email_send(self, email_id: int) -> str:
    error: Exception | None = None
    with transaction.atomic():
        email = NotificationEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.sent_at is not None:
            return "nothing to send"
        email.attempts += 1
        try:
            send_mail(email.subject, email.body, None, [email.to], fail_silently=False)
        except (OSError, smtplib.SMTPException) as exc:
            error = exc
            email.last_error = str(exc)[:300]
            email.save(update_fields=["attempts", "last_error"])
        else:
            email.sent_at = timezone.now()
            email.last_error = ""
            email.save(update_fields=["attempts", "sent_at", "last_error"])
    if error is None:
        return "sent"
    logger.warning("notification e-mail %s not sent (attempt %s): %s", email_id, email.attempts, error)
    if self.request.is_eager:
        return "not sent"  # in-process (demo): the record keeps the error
    raise self.retry(exc=error, countdown=60 * 2 ** min(self.request.retries, 6))


@shared_task
def results_overdue_flag() -> dict:
    from qc.services.results import results_overdue_flag as flag

    return flag()
