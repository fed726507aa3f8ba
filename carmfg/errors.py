"""Turning domain errors into clear messages, never a 500."""

from __future__ import annotations

from django.shortcuts import render

from carmfg.exceptions import GMPError


class GMPErrorMiddleware:
    """A ``GMPError`` that escaped a view becomes a page (or htmx fragment) saying why."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, GMPError):
            return None
        template = "partials/error.html" if getattr(request, "htmx", False) else "error.html"
        return render(request, template, {"error": exception}, status=exception.status_code)
