"""Shared pieces of every app's API: documented problem responses, bounded pagination,
ids in URLs that never reach the database out of range, and optimistic concurrency
through ``ETag`` / ``If-Match``.

The API adds no rules of its own: views parse input, call one selector or service,
and serialise the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import django_filters
from django import forms
from django.utils.translation import gettext, gettext_lazy, gettext_noop
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.schemas.inspectors import ViewInspector

from carmfg.accounts.permissions import has_site_perm
from carmfg.accounts.selectors import site_list_for_user
from carmfg.api.errors import PROBLEM_CONTENT_TYPE
from carmfg.exceptions import PermissionRefused, StaleRecord

# Primary keys are 32-bit or 64-bit integers; anything larger cannot name a record and
# would make the database driver raise (SQLite: OverflowError) instead of answering 404.
PK_MAX = 2**31 - 1
PK_PATTERN = r"[0-9]{1,19}"

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def pk_or_404(value: object) -> int:
    """The integer id in a URL, or 404 (never a 500) for anything else."""
    text = str(value)
    if not text.isdigit() or not 0 < int(text) <= PK_MAX:
        raise exceptions.NotFound()
    return int(text)


class IdFilter(django_filters.NumberFilter):
    """A record id in a query: an integer in range, or a 400 naming the parameter (an
    out-of-range number would make the database driver raise)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", PK_MAX)
        super().__init__(*args, **kwargs)


# --- problem details in the schema ------------------------------------------------------------


class ProblemFieldError(serializers.Serializer):
    field = serializers.CharField(help_text="The request field at fault; empty for the request as a whole.")
    message = serializers.CharField()


class Problem(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    # Only ever rendered into the schema, never validated: shadowing ``Serializer.errors`` is harmless.
    errors = ProblemFieldError(many=True, required=False)  # type: ignore[assignment]


PROBLEM_DESCRIPTIONS = {
    400: "Invalid input or a rule refused the action; nothing was changed (problem details, field-level errors).",
    401: "Not authenticated, or the token is unknown, expired or revoked.",
    403: "Your roles at this site do not allow this action.",
    406: "Not acceptable: ask for JSON (or PDF for a download).",
    404: "No such record at your sites (records of other sites are never revealed).",
    409: "The record's state or content does not allow the action (e.g. a blocked scan, a stale record).",
    412: "If-Match does not match the record's current ETag: it changed since you read it.",
    415: "Unsupported media type: send JSON.",
    428: "The update needs If-Match (the record's ETag) or its version.",
    429: "Too many requests.",
}
READ_PROBLEMS = (400, 401, 403, 404, 406, 429)
WRITE_PROBLEMS = (*READ_PROBLEMS, 409, 412, 415, 428)


class ApiSchema(AutoSchema):
    """Documents the problem responses every operation may give, so that clients (and
    schemathesis) know each status code and body."""

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        bodies = super()._get_response_bodies(direction)
        ref = self.resolve_serializer(Problem, "response").ref
        codes = READ_PROBLEMS if self.method in ("GET", "HEAD", "OPTIONS") else WRITE_PROBLEMS
        for code in codes:
            bodies.setdefault(str(code), {
                "description": PROBLEM_DESCRIPTIONS[code],
                "content": {PROBLEM_CONTENT_TYPE: {"schema": ref}},
            })
        return bodies


# --- pagination ---------------------------------------------------------------------------------


class PageNumber(PageNumberPagination):
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class ApiViewMixin(GenericAPIView):
    """What every API view shares (put it first among the bases)."""

    schema: ViewInspector | None = ApiSchema()
    permission_classes: Sequence[type[BasePermission]] = (IsAuthenticated,)
    pagination_class: type[BasePagination] | None = PageNumber


# --- optimistic concurrency -------------------------------------------------------------------


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = gettext_lazy(
        "The record changed since you read it (If-Match does not match its ETag): nothing was saved."
    )
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = gettext_lazy("Send If-Match with the record's ETag (from GET), or its version in the body: "
                                  "an update is refused unless you say which version you change.")
    default_code = "precondition_required"


_ETAG_RE = re.compile(r'(?:W/)?"(\d{1,19})-(\d{1,9})"')


def etag_for(obj: Any) -> str:
    return f'"{obj.pk}-{obj.version}"'


def with_etag(response, obj: Any):
    response["ETag"] = etag_for(obj)
    return response


def expected_version(request, obj: Any, body_version: int | None) -> tuple[int, bool]:
    """The version the client claims to change: from ``If-Match`` (preferred) or the
    body's ``version``. Returns (version, came_from_if_match)."""
    header = request.headers.get("If-Match")
    if header:
        match = _ETAG_RE.fullmatch(header.strip())
        if match is None or int(match.group(1)) != obj.pk:
            raise PreconditionFailed(gettext("If-Match is not an ETag of this record: read it again (GET) and use its ETag."))
        return int(match.group(2)), True
    if body_version is None:
        raise PreconditionRequired()
    return body_version, False


@contextmanager
def stale_as_precondition_failed(from_if_match: bool) -> Iterator[None]:
    """A stale version sent as If-Match is HTTP's 412; sent in the body it stays 409."""
    try:
        yield
    except StaleRecord as exc:
        if from_if_match:
            raise PreconditionFailed(exc.text) from exc
        raise


def require_any_site_perm(user, perms: tuple[str, ...], *, action: str, site=None) -> None:
    """Refuse (403) before reading the body when the caller holds none of ``perms`` at
    ``site`` (or, for a create that names its site in the body, at any of their sites).
    The service checks again at the record's site: this only answers a role that may
    never do this with 403 rather than with the body's validation errors."""
    sites = [site] if site is not None else list(site_list_for_user(user))
    if not any(has_site_perm(user, s, perm) for s in sites for perm in perms):
        raise PermissionRefused(gettext_noop("Your roles do not allow you to %(action)s."), params={"action": action})


def request_of(request):
    """The Django request under DRF's, for the services (axes lockout, request id)."""
    return getattr(request, "_request", request)
