from django.core.management.base import BaseCommand, CommandError

from carmfg.accounts.models import Site
from carmfg.audit.verification import chains_in_use, verify_chains


class Command(BaseCommand):
    help = "Recompute the audit trail's hash chains; exit non-zero at the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("--site", help="site code (default: every chain)")
        parser.add_argument(
            "--deep", action="store_true",
            help="on PostgreSQL, also compare every event's columns with its sealed text, even while the "
                 "database's column guard is intact (about ten times slower)",
        )

    def handle(self, *args, **options):
        if options["site"]:
            site = Site.objects.filter(code=options["site"]).first()
            if site is None:
                raise CommandError(f"No site with code {options['site']!r}.")
            chains = [site.pk]
        else:
            chains = chains_in_use()
        names = dict(Site.objects.values_list("pk", "code"))
        broken = 0
        for report in verify_chains(chains, deep=options["deep"]):
            label = names.get(report.chain, "no site") if report.chain else "no site"
            self.stdout.write(
                f"chain {report.chain} ({label}): {report.count} events, head #{report.head_seq} {report.head_hash}"
            )
            if report.ok:
                self.stdout.write(self.style.SUCCESS("  intact"))
            else:
                broken += 1
                where = f"first broken event #{report.first_broken_seq}" if report.first_broken_seq else "see below"
                self.stdout.write(self.style.ERROR(f"  BROKEN: {where}"))
                for problem in report.problems:
                    self.stdout.write(self.style.ERROR(f"  {problem}"))
        if broken:
            raise CommandError(f"{broken} audit chain(s) broken.")
        self.stdout.write(self.style.SUCCESS(f"All {len(chains)} audit chain(s) intact."))
