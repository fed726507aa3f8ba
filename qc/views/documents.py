"""Signed batch records: the "Verify a record" page.

Auditors and qualified persons upload a PDF and see the same verdict as
``manage.py verify_batch_record``; only records issued at the sites where they may
read the audit trail count as issued, so the page never confirms another site's
record.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import URLPattern, path

from carmfg.audit.selectors import audit_sites_for_user
from qc.verification import verify_record


def upload_limit_bytes() -> int:
    return settings.CARMFG_VERIFY_UPLOAD_MAX_MB * 1024 * 1024


class RecordVerifyForm(forms.Form):
    file = forms.FileField(
        label="Signed batch record (PDF)",
        help_text="The file exactly as you received it. Nothing is stored: the check runs and the file is discarded.",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > upload_limit_bytes():
            raise forms.ValidationError(
                f"The file is larger than {settings.CARMFG_VERIFY_UPLOAD_MAX_MB} MB; check it with "
                "manage.py verify_batch_record instead."
            )
        return upload


@login_required
def record_verify(request):
    sites = audit_sites_for_user(request.user)
    if not sites:
        raise Http404("No audit trail available to you.")
    verdict = None
    if request.method == "POST":
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        form = RecordVerifyForm(request.POST, request.FILES)
        if declared > upload_limit_bytes() + 64 * 1024:
            # Refuse before reading a body this large (the form would spool it to disk).
            form = RecordVerifyForm()
            form.add_error(None, f"The upload is larger than {settings.CARMFG_VERIFY_UPLOAD_MAX_MB} MB.")
        elif form.is_valid():
            upload = form.cleaned_data["file"]
            pdf = b"".join(upload.chunks())
            verdict = verify_record(pdf, site_ids=[site.pk for site in sites])
    else:
        form = RecordVerifyForm()
    return render(request, "documents/verify.html", {"form": form, "verdict": verdict}, status=200)


urlpatterns: list[URLPattern] = [
    path("records/verify/", record_verify, name="record_verify"),
]
