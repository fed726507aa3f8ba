"""Celery tasks of the qc app.

``batch_record_generate(document_id)`` makes one signed PDF batch record. It takes the
id of a :class:`~qc.models.documents.BatchRecordDocument` row that the request created
in its own transaction (never the batch and certification ids): the row is the
idempotency key, holds the lock that serialises duplicate deliveries, fixes the
file's name, and is where a failure is reported to the people waiting for it.
"""

from __future__ import annotations

import logging

from celery import shared_task

from qc import documents

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BASE_SECONDS = 15  # 15, 30, 60, 120, 240 s: rides out a TSA or storage hiccup
RETRY_MAX_SECONDS = 600


def retry_countdown(retries: int) -> int:
    return min(RETRY_BASE_SECONDS * 2**retries, RETRY_MAX_SECONDS)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def batch_record_generate(self, document_id: int) -> dict:
    """Render, sign and store the record; idempotent (a done record is returned as is).

    A failed attempt is written on the record and retried with exponential backoff;
    after the last retry the record is marked failed with the reason and the error
    is raised, so that it shows in the worker's log and in Celery's result.
    """
    try:
        document = documents.batch_record_generate_now(document_id)
    except Exception as exc:
        retries = self.request.retries or 0
        reason = f"{type(exc).__name__}: {exc}"
        final = retries >= self.max_retries
        if final:
            reason = f"{reason} (gave up after {retries + 1} attempts)"
            logger.error("batch record %s failed: %s", document_id, reason, exc_info=True)
        else:
            countdown = retry_countdown(retries)
            reason = f"attempt {retries + 1} failed, retrying in {countdown} s: {reason}"
            logger.warning("batch record %s: %s", document_id, reason)
        documents.batch_record_attempt_failed(document_id, reason=reason, final=final)
        if final:
            raise
        if self.request.is_eager:
            # Run in-process (demo, tests): Celery does not re-run a retried eager
            # task, so the next attempt runs now, without the wait.
            return self.apply(args=[document_id], retries=retries + 1, throw=True).get()
        raise self.retry(exc=exc, countdown=countdown) from exc
    return {"document": document.pk, "status": document.status, "sha256": document.sha256}
