"""`manage.py audit_checkpoint FILE`: anchor the audit chain's head outside the database.

Writes the head's sequence and hash with an HMAC under the deployment's secret key, and
records the checkpoint in the trail itself. Keep the files somewhere the database's
administrators cannot rewrite (e.g. WORM storage): a later rewrite of the whole audit table
no longer matches them (`verify_audit --checkpoint FILE`).
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance import audit_chain
from governance.choices import AuditAction


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chain's head to a file."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options):
        if path.exists():
            raise CommandError(f"{path} exists; a checkpoint is never overwritten")
        with transaction.atomic():
            checkpoint = audit_chain.make_checkpoint()
            audit_chain.record(
                AuditAction.CHECKPOINT,
                object_type="audit.chain",
                object_id=str(checkpoint["sequence"]),
                after={
                    "sequence": checkpoint["sequence"],
                    "hash": checkpoint["hash"],
                    "file": path.name,
                },
            )
        path.write_text(json.dumps(checkpoint, indent=2) + "\n")
        self.stdout.write(f"checkpoint of event #{checkpoint['sequence']} written to {path}")
