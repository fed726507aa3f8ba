"""Is this PDF a batch record the site issued, untouched? The check behind
``manage.py verify_batch_record`` and the "Verify a record" page.

Four questions, each answered independently, each failure reported:

1. the signature (pyHanko): intact, trusted against the site's CA, the document's
   certification with "no changes allowed", covering the entire file (so an
   incremental update or bytes after ``%%EOF`` fail), timestamp valid if present;
2. the file's SHA-256 is one the system issued (a ``BatchRecordDocument`` marked
   done), because a viewer that shows "signature valid" may ignore appended bytes;
3. the embedded data file is present, canonical, and the one issued;
4. the audit chain head the record states is still in the chain, unchanged.

Questions 2 and 4 need the database; ``offline=True`` skips them and says so.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import x509 as asn1_x509
from django.db import DatabaseError
from django.utils.translation import gettext_noop

from carmfg.canonical import canonical_json
from carmfg.texts import Text
from qc import pdfsigning
from qc.models.documents import (
    DATA_ATTACHMENT_SUFFIX,
    DATA_SCHEMA,
    BatchRecordDocument,
    DocumentStatus,
)


@dataclass
class RecordVerdict:
    sha256: str
    size_bytes: int
    signature: pdfsigning.Verdict
    document: BatchRecordDocument | None = None
    data: dict[str, Any] | None = None
    data_attachment: str = ""
    data_sha256: str = ""
    database_checked: bool = False
    pdfsig: pdfsigning.PdfsigReport | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def audit_head(self) -> tuple[int, int, str] | None:
        chain = (self.data or {}).get("audit_chain") or {}
        try:
            return int(chain["chain"]), int(chain["head_seq"]), str(chain["head_hash"])
        except (KeyError, TypeError, ValueError):
            return None


def verify_record(
    pdf_bytes: bytes,
    *,
    trust_roots: list[asn1_x509.Certificate] | None = None,
    offline: bool = False,
    site_ids: list[int] | None = None,
    check_audit_chain: bool = False,
    pdfsig_path: str | None = None,
) -> RecordVerdict:
    """Verify a record. ``trust_roots``: the CA certificates to trust (default: this
    installation's); ``site_ids``: only records of these sites count as issued (the
    upload page passes the sites the user audits); ``pdfsig_path``: the same bytes on
    disk, to ask poppler's pdfsig too."""
    roots = trust_roots if trust_roots is not None else pdfsigning.trust_roots()
    sha256 = hashlib.sha256(pdf_bytes).hexdigest()
    verdict = RecordVerdict(sha256=sha256, size_bytes=len(pdf_bytes), signature=pdfsigning.Verdict())

    if not offline:
        try:
            _find_issued(verdict, site_ids)
        except DatabaseError as exc:
            verdict.problems.append(Text(gettext_noop("the database could not be consulted (%(error)s); use --offline to "
                                                      "check the signature alone"), {"error": type(exc).__name__}))

    verdict.signature = pdfsigning.validate_pdf(
        pdf_bytes, trust_roots=roots,
        require_timestamp=bool(verdict.document is not None and verdict.document.timestamped_at is not None),
    )
    verdict.problems.extend(Text(gettext_noop("signature: %(problem)s"), {"problem": problem})
                            for problem in verdict.signature.problems)

    _read_embedded_data(verdict, pdf_bytes)

    if verdict.database_checked:
        _compare_with_issued(verdict)
        _check_audit_head(verdict, full_chain=check_audit_chain)
    else:
        verdict.notes.append(Text(gettext_noop(
            "offline: the file's SHA-256 was not compared with the ones the site issued, and the audit chain "
            "was not consulted; compare the SHA-256 above with the site's register")))

    if pdfsig_path is not None:
        verdict.pdfsig = pdfsigning.pdfsig_report(pdfsig_path)
        if not verdict.pdfsig.available:
            verdict.notes.append(Text(gettext_noop("pdfsig (poppler-utils) is not installed: its second opinion was not "
                                                   "asked")))
        elif not verdict.pdfsig.ok:
            summary = "; ".join(
                f"{sig.signature_validation or 'no verdict'}, "
                f"{'total document signed' if sig.total_document_signed else 'NOT total document signed'}"
                for sig in verdict.pdfsig.signatures
            ) or "no signature found"
            verdict.problems.append(f"pdfsig: {summary}")
    return verdict


def _find_issued(verdict: RecordVerdict, site_ids: list[int] | None) -> None:
    issued = BatchRecordDocument.objects.select_related("site", "batch").filter(sha256=verdict.sha256)
    if site_ids is not None:
        issued = issued.filter(site_id__in=site_ids)
    verdict.document = issued.first()
    verdict.database_checked = True
    if verdict.document is None:
        verdict.problems.append(Text(gettext_noop("this file's SHA-256 is not one the system issued (changed, re-saved "
                                                  "or not ours)")))
    elif verdict.document.status != DocumentStatus.DONE:
        verdict.problems.append(Text(gettext_noop("the system's record of this file is not complete (status %(status)s)"),
                                     {"status": verdict.document.status}))


def _read_embedded_data(verdict: RecordVerdict, pdf_bytes: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        attachments = PdfReader(io.BytesIO(pdf_bytes)).attachments
        names = [name for name in attachments if name.endswith(DATA_ATTACHMENT_SUFFIX)]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        verdict.problems.append(Text(gettext_noop("data: the embedded files cannot be read (%(error)s)"),
                                     {"error": f"{type(exc).__name__}: {exc}"}))
        return
    if len(names) != 1:
        verdict.problems.append(Text(gettext_noop("data: expected one embedded data file (*%(suffix)s), found %(n)s"),
                                     {"suffix": DATA_ATTACHMENT_SUFFIX, "n": len(names)}))
        return
    name = names[0]
    contents = attachments[name]
    if len(contents) != 1:
        verdict.problems.append(Text(gettext_noop("data: %(name)s is embedded %(n)s times"),
                                     {"name": name, "n": len(contents)}))
        return
    raw = contents[0]
    verdict.data_attachment = name
    verdict.data_sha256 = hashlib.sha256(raw).hexdigest()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        verdict.problems.append(Text(gettext_noop("data: %(name)s is not JSON (%(error)s)"), {"name": name, "error": str(exc)}))
        return
    if not isinstance(data, dict) or data.get("schema") != DATA_SCHEMA:
        verdict.problems.append(Text(gettext_noop("data: %(name)s is not a carmfg batch record data file (%(schema)s)"),
                                     {"name": name, "schema": DATA_SCHEMA}))
        return
    if canonical_json(data) != raw:
        verdict.problems.append(Text(gettext_noop("data: %(name)s is not in canonical form, so its SHA-256 cannot be the "
                                                  "issued one"), {"name": name}))
    verdict.data = data
    if verdict.audit_head is None:
        verdict.problems.append(Text(gettext_noop("data: the audit chain head is missing")))


def _compare_with_issued(verdict: RecordVerdict) -> None:
    document, data = verdict.document, verdict.data
    if document is None or data is None:
        return
    expected = {
        gettext_noop("document id"): (document.pk, (data.get("document") or {}).get("id")),
        gettext_noop("data file SHA-256"): (document.data_sha256, verdict.data_sha256),
        gettext_noop("signer certificate"): (document.signer_fingerprint_sha256,
                                             verdict.signature.signer_fingerprint_sha256),
        gettext_noop("audit chain head"): (
            (document.site_id, document.audit_chain_seq, document.audit_chain_hash), verdict.audit_head,
        ),
    }
    for what, (issued, found) in expected.items():
        if issued != found:
            verdict.problems.append(Text(gettext_noop("the %(what)s in the file (%(found)s) differs from the one issued "
                                                      "(%(issued)s)"),
                                         {"what": Text(what), "found": str(found), "issued": str(issued)}))


def _check_audit_head(verdict: RecordVerdict, *, full_chain: bool) -> None:
    from carmfg.audit.models import AuditEvent
    from carmfg.audit.services import event_hash
    from carmfg.audit.verification import verify_chain

    head = verdict.audit_head
    if head is None:
        return
    chain, seq, head_hash = head
    if seq == 0:
        return  # the chain was empty when the record was made
    event = AuditEvent.objects.filter(chain=chain, seq=seq).first()
    if event is None:
        verdict.problems.append(Text(gettext_noop("audit: event %(seq)s of chain %(chain)s, the head when the record "
                                                  "was made, is gone"), {"seq": seq, "chain": chain}))
    elif event.hash != head_hash:
        verdict.problems.append(Text(gettext_noop("audit: event %(seq)s of chain %(chain)s has changed since the record "
                                                  "was made"), {"seq": seq, "chain": chain}))
    elif event_hash(event) != event.hash:
        verdict.problems.append(Text(gettext_noop("audit: event %(seq)s of chain %(chain)s no longer matches its own "
                                                  "hash (altered)"), {"seq": seq, "chain": chain}))
    if full_chain:
        report = verify_chain(chain)
        verdict.problems.extend(Text(gettext_noop("audit: %(problem)s"), {"problem": problem}) for problem in report.problems)
        if report.ok:
            verdict.notes.append(Text(gettext_noop("audit chain %(chain)s recomputed: %(n)s events intact"),
                                      {"chain": chain, "n": report.count}))
