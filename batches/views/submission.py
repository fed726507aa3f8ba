"""The one shape of a page whose form calls a service.

A bound, valid form calls the service; a refusal (``GMPError``) is shown next to the
field it names, or above the form, and the page is rendered again with what the user
typed; a success is announced and redirects. Used by the manufacturing and the
chain-of-identity pages alike, so a refusal reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from carmfg.exceptions import GMPError


def form_error(form: forms.Form, exc: GMPError) -> None:
    """Show a service's refusal next to the field it names, or above the form."""
    name = (exc.field or "").strip().lower().replace(" ", "_")
    form.add_error(name if name in form.fields else None, exc.text)


@dataclass(frozen=True)
class Submission:
    """``response`` is the redirect after a success; otherwise render the page again with
    ``status`` (200 when nothing was posted, 400 for an invalid form, the refusal's own
    status for a refused one)."""

    response: HttpResponse | None
    status: int


def form_submit(request: HttpRequest, form: forms.Form, call: Callable[[dict], Any], *,
                success: Callable[[Any], str], next_url: Callable[[Any], str]) -> Submission:
    """Run ``call(form.cleaned_data)`` for a posted, valid ``form``; ``success(result)`` is
    the message and ``next_url(result)`` where to go after it."""
    if request.method != "POST":
        return Submission(None, 200)
    if not form.is_valid():
        return Submission(None, 400)
    try:
        result = call(dict(form.cleaned_data))
    except GMPError as exc:
        form_error(form, exc)
        return Submission(None, exc.status_code)
    messages.success(request, success(result))
    return Submission(redirect(next_url(result)), 200)
