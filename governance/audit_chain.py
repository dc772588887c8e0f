"""Appending to and verifying the hash-chained audit trail.

`record()` is the only writer: it locks the one-row chain head, so concurrent appends line up
one behind another with no fork and no gap in the sequence. `verify()` recomputes every hash
and names the first broken link.
"""

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

from config.request_context import current, current_user
from governance.defaults import GENESIS_HASH
from governance.models import AuditChainHead, AuditEvent
from registry.history import printed_name


def canonical_json(data) -> str:
    """The one serialization that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return _CANONICAL.encode(data)


# One encoder for every call (json.dumps would build one each time); encoding keeps no state.
_CANONICAL = DjangoJSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


# Events recorded inside `batched()` wait here, with the savepoint depth they were made at.
_pending: ContextVar[list | None] = ContextVar("stagegate_audit_pending", default=None)


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
) -> None:
    """Append one event to the chain, inside the caller's transaction.

    `target` is the record acted on (its type, id and project are derived); the actor
    defaults to the user of the current request or task. Inside `batched()` the event is
    appended with the others of the block when it ends.
    """
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
        project_id = project_id if project_id is not None else project_id_of(target)
    actor = actor if actor is not None else current_user()
    context = current()
    event = {
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
    pending = _pending.get()
    if pending is not None and len(connection.savepoint_ids) == pending[0]:
        # What the event says is fixed now, not when the block ends.
        event["before"], event["after"] = json.loads(
            canonical_json([event["before"], event["after"]])
        )
        pending[1].append(event)
        return
    # Outside a batch, or inside a savepoint opened within one: append now, so that the event
    # rolls back with the savepoint if the savepoint does. (The batch's waiting events keep
    # waiting: written now, inside the savepoint, they would be lost with it.)
    _append([event])


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
    """Append several events by one actor, in order, inside the caller's transaction (or with
    the batch it is in); how many. For actions that write many records at once (OpenLineage
    batches): the events are those `record()` would append one by one."""
    entries = list(entries)
    if not entries:
        return 0
    with transaction.atomic(savepoint=False), batched():
        for entry in entries:
            _record_entry(entry, actor)
    return len(entries)


def _record_entry(entry: Entry, actor) -> None:
    record(
        entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        project_id=entry.project_id,
        before=entry.before,
        after=entry.after,
        reason=entry.reason,
        actor=actor,
    )


@contextmanager
def batched():
    """Append the events recorded inside the block together when it ends: one lock of the chain
    head and two round trips on PostgreSQL, however many events the action records.

    Use it inside the action's transaction, so that the events are part of it. An exception
    leaving the block discards its events and marks the transaction for rollback, so the
    action cannot commit without them. An event recorded inside an atomic() savepoint opened
    within the block is appended at once (it must roll back with its savepoint), so it
    precedes the block's earlier events in the chain; the actions that batch open no
    savepoints inside the block. Manual transaction.savepoint() calls are not supported in it.
    """
    if _pending.get() is not None:  # nested: the outermost block appends
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("audit_chain.batched() must run inside a transaction")
    # No savepoint: an exception leaving the block dooms the enclosing transaction.
    with transaction.atomic(savepoint=False):
        pending = (len(connection.savepoint_ids), [])
        token = _pending.set(pending)
        try:
            yield
        finally:
            _pending.reset(token)
        if pending[1]:
            _append(pending[1])


def _append(events: list[dict]) -> None:
    """Lock the head, chain the events after it and move it, inside the caller's transaction
    when there is one (no savepoint: an append that fails must fail the action it records)."""
    if connection.vendor == "postgresql":
        _append_in_postgresql(events)
        return
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        head_sequence, head_hash, occurred_at = _locked_head(cursor)
        occurred = utc_iso(occurred_at)
        rows = []
        for sequence, event in enumerate(events, start=head_sequence + 1):
            payload = canonical_json({**event, "sequence": sequence, "occurred_at": occurred})
            digest = chain_hash(head_hash, payload)
            rows.append(
                (
                    sequence,
                    occurred_at,
                    event["actor_id"],
                    event["actor_name"],
                    event["request_id"],
                    event["action"],
                    event["object_type"],
                    event["object_id"],
                    event["project_id"],
                    payload,
                    head_hash,
                    digest,
                )
            )
            head_hash = digest
        cursor.executemany(f"{_INSERT_HEAD} {_ROW}", rows)
        cursor.execute(_MOVE_HEAD, [rows[-1][0], head_hash])


def _locked_head(cursor) -> tuple[int, str, datetime]:
    """The head's sequence and hash, locked, and the time to stamp the events with: the
    database's clock on PostgreSQL, as for single events, so that one clock dates the trail."""
    postgresql = connection.vendor == "postgresql"
    cursor.execute(_LOCK_HEAD[postgresql])
    head = cursor.fetchone()
    if head is None:
        # The very first event, written while migrations run (before post_migrate has
        # created the head). With events already present the insert would collide on the
        # sequence and fail loudly, as a lost head should.
        AuditChainHead.objects.get_or_create(pk=1, defaults={"hash": GENESIS_HASH})
        cursor.execute(_LOCK_HEAD[postgresql])
        head = cursor.fetchone()
    if postgresql:
        return head[0], head[1], head[2].astimezone(UTC)
    return head[0], head[1], datetime.now(UTC)


def _payload_parts(event: dict) -> tuple[str, str]:
    """The canonical JSON of an event cut open where its time and sequence go (one encoding:
    the keys are sorted, so `sequence` is the last key and the event's own `occurred_at` is the
    last one of that name, after any inside `before` or `after`)."""
    text = canonical_json({**event, "occurred_at": "\0", "sequence": 0})
    before_time, _, between = text.rpartition(_TIME_MARK)
    return before_time + _TIME_OPEN, '",' + between.removesuffix("0}")


# The stand-in time as `_payload_parts` finds it in its text (json escapes the NUL character).
_TIME_OPEN = '"occurred_at":"'
_TIME_MARK = _TIME_OPEN + '\\u0000",'


def _append_in_postgresql(events: list[dict]) -> None:
    """The events in one statement (one round trip; in autocommit, its own transaction): the
    database locks the head, stamps the time, builds each payload around the sequence and time
    it chose, chains the hashes and moves the head. The payloads are the same canonical JSON
    Python would write."""
    if len(events) == 1:
        statement = _APPEND_ONE
        parameters: list | dict = [*_payload_parts(events[0]), *map(events[0].get, _EVENT_COLUMNS)]
    else:
        parts = [_payload_parts(event) for event in events]
        statement = _APPEND_MANY
        parameters = {
            # JSON, not text[]: psycopg escapes text arrays element by element in Python.
            "parts": json.dumps(parts),
            "count": len(events),
            "rows": json.dumps(
                [
                    {"n": n, **{k: event[k] for k in _EVENT_COLUMNS}}
                    for n, event in enumerate(events, start=1)
                ]
            ),
        }
    if _execute_on_postgresql(statement, parameters) is None:
        # No head yet (the first event, while migrating).
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            _locked_head(cursor)
            cursor.execute(statement, parameters)


def _execute_on_postgresql(statement: str, parameters):
    """Run one statement and return its first row, on a psycopg cursor kept for the
    connection: a third of an append's time in Python went to making Django's cursor wrapper
    and psycopg's cursor for every event. Django's checks and error translation still apply,
    and where queries are logged or wrapped (DEBUG, query counts in tests, execute wrappers)
    the statement goes through Django's cursor so that it is seen there."""
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the proxy that looks it up
    if db.queries_logged or db.execute_wrappers:
        with db.cursor() as cursor:
            cursor.execute(statement, parameters)
            return cursor.fetchone()
    # What Django does around a cursor's statement (django.db.backends: _cursor, _execute).
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    # Kept on the connection's wrapper (one per thread); a new connection gets a new cursor.
    kept = getattr(db, "stagegate_audit_cursor", None)
    if kept is None or kept.connection is not db.connection:
        kept = db.connection.cursor()
        setattr(db, "stagegate_audit_cursor", kept)  # noqa: B010 - not an attribute Django has
    with db.wrap_database_errors:
        kept.execute(statement, parameters)
        return kept.fetchone()


# Only our own table names are interpolated into these statements; values are parameters.
_EVENTS = AuditEvent._meta.db_table
_HEAD = AuditChainHead._meta.db_table
_LOCK_HEAD = {
    True: f"SELECT sequence, hash, clock_timestamp() FROM {_HEAD} WHERE id = 1 FOR UPDATE",  # noqa: S608
    # SQLite has no row locks: Stagegate opens its transactions IMMEDIATE (settings), so the
    # write lock is already held and appends are serialized.
    False: f"SELECT sequence, hash FROM {_HEAD} WHERE id = 1",  # noqa: S608
}
_COLUMN_LIST = (
    "sequence, occurred_at, actor_id, actor_name, request_id, action, object_type, "
    "object_id, project_id, payload, prev_hash, hash"
)
_ROW = f"({', '.join(['%s'] * 12)})"
_INSERT_HEAD = f"INSERT INTO {_EVENTS} ({_COLUMN_LIST}) VALUES"  # noqa: S608
_MOVE_HEAD = f"UPDATE {_HEAD} SET sequence = %s, hash = %s WHERE id = 1"  # noqa: S608
_EVENT_COLUMNS = (
    "actor_id",
    "actor_name",
    "request_id",
    "action",
    "object_type",
    "object_id",
    "project_id",
)
# The time format is utc_iso()'s; verify() checks the column against the payload the same way.
# Its parameters: the two parts of `_payload_parts`, then the `_EVENT_COLUMNS`.
_APPEND_ONE = f"""
WITH head AS (
    SELECT sequence + 1 AS sequence, hash AS prev_hash, clock_timestamp() AS occurred_at
    FROM {_HEAD} WHERE id = 1 FOR UPDATE
), event AS (
    SELECT sequence, prev_hash, occurred_at,
           %s
           || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
           || %s || sequence::text || '}}' AS payload
    FROM head
), appended AS (
    INSERT INTO {_EVENTS} ({_COLUMN_LIST})
    SELECT sequence, occurred_at, %s, %s, %s, %s,
           %s, %s, %s, payload, prev_hash,
           encode(sha256(convert_to(prev_hash || payload, 'UTF8')), 'hex')
    FROM event
    RETURNING sequence, hash
)
UPDATE {_HEAD} SET sequence = appended.sequence, hash = appended.hash
FROM appended WHERE {_HEAD}.id = 1
RETURNING appended.sequence
"""  # noqa: S608
# Several events: the chain is computed row by row by a recursive query, each payload's parts
# taken by position from a jsonb array (found in constant time, unlike a row of a table
# scanned at every step); the other columns come as one JSON parameter.
_PAYLOAD_N = (
    "((p.j -> c.n) ->> 0) || s.text || ((p.j -> c.n) ->> 1) || (c.sequence + 1)::text || '}'"
)
_APPEND_MANY = f"""
WITH RECURSIVE head AS (
    SELECT sequence, hash, clock_timestamp() AS occurred_at
    FROM {_HEAD} WHERE id = 1 FOR UPDATE
), stamp AS (
    SELECT occurred_at,
           to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
           AS text
    FROM head
), parts AS (
    SELECT %(parts)s::jsonb AS j
), chain (n, sequence, prev_hash, payload, hash) AS (
    SELECT 0, sequence, NULL::text, NULL::text, hash::text FROM head
    UNION ALL
    SELECT c.n + 1, c.sequence + 1, c.hash, ({_PAYLOAD_N})::text,
           encode(sha256(convert_to(c.hash || {_PAYLOAD_N}, 'UTF8')), 'hex')
    FROM chain c CROSS JOIN stamp s CROSS JOIN parts p
    WHERE c.n < %(count)s
), appended AS (
    INSERT INTO {_EVENTS} ({_COLUMN_LIST})
    SELECT c.sequence, s.occurred_at, r.actor_id, r.actor_name, r.request_id, r.action,
           r.object_type, r.object_id, r.project_id, c.payload, c.prev_hash, c.hash
    FROM chain c CROSS JOIN stamp s
    JOIN json_to_recordset(%(rows)s::json) AS r(
        n int, actor_id bigint, actor_name text, request_id text, action text,
        object_type text, object_id text, project_id bigint
    ) ON r.n = c.n
    RETURNING sequence, hash
)
UPDATE {_HEAD} SET sequence = last.sequence, hash = last.hash
FROM (SELECT sequence, hash FROM appended ORDER BY sequence DESC LIMIT 1) AS last
WHERE {_HEAD}.id = 1
RETURNING last.sequence
"""  # noqa: S608


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
# One pass that PostgreSQL can run in parallel (no window function): each event is joined to
# the one before it for the link check, hashed, and its columns compared with its payload,
# parsed once (json, not jsonb: no binary tree is built). Gaps in the sequence are looked for
# only when the counts say there is one. `_columns_match` is the same comparison in Python.
_VERIFY_SQL = f"""
SELECT
  min(e.sequence) FILTER (WHERE e.prev_hash IS DISTINCT FROM
      CASE WHEN e.sequence = 1 THEN %(genesis)s ELSE b.hash END),
  min(e.sequence) FILTER (WHERE
      encode(sha256(convert_to(e.prev_hash || e.payload, 'UTF8')), 'hex') IS DISTINCT FROM e.hash),
  min(e.sequence) FILTER (WHERE p.sequence IS DISTINCT FROM e.sequence
      OR p.occurred_at IS DISTINCT FROM
         to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
      OR p.actor_id IS DISTINCT FROM e.actor_id
      OR p.actor_name IS DISTINCT FROM e.actor_name
      OR p.request_id IS DISTINCT FROM e.request_id
      OR p.action IS DISTINCT FROM e.action
      OR p.object_type IS DISTINCT FROM e.object_type
      OR p.object_id IS DISTINCT FROM e.object_id
      OR p.project_id IS DISTINCT FROM e.project_id),
  count(*), min(e.sequence), max(e.sequence),
  (SELECT hash FROM {_EVENTS} ORDER BY sequence DESC LIMIT 1),
  (SELECT sequence FROM {_HEAD} WHERE id = 1), (SELECT hash FROM {_HEAD} WHERE id = 1)
FROM {_EVENTS} e
LEFT JOIN {_EVENTS} b ON b.sequence = e.sequence - 1
CROSS JOIN LATERAL json_to_record(e.payload::json) AS p(
    sequence bigint, occurred_at text, actor_id bigint, actor_name text, request_id text,
    action text, object_type text, object_id text, project_id bigint)
"""  # noqa: S608 - only our table name is interpolated
_FIRST_GAP_SQL = f"""
SELECT CASE WHEN min(sequence) <> 1 THEN 1 ELSE (
    SELECT min(e.sequence) + 1 FROM {_EVENTS} e
    WHERE NOT EXISTS (SELECT 1 FROM {_EVENTS} n WHERE n.sequence = e.sequence + 1)
) END FROM {_EVENTS}
"""  # noqa: S608


def _verify_in_postgresql() -> Verification:
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL, {"genesis": GENESIS_HASH})
        (prev_at, hash_at, columns_at, count, lowest, highest, last_hash, *head) = cursor.fetchone()
        if head[0] is None:
            raise AuditChainHead.DoesNotExist("the audit chain has no head")
        # Read in the same statement as the events: an append committing meanwhile cannot
        # make the two disagree.
        head = AuditChainHead(pk=1, sequence=head[0], hash=head[1])
        gap = None
        if count and (lowest != 1 or highest != count):  # sequences are unique: 1..n or a gap
            cursor.execute(_FIRST_GAP_SQL)
            gap = cursor.fetchone()[0]
    # The first broken link is the lowest event with a problem before the first gap; at one
    # event the problems are named in the order Python's walk finds them.
    found = [
        (at, kind)
        for at, kind in ((prev_at, "prev"), (hash_at, "hash"), (columns_at, "columns"))
        if at is not None and at >= 1 and (gap is None or at < gap)
    ]
    if found:
        broken_at = min(at for at, _ in found)
        problem = next(kind for at, kind in found if at == broken_at)
        return Verification(
            False, broken_at - 1, head.sequence, head.hash, broken_at, _PROBLEMS[problem]
        )
    if gap is not None:
        text = f"expected event #{gap} but found another: {_PROBLEMS['sequence']}"
        return Verification(False, gap - 1, head.sequence, head.hash, gap, text)
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


def _columns_match(row) -> bool:
    """Whether an event's columns equal the values its hashed payload holds for them."""
    try:
        fields = json.loads(row[9])
    except ValueError:
        return False
    if not isinstance(fields, dict):
        return False
    stored = (row[0], utc_iso(row[1]), *row[2:9])
    return stored == tuple(fields.get(k) for k in _COLUMNS[:9])


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
        elif not _columns_match(row):
            problem = "its columns differ from its hashed content (the event was altered)"
        if problem:
            return Verification(False, checked, head.sequence, head.hash, sequence, problem)
        checked += 1
        expected_sequence, previous_hash = sequence + 1, digest
    return _against_head(head, checked, previous_hash)
