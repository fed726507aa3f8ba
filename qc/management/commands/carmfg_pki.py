"""``manage.py carmfg_pki``: the key that seals batch records.

    carmfg_pki show                  which key signs records now, and is it the demo one
    carmfg_pki export-ca CA.pem      the CA certificate(s) to give anyone who verifies records
    carmfg_pki init-demo             make the demo CA and signing certificate now (not in production)
    carmfg_pki request --common-name "…" --organisation "…" --key-out K.pem --csr-out R.csr
                                     a new key and a certificate request for the hospital's CA
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from qc import pdfsigning


class Command(BaseCommand):
    help = "Show, export or prepare the key and certificates that sign batch records."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("show", help="describe the signing identity in use")
        export = sub.add_parser("export-ca", help="write the trusted CA certificate(s) as PEM")
        export.add_argument("out", help="file to write ('-' for standard output)")
        sub.add_parser("init-demo", help="create the demo CA and signing certificate (refused in production)")
        request = sub.add_parser("request", help="new RSA key + certificate signing request for the hospital's CA")
        request.add_argument("--common-name", required=True, help='e.g. "Cell Therapy Unit batch record seal"')
        request.add_argument("--organisation", required=True, help="the hospital's legal name")
        request.add_argument("--country", default="", help="two-letter country code")
        request.add_argument("--key-out", required=True, help="where to write the private key (created 0600, never overwritten)")
        request.add_argument("--csr-out", required=True, help="where to write the certificate request (PEM)")

    def handle(self, *args, **options):
        action = options["action"]
        try:
            if action == "show":
                self._show()
            elif action == "export-ca":
                self._export(options["out"])
            elif action == "init-demo":
                self._init_demo()
            elif action == "request":
                self._request(options)
        except pdfsigning.SigningKeyError as exc:  # includes SigningNotConfigured
            raise CommandError(str(exc)) from exc

    def _show(self) -> None:
        identity = pdfsigning.signing_identity()
        cert = x509.load_der_x509_certificate(identity.signing_cert.dump())
        out = self.stdout.write
        if identity.demo:
            out(self.style.WARNING(f"DEMO signing key under {pdfsigning.pki_dir()}: records it signs are not GMP records."))
        else:
            out(f"Signing key:   {settings.CARMFG_SIGNING_KEY_FILE}")
        out(f"Subject:       {identity.subject}")
        out(f"Issuer:        {cert.issuer.rfc4514_string()}")
        out(f"Valid:         {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}")
        out(f"SHA-256:       {identity.fingerprint_sha256}")
        for root in identity.trust_roots:
            out(f"Trusted CA:    {pdfsigning.certificate_subject(root)} (SHA-256 {pdfsigning.certificate_fingerprint(root)})")
        out(f"Timestamps:    {settings.CARMFG_TSA_URL or 'none (no CARMFG_TSA_URL)'}")

    def _export(self, out: str) -> None:
        pem = b"".join(
            x509.load_der_x509_certificate(root.dump()).public_bytes(serialization.Encoding.PEM)
            for root in pdfsigning.trust_roots()
        )
        if out == "-":
            self.stdout.write(pem.decode("ascii"), ending="")
        else:
            Path(out).write_bytes(pem)
            self.stdout.write(f"wrote {out}")

    def _init_demo(self) -> None:
        if settings.PRODUCTION:
            raise CommandError("refusing to make a demo key in production")
        files = pdfsigning.ensure_demo_pki(pdfsigning.pki_dir())
        self.stdout.write(f"demo CA: {files['ca_cert']}")
        self.stdout.write(f"demo signing certificate: {files['cert']}")

    def _request(self, options) -> None:
        key_out, csr_out = Path(options["key_out"]), Path(options["csr_out"])
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, options["organisation"])]
        if options["country"]:
            attributes.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, options["country"].upper()))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, options["common_name"]))
        key = rsa.generate_private_key(public_exponent=65537, key_size=pdfsigning.RSA_KEY_BITS)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(attributes))
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        try:
            fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise CommandError(f"{key_out} exists: a signing key is never overwritten") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        csr_out.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        self.stdout.write(f"wrote {key_out} (private key, mode 0600) and {csr_out} (request for the hospital's CA)")
        self.stdout.write(
            "Ask the CA for a certificate with key usage digitalSignature + nonRepudiation, then set "
            "CARMFG_SIGNING_KEY_FILE, CARMFG_SIGNING_CERT_FILE and CARMFG_SIGNING_CA_FILE."
        )
