"""Who may do what, at which site.

Roles are granted per site (``Membership``) and turned into django-guardian object
permissions on the ``Site``. Every check goes through :func:`has_site_perm`, which
reads only the user's own object permissions: global permissions and the superuser
flag never open a site's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardian.shortcuts import get_user_perms

from carmfg.accounts.models import Role
from carmfg.exceptions import PermissionRefused

if TYPE_CHECKING:
    from carmfg.accounts.models import Site


class SitePerm:
    ACCESS = "access_site"
    EXECUTE = "execute_steps"
    VERIFY = "verify_steps"
    QC = "enter_qc_results"
    CERTIFY = "certify_batches"
    PATIENTS = "manage_patients"
    AUDIT = "view_audit_trail"
    ADMIN = "administer_site"


ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.TECHNICIAN: frozenset({SitePerm.ACCESS, SitePerm.EXECUTE}),
    Role.VERIFIER: frozenset({SitePerm.ACCESS, SitePerm.VERIFY}),
    Role.QC_ANALYST: frozenset({SitePerm.ACCESS, SitePerm.QC}),
    Role.QUALIFIED_PERSON: frozenset({SitePerm.ACCESS, SitePerm.CERTIFY, SitePerm.AUDIT}),
    Role.COORDINATOR: frozenset({SitePerm.ACCESS, SitePerm.PATIENTS}),
    Role.AUDITOR: frozenset({SitePerm.ACCESS, SitePerm.AUDIT}),
    Role.SITE_ADMIN: frozenset({SitePerm.ACCESS, SitePerm.ADMIN}),
}


def permissions_for_roles(roles: list[str]) -> frozenset[str]:
    perms: set[str] = set()
    for role in roles:
        perms |= ROLE_PERMISSIONS[role]
    return frozenset(perms)


def site_perms(user, site: Site) -> frozenset[str]:
    if user is None or not user.is_authenticated or not user.is_active or site is None:
        return frozenset()
    cache = getattr(user, "_carmfg_site_perms", None)
    if cache is None:
        cache = {}
        user._carmfg_site_perms = cache
    if site.pk not in cache:
        cache[site.pk] = frozenset(get_user_perms(user, site))
    return cache[site.pk]


def has_site_perm(user, site: Site, perm: str) -> bool:
    return perm in site_perms(user, site)


def require_site_perm(user, site: Site, perm: str, *, action: str) -> None:
    """Raise ``PermissionRefused`` unless the user holds ``perm`` at ``site``."""
    if not has_site_perm(user, site, perm):
        raise PermissionRefused(f"Your roles at {site} do not allow you to {action}.")


def forget_cached_perms(user) -> None:
    if hasattr(user, "_carmfg_site_perms"):
        del user._carmfg_site_perms
