"""What every page's layout needs to know about the user and the site they work at.

The main navigation is computed here, not in the template, so that a link is shown
only when its page exists (``reverse`` resolves) and the user's roles at the current
site open it. The domain apps own these URL names:

- ``batches:index`` (Batches), ``qc:index`` (QC), ``qc:release`` (Release);
- ``audit_list`` (Audit trail, needs ``view_audit_trail`` at the current site);
- ``qc:dashboard`` (Vein to vein: coordinators, QPs and site admins).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.accounts.selectors import membership_for, site_list_for_user


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str
    current: bool


# key, label, URL name, permission needed at the current site
MAIN_NAV = [
    ("coi", _("Patients & orders"), "batches:order_list", SitePerm.ACCESS),
    ("batches", _("Batches"), "batches:index", SitePerm.ACCESS),
    ("qc", _("QC"), "qc:index", SitePerm.ACCESS),
    ("release", _("Release"), "qc:release", SitePerm.ACCESS),
    ("audit", _("Audit trail"), "audit_list", SitePerm.AUDIT),
    # Coordinators, QPs and site admins: the one permission each of them alone holds.
    ("dashboard", _("Vein to vein"), "qc:dashboard", (SitePerm.PATIENTS, SitePerm.CERTIFY, SitePerm.ADMIN)),
]


def current_membership(request):
    """The user's membership at ``request.site`` (with roles), read once per request."""
    if not hasattr(request, "_carmfg_membership"):
        site = request.site if getattr(request, "site", None) else None
        request._carmfg_membership = membership_for(request.user, site) if site else None
    return request._carmfg_membership


def _main_nav(request, site) -> list[NavItem]:
    found: list[tuple[str, str, str]] = []
    for key, label, url_name, perm in MAIN_NAV:
        needed = perm if isinstance(perm, tuple) else (perm,)  # a tuple: any one of them
        if site is None or not any(has_site_perm(request.user, site, p) for p in needed):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue  # the app that serves this page is not there yet: no link to a 404
        found.append((key, str(label), url))
    # The current item is the one whose URL is the longest prefix of the path, so
    # /qc/release/… marks Release and not QC.
    matching = [url for _key, _label, url in found if request.path.startswith(url)]
    current = max(matching, key=len) if matching else None
    return [NavItem(key, label, url, url == current) for key, label, url in found]


def _utc_offset(site) -> str:
    offset = dt.datetime.now(tz=site.zone).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def site_context(request) -> dict:
    user = getattr(request, "user", None)
    context: dict[str, Any] = {"carmfg_env": settings.CARMFG_ENV}
    if user is None or not user.is_authenticated:
        return context

    site = request.site if getattr(request, "site", None) else None
    membership = current_membership(request)
    context.update(
        {
            "current_site": site,
            "current_site_utc_offset": _utc_offset(site) if site else "",
            "my_sites": list(site_list_for_user(user)),
            "my_roles": membership.role_names if membership else [],
            "my_role_labels": membership.role_labels if membership else [],
            "can_view_audit": site is not None and has_site_perm(user, site, SitePerm.AUDIT),
            "main_nav": _main_nav(request, site),
        }
    )
    return context
