"""Writes on sites and memberships. Every one is audited in its own transaction."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext_noop
from guardian.shortcuts import assign_perm, remove_perm

from carmfg.accounts.models import Membership, Profile, Role, Site
from carmfg.accounts.permissions import ROLE_PERMISSIONS, forget_cached_perms, permissions_for_roles
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import InvalidInput


def site_create(*, actor, code: str, name: str, time_zone: str, facility_identification_number: str) -> Site:
    with transaction.atomic():
        site = Site(code=code, name=name, time_zone=time_zone, facility_identification_number=facility_identification_number)
        site.full_clean()
        site.save()
        audit_record(
            actor=actor,
            action=Action.CREATE,
            obj=site,
            site=site,
            changes={"code": code, "name": name, "time_zone": time_zone, "fin": facility_identification_number},
        )
    return site


def role_groups_ensure() -> dict[str, Group]:
    return {role: Group.objects.get_or_create(name=role)[0] for role in Role.values}


def membership_set_roles(*, actor, user, site: Site, roles: list[str], reason: str = "") -> Membership:
    """Grant exactly ``roles`` to ``user`` at ``site`` (guardian object permissions follow)."""
    unknown = sorted(set(roles) - set(Role.values))
    if unknown:
        raise InvalidInput(gettext_noop("Unknown role(s): %(roles)s."), params={"roles": ", ".join(unknown)})
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(user=user, site=site)
        before = [] if created else membership.role_names
        groups = role_groups_ensure()
        membership.roles.set([groups[r] for r in roles])
        wanted = permissions_for_roles(roles)
        for perm in permissions_for_roles(list(ROLE_PERMISSIONS)) - wanted:
            remove_perm(f"accounts.{perm}", user, site)
        for perm in wanted:
            assign_perm(f"accounts.{perm}", user, site)
        forget_cached_perms(user)
        audit_record(
            actor=actor,
            action=Action.CREATE if created else Action.UPDATE,
            obj=membership,
            site=site,
            object_repr=f"{user.get_username()} @ {site.code}",
            changes={"roles": {"old": sorted(before), "new": sorted(roles)}},
            reason=reason or ("Role granted" if created else ""),
        )
    return membership


def user_create(*, actor, username: str, full_name: str, email: str, password: str):
    User = get_user_model()
    first, _, last = full_name.partition(" ")
    with transaction.atomic():
        user = User(username=username, first_name=first, last_name=last, email=email)
        user.set_password(password)
        user.full_clean()
        user.save()
        audit_record(actor=actor, action=Action.CREATE, obj=user, object_repr=username, changes={"username": username, "name": full_name})
    return user


def profile_language_set(*, actor, language: str) -> Profile:
    """A user chooses the interface language for themself (blank: the browser's); audited."""
    if language and language not in dict(settings.LANGUAGES):
        raise InvalidInput(gettext_noop("Choose one of the offered languages."), field="language")
    with transaction.atomic():
        profile, _created = Profile.objects.select_for_update().get_or_create(user=actor)
        old = profile.language
        if old == language:
            return profile
        profile.language = language
        profile.save(update_fields=["language", "updated_at"])
        # Codes, not names: audit data must not depend on the reader's language.
        audit_record(
            actor=actor,
            action=Action.UPDATE,
            obj=profile,
            object_repr=actor.get_username(),
            changes={"language": {"old": old, "new": language}},
            reason="Language preference changed by its owner",
        )
    return profile

