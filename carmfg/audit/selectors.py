"""Reading the audit trail: only chains of sites where the user may read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from carmfg.accounts.models import Membership, Site
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.accounts.selectors import site_list_for_user
from carmfg.audit.models import AuditEvent


def audit_sites_for_user(user) -> list[Site]:
    return [s for s in site_list_for_user(user) if has_site_perm(user, s, SitePerm.AUDIT)]


@dataclass
class AuditFilter:
    site: Site | None = None
    root_type: str = ""
    root_id: str = ""
    username: str = ""
    object_type: str = ""
    object_id: str = ""
    action: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    # Logins belong to no site; include those of the people of the audited sites.
    include_logins: bool = True


def audit_event_list_for_user(user, flt: AuditFilter) -> QuerySet[AuditEvent]:
    sites = audit_sites_for_user(user)
    allowed = [s.pk for s in sites]
    if flt.site is not None:
        allowed = [pk for pk in allowed if pk == flt.site.pk]
    # Logins, logouts and failed logins belong to no site (chain 0); an auditor sees
    # those of the people who hold a role at the sites they audit.
    members = Membership.objects.filter(site_id__in=allowed).values("user__username")
    in_scope = Q(chain__in=allowed)
    if flt.include_logins:
        in_scope |= Q(chain=0, actor_username__in=members)
    qs = AuditEvent.objects.filter(in_scope)
    if flt.root_type:
        qs = qs.filter(root_type=flt.root_type)
    if flt.root_id:
        qs = qs.filter(root_id=flt.root_id)
    if flt.username:
        qs = qs.filter(actor_username=flt.username)
    if flt.object_type:
        qs = qs.filter(object_type=flt.object_type)
    if flt.object_id:
        qs = qs.filter(object_id=flt.object_id)
    if flt.action:
        qs = qs.filter(action=flt.action)
    if flt.date_from:
        qs = qs.filter(occurred_at__gte=dt.datetime.combine(flt.date_from, dt.time.min, tzinfo=dt.UTC))
    if flt.date_to:
        qs = qs.filter(occurred_at__lt=dt.datetime.combine(flt.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC))
    return qs.select_related("site").order_by("-occurred_at", "-seq")
