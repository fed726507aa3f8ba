"""Home-page panel of the chain of identity: the coordinator's recent orders."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from batches.selectors import intake_pending_count_for_site, order_list_for_user
from carmfg.accounts.models import Role
from carmfg.home import Panel, register_panel

RECENT_ORDERS = 10


def orders_context(request) -> dict:
    site = request.site
    orders = list(
        order_list_for_user(request.user, site=site).select_related("donation", "batch").order_by("-created_at", "-pk")[
            :RECENT_ORDERS]
    )
    return {"orders": orders, "awaiting_decision": intake_pending_count_for_site(request.user, site)}


def register() -> None:
    register_panel(
        Panel(
            key="patients_orders",
            title=_("Patients and orders"),
            template="batches/coi/panels/orders.html",
            roles=frozenset({Role.COORDINATOR}),
            order=10,
            context=orders_context,
            wide=True,
        )
    )
