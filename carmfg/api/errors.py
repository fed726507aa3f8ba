"""Errors of the API as RFC 9457 problem details, with field-level messages.

The API adds no rules of its own: a domain error raised by a service (``GMPError``)
comes back with the same message a person sees on the page, never as a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from carmfg.errors import CONNECTION_ERRORS, database_unavailable
from carmfg.exceptions import GMPError

PROBLEM_CONTENT_TYPE = "application/problem+json"


def _field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested error detail into [{"field": "a.b", "message": "..."}]."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out += _field_errors(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
    elif isinstance(detail, list):
        for item in detail:
            out += _field_errors(item, prefix)
    else:
        out.append({"field": prefix, "message": str(detail)})
    return out


def problem(status_code: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def problem_details_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, CONNECTION_ERRORS):
        exc = database_unavailable(exc)
    if isinstance(exc, GMPError):
        errors = [{"field": exc.field or "", "message": exc.text}]
        return problem(exc.status_code, type(exc).__name__, exc.text, errors)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return problem(status.HTTP_400_BAD_REQUEST, "Invalid input", detail, errors)
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
    title = getattr(exc, "default_code", "error").replace("_", " ").capitalize()
    resp = problem(response.status_code, title, str(detail))
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            resp[header] = response[header]
    return resp
