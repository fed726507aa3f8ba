"""The home page is made of panels that each app registers for the roles it serves.

This keeps the dependency direction (core ← batches ← qc): the core page knows no
domain model; ``batches`` and ``qc`` add their panels in ``AppConfig.ready``::

    register_panel(Panel("open_steps", "My open steps", "batches/panels/open_steps.html",
                         roles=frozenset({Role.TECHNICIAN}), order=10, context=open_steps_context))

A panel's ``context(request)`` runs only for users who see the panel, at
``request.site``; it must scope its reads to that site through the app's selectors
and keep a fixed number of queries (the home page asserts its query count).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import Promise


@dataclass(frozen=True)
class Panel:
    key: str
    title: str | Promise
    template: str
    roles: frozenset[str]
    order: int = 50
    context: Callable[[Any], dict] = field(default=lambda request: {})
    # A wide panel spans the whole row (tables); a normal one shares it.
    wide: bool = False


_PANELS: dict[str, Panel] = {}


def register_panel(panel: Panel) -> None:
    _PANELS[panel.key] = panel


def panels_for_roles(roles: list[str]) -> list[Panel]:
    wanted = set(roles)
    return sorted((p for p in _PANELS.values() if p.roles & wanted), key=lambda p: (p.order, p.key))


@login_required
def home(request):
    from carmfg.accounts.context_processors import current_membership

    site = request.site if request.site else None
    membership = current_membership(request) if site else None
    roles = membership.role_names if membership else []
    panels = [(panel, panel.context(request)) for panel in panels_for_roles(roles)] if site else []
    today = timezone.now().astimezone(site.zone).date() if site else None
    return render(request, "home.html", {"panels": panels, "site": site, "today": today})
