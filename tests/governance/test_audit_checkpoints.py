"""Audit checkpoints: the chain's head signed with an Ed25519 key, written and checked through
the commands an operator and an inspector run."""

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from governance import audit_chain, audit_triggers, checkpoints
from governance.choices import AuditAction
from governance.deploy_checks import checkpoint_key_is_usable
from governance.models import AuditChainHead, AuditEvent

pytestmark = pytest.mark.django_db


def _append(n):
    for i in range(n):
        audit_chain.record(
            AuditAction.RECORD_CREATED, object_type="test", object_id=str(i), after={"i": i}
        )


@pytest.fixture
def chain(db):
    """Events from set-up (e.g. default policies), then ten of ours."""
    _append(10)
    return AuditEvent.objects.count()


@pytest.fixture
def key_file(tmp_path, settings):
    """The deployment's checkpoint key, made by the command and configured."""
    path = tmp_path / "keys" / "checkpoint.pem"
    call_command("audit_checkpoint", "--generate-key", str(path))
    settings.AUDIT_CHECKPOINT_KEY_FILE = path
    return path


@pytest.fixture
def public_pem(key_file, tmp_path):
    """The public half of the deployment's key, as handed to an inspector."""
    path = tmp_path / "inspector" / "stagegate.pub.pem"
    call_command("audit_checkpoint", "--public-key-out", str(path))
    return path


def checkpoint_file(tmp_path, name="checkpoint.json"):
    path = tmp_path / name
    call_command("audit_checkpoint", str(path))
    return path


def verify_audit(capsys, *args) -> tuple[int, str]:
    """Run verify_audit; its exit code and what it printed."""
    try:
        call_command("verify_audit", *args)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    return code, capsys.readouterr().out


def test_a_checkpoint_written_by_the_command_verifies_with_the_inspectors_public_key(
    chain, public_pem, tmp_path, capsys
):
    head = AuditChainHead.objects.get()
    path = checkpoint_file(tmp_path)
    written = json.loads(path.read_text())
    assert (written["sequence"], written["hash"]) == (head.sequence, head.hash)
    assert written["algorithm"] == "Ed25519" and "hmac_sha256" not in written
    inspectors_key = checkpoints.load_public_key(public_pem)
    assert written["public_key_sha256"] == checkpoints.fingerprint(inspectors_key)
    # The checkpoint is itself in the trail, naming the key that signed it.
    event = AuditEvent.objects.get(action=AuditAction.CHECKPOINT)
    assert event.sequence == head.sequence + 1
    assert json.loads(event.payload)["after"] == {
        "sequence": head.sequence,
        "hash": head.hash,
        "public_key_sha256": written["public_key_sha256"],
        "file": "checkpoint.json",
    }

    code, out = verify_audit(capsys, "--checkpoint", str(path), "--public-key", str(public_pem))
    assert code == 0, out
    assert f"checkpoint {path}: ok — event #{head.sequence} matches the checkpoint" in out
    assert f"signed by the public key given, {written['public_key_sha256']}" in out
    assert "NOT PINNED" not in out


def test_without_a_public_key_the_deployments_own_key_checks_the_signature(
    chain, key_file, tmp_path, capsys
):
    path = checkpoint_file(tmp_path)
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 0, out
    assert "ok — event #" in out and "signed by this deployment's key" in out
    assert "NOT PINNED" not in out


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda c: c.update(hash="f" * 64), id="hash"),
        pytest.param(lambda c: c.update(sequence=c["sequence"] - 1), id="sequence"),
        pytest.param(lambda c: c.update(created_at="2020-01-01T00:00:00+00:00"), id="time"),
        pytest.param(lambda c: c.update(note="added after signing"), id="added-field"),
    ],
)
def test_an_altered_checkpoint_is_refused(chain, public_pem, tmp_path, capsys, alter):
    path = checkpoint_file(tmp_path)
    checkpoint = json.loads(path.read_text())
    alter(checkpoint)
    path.write_text(json.dumps(checkpoint))
    code, out = verify_audit(capsys, "--checkpoint", str(path), "--public-key", str(public_pem))
    assert code == 1
    assert f"checkpoint {path}: MISMATCH — the checkpoint's signature is not valid" in out


def test_a_checkpoint_re_signed_by_another_key_is_refused(chain, public_pem, tmp_path, capsys):
    """A forger who rewrote the table can sign a new checkpoint with a key of their own; the
    inspector's pinned key, and the deployment's configured key, both refuse it."""
    path = checkpoint_file(tmp_path)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(checkpoints.make_checkpoint(Ed25519PrivateKey.generate())))
    code, out = verify_audit(capsys, "--checkpoint", str(forged), "--public-key", str(public_pem))
    assert code == 1 and "which is none of the public keys given" in out
    code, out = verify_audit(capsys, "--checkpoint", str(forged))
    assert code == 1 and "not with this deployment's key" in out
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 0, out


def test_a_checkpoint_carrying_another_key_than_it_was_signed_with_is_refused(
    chain, key_file, tmp_path, capsys
):
    path = checkpoint_file(tmp_path)
    checkpoint = json.loads(path.read_text())
    other = Ed25519PrivateKey.generate().public_key()
    checkpoint["public_key"] = base64.b64encode(checkpoints._raw(other)).decode()
    checkpoint["public_key_sha256"] = checkpoints.fingerprint(other)
    path.write_text(json.dumps(checkpoint))
    pinned = tmp_path / "other.pem"
    pinned.write_bytes(checkpoints.public_key_pem(other))
    code, out = verify_audit(capsys, "--checkpoint", str(path), "--public-key", str(pinned))
    assert code == 1 and "the checkpoint's signature is not valid" in out


def test_a_checkpoint_still_verifies_after_secret_key_changes(
    chain, public_pem, tmp_path, capsys, settings
):
    path = checkpoint_file(tmp_path)
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-" + "x" * 40
    code, out = verify_audit(capsys, "--checkpoint", str(path), "--public-key", str(public_pem))
    assert code == 0, out
    assert "ok — event #" in out


@pytest.fixture
def triggers_lifted():
    """Tamper as a table owner would: drop the triggers for the test, then restore them."""
    audit_triggers.remove(connection)
    yield
    audit_triggers.install(connection)


def test_a_rewrite_of_the_whole_table_is_detected_against_an_earlier_checkpoint(
    chain, public_pem, triggers_lifted, tmp_path, capsys
):
    path = checkpoint_file(tmp_path)
    checkpointed = json.loads(path.read_text())["sequence"]
    # Rewrite history consistently (re-hash everything): the chain alone looks valid...
    AuditEvent.objects.all().delete()
    AuditChainHead.objects.filter(pk=1).update(sequence=0, hash=audit_chain.GENESIS_HASH)
    _append(chain + 5)
    code, out = verify_audit(capsys)
    assert code == 0 and "audit chain valid" in out
    # ...but not against the checkpoint taken before.
    code, out = verify_audit(capsys, "--checkpoint", str(path), "--public-key", str(public_pem))
    assert code == 1
    assert "audit chain valid" in out
    assert f"MISMATCH — event #{checkpointed} no longer has the checkpointed hash" in out


def test_a_checkpoint_naming_an_event_that_is_gone_is_a_mismatch(
    chain, key_file, triggers_lifted, tmp_path, capsys
):
    path = checkpoint_file(tmp_path)
    sequence = json.loads(path.read_text())["sequence"]
    AuditEvent.objects.filter(sequence__gte=sequence).delete()
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 1 and f"event #{sequence} named by the checkpoint is missing" in out


def test_without_any_trusted_key_the_files_own_key_is_used_and_said_not_pinned(
    chain, key_file, tmp_path, capsys, settings
):
    path = checkpoint_file(tmp_path)
    settings.AUDIT_CHECKPOINT_KEY_FILE = None
    settings.DEBUG = False
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 0, out
    assert "signed by the key the file carries" in out
    assert "key NOT PINNED" in out


def signed(fields: dict, key: Ed25519PrivateKey) -> dict:
    """A checkpoint stating `fields`, properly signed by `key` (whatever the fields say)."""
    raw = checkpoints._raw(key.public_key())
    body = {
        **fields,
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(raw).decode(),
        "public_key_sha256": checkpoints.fingerprint(key.public_key()),
    }
    signature = key.sign(audit_chain.canonical_json(body).encode())
    return {**body, "signature": base64.b64encode(signature).decode()}


@pytest.mark.parametrize("sequence", [None, "7", -1, 2.5, True])
def test_a_signed_checkpoint_naming_no_sequence_is_refused_not_crashing(chain, sequence):
    key = Ed25519PrivateKey.generate()
    checkpoint = signed({"sequence": sequence, "hash": "0" * 64}, key)
    check = checkpoints.check_checkpoint(checkpoint, public_keys=[key.public_key()])
    assert not check.ok and check.message == "the checkpoint names no event sequence"


@pytest.mark.parametrize(
    "content", ["[1, 2]", '{"sequence": 3}', '{"algorithm": "Ed25519", "public_key": "%%%"}']
)
def test_a_file_that_is_no_checkpoint_is_a_mismatch_not_a_crash(
    chain, key_file, tmp_path, capsys, content
):
    path = tmp_path / "odd.json"
    path.write_text(content)
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 1 and "MISMATCH" in out


# --- Checkpoints written before signatures ----------------------------------------------------


def legacy_checkpoint() -> dict:
    """A checkpoint as Stagegate wrote them before Ed25519: an HMAC keyed from SECRET_KEY."""
    head = AuditChainHead.objects.get()
    body = {"sequence": head.sequence, "hash": head.hash, "created_at": "2026-11-01T00:00:00+00:00"}
    return {**body, "hmac_sha256": checkpoints.legacy_mac(audit_chain.canonical_json(body))}


def test_a_legacy_hmac_checkpoint_still_verifies(chain, tmp_path, capsys, settings):
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(legacy_checkpoint(), indent=2))
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 0, out
    assert "ok — event #" in out and "signed by this server's SECRET_KEY" in out

    altered = {**json.loads(path.read_text()), "hash": "f" * 64}
    path.write_text(json.dumps(altered))
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 1 and "the checkpoint's HMAC is not valid" in out


def test_a_legacy_hmac_checkpoint_is_never_pinned_and_fails_when_pinning_is_required(
    chain, key_file, tmp_path, capsys
):
    # Anyone holding SECRET_KEY could have computed it: a public key given changes nothing.
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(legacy_checkpoint()))
    public = tmp_path / "deployment.pem"
    call_command("audit_checkpoint", "--public-key-out", str(public))
    code, out = verify_audit(capsys, "--checkpoint", str(path), "--public-key", str(public))
    assert code == 0, out
    assert "key NOT PINNED: an HMAC checkpoint from before signatures" in out
    code, out = verify_audit(
        capsys, "--checkpoint", str(path), "--public-key", str(public), "--require-pinned"
    )
    assert code == 1


def test_require_pinned_fails_a_checkpoint_checked_only_with_its_own_key(
    chain, key_file, tmp_path, capsys, settings
):
    path = checkpoint_file(tmp_path)
    settings.AUDIT_CHECKPOINT_KEY_FILE = None
    settings.DEBUG = False
    code, out = verify_audit(capsys, "--checkpoint", str(path), "--require-pinned")
    assert code == 1 and "key NOT PINNED" in out
    public = tmp_path / "deployment.pem"
    settings.AUDIT_CHECKPOINT_KEY_FILE = str(key_file)
    call_command("audit_checkpoint", "--public-key-out", str(public))
    settings.AUDIT_CHECKPOINT_KEY_FILE = None
    code, out = verify_audit(
        capsys, "--checkpoint", str(path), "--public-key", str(public), "--require-pinned"
    )
    assert code == 0, out
    assert "NOT PINNED" not in out


def test_a_legacy_hmac_checkpoint_cannot_be_checked_once_secret_key_changed(
    chain, tmp_path, capsys, settings
):
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(legacy_checkpoint()))
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-" + "x" * 40
    code, out = verify_audit(capsys, "--checkpoint", str(path))
    assert code == 1 and "SECRET_KEY has changed" in out


# --- The key ----------------------------------------------------------------------------------


def test_a_generated_key_is_readable_by_its_owner_only_and_never_overwritten(key_file):
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()
    with pytest.raises(CommandError, match="exists; a key is never overwritten"):
        call_command("audit_checkpoint", "--generate-key", str(key_file))
    assert key_file.read_bytes() == before
    assert list(key_file.parent.iterdir()) == [key_file]  # no temporary file left behind


def test_a_checkpoint_file_is_never_overwritten(chain, key_file, tmp_path):
    path = checkpoint_file(tmp_path)
    before = path.read_text()
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="exists; a checkpoint is never overwritten"):
        call_command("audit_checkpoint", str(path))
    assert path.read_text() == before
    assert AuditEvent.objects.count() == events


def test_production_without_a_key_writes_no_checkpoint_and_says_why(chain, tmp_path, settings):
    settings.DEBUG, settings.AUDIT_CHECKPOINT_KEY_FILE = False, None
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="AUDIT_CHECKPOINT_KEY_FILE is not set.*--generate-key"):
        call_command("audit_checkpoint", str(tmp_path / "checkpoint.json"))
    assert not (tmp_path / "checkpoint.json").exists()
    assert AuditEvent.objects.count() == events


def test_development_makes_its_key_under_var_dir_on_first_use(chain, tmp_path, settings):
    settings.DEBUG, settings.AUDIT_CHECKPOINT_KEY_FILE = True, None
    settings.VAR_DIR = tmp_path / "var"
    first = json.loads(checkpoint_file(tmp_path, "first.json").read_text())
    key = settings.VAR_DIR / checkpoints.DEVELOPMENT_KEY_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    second = json.loads(checkpoint_file(tmp_path, "second.json").read_text())
    assert first["public_key_sha256"] == second["public_key_sha256"]
    assert second["sequence"] == first["sequence"] + 1


def test_an_unreadable_public_key_is_a_clear_error(chain, tmp_path):
    path = tmp_path / "not-a-key.pem"
    path.write_text("hello")
    with pytest.raises(CommandError, match="is not a PEM public key"):
        call_command("verify_audit", "--public-key", str(path))


def test_deploy_check_warns_without_a_key_and_errs_on_a_bad_one(tmp_path, settings):
    settings.DEBUG, settings.AUDIT_CHECKPOINT_KEY_FILE = False, None
    assert [m.id for m in checkpoint_key_is_usable(None)] == ["governance.W001"]
    settings.AUDIT_CHECKPOINT_KEY_FILE = tmp_path / "missing.pem"
    assert [m.id for m in checkpoint_key_is_usable(None)] == ["governance.E001"]
    settings.AUDIT_CHECKPOINT_KEY_FILE = tmp_path / "key.pem"
    checkpoints.generate_key(settings.AUDIT_CHECKPOINT_KEY_FILE)
    assert checkpoint_key_is_usable(None) == []
    settings.AUDIT_CHECKPOINT_KEY_FILE.chmod(0o644)
    assert [m.id for m in checkpoint_key_is_usable(None)] == ["governance.W002"]
