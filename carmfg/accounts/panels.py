"""Home-page panels of the accounts app: the user's own account, and the people and
roles of the site for its administrator."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from carmfg.accounts.context_processors import current_membership
from carmfg.accounts.models import Role
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.accounts.selectors import membership_list_for_site
from carmfg.audit.models import Action, AuditEvent
from carmfg.home import Panel, register_panel

PEOPLE_SHOWN = 8


def _previous_login(user):
    """The login before the current session, so a user can notice one that was not theirs."""
    times = list(
        AuditEvent.objects.filter(actor=user, action=Action.LOGIN)
        .order_by("-occurred_at", "-seq")
        .values_list("occurred_at", flat=True)[:2]
    )
    return times[1] if len(times) > 1 else None


def account_context(request) -> dict:
    membership = current_membership(request)
    # Who to ask for a role, a reset or an unlock.
    admins = [
        m.user
        for m in membership_list_for_site(request.user, request.site)
        .filter(roles__name=Role.SITE_ADMIN)
        .prefetch_related(None)
    ]
    return {
        "site_admins": admins,
        "role_labels": membership.role_labels if membership else [],
        "member_since": membership.created_at if membership else None,
        "last_login": request.user.last_login,
        "previous_login": _previous_login(request.user),
    }


def site_people_context(request) -> dict:
    site = request.site
    if not has_site_perm(request.user, site, SitePerm.ADMIN):
        return {"memberships": [], "coverage": [], "total": 0}
    memberships = list(membership_list_for_site(request.user, site))
    counts = dict.fromkeys(Role.values, 0)
    for membership in memberships:
        for name in membership.role_names:
            counts[name] = counts.get(name, 0) + 1
    return {
        "memberships": memberships[:PEOPLE_SHOWN],
        "total": len(memberships),
        "hidden": max(len(memberships) - PEOPLE_SHOWN, 0),
        # Every role with how many people hold it: a site with no QP cannot release.
        "coverage": [(Role(role).label, counts[role]) for role in Role.values],
        "no_role": sum(1 for m in memberships if not m.role_names),
    }


def register() -> None:
    register_panel(
        Panel(
            key="site_people",
            title=_("People and roles at this site"),
            template="accounts/panels/site_people.html",
            roles=frozenset({Role.SITE_ADMIN}),
            order=20,
            context=site_people_context,
        )
    )
    register_panel(
        Panel(
            key="account",
            title=_("Your account"),
            template="accounts/panels/account.html",
            roles=frozenset(Role.values),
            order=90,
            context=account_context,
        )
    )
