"""The correction page of an apheresis intake: its measured values as recorded, the
form to correct them (reason + signature), and every earlier correction, old → new.

Thin: the service ``intake_correct`` checks every rule again. Only the values the user
changed are sent to it; what the page showed is compared at the minute, in the site's
time zone, as the form shows it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_http_methods

from batches import coi_forms as f
from batches.models import IntakeCorrection, IntakeOutcome
from batches.selectors import batch_for_donation, intake_correction_list, intake_get_for_user
from batches.services.intake_correction import (
    CORRECTABLE_FIELDS,
    FIELD_LABELS,
    intake_correct,
    intake_correction_blocker,
    stored_value_text,
)
from batches.views.submission import form_error
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.exceptions import GMPError


def _as_shown(value: Any, zone) -> Any:
    """A value as the form shows it: local time to the minute, numbers as numbers."""
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    return value


def _history(intake, zone) -> list[dict]:
    rows = []
    for correction, signatures in intake_correction_list(intake):
        changes = correction.changes if isinstance(correction.changes, dict) else {}
        rows.append({
            "correction": correction, "signatures": signatures,
            "outcome_changed": correction.outcome_before != correction.outcome_after,
            "outcome_before": IntakeOutcome(correction.outcome_before).label,
            "outcome_after": IntakeOutcome(correction.outcome_after).label,
            "changes": [{"label": gettext(FIELD_LABELS.get(name) or name),
                         "old": stored_value_text(name, change.get("old"), zone),
                         "new": stored_value_text(name, change.get("new"), zone)}
                        for name, change in changes.items() if isinstance(change, dict)],
            "unmet_after": [gettext(str(item.get("label") or key)) for key, item in (correction.evaluation_after or {}).items()
                            if isinstance(item, dict) and not item.get("met")],
        })
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def intake_correct_view(request, pk: int):
    intake = intake_get_for_user(request.user, pk)
    donation = intake.donation
    site = intake.site
    zone = site.zone
    shown = {name: _as_shown(getattr(intake, name), zone) for name in CORRECTABLE_FIELDS}
    initial = {**shown, "bag_intact": "yes" if intake.bag_intact else "no", "version": intake.version}
    form = f.IntakeCorrectionForm(request.POST or None, initial=initial)
    may_correct = has_site_perm(request.user, site, SitePerm.EXECUTE)
    blocker = intake_correction_blocker(intake) if may_correct else None
    status = 200
    if request.method == "POST":
        require_site_perm(request.user, site, SitePerm.EXECUTE, action=gettext_noop("correct apheresis intakes"))
        with timezone.override(zone):
            valid = form.is_valid()
        if not valid:
            status = 400
            if "version" in form.errors:  # a hidden field: its own error would not be seen
                form.add_error(None, gettext("The form is out of date: reload the page."))
        else:
            data = form.cleaned_data
            changes = {name: data[name] for name in CORRECTABLE_FIELDS if _as_shown(data[name], zone) != shown[name]}
            try:
                correction: IntakeCorrection = intake_correct(
                    actor=request.user, intake=intake, changes=changes, reason=data["reason"],
                    password=data["password"], expected_version=data["version"], request=request)
            except GMPError as exc:
                form_error(form, exc)
                status = exc.status_code
            else:
                messages.success(request, gettext("Correction %(number)s of the intake recorded and signed.")
                                 % {"number": correction.sequence})
                if correction.deviation is not None:
                    messages.warning(request, gettext(
                        "The corrected values do not meet the acceptance criteria: deviation %(number)s is raised and "
                        "blocks release until a QP closes it.") % {"number": correction.deviation.number})
                return redirect("batches:intake_correct", pk=intake.pk)
    return render(request, "batches/coi/intake_correct.html", {
        "intake": intake, "donation": donation, "order": donation.order, "batch": batch_for_donation(donation),
        "form": form, "can_correct": may_correct and blocker is None, "blocker": blocker,
        "history": _history(intake, zone),
    }, status=status)


urlpatterns = [
    path("intakes/<int:pk>/correct/", intake_correct_view, name="intake_correct"),
]
