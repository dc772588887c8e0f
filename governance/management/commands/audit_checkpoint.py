"""`manage.py audit_checkpoint FILE`: anchor the audit chain's head outside the database.

Writes the head's sequence and hash, signed with the deployment's Ed25519 checkpoint key
(AUDIT_CHECKPOINT_KEY_FILE), and records the checkpoint in the trail itself. Keep the files
somewhere the database's administrators cannot rewrite (e.g. WORM storage): a later rewrite of
the whole audit table no longer matches them (`verify_audit --checkpoint FILE`).

`--generate-key PATH` makes a new private key; `--public-key-out FILE` writes the public half
of the key, which is what inspectors check checkpoints with.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance import audit_chain, checkpoints
from governance.choices import AuditAction


class Command(BaseCommand):
    help = (
        "Write a checkpoint of the audit chain's head to FILE, signed with the Ed25519 key of "
        "AUDIT_CHECKPOINT_KEY_FILE. --generate-key PATH makes that key; --public-key-out FILE "
        "writes its public half, to give to inspectors."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path", nargs="?", type=Path, help="the checkpoint file to write (never overwritten)"
        )
        parser.add_argument(
            "--generate-key",
            metavar="PATH",
            type=Path,
            help="create a new Ed25519 private key at PATH (PEM, readable by its owner only) "
            "and write no checkpoint; then set AUDIT_CHECKPOINT_KEY_FILE=PATH",
        )
        parser.add_argument(
            "--public-key-out",
            metavar="FILE",
            type=Path,
            help="write the public half of the key (the one --generate-key makes, else the "
            "configured one) to FILE as PEM",
        )

    def handle(self, *args, path, generate_key, public_key_out, **options):
        if path is None and generate_key is None and public_key_out is None:
            raise CommandError(
                "give the checkpoint FILE to write, --generate-key PATH or --public-key-out FILE"
            )
        if path is not None and generate_key is not None:
            raise CommandError(
                "--generate-key only makes a key: set AUDIT_CHECKPOINT_KEY_FILE to it, then "
                "write checkpoints"
            )
        try:
            key = self._generate(generate_key) if generate_key else checkpoints.signing_key()
        except checkpoints.CheckpointKeyError as exc:
            raise CommandError(str(exc)) from None
        if public_key_out is not None:
            public = key.public_key()
            self._write_new(public_key_out, checkpoints.public_key_pem(public), mode=0o644)
            self.stdout.write(
                f"public key {checkpoints.fingerprint(public)} written to {public_key_out}"
            )
        if path is not None:
            self._checkpoint(path, key)

    def _generate(self, path: Path):
        try:
            key = checkpoints.generate_key(path)
        except FileExistsError:
            raise CommandError(f"{path} exists; a key is never overwritten") from None
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        fingerprint = checkpoints.fingerprint(key.public_key())
        self.stdout.write(
            f"private key {fingerprint} written to {path} (mode 0600); keep it outside the "
            f"database server and set AUDIT_CHECKPOINT_KEY_FILE={path}"
        )
        return key

    def _write_new(self, path: Path, data: bytes, *, mode: int) -> None:
        try:
            checkpoints.write_new_file(path, data, mode=mode)
        except FileExistsError:
            raise CommandError(f"{path} exists; it is never overwritten") from None
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None

    def _checkpoint(self, path: Path, key) -> None:
        if path.exists():
            raise CommandError(f"{path} exists; a checkpoint is never overwritten")
        # The file is written inside the transaction: if it cannot be, the event recording it
        # rolls back. (The checkpoint names the event before its own, so a file left by a
        # failed commit still states a true head.)
        with transaction.atomic():
            checkpoint = checkpoints.make_checkpoint(key)
            audit_chain.record(
                AuditAction.CHECKPOINT,
                object_type="audit.chain",
                object_id=str(checkpoint["sequence"]),
                after={
                    "sequence": checkpoint["sequence"],
                    "hash": checkpoint["hash"],
                    "public_key_sha256": checkpoint["public_key_sha256"],
                    "file": path.name,
                },
            )
            text = json.dumps(checkpoint, indent=2) + "\n"
            self._write_new(path, text.encode(), mode=0o644)
        self.stdout.write(
            f"checkpoint of event #{checkpoint['sequence']} written to {path}, signed by key "
            f"{checkpoint['public_key_sha256']}"
        )
