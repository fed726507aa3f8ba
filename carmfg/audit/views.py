from __future__ import annotations

import csv
import json

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Max
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_noop

from carmfg.audit.forms import AuditFilterForm
from carmfg.audit.models import Action
from carmfg.audit.selectors import (
    AuditCursor,
    AuditFilter,
    audit_event_list_for_user,
    audit_event_page_for_user,
    audit_sites_for_user,
)
from carmfg.audit.services import audit_record
from carmfg.exceptions import InvalidInput

EXPORT_COLUMNS = [
    "site", "chain", "seq", "occurred_at", "actor_username", "actor_name", "action", "object_type",
    "object_id", "object_repr", "root_type", "root_id", "changes", "reason", "request_id", "prev_hash", "hash",
]
EXPORT_MAX_EVENTS = 200_000
PAGING_PARAMS = ("page", "before", "after")


def _form_and_filter(request) -> tuple[AuditFilterForm, AuditFilter | None]:
    sites = audit_sites_for_user(request.user)
    if not sites:
        raise Http404("No audit trail available to you.")
    params = request.GET.copy()
    for name in PAGING_PARAMS:
        params.pop(name, None)
    form = AuditFilterForm(params or None, sites=sites)
    if not form.is_bound:
        return form, AuditFilter()
    if not form.is_valid():
        return form, None
    return form, form.to_filter()


def _form_and_events(request):
    form, flt = _form_and_filter(request)
    return form, (audit_event_list_for_user(request.user, flt) if flt is not None else None)


@login_required
def audit_list(request):
    """The trail, newest first, 50 events a page; "Older" and "Newer" follow cursors
    (``before``/``after``), so any page of millions of events costs the same. A cursor
    that is not one shows the newest events."""
    form, flt = _form_and_filter(request)
    page = None
    if flt is not None:
        before = AuditCursor.parse(request.GET.get("before"))
        after = AuditCursor.parse(request.GET.get("after")) if before is None else None
        page = audit_event_page_for_user(request.user, flt, before=before, after=after)
    query = request.GET.copy()
    for name in PAGING_PARAMS:
        query.pop(name, None)
    return render(request, "audit/list.html", {"form": form, "page": page, "query": query.urlencode()})


def _row(event) -> dict:
    return {
        "site": event.site.code if event.site else "",
        "chain": event.chain,
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_username": event.actor_username,
        "actor_name": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "root_type": event.root_type,
        "root_id": event.root_id,
        "changes": event.changes,
        "reason": event.reason,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


class _Echo:
    def write(self, value):
        return value


@login_required
def audit_export(request, fmt: str):
    if fmt not in {"csv", "json"}:
        raise Http404("Unknown export format.")
    form, events = _form_and_events(request)
    if events is None:
        return render(request, "audit/list.html", {"form": form, "page": None, "query": ""}, status=400)
    # Freeze the set before the export's own audit event is appended to it.
    last_id = events.aggregate(last=Max("id"))["last"] or 0
    events = events.filter(id__lte=last_id).order_by("chain", "seq")
    count = events.count()
    if count > EXPORT_MAX_EVENTS:
        return render(
            request, "error.html",
            {"error": InvalidInput(gettext_noop("The filter selects %(count)s events; narrow it to at most %(max)s."),
                                   params={"count": f"{count:,}", "max": f"{EXPORT_MAX_EVENTS:,}"})},
            status=400,
        )
    # The export is itself an audited event, recorded on each site chain it reads.
    with transaction.atomic():
        site_ids = set(events.order_by().values_list("chain", flat=True).distinct())
        for site in [s for s in audit_sites_for_user(request.user) if s.pk in site_ids or not site_ids]:
            audit_record(actor=request.user, action=Action.VIEW_EXPORT, site=site, object_type="audit.auditevent",
                         object_repr=f"audit trail export ({fmt})",
                         changes={"format": fmt, "filter": request.GET.urlencode(), "events": count})
    rows = (_row(e) for e in events.iterator(chunk_size=2000))
    if fmt == "json":
        body = json.dumps(list(rows), ensure_ascii=False, indent=1)
        response: HttpResponse | StreamingHttpResponse = HttpResponse(body, content_type="application/json; charset=utf-8")
    else:
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(EXPORT_COLUMNS)
            for row in rows:
                row["changes"] = json.dumps(row["changes"], ensure_ascii=False, sort_keys=True)
                yield writer.writerow([row[c] for c in EXPORT_COLUMNS])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-trail.{fmt}"'
    return response
