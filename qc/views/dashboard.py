"""The vein-to-vein dashboard page (coordinators, QPs, site admins of the current site)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from qc.dashboard import dashboard_for_user
from qc.dashboard_charts import stage_chart_svg, vein_to_vein_chart_svg


@login_required
@require_GET
def dashboard(request):
    if not request.site:
        raise Http404("You hold no role at any site.")
    board = dashboard_for_user(request.user, site=request.site)
    context = {
        "board": board,
        # Built from escaped text only (see qc.dashboard_charts).
        "stage_chart": mark_safe(stage_chart_svg(board.by_stage)),  # noqa: S308
        "v2v_chart": mark_safe(vein_to_vein_chart_svg(  # noqa: S308
            board.months, target_min=board.target_min_days, target_max=board.target_max_days)),
    }
    return render(request, "qc/dashboard.html", context)


urlpatterns = [path("dashboard/", dashboard, name="dashboard")]
