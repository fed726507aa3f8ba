"""Home-page panels of the qc app: the QC work list for analysts, the release queue and
alerts for QPs, the vein-to-vein summary for coordinators, QPs and site admins. Each
reads through the site-scoped selectors, in a fixed number of queries."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from carmfg.accounts.models import Role
from carmfg.home import Panel, register_panel
from qc.dashboard import dashboard_summary_for_user
from qc.selectors import (
    alert_list_for_user,
    release_candidates_for_user,
    release_queue_for_user,
    results_to_review_for_user,
)

SHOWN = 6


def qc_work_context(request) -> dict:
    site = request.site
    to_review = list(results_to_review_for_user(request.user, site=site)[:SHOWN + 1])
    return {"to_review": to_review[:SHOWN], "more": len(to_review) > SHOWN,
            "alerts": alert_list_for_user(request.user, site=site).count()}


def release_context(request) -> dict:
    rows = release_queue_for_user(request.user, site=request.site, limit=SHOWN)
    # A short queue is all shown: counting it would be one more query for nothing.
    total = len(rows) if len(rows) < SHOWN else release_candidates_for_user(request.user, site=request.site).count()
    return {"rows": rows, "total": total, "alerts": list(alert_list_for_user(request.user, site=request.site)[:3])}


def vein_to_vein_context(request) -> dict:
    return {"summary": dashboard_summary_for_user(request.user, site=request.site)}


def register() -> None:
    register_panel(Panel(key="qc_work", title=_("QC results to review"), template="qc/panels/qc_work.html",
                         roles=frozenset({Role.QC_ANALYST}), order=12, context=qc_work_context))
    register_panel(Panel(key="release_queue", title=_("Awaiting your decision"), template="qc/panels/release_queue.html",
                         roles=frozenset({Role.QUALIFIED_PERSON}), order=10, context=release_context, wide=True))
    register_panel(Panel(key="vein_to_vein", title=_("Vein to vein"), template="qc/panels/vein_to_vein.html",
                         roles=frozenset({Role.COORDINATOR, Role.QUALIFIED_PERSON, Role.SITE_ADMIN}), order=15,
                         context=vein_to_vein_context))
