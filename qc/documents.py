"""The signed PDF batch record: requesting, rendering (WeasyPrint), signing, storing.

Flow: a service (the QP's certification, an auditor's export) calls
:func:`batch_record_request` inside its own transaction. It creates the
:class:`~qc.models.documents.BatchRecordDocument` row (status ``queued``) and, once
the transaction commits, queues ``qc.tasks.batch_record_generate(document_id)``. The
task calls :func:`batch_record_generate_now`, which renders, signs, self-checks and
stores the file, then marks the row done in one transaction together with its audit
event.

What the dossier says comes from *sections*: small functions that read the batch
and return the data they contribute to the embedded JSON plus the template that
prints it (see :data:`SECTIONS`). Domain apps add theirs there.

Layout cost in WeasyPrint is about 1 ms per table cell: long listings (audit trail,
step records) print as ``<pre>`` lines or ``<div>`` rows, never as big tables.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import get_valid_filename
from django.utils.translation import gettext, gettext_noop
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher

from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.accounts.selectors import profile_language_get
from carmfg.audit.models import Action, AuditEvent, ChainHead
from carmfg.audit.services import audit_record
from carmfg.canonical import GENESIS_HASH, canonical_json
from qc import pdfsigning
from qc.models.documents import (
    DATA_ATTACHMENT_SUFFIX,
    DATA_SCHEMA,
    DOCUMENT_TRANSITIONS,
    BatchRecordDocument,
    DocumentPurpose,
    DocumentStatus,
)

logger = logging.getLogger(__name__)

TEMPLATE = "documents/batch_record/record.html"
# Bump when the layout or the embedded data's shape changes: every record states the
# version it was made with, so an old record is read with the right expectations.
TEMPLATE_VERSION = "batch-record/3"
# The embedded data (and so its SHA-256) is written in the source language whatever the
# language the record is printed in: the data is the record as stored.
DATA_LANGUAGE = "en"
SIGNATURE_FIELD = "carmfg-batch-record"
AUDIT_APPENDIX_MAX_EVENTS = 5000

CERTIFICATION_PURPOSE = {
    "provisional": DocumentPurpose.CERTIFICATION_PROVISIONAL,
    "final": DocumentPurpose.CERTIFICATION_FINAL,
    # A single-stage certification is the final one.
    "single": DocumentPurpose.CERTIFICATION_FINAL,
}


class DocumentError(Exception):
    """Generating a record failed in a way a retry will not fix (reported, never hidden)."""


# --- requesting ---------------------------------------------------------------------------


def batch_record_request(
    *, actor, batch, purpose: str, certification=None, request_id: uuid.UUID | str | None = None
) -> BatchRecordDocument:
    """Queue a signed batch record; idempotent per certification+purpose or per request id.

    GMP: a certification produces exactly one signed record of each kind; an export
    is requested by someone allowed to read the site's audit trail.
    """
    if purpose == DocumentPurpose.EXPORT:
        if certification is not None:
            raise ValueError("an export is not tied to a certification")
        require_site_perm(actor, batch.site, SitePerm.AUDIT, action=gettext_noop("export batch records"))
    else:
        if purpose not in (DocumentPurpose.CERTIFICATION_PROVISIONAL, DocumentPurpose.CERTIFICATION_FINAL):
            raise ValueError(f"unknown record purpose {purpose!r}")
        if certification is None or certification.batch_id != batch.pk:
            raise ValueError("a certification record needs the batch's certification")
    request_uuid = uuid.UUID(str(request_id)) if request_id else uuid.uuid4()

    with transaction.atomic():
        existing = _existing_request(request_uuid, certification, purpose)
        if existing is not None:
            return existing
        # Lock the batch row only to number versions 1, 2, 3… without gaps or races.
        type(batch).objects.select_for_update().filter(pk=batch.pk).first()
        version = (BatchRecordDocument.objects.filter(batch=batch).aggregate(v=Max("version"))["v"] or 0) + 1
        task_id = str(uuid.uuid4())
        try:
            with transaction.atomic():
                document = BatchRecordDocument.objects.create(
                    site=batch.site, batch=batch, certification=certification, purpose=purpose,
                    request_id=request_uuid, version=version, requested_by=actor if _is_user(actor) else None,
                    requested_at=timezone.now(), celery_task_id=task_id, language=record_language(actor),
                )
        except IntegrityError:
            # A concurrent request with the same key won the race: return its document.
            existing = _existing_request(request_uuid, certification, purpose)
            if existing is None:
                raise
            return existing
        transaction.on_commit(lambda: _enqueue(document.pk, task_id), robust=True)
    return document


def certification_record_request(*, actor, certification) -> BatchRecordDocument:
    """The signed record of a certification (provisional or final), queued once."""
    return batch_record_request(
        actor=actor, batch=certification.batch, purpose=CERTIFICATION_PURPOSE[certification.kind],
        certification=certification,
    )


def record_language(actor) -> str:
    """The language a record is printed in: the one the requester chose in their profile,
    else the one active for their request (their browser's), else the site default."""
    languages = dict(settings.LANGUAGES)
    chosen = profile_language_get(actor) if _is_user(actor) else ""
    if chosen in languages:
        return chosen
    try:
        active = translation.get_supported_language_variant(translation.get_language() or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE
    return active if active in languages else settings.LANGUAGE_CODE


def _is_user(actor) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False)


def _existing_request(request_id: uuid.UUID, certification, purpose: str) -> BatchRecordDocument | None:
    found = BatchRecordDocument.objects.filter(request_id=request_id).first()
    if found is None and certification is not None:
        found = BatchRecordDocument.objects.filter(certification=certification, purpose=purpose).first()
    return found


def _enqueue(document_id: int, task_id: str) -> None:
    from qc.tasks import batch_record_generate

    batch_record_generate.apply_async(args=[document_id], task_id=task_id)


# --- the dossier's content ------------------------------------------------------------------


@dataclass(frozen=True)
class RecordContext:
    """What a section builder is given: the document, and the audit chain head the
    record is cut at (a section never shows an event after it)."""

    document: BatchRecordDocument
    audit_head_seq: int
    audit_head_hash: str
    # Read models several sections share (e.g. the batch's plan), read once per record.
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One part of the dossier: its data (embedded as JSON) and the template that prints it."""

    key: str
    title: str
    template: str
    data: Any


def _batch_section(ctx: RecordContext) -> Section:
    """The cover: what the batch is, for whom (pseudonymised), and what was decided."""
    from qc.documents_sections import when

    batch = ctx.document.batch
    donation = batch.donation
    product = batch.product
    patient = batch.order.patient
    pin = batch.specification_pin if _has_pin(batch) else None
    certification = ctx.document.certification
    cert_data = None
    if certification is not None:
        qp = certification.qp
        cert_data = {
            "kind": certification.kind,
            "kind_label": gettext(certification.get_kind_display()),
            "decision": certification.decision,
            "decision_label": gettext(certification.get_decision_display()),
            "justification": certification.justification,
            "exceptional_request": _exceptional_request(certification),
            "qp": {"username": qp.get_username(), "name": qp.get_full_name() or qp.get_username()},
            "signed_at": certification.signed_at,
            "signed": when(certification.signed_at, batch.site.zone),
            "pending_tests": certification.pending_tests,
        }
    return Section(
        key="batch",
        title=gettext("Batch identity"),
        template="documents/batch_record/sections/_batch.html",
        data={
            "patient": {"pseudonym": patient.pseudonym, "initials": patient.initials, "birth_year": patient.birth_year},
            "specification": ({"title": pin.specification.title, "version": pin.specification.version}
                              if pin is not None else None),
            "certification": cert_data,
            "number": batch.number,
            "state": batch.state,
            "state_label": gettext(batch.get_state_display()),
            "product": {"code": product.code, "name": product.name, "isbt128_product_code": product.product_code,
                        "pathway": product.pathway, "pathway_label": gettext(product.get_pathway_display())},
            "din": donation.din,
            "din_flags": donation.flags,
            "din_check_character": donation.check_character,
            "order_number": batch.order.number,
            "mbr": {"title": batch.mbr.title, "version": batch.mbr.version},
            "created_at": batch.created_at,
            "started_at": batch.started_at,
            "completed_at": batch.completed_at,
            "failure_reason": batch.failure_reason,
        },
    )


def _audit_section(ctx: RecordContext) -> Section:
    """The batch's own audit events (root = the batch), as text lines: fast to lay out."""
    document = ctx.document
    events = list(
        AuditEvent.objects.filter(
            chain=document.site_id, seq__lte=ctx.audit_head_seq,
            root_type="batches.batch", root_id=str(document.batch_id),
        )
        .order_by("seq")
        .values("seq", "occurred_at", "actor_username", "actor_name", "action", "object_type", "object_id",
                "object_repr", "reason", "hash")[: AUDIT_APPENDIX_MAX_EVENTS + 1]
    )
    truncated = len(events) > AUDIT_APPENDIX_MAX_EVENTS
    return Section(
        key="audit_trail",
        title=gettext("Audit trail of this batch"),
        template="documents/batch_record/sections/_audit.html",
        data={"events": events[:AUDIT_APPENDIX_MAX_EVENTS], "truncated": truncated},
    )


# Domain apps append their sections here (step records, QC results, deviations,
# chain of custody…): each is ``f(ctx: RecordContext) -> Section | None``, in print
# order. A section reads only; its data must be canonical-JSON-able.
def _has_pin(batch) -> bool:
    from django.core.exceptions import ObjectDoesNotExist

    try:
        batch.specification_pin  # noqa: B018 - a reverse one-to-one raises when absent
    except ObjectDoesNotExist:
        return False
    return True


def _domain_sections() -> list[Callable[[RecordContext], Section | None]]:
    from qc.documents_sections import SECTION_BUILDERS

    return list(SECTION_BUILDERS)


SECTIONS: list[Callable[[RecordContext], Section | None]] = [
    _batch_section,
    *_domain_sections(),
    _audit_section,
]


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the database for the whole record (PostgreSQL: repeatable
    read), so that no section shows a state another section does not."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def audit_chain_head(site_id: int) -> tuple[int, str]:
    head = ChainHead.objects.filter(chain=site_id).values_list("seq", "hash").first()
    return head if head is not None else (0, GENESIS_HASH)


@dataclass
class RecordContent:
    data: dict[str, Any]
    data_json: bytes
    data_sha256: str
    sections: list[Section]
    # The same sections in the language the record is printed in (``sections`` when that
    # is the data's language): what the PDF shows.
    display_sections: list[Section]


def _build_sections(ctx: RecordContext, language: str) -> list[Section]:
    with translation.override(language):
        return [s for s in (build(ctx) for build in SECTIONS) if s is not None]


def record_content(document: BatchRecordDocument, *, generated_at=None) -> RecordContent:
    """The record's machine-readable content: what the PDF prints and carries as JSON."""
    with _snapshot():
        generated_at = generated_at or timezone.now()
        seq, head_hash = audit_chain_head(document.site_id)
        ctx = RecordContext(document=document, audit_head_seq=seq, audit_head_hash=head_hash)
        sections = _build_sections(ctx, DATA_LANGUAGE)
        display = sections if document.language == DATA_LANGUAGE else _build_sections(ctx, document.language)
    site = document.site
    data = {
        "schema": DATA_SCHEMA,
        "template_version": TEMPLATE_VERSION,
        "generated_at": generated_at,
        "document": {
            "id": document.pk, "request_id": document.request_id, "purpose": document.purpose,
            "version": document.version,
            "requested_by": document.requested_by.get_username() if document.requested_by else "",
            "requested_at": document.requested_at, "language": document.language,
        },
        "site": {"code": site.code, "name": site.name, "fin": site.facility_identification_number,
                 "time_zone": site.time_zone},
        "audit_chain": {"chain": document.site_id, "head_seq": seq, "head_hash": head_hash},
        "sections": {section.key: section.data for section in sections},
    }
    data_json = canonical_json(data)
    return RecordContent(data=data, data_json=data_json, data_sha256=hashlib.sha256(data_json).hexdigest(),
                         sections=sections, display_sections=display)


# --- rendering ---------------------------------------------------------------------------------


def data_attachment_name(document: BatchRecordDocument) -> str:
    return get_valid_filename(f"{document.batch.number}-v{document.version}{DATA_ATTACHMENT_SUFFIX}")


def render_batch_record_html(
    document: BatchRecordDocument, *, content: RecordContent | None = None,
    identity: pdfsigning.SigningIdentity | None = None,
) -> str:
    content = content or record_content(document)
    identity = identity or pdfsigning.signing_identity()
    with translation.override(document.language):
        return _render_html(document, content, identity)


def _render_html(document: BatchRecordDocument, content: RecordContent, identity: pdfsigning.SigningIdentity) -> str:
    sections = [{"key": s.key, "title": s.title, "template": s.template, "data": s.data}
                for s in content.display_sections]
    display_data = {**content.data, "sections": {s["key"]: s["data"] for s in sections}}
    audit_events = content.data["sections"].get("audit_trail", {}).get("events", [])
    watermark = record_watermark(document)
    return render_to_string(
        TEMPLATE,
        {
            "document": document,
            "language": document.language,
            "running": running_texts(watermark),
            "purpose_label": gettext(document.get_purpose_display()),
            "site": document.site,
            "batch_number": document.batch.number,
            "zone": document.site.time_zone,
            "data": display_data,
            "data_sha256": content.data_sha256,
            "data_attachment_name": data_attachment_name(document),
            "sections": sections,
            "template_version": TEMPLATE_VERSION,
            "signer_subject": pdfsigning.certificate_subject(identity.signing_cert),
            "signer_fingerprint": identity.fingerprint_sha256,
            "demo_key": identity.demo,
            "timestamped": pdfsigning.configured_timestamper() is not None,
            "watermark": watermark,
            "audit_header": audit_listing_header(),
            "audit_listing": audit_listing(audit_events, zone=document.site.zone, batch_number=document.batch.number),
        },
    )


def css_string(text: str) -> str:
    """A quoted CSS string of ``text``: anything but letters, digits and spaces escaped."""
    return '"' + "".join(ch if ch.isalnum() or ch == " " else f"\\{ord(ch):x} " for ch in text) + '"'


def css_content(template: str, counters: dict[str, str]) -> SafeString:
    """A CSS ``content`` value from a translated text with ``%(name)s`` placeholders, each
    replaced by a CSS function (``counter(page)``, ``string(batch)``)."""
    parts = []
    for index, piece in enumerate(re.split(r"%\((\w+)\)s", template)):
        if index % 2:
            parts.append(counters[piece])
        elif piece:
            parts.append(css_string(piece))
    return mark_safe(" ".join(parts))  # noqa: S308 - every text is escaped by css_string


def running_texts(watermark: str = "") -> dict[str, SafeString]:
    """The running headers and footers in the active language (the page's margin boxes
    take only CSS strings; no value is ever pasted into CSS unescaped). The footer says
    what the document is: the signed record itself, or an export with its watermark
    (a controlled copy, or a draft of a batch nobody has certified)."""
    return {
        "batch": css_content(gettext("Batch record %(batch)s"), {"batch": "string(batch)"}),
        "copy": css_content(watermark.capitalize() if watermark else gettext("Signed record"), {}),
        "page": css_content(gettext("Page %(page)s of %(pages)s"), {"page": "counter(page)", "pages": "counter(pages)"}),
    }


AUDIT_RECORD_WIDTH = 57
AUDIT_REASON_WIDTH = 112


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def audit_listing_header() -> str:
    """The audit appendix's column heads in the active language, cut to the columns' widths."""
    columns = ((gettext("event"), 7), (gettext("time"), 20), (gettext("user"), 10), (gettext("action"), 8),
               (gettext("record"), AUDIT_RECORD_WIDTH))
    heads = " ".join(f"{_clip(name, width):<{width}}" for name, width in columns)
    return f"{heads} [{gettext('hash')}]"


def audit_listing(events: Sequence[dict[str, Any]], *, zone, batch_number: str) -> str:
    """The audit appendix as fixed-width text lines, one per event (a reason for a change
    on the line below). Written here rather than in the template: for 2,000 events the
    template's filters cost seconds, and lines that never wrap are what WeasyPrint lays
    out fastest."""
    lines = []
    for e in events:
        at = e["occurred_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        user = _clip(e["actor_username"] or "system", 10)
        described = (e["object_repr"] or "").replace(batch_number, "").replace(" · ", " ").strip()
        record = _clip(f"{e['object_type'].rsplit('.', 1)[-1]}:{e['object_id']} {described}", AUDIT_RECORD_WIDTH)
        lines.append(f"#{e['seq']:<6} {at}  {user:<10} {_clip(e['action'], 8):<8} {record:<{AUDIT_RECORD_WIDTH}} "
                     f"[{e['hash'][:10]}]")
        if e["reason"]:
            lines.append("        reason: " + _clip(" ".join(e["reason"].split()), AUDIT_REASON_WIDTH))
    return "\n".join(lines)


def record_watermark(document: BatchRecordDocument) -> str:
    """What every page carries across it: an export of a batch nobody has certified is a
    draft; an export of a certified batch is a controlled copy; a certification record
    is the record itself (no watermark)."""
    if document.purpose != DocumentPurpose.EXPORT:
        return ""
    from qc.models import Certification

    if Certification.objects.filter(batch_id=document.batch_id).exists():
        return gettext("CONTROLLED COPY")
    return gettext("DRAFT · NOT CERTIFIED")


def _fetcher() -> URLFetcher:
    # A record is built only from what the template holds: no file or network access.
    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def render_pdf(html: str, *, attachments: Sequence[tuple[str, bytes, str]] = ()) -> bytes:
    """HTML to PDF/A-3b (archival, allows the embedded data file). ``attachments``:
    ``(file name, content, description)``."""
    return render_pdf_with_pages(html, attachments=attachments)[0]


def render_pdf_with_pages(html: str, *, attachments: Sequence[tuple[str, bytes, str]] = ()) -> tuple[bytes, int]:
    """:func:`render_pdf`, and the number of pages as laid out (no second parse of the PDF)."""
    files = [
        Attachment(string=content, name=name, description=description, relationship="Data", url_fetcher=_fetcher())
        for name, content, description in attachments
    ]
    options: dict[str, Any] = {"attachments": files, "pdf_variant": "pdf/a-3b"}
    laid_out = HTML(string=html, url_fetcher=_fetcher()).render(**options)
    pdf = laid_out.write_pdf(**options)
    if pdf is None:  # only when a target is given, which it is not
        raise DocumentError("WeasyPrint returned no PDF")
    return pdf, len(laid_out.pages)


# --- generating (what the Celery task runs) ------------------------------------------------------


def storage_name(document: BatchRecordDocument) -> str:
    """Fixed by the row: a redelivered job writes the same name, never a second file."""
    site = get_valid_filename(document.site.code)
    number = get_valid_filename(document.batch.number)
    return f"batch-records/{site}/{number}/{number}-v{document.version}-{document.purpose}-{document.pk}.pdf"


def _locked(document_id: int) -> BatchRecordDocument:
    return BatchRecordDocument.objects.select_for_update().get(pk=document_id)


def _move(document: BatchRecordDocument, status: str, **fields: Any) -> None:
    if status not in DOCUMENT_TRANSITIONS[document.status]:
        raise DocumentError(f"record {document.pk}: cannot go from {document.status} to {status}")
    document.status = status
    for name, value in fields.items():
        setattr(document, name, value)
    document.save(update_fields=["status", *fields])


def batch_record_generate_now(document_id: int) -> BatchRecordDocument:
    """Render, sign, check and store one record; a no-op for a record already done.

    Crash safety: the file is written under a name fixed by the row and the row is
    marked done only afterwards, in the same locked transaction as the audit event;
    a job killed at any point leaves either nothing marked done (and is redelivered)
    or a finished record that the next run returns untouched.
    """
    with transaction.atomic():
        document = _locked(document_id)
        if document.status in (DocumentStatus.DONE, DocumentStatus.FAILED):
            return document
        _move(document, DocumentStatus.RENDERING, attempts=document.attempts + 1)

    document = BatchRecordDocument.objects.select_related(
        "site", "batch", "batch__site", "batch__product", "batch__donation", "batch__order__patient", "batch__mbr",
        "batch__specification_pin__specification", "certification", "certification__qp", "requested_by",
    ).get(pk=document_id)
    identity = pdfsigning.signing_identity()
    timestamper = pdfsigning.configured_timestamper()
    content = record_content(document)
    html = render_batch_record_html(document, content=content, identity=identity)
    pdf, pages = render_pdf_with_pages(
        html,
        attachments=[(data_attachment_name(document), content.data_json,
                      "Machine-readable content of this batch record (canonical JSON, SHA-256 printed in the manifest)")],
    )
    with transaction.atomic():
        _move(_locked(document_id), DocumentStatus.SIGNING)
    signed = pdfsigning.sign_pdf(
        pdf,
        signer_name=f"{document.site.name} (carmfg)",
        reason=_signature_reason(document),
        location=document.site.name,
        field_name=SIGNATURE_FIELD,
        identity=identity,
        timestamper=timestamper,
    )
    # Never issue a record that would not verify: the same checks a reader will run.
    verdict = pdfsigning.validate_pdf(signed, trust_roots=identity.trust_roots, require_timestamp=timestamper is not None)
    if not verdict.ok:
        raise DocumentError("the signed record does not verify: " + "; ".join(verdict.problems))
    sha256 = hashlib.sha256(signed).hexdigest()

    with transaction.atomic():
        document = _locked(document_id)
        if document.status in (DocumentStatus.DONE, DocumentStatus.FAILED):
            return document  # a concurrent run finished first; its file stays as it is
        name = storage_name(document)
        if default_storage.exists(name):
            default_storage.delete(name)  # left by a run killed before its commit
        saved = default_storage.save(name, ContentFile(signed))
        if saved != name:
            raise DocumentError(f"storage saved the record as {saved!r}, not {name!r}")
        head_seq, head_hash = content.data["audit_chain"]["head_seq"], content.data["audit_chain"]["head_hash"]
        _move(
            document, DocumentStatus.DONE,
            file=name, sha256=sha256, size_bytes=len(signed), page_count=pages,
            data_sha256=content.data_sha256, template_version=TEMPLATE_VERSION,
            signer_subject=verdict.signer_subject[:500], signer_fingerprint_sha256=verdict.signer_fingerprint_sha256,
            signed_at=verdict.signing_time or timezone.now(),
            timestamped_at=verdict.timestamp_time if verdict.timestamp_valid else None,
            audit_chain_seq=head_seq, audit_chain_hash=head_hash, failure_reason="",
        )
        audit_record(
            actor=document.requested_by,
            action=Action.CREATE,
            obj=document,
            site=document.site,
            changes={
                "purpose": document.purpose, "version": document.version, "file": name, "sha256": sha256,
                "size_bytes": len(signed), "page_count": pages, "data_sha256": content.data_sha256,
                "signer_fingerprint_sha256": verdict.signer_fingerprint_sha256,
                "timestamped": verdict.timestamp_valid, "audit_chain_seq": head_seq, "audit_chain_hash": head_hash,
                "template_version": TEMPLATE_VERSION, "language": document.language,
            },
        )
    return document


def batch_record_attempt_failed(document_id: int, *, reason: str, final: bool) -> None:
    """Record why an attempt failed; after the last one the record is marked failed."""
    with transaction.atomic():
        document = _locked(document_id)
        if document.status in (DocumentStatus.DONE, DocumentStatus.FAILED):
            return
        if final:
            _move(document, DocumentStatus.FAILED, failure_reason=reason[:4000], file="")
        else:
            _move(document, DocumentStatus.QUEUED, failure_reason=reason[:4000])
    if final:
        # A file written by a run that failed before its commit is nobody's record.
        name = storage_name(BatchRecordDocument.objects.select_related("site", "batch").get(pk=document_id))
        try:
            if default_storage.exists(name):
                default_storage.delete(name)
        except OSError:
            logger.exception("could not remove the unissued file %s", name)


def _signature_reason(document: BatchRecordDocument) -> str:
    batch = document.batch.number
    if document.certification is not None:
        certification = document.certification
        qp = certification.qp.get_full_name() or certification.qp.get_username()
        return (
            f"{certification.get_kind_display()} certification of batch {batch}: "
            f"{certification.get_decision_display()} (QP {qp})"
        )
    who = ""
    if document.requested_by is not None:
        who = f" requested by {document.requested_by.get_full_name() or document.requested_by.get_username()}"
    return f"Batch record export of batch {batch}{who}"


def _exceptional_request(certification) -> dict | None:
    """An out-of-specification release at the treating physician's documented request:
    who asked, the patient's consent reference, the major deviation it is recorded under."""
    if not certification.is_exceptional_request:
        return None
    deviation = certification.deviation
    return {"physician": certification.physician_name, "consent_reference": certification.consent_reference,
            "deviation": f"{deviation.number} {deviation.title}" if deviation is not None else ""}
