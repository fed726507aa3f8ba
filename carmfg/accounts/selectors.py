"""Reads of sites. "Only my sites" is the default everywhere: other apps scope their
querysets with :func:`site_ids_for_user`."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from carmfg.accounts.models import Membership, Profile, Site
from carmfg.accounts.permissions import SitePerm, has_site_perm


def site_list_for_user(user) -> QuerySet[Site]:
    if user is None or not user.is_authenticated or not user.is_active:
        return Site.objects.none()
    # Only the user's own object permissions count: never global ones, never superuser.
    return get_objects_for_user(
        user, f"accounts.{SitePerm.ACCESS}", klass=Site.objects.filter(is_active=True),
        accept_global_perms=False, with_superuser=False, use_groups=False,
    ).order_by("name")


def site_ids_for_user(user) -> list[int]:
    cached = getattr(user, "_carmfg_site_ids", None)
    if cached is None:
        cached = list(site_list_for_user(user).values_list("pk", flat=True))
        if user is not None and user.is_authenticated:
            user._carmfg_site_ids = cached
    return cached


def site_get_for_user(user, pk: int) -> Site:
    """The site, if the user holds a role there; 404 otherwise (never reveal it exists)."""
    site = Site.objects.filter(pk=pk, is_active=True).first()
    if site is None or not has_site_perm(user, site, SitePerm.ACCESS):
        raise Http404("No such site.")
    return site


def membership_for(user, site: Site) -> Membership | None:
    return Membership.objects.filter(user=user, site=site).prefetch_related("roles").first()


def membership_list_for_site(user, site: Site) -> QuerySet[Membership]:
    if not has_site_perm(user, site, SitePerm.ACCESS):
        raise Http404("No such site.")
    return Membership.objects.filter(site=site).select_related("user").prefetch_related("roles").order_by("user__last_name")


def profile_language_get(user) -> str:
    """The user's chosen language code, or "" when they follow their browser."""
    return Profile.objects.filter(user=user).values_list("language", flat=True).first() or ""
