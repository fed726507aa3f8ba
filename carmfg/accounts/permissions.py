"""Who may do what, at which site.

Roles are granted per site (``Membership``) and turned into django-guardian object
permissions on the ``Site``. Every check goes through :func:`has_site_perm`, which
reads only the user's own object permissions: global permissions and the superuser
flag never open a site's records.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern
from django.utils.translation import gettext_noop
from guardian.shortcuts import get_user_perms

from carmfg.accounts.models import Role
from carmfg.exceptions import PermissionRefused
from carmfg.texts import label

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
    """Raise ``PermissionRefused`` unless the user holds ``perm`` at ``site``. ``action``
    is English ("complete batches"), marked with ``gettext_noop`` where it is written:
    the refusal shows it translated."""
    if not has_site_perm(user, site, perm):
        raise PermissionRefused(gettext_noop("Your roles at %(site)s do not allow you to %(action)s."),
                                params={"site": site, "action": label(action)})


def forget_cached_perms(user) -> None:
    """Drop what this user object remembers of its sites and roles (after a change)."""
    for name in ("_carmfg_site_perms", "_carmfg_site_ids", "_carmfg_audit_sites"):
        if hasattr(user, name):
            delattr(user, name)


def holds_perm_anywhere(user, perms: tuple[str, ...]) -> bool:
    """Whether ``user`` holds one of ``perms`` at one of their sites."""
    from carmfg.accounts.selectors import site_list_for_user

    return any(has_site_perm(user, site, perm) for site in site_list_for_user(user) for perm in perms)


def site_perm_required(*perms: str, action: str, methods: tuple[str, ...] = ("GET", "POST")):
    """Refuse a view (403) before it reads any input when the signed-in user holds none
    of ``perms`` at any of their sites: a refusal then never depends on how complete the
    form was. The service still checks the permission at the record's own site.

    Only ``methods`` are guarded; anonymous users and other methods pass through to the
    view's own ``login_required`` and ``require_POST``."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            user = request.user
            if request.method in methods and user.is_authenticated and not holds_perm_anywhere(user, perms):
                raise PermissionRefused(gettext_noop("Your roles do not allow you to %(action)s."),
                                        params={"action": label(action)})
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@dataclass(frozen=True)
class RoutePerm:
    """Who may use a route at all: one of ``perms`` at some site, for ``methods``."""

    perms: tuple[str, ...]
    action: str
    methods: tuple[str, ...] = ("GET", "POST")


def guard_routes(patterns: list, rules: dict[str, RoutePerm]) -> list:
    """``patterns`` with the views named in ``rules`` wrapped in :func:`site_perm_required`.

    Each app keeps its route rules next to its URLconf (``<app>/permissions.py``); a rule
    naming no route is an error, so a renamed route cannot silently lose its guard."""
    names = {p.name for p in patterns if isinstance(p, URLPattern)}
    unknown = set(rules) - names
    if unknown:
        raise ImproperlyConfigured(f"route permissions name unknown routes: {sorted(unknown)}")
    guarded = []
    for p in patterns:
        rule = rules.get(p.name) if isinstance(p, URLPattern) and p.name else None
        if rule is None:
            guarded.append(p)
            continue
        view = site_perm_required(*rule.perms, action=rule.action, methods=rule.methods)(p.callback)
        guarded.append(URLPattern(p.pattern, view, p.default_args, p.name))
    return guarded
