"""`manage.py verify_audit [--checkpoint FILE ...]`: recompute the audit chain.

Exits 0 when the chain (and every checkpoint given) holds, 1 with the first broken link.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance import audit_chain


class Command(BaseCommand):
    help = "Recompute the hash chain of the audit trail and name the first broken link."

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            type=Path,
            help="A checkpoint file written by audit_checkpoint (repeatable).",
        )

    def handle(self, *args, **options):
        result = audit_chain.verify()
        if result.valid:
            self.stdout.write(
                f"audit chain valid: {result.checked} events, head "
                f"#{result.head_sequence} {result.head_hash}"
            )
        else:
            self.stdout.write(
                f"audit chain BROKEN at event #{result.first_broken_sequence}: {result.problem}"
            )
        checkpoints_ok = True
        for path in options["checkpoint"]:
            try:
                checkpoint = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read checkpoint {path}: {exc}") from None
            ok, message = audit_chain.check_checkpoint(checkpoint)
            checkpoints_ok &= ok
            self.stdout.write(f"checkpoint {path}: {'ok' if ok else 'MISMATCH'} — {message}")
        if not (result.valid and checkpoints_ok):
            raise SystemExit(1)
