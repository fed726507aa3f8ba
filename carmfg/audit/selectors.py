"""Reading the audit trail: only chains of sites where the user may read it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import Q, QuerySet

from carmfg.accounts.models import Membership, Site
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.accounts.selectors import site_list_for_user
from carmfg.audit.models import AuditEvent


def audit_sites_for_user(user) -> list[Site]:
    """The sites whose trail ``user`` may read; remembered on the user object for the
    request, like its permissions (``forget_cached_perms`` drops it)."""
    cached = getattr(user, "_carmfg_audit_sites", None)
    if cached is None:
        cached = [s for s in site_list_for_user(user) if has_site_perm(user, s, SitePerm.AUDIT)]
        if user is not None and user.is_authenticated:
            user._carmfg_audit_sites = cached
    return list(cached)


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


PAGE_SIZE = 50
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CURSOR = re.compile(r"(\d{1,19})-(\d{1,19})")
NEWEST_FIRST = ("-occurred_at", "-id")


def _filtered(qs: QuerySet[AuditEvent], flt: AuditFilter) -> QuerySet[AuditEvent]:
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
    return qs


def _chains_in_scope(user, flt: AuditFilter) -> tuple[list[int], bool]:
    """The site chains ``user`` may read under ``flt``, and whether their people's
    logins (chain 0) are included."""
    allowed = [s.pk for s in audit_sites_for_user(user)]
    if flt.site is not None:
        allowed = [pk for pk in allowed if pk == flt.site.pk]
    return allowed, flt.include_logins and bool(allowed)


def _logins_of_members(allowed: list[int]) -> Q:
    # Logins, logouts and failed logins belong to no site (chain 0); an auditor sees
    # those of the people who hold a role at the sites they audit.
    members = Membership.objects.filter(site_id__in=allowed).values("user__username")
    return Q(chain=0, actor_username__in=members)


def audit_event_list_for_user(user, flt: AuditFilter) -> QuerySet[AuditEvent]:
    """Every event in scope, newest first, as one query set (exports, the API, panels).
    Pages of the audit list use :func:`audit_event_page_for_user`, which stays fast on
    millions of events."""
    allowed, logins = _chains_in_scope(user, flt)
    in_scope = Q(chain__in=allowed)
    if logins:
        in_scope |= _logins_of_members(allowed)
    return _filtered(AuditEvent.objects.filter(in_scope), flt).select_related("site").order_by(*NEWEST_FIRST)


@dataclass(frozen=True)
class AuditCursor:
    """A position in the trail: an event's time and id (unique together). Written in
    links as ``<microseconds since 1970>-<id>``."""

    occurred_at: dt.datetime
    pk: int

    @classmethod
    def of(cls, event: AuditEvent) -> AuditCursor:
        return cls(event.occurred_at, event.pk)

    @classmethod
    def parse(cls, text: str | None) -> AuditCursor | None:
        """The cursor a link carries, or None for anything that is not one."""
        match = _CURSOR.fullmatch(text or "")
        if match is None:
            return None
        micros, pk = int(match[1]), int(match[2])
        try:
            return cls(_EPOCH + dt.timedelta(microseconds=micros), pk)
        except OverflowError:
            return None

    def __str__(self) -> str:
        return f"{(self.occurred_at - _EPOCH) // dt.timedelta(microseconds=1)}-{self.pk}"


@dataclass
class AuditPage:
    """One page of the audit list, newest first, with the cursors of its neighbours
    (None where there is nothing more to see)."""

    object_list: list[AuditEvent]
    older: AuditCursor | None
    newer: AuditCursor | None

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def audit_event_page_for_user(
    user, flt: AuditFilter, *, before: AuditCursor | None = None, after: AuditCursor | None = None,
    size: int = PAGE_SIZE, refine: Callable[[QuerySet[AuditEvent]], QuerySet[AuditEvent]] | None = None,
) -> AuditPage:
    """``size`` events in scope, newest first: the newest ones, those just older than
    ``before``, or those just newer than ``after`` (the newest ones once fewer than
    ``size`` are newer).

    Keyset pagination: no COUNT and no OFFSET, so page 1 and page 1,000 of a trail of
    millions cost the same. Each readable chain (and the logins of the sites' people)
    is read on its own, newest first, down an index on (chain, time), and the pieces are
    merged; one query for the positions, one for the events. ``refine`` (the API's
    filters) narrows each chain's part further."""
    allowed, logins = _chains_in_scope(user, flt)
    branches = [AuditEvent.objects.filter(chain=pk) for pk in allowed]
    if logins:
        branches.append(AuditEvent.objects.filter(_logins_of_members(allowed)))
    if not branches:
        return AuditPage([], None, None)
    forward = after is None
    order = NEWEST_FIRST if forward else ("occurred_at", "id")
    keyed = []
    for branch in branches:
        branch = _filtered(branch, flt)
        if refine is not None:
            branch = refine(branch)
        if before is not None:
            # The first condition lets the index start at the cursor; the second breaks ties.
            branch = branch.filter(occurred_at__lte=before.occurred_at).filter(
                Q(occurred_at__lt=before.occurred_at) | Q(id__lt=before.pk))
        elif after is not None:
            branch = branch.filter(occurred_at__gte=after.occurred_at).filter(
                Q(occurred_at__gt=after.occurred_at) | Q(id__gt=after.pk))
        keyed.append(branch.values_list("id", "occurred_at"))
    if len(keyed) == 1:
        positions = keyed[0].order_by(*order)[: size + 1]
    else:
        if connections[keyed[0].db].features.supports_slicing_ordering_in_compound:
            keyed = [k.order_by(*order)[: size + 1] for k in keyed]
        else:  # SQLite: the merge alone orders and limits (same result, without the shortcut)
            keyed = [k.order_by() for k in keyed]
        positions = keyed[0].union(*keyed[1:], all=True).order_by(*order)[: size + 1]
    ids = [pk for pk, _ in positions]
    more = len(ids) > size
    ids = ids[:size]
    by_id = AuditEvent.objects.select_related("site").in_bulk(ids)
    events = [by_id[pk] for pk in ids]
    if not forward and not more:  # back at the top: the newest page, full
        return audit_event_page_for_user(user, flt, size=size, refine=refine)
    if not forward:
        events.reverse()
    if not events:
        return AuditPage([], None, None)
    newest, oldest = AuditCursor.of(events[0]), AuditCursor.of(events[-1])
    if forward:
        return AuditPage(events, older=oldest if more else None, newer=newest if before is not None else None)
    return AuditPage(events, older=oldest, newer=newest)
