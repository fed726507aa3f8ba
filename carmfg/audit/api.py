"""API of the audit trail: read-only, filtered, cursor-paginated (fast on a large trail).

Only the chains of sites where the caller may read the audit trail (auditors, QPs),
through the same selector as the audit trail page.
"""

from __future__ import annotations

import django_filters
from django.urls import path
from django.utils.translation import gettext
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied

from carmfg.api.base import ApiViewMixin, IdFilter, NewestFirstCursor
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.selectors import AuditFilter, audit_event_list_for_user, audit_sites_for_user


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


class AuditEventList(ApiViewMixin, generics.ListAPIView):
    """Audit events of the sites whose trail you may read (auditors, QPs), newest first.
    Follow ``next`` to page through; filters narrow by site, action, actor, object, time."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    pagination_class = NewestFirstCursor

    def list(self, request, *args, **kwargs):
        if not audit_sites_for_user(request.user):
            raise PermissionDenied(gettext("Your roles do not allow you to read the audit trail."))
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        return audit_event_list_for_user(self.request.user, AuditFilter())


urlpatterns = [path("audit-events/", AuditEventList.as_view(), name="api-audit-events")]
