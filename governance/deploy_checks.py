"""Checks that `manage.py check --deploy` runs for the governance app: the key that signs audit
checkpoints is configured, readable, an Ed25519 key, and readable by its owner only."""

from pathlib import Path

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def checkpoint_key_is_usable(app_configs, **kwargs):
    # Imported here: web processes register this check but never run it, nor need cryptography.
    from governance import checkpoints

    configured = settings.AUDIT_CHECKPOINT_KEY_FILE
    if configured is None:
        if settings.DEBUG:  # development makes its own key on first use
            return []
        return [
            checks.Warning(
                "AUDIT_CHECKPOINT_KEY_FILE is not set, so `manage.py audit_checkpoint` cannot "
                "sign checkpoints of the audit chain.",
                hint="Make one with `manage.py audit_checkpoint --generate-key PATH` and set "
                "AUDIT_CHECKPOINT_KEY_FILE=PATH.",
                id="governance.W001",
            )
        ]
    try:
        checkpoints.load_private_key(Path(configured))
    except checkpoints.CheckpointKeyError as exc:
        return [checks.Error(str(exc), id="governance.E001")]
    mode = Path(configured).stat().st_mode & 0o777
    if mode & 0o077:
        return [
            checks.Warning(
                f"The audit checkpoint key {configured} is open to other accounts (mode {mode:o}).",
                hint=f"chmod 600 {configured}",
                id="governance.W002",
            )
        ]
    return []
