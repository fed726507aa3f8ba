"""API of the audit trail: read-only, filtered, cursor-paginated (fast on a large trail).

Only the chains of sites where the caller may read the audit trail (auditors, QPs),
through the same selector as the audit trail page.
"""

from __future__ import annotations

import django_filters
from django.urls import path
from django.utils.translation import gettext
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import replace_query_param

from carmfg.api.base import MAX_PAGE_SIZE, PAGE_SIZE, ApiViewMixin, IdFilter
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.selectors import (
    AuditCursor,
    AuditFilter,
    AuditPage,
    audit_event_list_for_user,
    audit_event_page_for_user,
    audit_sites_for_user,
)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ("id", "chain", "seq", "occurred_at", "actor_username", "actor_name", "site", "action",
                  "object_type", "object_id", "object_repr", "root_type", "root_id", "changes", "reason",
                  "request_id", "prev_hash", "hash")
        read_only_fields = fields


class AuditEventFilter(django_filters.FilterSet):
    site = IdFilter(field_name="site_id")
    action = django_filters.ChoiceFilter(choices=Action.choices)
    actor = django_filters.CharFilter(field_name="actor_username", max_length=150)
    object_type = django_filters.CharFilter(max_length=100)
    object_id = django_filters.CharFilter(max_length=64)
    root_type = django_filters.CharFilter(max_length=100)
    root_id = django_filters.CharFilter(max_length=64)
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


class NewestFirstKeyset(CursorPagination):
    """Pages of the trail, newest first, read as the audit list page reads them
    (:func:`~carmfg.audit.selectors.audit_event_page_for_user`): each chain in scope down
    its (chain, time) index, merged, with the view's filters applied to each part, so the
    first and the thousandth page of millions of events cost the same. ``cursor`` is
    opaque: follow ``next`` (older) and ``previous`` (newer)."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-occurred_at", "-id")
    invalid_cursor_message = "Invalid cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.base_url = self.url = request.build_absolute_uri()
        self.page_size = self.get_page_size(request) or PAGE_SIZE
        before, after = self._positions(request.query_params.get(self.cursor_query_param))
        refine = view.filter_queryset if view is not None else None
        self.keyset: AuditPage = audit_event_page_for_user(
            request.user, AuditFilter(), before=before, after=after, size=self.page_size, refine=refine)
        return self.keyset.object_list

    def _positions(self, text: str | None) -> tuple[AuditCursor | None, AuditCursor | None]:
        if text is None:
            return None, None
        cursor = AuditCursor.parse(text[1:])
        if cursor is None or text[:1] not in ("o", "n"):
            raise NotFound(self.invalid_cursor_message)
        return (cursor, None) if text[0] == "o" else (None, cursor)

    def get_next_link(self) -> str | None:
        older = self.keyset.older
        return replace_query_param(self.url, self.cursor_query_param, f"o{older}") if older else None

    def get_previous_link(self) -> str | None:
        newer = self.keyset.newer
        if newer is None:
            return None
        return replace_query_param(self.url, self.cursor_query_param, f"n{newer}")


class AuditEventList(ApiViewMixin, generics.ListAPIView):
    """Audit events of the sites whose trail you may read (auditors, QPs), newest first.
    Follow ``next`` to page through; filters narrow by site, action, actor, object, time."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = NewestFirstKeyset

    def list(self, request, *args, **kwargs):
        if not audit_sites_for_user(request.user):
            raise PermissionDenied(gettext("Your roles do not allow you to read the audit trail."))
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        return audit_event_list_for_user(self.request.user, AuditFilter())


urlpatterns = [path("audit-events/", AuditEventList.as_view(), name="api-audit-events")]
