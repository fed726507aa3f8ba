"""Turning domain errors into clear messages, never a 500."""

from __future__ import annotations

import logging

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.html import escape

from carmfg.exceptions import DatabaseUnavailable, GMPError

logger = logging.getLogger(__name__)

# Errors of the connection itself (server restarted, backend killed, network cut), not
# of the statement: the transaction was rolled back by the server, so "not saved, try
# again" is true and the user can act on it.
CONNECTION_ERRORS = (OperationalError, InterfaceError)


def drop_broken_connections() -> None:
    """Close connections that no longer work, so that the next request reconnects."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
            conn.close()


def database_unavailable(exception: Exception) -> DatabaseUnavailable:
    logger.error("database connection lost during a request; the transaction was rolled back", exc_info=exception)
    drop_broken_connections()
    return DatabaseUnavailable()


class GMPErrorMiddleware:
    """A ``GMPError`` that escaped a view becomes a page (or htmx fragment) saying why.

    A lost database connection becomes a 503 "not saved, try again" page: the
    transaction of the write was rolled back with the connection."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, CONNECTION_ERRORS):
            exception = database_unavailable(exception)
        if not isinstance(exception, GMPError):
            return None
        template = "partials/error.html" if getattr(request, "htmx", False) else "error.html"
        try:
            return render(request, template, {"error": exception}, status=exception.status_code)
        except DatabaseError:
            # The page's layout reads the database (navigation, site); while it is down,
            # still say what happened rather than answer 500.
            drop_broken_connections()
            return HttpResponse(
                f'<!doctype html><title>Not saved</title><div role="alert"><h1>Not done</h1>'
                f"<p>{escape(exception.text)}</p></div>",
                status=exception.status_code,
            )
