"""Home-page panels of manufacturing: the technician's open steps, the QP's deviations."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches import selectors
from carmfg.accounts.models import Role
from carmfg.home import Panel, register_panel

SHOWN = 8


def open_steps_context(request) -> dict:
    return {"rows": selectors.open_steps_for_site(request.site, limit=SHOWN)}


def deviations_context(request) -> dict:
    shown = list(selectors.deviation_open_list_for_site(request.site)[: SHOWN + 1])
    return {"deviations": shown[:SHOWN], "more": len(shown) > SHOWN}


def register() -> None:
    register_panel(Panel(
        key="open_steps", title=_("Batches in process: next steps"), template="batches/execution/panels/open_steps.html",
        roles=frozenset({Role.TECHNICIAN, Role.VERIFIER}), order=10, context=open_steps_context))
    register_panel(Panel(
        key="open_deviations", title=_("Deviations not closed"),
        template="batches/execution/panels/open_deviations.html",
        roles=frozenset({Role.QUALIFIED_PERSON}), order=12, context=deviations_context))
