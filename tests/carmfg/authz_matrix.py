"""Machinery of the authorisation matrix: route discovery, URL building, outcomes.

The expectations themselves live in ``tests.carmfg.authz_expectations``; the test in
``tests.carmfg.test_authz_matrix``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse

# Methods tried on a Django view. A DRF view says itself which methods it serves.
PAGE_METHODS = ("get", "post")
API_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", as reverse() takes it
    pattern: str  # the full pattern, for messages
    kwarg_names: tuple[str, ...]
    callback: Any

    @property
    def is_api(self) -> bool:
        return hasattr(self.callback, "cls") and hasattr(self.callback.cls, "http_method_names")

    def methods(self) -> tuple[str, ...]:
        if not self.is_api:
            return PAGE_METHODS
        actions = getattr(self.callback, "actions", None)
        if actions:  # a viewset route: exactly the methods mapped to actions
            return tuple(m for m in API_METHODS if m in actions)
        cls = self.callback.cls
        return tuple(m for m in API_METHODS if m in cls.http_method_names and hasattr(cls, m))


def _kwarg_names(pattern) -> tuple[str, ...]:
    regex = pattern.regex.pattern if hasattr(pattern, "regex") else str(pattern)
    return tuple(re.findall(r"\(\?P<(\w+)>", regex))


def discover_routes(patterns=None, *, prefix: str = "", namespace: str = "",
                    kwargs: tuple[str, ...] = ()) -> Iterator[Route]:
    """Every URL pattern reachable from the root URLconf, with the names of its kwargs."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            full_ns = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from discover_routes(entry.url_patterns, prefix=prefix + str(entry.pattern), namespace=full_ns,
                                       kwargs=kwargs + _kwarg_names(entry.pattern))
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or "")
            yield Route(name=name, pattern=prefix + str(entry.pattern),
                        kwarg_names=kwargs + _kwarg_names(entry.pattern), callback=entry.callback)


def build_url(route: Route, values: dict[str, Any]) -> str:
    """The route's URL with each kwarg taken from ``values`` (a record's pk, or a string)."""
    kwargs = {}
    for kwarg in route.kwarg_names:
        value = values[kwarg]
        kwargs[kwarg] = getattr(value, "pk", value)
    return reverse(route.name, kwargs=kwargs)


# --- outcomes ------------------------------------------------------------------------------------------

ALLOWED = "allowed"  # the view's own logic ran: 2xx, a redirect that is not to the login, 400, 409
LOGIN = "login"  # anonymous: sent to the login page (pages) or 401/403 without credentials (API)
FORBIDDEN = "403"
NOT_FOUND = "404"
NOT_ALLOWED = "405"


def outcome_of(response, *, api: bool) -> str:
    """Classify a response into one of the outcomes above (or the bare status if none fits)."""
    status = response.status_code
    if status in (301, 302, 303, 307, 308):
        location = response.get("Location", "")
        if "/accounts/login/" in location or "/admin/login/" in location:
            return LOGIN
        return ALLOWED
    if status == 401 or (api and status == 403 and _is_unauthenticated(response)):
        return LOGIN
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return NOT_FOUND
    if status == 405:
        return NOT_ALLOWED
    # 412/428: the API's optimistic-concurrency check ran (If-Match stale or missing).
    if 200 <= status < 300 or status in (400, 409, 412, 415, 422, 428):
        return ALLOWED
    return str(status)


def _is_unauthenticated(response) -> bool:
    try:
        data = response.json()
    except (ValueError, TypeError):
        return False
    text = str(data).lower()
    return "credentials were not provided" in text or "not_authenticated" in text
