"""Appending to and verifying the hash-chained audit trail.

`record()` (and `record_many()`, its batch form) is the only writer: it locks the one-row chain
head, so concurrent appends line up one behind another with no fork and no gap in the sequence.
`verify()` recomputes every hash and names the first broken link.
"""

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction

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
    # Inside the caller's transaction when there is one (no savepoint: an append that fails
    # must fail the action it records). Raw SQL, two round trips on PostgreSQL: lock the head,
    # then insert the event and move the head in one statement.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_LOCK_HEAD[connection.vendor == "postgresql"])
        head = cursor.fetchone()
        if head is None:
            # The very first event, written while migrations run (before post_migrate has
            # created the head). With events already present the insert below would collide
            # on the sequence and fail loudly, as a lost head should.
            AuditChainHead.objects.get_or_create(pk=1, defaults={"hash": GENESIS_HASH})
            cursor.execute(_LOCK_HEAD[connection.vendor == "postgresql"])
            head = cursor.fetchone()
        head_sequence, head_hash = head
        occurred_at = datetime.now(UTC)
        fields = {
            "sequence": head_sequence + 1,
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
        digest = chain_hash(head_hash, payload)
        row = [
            fields["sequence"],
            occurred_at,
            fields["actor_id"],
            fields["actor_name"],
            fields["request_id"],
            fields["action"],
            object_type,
            fields["object_id"],
            project_id,
            payload,
            head_hash,
            digest,
        ]
        if connection.vendor == "postgresql":
            cursor.execute(_INSERT_AND_MOVE_HEAD, [*row, fields["sequence"], digest])
        else:
            cursor.execute(_INSERT, row)
            cursor.execute(_MOVE_HEAD, [fields["sequence"], digest])
    return AuditEvent(
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
        prev_hash=head_hash,
        hash=digest,
    )


@dataclass(frozen=True)
class Entry:
    """One event for `record_many`: what `record()` takes, with the target already resolved."""

    action: str
    object_type: str
    object_id: str
    project_id: int | None = None
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    reason: str = ""


def record_many(entries, *, actor=None) -> int:
    """Append several events, in order, inside the caller's transaction; how many were.

    For actions that write many records at once (OpenLineage batches): the head is locked
    once, the events are chained here and inserted together, and the head moves once, so the
    round trips do not grow with the number of events. The events are exactly those `record()`
    would append one by one, with one time and one actor.
    """
    entries = list(entries)
    if not entries:
        return 0
    actor = actor if actor is not None else current_user()
    context = current()
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_LOCK_HEAD[connection.vendor == "postgresql"])
        head = cursor.fetchone()
        if head is None:
            AuditChainHead.objects.get_or_create(pk=1, defaults={"hash": GENESIS_HASH})
            cursor.execute(_LOCK_HEAD[connection.vendor == "postgresql"])
            head = cursor.fetchone()
        sequence, previous = head
        occurred_at = datetime.now(UTC)
        common = {
            "occurred_at": utc_iso(occurred_at),
            "actor_id": actor.pk if actor is not None else None,
            "actor_name": printed_name(actor),
            "request_id": context.request_id,
        }
        rows = []
        for entry in entries:
            sequence += 1
            fields = {
                "sequence": sequence,
                **common,
                "action": str(entry.action),
                "object_type": entry.object_type,
                "object_id": str(entry.object_id),
                "project_id": entry.project_id,
                "before": entry.before or {},
                "after": entry.after or {},
                "reason": entry.reason or context.reason,
            }
            payload = canonical_json(fields)
            digest = chain_hash(previous, payload)
            rows.append(
                [
                    sequence,
                    occurred_at,
                    common["actor_id"],
                    common["actor_name"],
                    common["request_id"],
                    fields["action"],
                    entry.object_type,
                    fields["object_id"],
                    entry.project_id,
                    payload,
                    previous,
                    digest,
                ]
            )
            previous = digest
        if connection.vendor == "postgresql":
            # All the rows as one JSON parameter: a statement of thousands of placeholders
            # costs the client more to write out than the database takes to insert them.
            items = [
                {**dict(zip(_COLUMNS, row, strict=True)), "occurred_at": common["occurred_at"]}
                for row in rows
            ]
            cursor.execute(_INSERT_MANY_AND_MOVE_HEAD, [json.dumps(items), sequence, previous])
        else:
            cursor.executemany(_INSERT, rows)
            cursor.execute(_MOVE_HEAD, [sequence, previous])
    return len(rows)


# Only our own table names are interpolated into these statements; values are parameters.
_EVENTS = AuditEvent._meta.db_table
_HEAD = AuditChainHead._meta.db_table
_LOCK_HEAD = {
    True: f"SELECT sequence, hash FROM {_HEAD} WHERE id = 1 FOR UPDATE",  # noqa: S608
    # SQLite has no row locks: Stagegate opens its transactions IMMEDIATE (settings), so the
    # write lock is already held and appends are serialized.
    False: f"SELECT sequence, hash FROM {_HEAD} WHERE id = 1",  # noqa: S608
}
_COLUMN_LIST = (
    "sequence, occurred_at, actor_id, actor_name, request_id, action, object_type, "
    "object_id, project_id, payload, prev_hash, hash"
)
_INSERT = f"INSERT INTO {_EVENTS} ({_COLUMN_LIST}) VALUES ({', '.join(['%s'] * 12)})"  # noqa: S608
_MOVE_HEAD = f"UPDATE {_HEAD} SET sequence = %s, hash = %s WHERE id = 1"  # noqa: S608
_INSERT_AND_MOVE_HEAD = f"WITH appended AS ({_INSERT}) {_MOVE_HEAD}"
_INSERT_MANY_AND_MOVE_HEAD = f"""
WITH appended AS (
    INSERT INTO {_EVENTS} ({_COLUMN_LIST})
    SELECT {_COLUMN_LIST} FROM jsonb_to_recordset(%s::jsonb) AS r(
        sequence bigint, occurred_at timestamptz, actor_id bigint, actor_name text,
        request_id text, action text, object_type text, object_id text, project_id bigint,
        payload text, prev_hash text, hash text
    )
) {_MOVE_HEAD}"""  # noqa: S608 - only our table names


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
    """Recompute every link; report the first event where the chain is broken.

    On PostgreSQL the database recomputes the hashes itself (one statement, no rows sent
    back); elsewhere, or if that statement cannot run (e.g. a payload that is not even JSON),
    Python walks the chain.
    """
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():
                return _verify_in_postgresql()
        except DatabaseError:
            pass
    return _verify_in_python(chunk_size)


_PROBLEMS = {
    "sequence": "events were deleted, inserted or renumbered before it",
    "prev": "its previous-hash does not match the event before it (reordered or forged)",
    "hash": "its hash does not match its content (the event was altered)",
    "columns": "its columns differ from its hashed content (the event was altered)",
}
_VERIFY_SQL = f"""
WITH ordered AS MATERIALIZED (
    SELECT e.*, row_number() OVER (ORDER BY sequence) AS expected,
           lag(hash, 1, %(genesis)s) OVER (ORDER BY sequence) AS previous,
           payload::jsonb AS p
    FROM {AuditEvent._meta.db_table} e
), judged AS (
    SELECT expected, CASE
        WHEN sequence <> expected THEN 'sequence'
        WHEN prev_hash <> previous THEN 'prev'
        WHEN encode(sha256(convert_to(prev_hash || payload, 'UTF8')), 'hex') <> hash THEN 'hash'
        WHEN (p->>'sequence')::bigint IS DISTINCT FROM sequence
          OR p->>'occurred_at' IS DISTINCT FROM
             to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
          OR (p->>'actor_id')::bigint IS DISTINCT FROM actor_id
          OR p->>'actor_name' IS DISTINCT FROM actor_name
          OR p->>'request_id' IS DISTINCT FROM request_id
          OR p->>'action' IS DISTINCT FROM action
          OR p->>'object_type' IS DISTINCT FROM object_type
          OR p->>'object_id' IS DISTINCT FROM object_id
          OR (p->>'project_id')::bigint IS DISTINCT FROM project_id THEN 'columns'
    END AS problem
    FROM ordered
)
SELECT expected, problem, (SELECT count(*) FROM ordered),
       (SELECT hash FROM ordered ORDER BY sequence DESC LIMIT 1)
FROM (SELECT 1) one LEFT JOIN LATERAL (
    SELECT expected, problem FROM judged WHERE problem IS NOT NULL ORDER BY expected LIMIT 1
) broken ON true
"""  # noqa: S608 - only our table name is interpolated


def _verify_in_postgresql() -> Verification:
    head = AuditChainHead.objects.get(pk=1)
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL, {"genesis": GENESIS_HASH})
        broken_at, problem, count, last_hash = cursor.fetchone()
    if problem is not None:
        text = _PROBLEMS[problem]
        if problem == "sequence":
            text = f"expected event #{broken_at} but found another: {text}"
        return Verification(False, broken_at - 1, head.sequence, head.hash, broken_at, text)
    return _against_head(head, count, last_hash or GENESIS_HASH)


def _against_head(head, checked: int, last_hash: str) -> Verification:
    if checked != head.sequence or last_hash != head.hash:
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


def _verify_in_python(chunk_size: int) -> Verification:
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
    return _against_head(head, checked, previous_hash)


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
