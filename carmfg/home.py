"""The home page is made of panels that each app registers for the roles it serves.

This keeps the dependency direction (core ← batches ← qc): the core page knows no
domain model; ``batches`` and ``qc`` add their panels in ``AppConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    template: str
    roles: frozenset[str]
    order: int = 50
    context: Callable[[Any], dict] = field(default=lambda request: {})


_PANELS: dict[str, Panel] = {}


def register_panel(panel: Panel) -> None:
    _PANELS[panel.key] = panel


def panels_for_roles(roles: list[str]) -> list[Panel]:
    wanted = set(roles)
    return sorted((p for p in _PANELS.values() if p.roles & wanted), key=lambda p: (p.order, p.key))


@login_required
def home(request):
    from carmfg.accounts.selectors import membership_for

    site = request.site if request.site else None
    membership = membership_for(request.user, site) if site else None
    roles = membership.role_names if membership else []
    panels = [(panel, panel.context(request)) for panel in panels_for_roles(roles)] if site else []
    return render(request, "home.html", {"panels": panels, "site": site})
