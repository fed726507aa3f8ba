"""``manage.py verify_batch_record FILE.pdf [--ca CA.pem]``: is this the record we issued?

Prints every check and a verdict; exits 0 only if every check passed, 1 if any
failed, 2 if the command could not run (no such file, unreadable CA file).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from qc import pdfsigning
from qc.verification import RecordVerdict, verify_record


class Command(BaseCommand):
    help = (
        "Verify a signed PDF batch record: signature intact and trusted, certified with no changes allowed, "
        "covering the whole file; SHA-256 issued by this system; embedded data and audit chain head unchanged."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the PDF to check")
        parser.add_argument(
            "--ca", action="append", default=[], metavar="CA.pem",
            help="PEM file of the CA certificate(s) to trust (repeatable); default: this installation's signing CA",
        )
        parser.add_argument(
            "--offline", action="store_true",
            help="do not consult the database (signature and embedded data only); needs --ca",
        )
        parser.add_argument("--audit-chain", action="store_true", help="also recompute the whole audit chain of the site")
        parser.add_argument("--no-pdfsig", action="store_true", help="do not ask poppler's pdfsig for a second opinion")
        parser.add_argument("--json", action="store_true", help="print the verdict as JSON")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            pdf_bytes = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}", returncode=2) from exc
        if options["offline"] and not options["ca"]:
            raise CommandError("--offline needs --ca CA.pem: the certificate to trust must come from you", returncode=2)
        try:
            roots = [cert for ca in options["ca"] for cert in pdfsigning.load_certificate_file(ca)] or None
        except pdfsigning.SigningKeyError as exc:
            raise CommandError(str(exc), returncode=2) from exc

        verdict = verify_record(
            pdf_bytes, trust_roots=roots, offline=options["offline"], check_audit_chain=options["audit_chain"],
            pdfsig_path=None if options["no_pdfsig"] else str(path),
        )
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(path, verdict), indent=2, default=str))
        else:
            self._print(path, verdict)
        if not verdict.ok:
            raise CommandError(f"NOT VERIFIED: {len(verdict.problems)} problem(s), see above", returncode=1)

    def _print(self, path: Path, v: RecordVerdict) -> None:
        sig = v.signature
        out = self.stdout.write

        def mark(flag: bool) -> str:
            return "yes" if flag else "NO"

        out(f"File:                 {path} ({v.size_bytes:,} bytes)")
        out(f"SHA-256:              {v.sha256}")
        out(f"Signer:               {sig.signer_subject or '-'}")
        out(f"Signer certificate:   {sig.signer_fingerprint_sha256 or '-'} (SHA-256)")
        out(f"Signing time:         {sig.signing_time.isoformat() if sig.signing_time else '-'}")
        out(f"Signature intact:     {mark(sig.intact)}")
        out(f"Trusted (CA):         {mark(sig.trusted)}")
        out(f"No changes allowed:   {mark(sig.certified_no_changes)}")
        out(f"Covers entire file:   {mark(sig.covers_entire_file)} ({sig.coverage or '-'})")
        ts = "no timestamp"
        if sig.timestamp_present:
            ts = f"{'valid' if sig.timestamp_valid else 'INVALID'}, {sig.timestamp_time.isoformat() if sig.timestamp_time else '?'}"
        out(f"RFC 3161 timestamp:   {ts}")
        if v.database_checked:
            doc = v.document
            issued = f"yes: document {doc.pk}, batch {doc.batch.number}, v{doc.version}, {doc.purpose}, site {doc.site.code}" if doc else "NO"
            out(f"Issued by the system: {issued}")
        else:
            out("Issued by the system: not checked (offline)")
        if v.data_attachment:
            out(f"Embedded data:        {v.data_attachment}, SHA-256 {v.data_sha256}")
        head = v.audit_head
        if head:
            out(f"Audit chain head:     chain {head[0]}, event {head[1]}, {head[2]}")
        if v.pdfsig is not None and v.pdfsig.available:
            for n, s in enumerate(v.pdfsig.signatures, 1):
                total = "total document signed" if s.total_document_signed else "NOT total document signed"
                out(f"pdfsig #{n}:            {s.signature_validation or '-'} {total}")
        for note in v.notes:
            out(f"Note: {note}")
        if v.ok:
            out(self.style.SUCCESS("VERDICT: VERIFIED: this is the record as issued, unchanged."))
        else:
            out(self.style.ERROR("VERDICT: NOT VERIFIED"))
            for problem in v.problems:
                out(self.style.ERROR(f"  - {problem}"))


def _as_json(path: Path, v: RecordVerdict) -> dict:
    sig = v.signature
    return {
        "file": str(path), "ok": v.ok, "sha256": v.sha256, "size_bytes": v.size_bytes,
        "signature": {
            "intact": sig.intact, "trusted": sig.trusted, "certified": sig.certified,
            "certified_no_changes": sig.certified_no_changes, "coverage": sig.coverage,
            "covers_entire_file": sig.covers_entire_file, "modification_level": sig.modification_level,
            "timestamp_present": sig.timestamp_present, "timestamp_valid": sig.timestamp_valid,
            "timestamp_time": sig.timestamp_time, "signer_subject": sig.signer_subject,
            "signer_fingerprint_sha256": sig.signer_fingerprint_sha256, "signing_time": sig.signing_time,
        },
        "issued_document": v.document.pk if v.document else None,
        "database_checked": v.database_checked,
        "data_attachment": v.data_attachment, "data_sha256": v.data_sha256,
        "audit_chain_head": v.audit_head,
        "pdfsig": None if v.pdfsig is None else {
            "available": v.pdfsig.available,
            "signatures": [
                {"valid": s.valid, "validation": s.signature_validation, "total_document_signed": s.total_document_signed}
                for s in v.pdfsig.signatures
            ],
        },
        "problems": v.problems, "notes": v.notes,
    }
