"""Celery tasks of the audit trail.

``audit_chain_verify`` is the periodic review of the trail (EU GMP Annex 11 §9, 21 CFR
11.10(e)): Celery beat runs it daily (``CELERY_BEAT_SCHEDULE``). It only reads, so it
is idempotent: a redelivered or repeated run gives the same answer.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from carmfg.audit.verification import chains_in_use, verify_chains

logger = logging.getLogger(__name__)


@shared_task(bind=True)
def audit_chain_verify(self, chains: list[int] | None = None) -> dict[str, Any]:
    """Recompute the given audit chains (site ids, 0 for events of no site), or every
    chain in use; a broken chain is logged as an error and reported with ``ok`` false."""
    to_check = sorted(set(chains)) if chains is not None else chains_in_use()
    reports = []
    for report in verify_chains(to_check):
        if not report.ok:
            logger.error(
                "audit chain %s is BROKEN at event #%s: %s",
                report.chain,
                report.first_broken_seq,
                "; ".join(report.problems),
            )
        reports.append(
            {
                "chain": report.chain,
                "ok": report.ok,
                "events": report.count,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "first_broken_seq": report.first_broken_seq,
                "problems": report.problems,
            }
        )
    summary = {
        "ok": all(r["ok"] for r in reports),
        "chains": reports,
        "checked_at": timezone.now().isoformat(),
        "worker": self.request.hostname,
    }
    if summary["ok"]:
        logger.info("audit chains intact: %s", ", ".join(f"{r['chain']} ({r['events']} events)" for r in reports) or "none")
    return summary
