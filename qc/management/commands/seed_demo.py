"""Demo data for `make run`: sites, one user per role, and (as the domain grows) a
master batch record, a specification and batches in several states.

Idempotent: running it again changes nothing that exists. Everything is created
through the same services a user would go through, so the audit trail of the demo
is a real one.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from batches.demo_coi import seed_coi_demo
from batches.demo_mbr import seed_manufacturing_demo
from carmfg.accounts.models import Membership, Role, Site
from carmfg.accounts.services import membership_set_roles, site_create, user_create
from qc.demo_qc import demo_specification, seed_qc_demo

SITES = [
    # code, name, time zone, ISBT 128 FIN
    ("msk", "Northern Clinical Centre · Cell Therapy Unit", "Europe/Moscow", "R0021"),
    ("bcn", "Hospital del Litoral · GMP Cell Unit", "Europe/Madrid", "E0137"),
]

# username, full name, site code, roles
USERS = [
    ("tech", "Irina Sokolova", "msk", [Role.TECHNICIAN]),
    ("verifier", "Pavel Orlov", "msk", [Role.TECHNICIAN, Role.VERIFIER]),
    ("qc", "Olga Mironova", "msk", [Role.QC_ANALYST]),
    ("qc2", "Dmitry Lebedev", "msk", [Role.QC_ANALYST]),
    ("qp", "Elena Volkova", "msk", [Role.QUALIFIED_PERSON]),
    ("coord", "Anna Petrova", "msk", [Role.COORDINATOR]),
    ("auditor", "Mark Stein", "msk", [Role.AUDITOR]),
    ("admin", "Sergei Kuznetsov", "msk", [Role.SITE_ADMIN]),
    ("auditor", "Mark Stein", "bcn", [Role.AUDITOR]),
    ("bcn_tech", "Lucía Fernández", "bcn", [Role.TECHNICIAN]),
    ("bcn_qp", "Jordi Puig", "bcn", [Role.QUALIFIED_PERSON]),
]


class Command(BaseCommand):
    help = "Load demo sites, users and records (idempotent)."

    def _generate_records(self) -> None:
        """The signed batch records the demo's certifications queued, made now by the
        same Celery task run in this process (a no-op for a record already done), so
        that a newcomer finds real records at once."""
        from qc.models import BatchRecordDocument, DocumentStatus
        from qc.tasks import batch_record_generate

        waiting = BatchRecordDocument.objects.filter(status__in=[DocumentStatus.QUEUED, DocumentStatus.RENDERING,
                                                                 DocumentStatus.SIGNING]).order_by("pk")
        for document in waiting.select_related("batch"):
            result = batch_record_generate.apply(args=[document.pk])
            if result.failed():
                self.stderr.write(f"Signed batch record of {document.batch.number} v{document.version} failed: "
                                  f"{result.result}")
            else:
                self.stdout.write(f"Signed batch record of {document.batch.number} v{document.version}: "
                                  f"{result.result['status']}")

    def handle(self, *args, **options):
        # The demo users' password is hashed (and re-checked at every demo signature)
        # with few iterations; see carmfg.accounts.hashers. Verifying still goes through
        # the configured hashers, which upgrade the hash at the user's first login.
        fast = "carmfg.accounts.hashers.DemoSeedPasswordHasher"
        with override_settings(PASSWORD_HASHERS=[fast, *settings.PASSWORD_HASHERS]):
            self._seed()

    def _seed(self) -> None:
        password = settings.CARMFG_DEMO_PASSWORD
        User = get_user_model()
        with transaction.atomic():
            sites = {}
            for code, name, tz, fin in SITES:
                sites[code] = Site.objects.filter(code=code).first() or site_create(
                    actor=None, code=code, name=name, time_zone=tz, facility_identification_number=fin
                )
            for username, full_name, code, roles in USERS:
                user = User.objects.filter(username=username).first() or user_create(
                    actor=None, username=username, full_name=full_name, email=f"{username}@demo.invalid", password=password
                )
                if not Membership.objects.filter(user=user, site=sites[code]).exists():
                    membership_set_roles(actor=None, user=user, site=sites[code], roles=list(roles))
            # The specification is put into effect before any batch exists: batches pin it.
            seed_manufacturing_demo(site=sites["msk"], password=password, prepare_product=demo_specification,
                                    log=self.stdout.write)
            seed_qc_demo(site=sites["msk"], password=password, log=self.stdout.write)
            seed_coi_demo(site=sites["msk"], log=self.stdout.write)
        self._generate_records()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Demo logins (password for all: {password}):")
        seen = set()
        for username, full_name, code, roles in USERS:
            line = f"  {username:<10} {full_name:<22} {code}: {', '.join(Role(r).label for r in roles)}"
            self.stdout.write(line if username not in seen else line.replace(username, " " * len(username), 1))
            seen.add(username)
