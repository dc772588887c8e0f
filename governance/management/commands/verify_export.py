"""`manage.py verify_export ID`: re-hash a stored document and compare it with its record.

Exits 0 when the file matches the SHA-256 recorded when it was made, 1 otherwise.
"""

from django.core.management.base import BaseCommand, CommandError

from governance.errors import Conflict
from governance.exports.services import verify_export
from governance.models import DocumentExport


class Command(BaseCommand):
    help = "Re-hash a stored PDF export and say whether it matches its recorded SHA-256."

    def add_arguments(self, parser):
        parser.add_argument("export_id", type=int, help="The export's id (SG-EXP-000012 is 12).")

    def handle(self, *args, **options):
        export = DocumentExport.objects.filter(pk=options["export_id"]).first()
        if export is None:
            raise CommandError(f"no document export with id {options['export_id']}")
        try:
            check = verify_export(export)
        except Conflict as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{check.document_id}: {'MATCHES' if check.matches else 'DOES NOT MATCH'} — "
            f"{check.detail}\n  recorded {check.sha256_recorded}\n  actual   {check.sha256_actual}"
        )
        if not check.matches:
            raise SystemExit(1)
