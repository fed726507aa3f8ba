"""Signed batch records: a batch's records with their progress, their download, an
auditor's request for a fresh export, and the "Verify a record" page.

Auditors and qualified persons upload a PDF and see the same verdict as
``manage.py verify_batch_record``; only records issued at the sites where they may
read the audit trail count as issued, so the page never confirms another site's
record. Records of other sites are 404, as is a record for anyone who may not read
the site's audit trail.
"""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from batches.selectors import batch_get_for_user
from carmfg.audit.selectors import audit_sites_for_user
from carmfg.exceptions import GMPError
from carmfg.texts import text_of
from qc import documents
from qc.models import DocumentPurpose, DocumentStatus
from qc.selectors import record_document_get_for_user, record_document_list_for_batch
from qc.verification import verify_record

# How far a record has come, for the progress bar (out of PROGRESS_STEPS).
PROGRESS: dict[str, int] = {DocumentStatus.QUEUED: 1, DocumentStatus.RENDERING: 2, DocumentStatus.SIGNING: 3, DocumentStatus.DONE: 4}
PROGRESS_STEPS = 4


def upload_limit_bytes() -> int:
    return settings.CARMFG_VERIFY_UPLOAD_MAX_MB * 1024 * 1024


class RecordVerifyForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Signed batch record (PDF)"),
        help_text=gettext_lazy("The file exactly as you received it. Nothing is stored: the check runs and the file "
                               "is discarded."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > upload_limit_bytes():
            raise forms.ValidationError(
                gettext("The file is larger than %(mb)s MB; check it with manage.py verify_batch_record instead.")
                % {"mb": settings.CARMFG_VERIFY_UPLOAD_MAX_MB}
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
            # Refuse before reading a body this large (the form would spool it to disk): an
            # empty bound form, so that it can carry the message (an unbound one raised a 500).
            form = RecordVerifyForm({})
            form.errors.clear()
            form.add_error(None, gettext("The upload is larger than %(mb)s MB.")
                           % {"mb": settings.CARMFG_VERIFY_UPLOAD_MAX_MB})
        elif form.is_valid():
            upload = form.cleaned_data["file"]
            pdf = b"".join(upload.chunks())
            verdict = verify_record(pdf, site_ids=[site.pk for site in sites])
            # Shown, not kept: the problems and notes in the reader's language.
            verdict.problems = [text_of(p) for p in verdict.problems]
            verdict.notes = [text_of(n) for n in verdict.notes]
    else:
        form = RecordVerifyForm()
    return render(request, "documents/verify.html", {"form": form, "verdict": verdict}, status=200)


def records_context(user, batch) -> dict:
    """The context of ``qc/_records.html``: the batch's records and whether any is still
    being made (the panel then refreshes itself)."""
    rows = [(d, PROGRESS.get(d.status, 0)) for d in record_document_list_for_batch(user, batch)]
    return {
        "batch": batch, "record_rows": rows, "progress_steps": PROGRESS_STEPS,
        "records_busy": any(d.status not in (DocumentStatus.DONE, DocumentStatus.FAILED) for d, _ in rows),
        "can_read_records": bool(rows) or batch.site in audit_sites_for_user(user),
        "request_id": uuid.uuid4(),  # makes a double-submitted export request one record
    }


@login_required
@require_GET
def records_panel(request, pk: int):
    """The records panel alone: what the release page polls while a record is being made."""
    batch = batch_get_for_user(request.user, pk)
    return render(request, "qc/_records.html", records_context(request.user, batch))


@login_required
@require_GET
def record_download(request, pk: int):
    document = record_document_get_for_user(request.user, pk)
    if document.status != DocumentStatus.DONE or not document.file:
        raise Http404("This record is not signed yet.")
    name = f"batch-record-{document.batch.number}-v{document.version}.pdf"
    return FileResponse(document.file.open("rb"), as_attachment=True, filename=name, content_type="application/pdf")


@login_required
@require_POST
def record_export(request, pk: int):
    """An auditor's (or QP's) request for a signed record of the batch as it is now."""
    batch = batch_get_for_user(request.user, pk)
    try:
        document = documents.batch_record_request(actor=request.user, batch=batch, purpose=DocumentPurpose.EXPORT,
                                                  request_id=request.POST.get("request_id") or None)
    except (GMPError, ValueError) as exc:
        messages.error(request, exc.text if isinstance(exc, GMPError)
                       else gettext("The request id is not valid: reload the page."))
        return HttpResponseRedirect(reverse("qc:batch_release", args=[batch.pk]) + "#records")
    if document.batch_id != batch.pk:  # a request id reused from another batch's form
        messages.error(request, gettext("The request id is not valid: reload the page."))
    else:
        messages.success(request, gettext("Signed record version %(version)s requested: it appears below when signed.")
                         % {"version": document.version})
    return HttpResponseRedirect(reverse("qc:batch_release", args=[batch.pk]) + "#records")


urlpatterns: list[URLPattern] = [
    path("records/verify/", record_verify, name="record_verify"),
    path("records/<int:pk>/download/", record_download, name="record_download"),
    path("batches/<int:pk>/records/", records_panel, name="records_panel"),
    path("batches/<int:pk>/records/export/", record_export, name="record_export"),
]
