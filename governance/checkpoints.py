"""Audit checkpoints: the chain's head, signed with an Ed25519 key and kept outside the database.

A checkpoint states the sequence and hash of the chain's last event at one moment, signed with
the deployment's checkpoint key (AUDIT_CHECKPOINT_KEY_FILE). Kept where the database's
administrators cannot rewrite it, it makes a later rewrite of the whole audit table detectable:
the rewritten table no longer holds the checkpointed hash. The file carries its public key, and
anyone holding that public key, an inspector included, can check the signature: no secret of
the server is needed, and changing SECRET_KEY changes nothing.

Checkpoints written before these signatures (an HMAC under SECRET_KEY, `hmac_sha256`) are still
checked, with the server's SECRET_KEY.
"""

import base64
import binascii
import hashlib
import hmac
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from governance.audit_chain import canonical_json, utc_iso
from governance.models import AuditChainHead, AuditEvent

FORMAT = "stagegate-audit-checkpoint/2"
ALGORITHM = "Ed25519"
# Where development (DEBUG, no key configured) keeps the key it makes on first use.
DEVELOPMENT_KEY_NAME = "audit-checkpoint-key.pem"
GENERATE_HINT = (
    "make one with `manage.py audit_checkpoint --generate-key PATH` and set "
    "AUDIT_CHECKPOINT_KEY_FILE=PATH"
)


class CheckpointKeyError(Exception):
    """The checkpoint key is not configured, cannot be read, or is not an Ed25519 key."""


# --- Keys -------------------------------------------------------------------------------------


def generate_key(path: Path) -> Ed25519PrivateKey:
    """A new private key, written to `path` as PEM readable by its owner only (mode 0600).
    An existing file is never replaced (FileExistsError)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_new_file(path, pem, mode=0o600)
    return key


def write_new_file(path: Path, data: bytes, *, mode: int) -> None:
    """Write a file that must not exist yet, whole or not at all (FileExistsError if it does).

    The data goes to a temporary file beside it (made readable by its owner only), which is
    then linked into place: a reader never sees a partial file, and of two writers racing for
    the same name one fails instead of overwriting the other.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, mode)
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read the checkpoint key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CheckpointKeyError(
            f"{path} is not an unencrypted PEM private key; {GENERATE_HINT}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(f"{path} holds another kind of key than Ed25519; {GENERATE_HINT}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key as `audit_checkpoint --public-key-out` writes it (PEM)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read the public key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise CheckpointKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointKeyError(f"{path} holds another kind of key than Ed25519")
    return key


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """The SHA-256 of the raw public key, in hex: what people compare to recognise a key."""
    return hashlib.sha256(_raw(key)).hexdigest()


def development_key_path() -> Path:
    return Path(settings.VAR_DIR) / DEVELOPMENT_KEY_NAME


def signing_key() -> Ed25519PrivateKey:
    """The key that signs new checkpoints: AUDIT_CHECKPOINT_KEY_FILE's, or in development
    (DEBUG) with none configured, one made under VAR_DIR on first use."""
    configured = settings.AUDIT_CHECKPOINT_KEY_FILE
    if configured is not None:
        return load_private_key(Path(configured))
    if not settings.DEBUG:
        raise CheckpointKeyError(
            "AUDIT_CHECKPOINT_KEY_FILE is not set: checkpoints are signed with an Ed25519 key "
            f"kept outside the database; {GENERATE_HINT}"
        )
    path = development_key_path()
    try:
        return generate_key(path)
    except FileExistsError:
        return load_private_key(path)


def configured_public_key() -> Ed25519PublicKey | None:
    """The public half of this deployment's key (in development, of the key made on first use,
    if it was); None when there is none."""
    configured = settings.AUDIT_CHECKPOINT_KEY_FILE
    if configured is not None:
        return load_private_key(Path(configured)).public_key()
    if settings.DEBUG and development_key_path().exists():
        return load_private_key(development_key_path()).public_key()
    return None


# --- Writing ----------------------------------------------------------------------------------


def make_checkpoint(key: Ed25519PrivateKey) -> dict:
    """A signed statement of the chain's head now, naming the key that signed it.

    The signature covers the canonical JSON of every other field of the checkpoint, the
    public key included."""
    head = AuditChainHead.objects.get(pk=1)
    public = key.public_key()
    body = {
        "format": FORMAT,
        "sequence": head.sequence,
        "hash": head.hash,
        "created_at": utc_iso(datetime.now(UTC)),
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(_raw(public)).decode(),
        "public_key_sha256": fingerprint(public),
    }
    signature = key.sign(canonical_json(body).encode())
    return {**body, "signature": base64.b64encode(signature).decode()}


# --- Checking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointCheck:
    """Whether a checkpoint is authentic and the database still holds what it states, and
    which key (and so whose word) its authenticity rests on."""

    ok: bool
    message: str
    signed_by: str = ""
    # False when nothing outside the file and this server vouches for who wrote it: the
    # signature was checked only with the key the file carries, or it is a legacy HMAC that
    # anyone holding SECRET_KEY could have computed. `caveat` then says which.
    pinned: bool = False
    caveat: str = ""


class _Refused(Exception):
    """A checkpoint's signature cannot be accepted; the message says why."""


def check_checkpoint(
    checkpoint, *, public_keys: Sequence[Ed25519PublicKey] = ()
) -> CheckpointCheck:
    """Check a checkpoint's signature, then that the chain still holds the event it names with
    the hash it states.

    The signature is checked with one of `public_keys` when any are given (the key is pinned),
    else with this deployment's configured key, else only with the key the file itself carries:
    that shows the file is intact, not who wrote it, and the answer says the key was not pinned.
    """
    if not isinstance(checkpoint, dict):
        return CheckpointCheck(False, "the file is not a checkpoint (a JSON object)")
    try:
        if "signature" not in checkpoint and "hmac_sha256" in checkpoint:
            signed_by, pinned = _check_legacy_mac(checkpoint)
            caveat = LEGACY_CAVEAT
        else:
            signed_by, pinned = _check_signature(checkpoint, public_keys)
            caveat = "" if pinned else CARRIED_KEY_CAVEAT
    except _Refused as refused:
        return CheckpointCheck(False, str(refused))
    ok, message = _check_against_chain(checkpoint.get("sequence"), checkpoint.get("hash"))
    return CheckpointCheck(ok, message, signed_by, pinned, caveat)


CARRIED_KEY_CAVEAT = (
    "the signature was checked only with the key the file carries, which proves the file is "
    "intact but not who signed it; give the deployment's public key with --public-key, or "
    "compare the fingerprint above with the one it published"
)
LEGACY_CAVEAT = (
    "an HMAC checkpoint from before signatures: it shows the file was written by whoever held "
    "this server's SECRET_KEY, which no outside key can confirm"
)


def _check_signature(checkpoint: dict, public_keys) -> tuple[str, bool]:
    body = {name: value for name, value in checkpoint.items() if name != "signature"}
    if body.get("algorithm") != ALGORITHM:
        raise _Refused(f"the checkpoint is not signed with {ALGORITHM}")
    try:
        carried = Ed25519PublicKey.from_public_bytes(_base64(body.get("public_key")))
        signature = _base64(checkpoint.get("signature"))
    except (ValueError, binascii.Error):
        raise _Refused("the checkpoint's public key or signature is not readable") from None
    carried_print = fingerprint(carried)
    if body.get("public_key_sha256") != carried_print:
        raise _Refused("the checkpoint's key fingerprint does not match its key (altered)")
    if public_keys:
        if carried_print not in {fingerprint(key) for key in public_keys}:
            raise _Refused(
                f"signed with key {carried_print}, which is none of the public keys given"
            )
        signed_by, pinned = f"the public key given, {carried_print}", True
    else:
        try:
            configured = configured_public_key()
        except CheckpointKeyError as exc:
            raise _Refused(f"{exc}; or give the public key with --public-key") from None
        if configured is not None and fingerprint(configured) != carried_print:
            raise _Refused(
                f"signed with key {carried_print}, not with this deployment's key "
                f"{fingerprint(configured)}: if the key was changed since, give the earlier "
                "public key with --public-key"
            )
        if configured is not None:
            signed_by, pinned = f"this deployment's key, {carried_print}", True
        else:
            signed_by, pinned = f"the key the file carries, {carried_print}", False
    try:
        carried.verify(signature, canonical_json(body).encode())
    except InvalidSignature:
        raise _Refused("the checkpoint's signature is not valid (altered after signing)") from None
    return signed_by, pinned


def _base64(text) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text, validate=True)


def legacy_mac(body: str) -> str:
    """The HMAC that checkpoints carried before signatures, keyed from SECRET_KEY."""
    key = hashlib.sha256(f"stagegate-audit-checkpoint:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _check_legacy_mac(checkpoint: dict) -> tuple[str, bool]:
    body = {name: checkpoint.get(name) for name in ("sequence", "hash", "created_at")}
    if not hmac.compare_digest(
        legacy_mac(canonical_json(body)), str(checkpoint.get("hmac_sha256", ""))
    ):
        raise _Refused(
            "the checkpoint's HMAC is not valid (altered, from another system, or SECRET_KEY "
            "has changed since it was written)"
        )
    return "this server's SECRET_KEY (an HMAC checkpoint from before signatures)", False


def _check_against_chain(sequence, digest) -> tuple[bool, str]:
    """Whether the database still holds the event a checkpoint names, with the same hash."""
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        return False, "the checkpoint names no event sequence"
    if sequence == 0:
        return True, "the checkpoint predates the first event"
    stored = AuditEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first()
    if stored is None:
        return False, f"event #{sequence} named by the checkpoint is missing"
    if stored != digest:
        return False, f"event #{sequence} no longer has the checkpointed hash"
    return True, f"event #{sequence} matches the checkpoint"
