"""`manage.py verify_audit [--checkpoint FILE ...] [--public-key PEM ...] [--require-pinned]`:
recompute the audit chain, and check it against checkpoints written earlier.

Exits 0 when the chain (and every checkpoint given) holds, 1 with the first broken link (or,
with --require-pinned, a checkpoint whose signer no trusted key confirms).
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance import audit_chain, checkpoints


class Command(BaseCommand):
    help = (
        "Recompute the hash chain of the audit trail and name the first broken link. With "
        "--checkpoint, also check that the chain still holds each checkpoint's event and hash "
        "(a rewrite of the whole table fails this) and that the checkpoint's Ed25519 "
        "signature is valid. The signature is checked with the --public-key files given, "
        "else with this deployment's key (AUDIT_CHECKPOINT_KEY_FILE), else only with the key "
        "the checkpoint file carries. An inspector should pass the public key the company "
        "handed over beforehand (audit_checkpoint --public-key-out), or compare the "
        "fingerprint printed here with one obtained independently: the key the file carries "
        "(reported as NOT PINNED) proves only that the file is intact, not who signed it, and "
        "this deployment's key is only as trustworthy as the server that holds it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            type=Path,
            help="A checkpoint file written by audit_checkpoint (repeatable).",
        )
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            type=Path,
            metavar="PEM",
            help="A public key (PEM, from audit_checkpoint --public-key-out) the checkpoints "
            "must be signed with; repeat it for the keys used before a key change.",
        )
        parser.add_argument(
            "--require-pinned",
            action="store_true",
            help="Fail (exit 1) on a checkpoint whose signature no trusted key confirms: one "
            "checked only with the key it carries, or a legacy HMAC checkpoint.",
        )

    def handle(self, *args, **options):
        try:
            public_keys = [checkpoints.load_public_key(path) for path in options["public_key"]]
        except checkpoints.CheckpointKeyError as exc:
            raise CommandError(str(exc)) from None
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
            check = checkpoints.check_checkpoint(checkpoint, public_keys=public_keys)
            checkpoints_ok &= check.ok
            line = f"checkpoint {path}: {'ok' if check.ok else 'MISMATCH'} — {check.message}"
            if check.signed_by:
                line += f"; signed by {check.signed_by}"
            self.stdout.write(line)
            if check.signed_by and not check.pinned:
                self.stdout.write(f"  key NOT PINNED: {check.caveat}")
                if options["require_pinned"]:
                    checkpoints_ok = False
        if not (result.valid and checkpoints_ok):
            raise SystemExit(1)
