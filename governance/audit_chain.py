"""Appending to and verifying the hash-chained audit trail.

`record()` is the only writer: it locks the one-row chain head, so concurrent appends line up
one behind another with no fork and no gap in the sequence. `verify()` recomputes every hash
and names the first broken link.
"""

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from config.request_context import current, current_user
from governance.defaults import GENESIS_HASH
from governance.models import AuditChainHead, AuditEvent
from registry.history import printed_name


def canonical_json(data) -> str:
    """The one serialization that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, payload: str) -> str:
    """hash = SHA-256(prev_hash + canonical JSON of the event)."""
    return sha256_hex(prev_hash + payload)


def project_id_of(record) -> int | None:
    """The id of the project a record belongs to, following its PROJECT_PATH."""
    if record._meta.label_lower == "registry.project":
        return record.pk
    path = getattr(record, "PROJECT_PATH", None)
    if not path:
        return None
    *hops, last = path.split("__")
    target = record
    for hop in hops:
        target = getattr(target, hop, None)
        if target is None:
            return None
    return getattr(target, f"{last}_id", None)


def record(
    action: str,
    *,
    target=None,
    object_type: str = "",
    object_id="",
    project_id=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    actor=None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    `target` is the record acted on (its type, id and project are derived); the actor
    defaults to the user of the current request or task.
    """
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
        project_id = project_id if project_id is not None else project_id_of(target)
    actor = actor if actor is not None else current_user()
    context = current()
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        occurred_at = datetime.now(UTC)
        fields = {
            "sequence": head.sequence + 1,
            "occurred_at": utc_iso(occurred_at),
            "actor_id": actor.pk if actor is not None else None,
            "actor_name": printed_name(actor),
            "request_id": context.request_id,
            "action": str(action),
            "object_type": object_type,
            "object_id": str(object_id),
            "project_id": project_id,
            "before": before or {},
            "after": after or {},
            "reason": reason or context.reason,
        }
        payload = canonical_json(fields)
        digest = chain_hash(head.hash, payload)
        event = AuditEvent.objects.create(
            sequence=fields["sequence"],
            occurred_at=occurred_at,
            actor_id=fields["actor_id"],
            actor_name=fields["actor_name"],
            request_id=fields["request_id"],
            action=fields["action"],
            object_type=object_type,
            object_id=fields["object_id"],
            project_id=project_id,
            payload=payload,
            prev_hash=head.hash,
            hash=digest,
        )
        AuditChainHead.objects.filter(pk=1).update(sequence=event.sequence, hash=digest)
    return event


@dataclass
class Verification:
    """The outcome of recomputing the chain."""

    valid: bool
    checked: int
    head_sequence: int
    head_hash: str
    first_broken_sequence: int | None = None
    problem: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


_COLUMNS = (
    "sequence",
    "occurred_at",
    "actor_id",
    "actor_name",
    "request_id",
    "action",
    "object_type",
    "object_id",
    "project_id",
    "payload",
    "prev_hash",
    "hash",
)


def verify(*, chunk_size: int = 20_000) -> Verification:
    """Recompute every link; report the first event where the chain is broken."""
    head = AuditChainHead.objects.get(pk=1)
    expected_sequence, previous_hash, checked = 1, GENESIS_HASH, 0
    rows = AuditEvent.objects.order_by("sequence").values_list(*_COLUMNS)
    for row in rows.iterator(chunk_size=chunk_size):
        (
            sequence,
            occurred_at,
            actor_id,
            actor_name,
            request_id,
            action,
            object_type,
            object_id,
            project_id,
            payload,
            prev_hash,
            digest,
        ) = row
        problem = ""
        if sequence != expected_sequence:
            problem = (
                f"expected event #{expected_sequence} but found #{sequence}: events "
                "were deleted, inserted or renumbered"
            )
            sequence = expected_sequence
        elif prev_hash != previous_hash:
            problem = "its previous-hash does not match the event before it (reordered or forged)"
        elif chain_hash(prev_hash, payload) != digest:
            problem = "its hash does not match its content (the event was altered)"
        else:
            fields = json.loads(payload)
            stored = (
                sequence,
                utc_iso(occurred_at),
                actor_id,
                actor_name,
                request_id,
                action,
                object_type,
                object_id,
                project_id,
            )
            hashed = tuple(fields.get(k) for k in _COLUMNS[:9])
            if stored != hashed:
                problem = "its columns differ from its hashed content (the event was altered)"
        if problem:
            return Verification(False, checked, head.sequence, head.hash, sequence, problem)
        checked += 1
        expected_sequence, previous_hash = sequence + 1, digest
    if checked != head.sequence or previous_hash != head.hash:
        return Verification(
            False,
            checked,
            head.sequence,
            head.hash,
            checked + 1,
            f"the chain ends at #{checked} but its head records #{head.sequence}: events were "
            "removed from the end, or the head was altered",
        )
    return Verification(True, checked, head.sequence, head.hash)


# --- Checkpoints: the chain head anchored outside the database --------------------------------


def _checkpoint_mac(body: str) -> str:
    key = hashlib.sha256(f"stagegate-audit-checkpoint:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def make_checkpoint() -> dict:
    """A signed statement of the chain head now; kept outside the database it lets a later
    rewrite of the whole table be detected."""
    head = AuditChainHead.objects.get(pk=1)
    body = {"sequence": head.sequence, "hash": head.hash, "created_at": utc_iso(datetime.now(UTC))}
    return {**body, "hmac_sha256": _checkpoint_mac(canonical_json(body))}


def check_checkpoint(checkpoint: dict) -> tuple[bool, str]:
    """Whether the database still holds the event the checkpoint names, with the same hash."""
    body = {k: checkpoint.get(k) for k in ("sequence", "hash", "created_at")}
    if not hmac.compare_digest(
        _checkpoint_mac(canonical_json(body)), str(checkpoint.get("hmac_sha256", ""))
    ):
        return False, "the checkpoint's signature is not valid (altered or from another system)"
    if body["sequence"] == 0:
        return True, "the checkpoint predates the first event"
    event = AuditEvent.objects.filter(sequence=body["sequence"]).values_list("hash", flat=True)
    stored = event.first()
    if stored is None:
        return False, f"event #{body['sequence']} named by the checkpoint is missing"
    if stored != body["hash"]:
        return False, f"event #{body['sequence']} no longer has the checkpointed hash"
    return True, f"event #{body['sequence']} matches the checkpoint"
