"""Home-page panels of the audit trail, for the roles that review it (auditor, QP):
a search box that opens the audit list, and the site's latest events."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from carmfg.accounts.models import Role
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.audit.models import Action
from carmfg.audit.selectors import AuditFilter, audit_event_list_for_user
from carmfg.home import Panel, register_panel

LATEST_EVENTS = 10
REVIEWERS = frozenset({Role.AUDITOR, Role.QUALIFIED_PERSON})


def audit_search_context(request) -> dict:
    return {"actions": Action.choices}


def latest_events_context(request) -> dict:
    site = request.site
    allowed = has_site_perm(request.user, site, SitePerm.AUDIT)
    events = list(audit_event_list_for_user(request.user, AuditFilter(site=site, include_logins=False))[:LATEST_EVENTS]) if allowed else []
    return {"events": events, "allowed": allowed}


def register() -> None:
    register_panel(
        Panel(
            key="audit_search",
            title=_("Search the audit trail"),
            template="audit/panels/search.html",
            roles=REVIEWERS,
            order=30,
            context=audit_search_context,
        )
    )
    register_panel(
        Panel(
            key="audit_latest",
            title=_("Latest events at this site"),
            template="audit/panels/latest.html",
            roles=REVIEWERS,
            order=40,
            context=latest_events_context,
            wide=True,
        )
    )
