"""The audit trail: append-only, hash-chained, verifiable (checkpoints: test_audit_checkpoints)."""

import json
import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from governance import audit_chain, audit_triggers
from governance.choices import AuditAction
from governance.models import AuditChainHead, AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db
TABLE = AuditEvent._meta.db_table


def _append(n):
    for i in range(n):
        audit_chain.record(
            AuditAction.CHECKPOINT, object_type="test", object_id=str(i), after={"i": i}
        )


def verified():
    """verify(), and on PostgreSQL the proof that its in-database check agrees with Python's."""
    result = audit_chain.verify()
    if connection.vendor == "postgresql":
        python = audit_chain._verify_in_python(1000)
        try:
            with transaction.atomic():
                sql = audit_chain._verify_in_postgresql()
        except DatabaseError:  # a payload PostgreSQL cannot parse: verify() uses Python
            sql = python
        assert (sql.valid, sql.first_broken_sequence) == (
            python.valid,
            python.first_broken_sequence,
        )
        assert (result.valid, result.first_broken_sequence) == (
            sql.valid,
            sql.first_broken_sequence,
        )
    return result


@pytest.fixture
def chain(db):
    """The whole chain: events from set-up (e.g. default policies), then ten of ours."""
    _append(10)
    assert audit_chain.verify().valid
    return list(AuditEvent.objects.order_by("sequence"))


@pytest.fixture
def triggers_lifted():
    """Tamper as a table owner would: drop the triggers for the test, then restore them."""
    audit_triggers.remove(connection)
    yield
    audit_triggers.install(connection)


def test_registry_actions_leave_a_valid_chain_with_who_and_what(owner):
    project = factories.project(owner, key="audited")
    events = list(
        AuditEvent.objects.filter(object_type="registry.project", object_id=str(project.pk))
    )
    assert [e.action for e in events] == [AuditAction.RECORD_CREATED]
    assert events[0].actor_id == owner.pk and events[0].actor_name == "Olive Tester"
    payload = json.loads(events[0].payload)
    assert payload["after"]["key"] == "audited" and payload["reason"] == "project created"
    result = verified()
    assert result.valid and result.checked == AuditChainHead.objects.get().sequence


def test_an_update_records_only_the_changed_fields_before_and_after(owner):
    from registry import services

    project = factories.project(owner, key="changing", name="Old name")
    services.update_project(project, actor=owner, name="New name", reason="renamed")
    event = AuditEvent.objects.filter(
        action=AuditAction.RECORD_UPDATED, object_type="registry.project"
    ).get()
    payload = json.loads(event.payload)
    assert payload["before"] == {"name": "Old name"}
    assert payload["after"] == {"name": "New name"}
    assert payload["reason"] == "renamed"


def test_each_event_hash_is_sha256_of_previous_hash_plus_payload(chain):
    previous = audit_chain.GENESIS_HASH
    for event in chain:
        assert event.prev_hash == previous
        assert event.hash == audit_chain.sha256_hex(previous + event.payload)
        previous = event.hash


@pytest.mark.parametrize(
    "statement", [f"UPDATE {TABLE} SET actor_name = 'x'", f"DELETE FROM {TABLE}"]
)
def test_database_refuses_update_and_delete(chain, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute(statement)
    assert AuditEvent.objects.count() == len(chain)


@pytest.mark.postgres
def test_postgresql_refuses_truncate(chain):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL; SQLite has no TRUNCATE statement")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute(f"TRUNCATE {TABLE}")


def test_verifier_finds_an_altered_payload(chain, triggers_lifted):
    target = chain[-6]
    AuditEvent.objects.filter(pk=target.pk).update(
        payload=target.payload.replace('"i":4', '"i":40')
    )
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, target.sequence)
    assert "altered" in result.problem


def test_verifier_finds_an_altered_column(chain, triggers_lifted):
    AuditEvent.objects.filter(pk=chain[2].pk).update(actor_name="Somebody Else")
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, chain[2].sequence)


def _rehash_from(sequence: int) -> None:
    """Recompute every link from `sequence` on and the head, as someone who can write the
    table would: only the comparison of columns with payloads can then find the change."""
    previous = AuditEvent.objects.get(sequence=sequence - 1).hash if sequence > 1 else None
    previous = previous or audit_chain.GENESIS_HASH
    for event in AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"):
        digest = audit_chain.chain_hash(previous, event.payload)
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=previous, hash=digest)
        previous = digest
    last = AuditEvent.objects.order_by("-sequence").first()
    assert last is not None
    AuditChainHead.objects.filter(pk=1).update(sequence=last.sequence, hash=previous)


def _rewrite_payload(event, text: str) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(payload=text)
    _rehash_from(event.sequence)


def test_a_rehashed_chain_with_unchanged_payloads_is_valid(chain, triggers_lifted):
    _rehash_from(chain[3].sequence)  # the harness itself changes nothing
    assert verified().valid


def test_verifier_finds_a_payload_that_is_not_json_even_when_rehashed(chain, triggers_lifted):
    target = chain[4]
    _rewrite_payload(target, target.payload[:-1])
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, target.sequence)
    assert "columns differ" in result.problem


def test_verifier_finds_a_column_moved_with_its_payload_text(chain, triggers_lifted):
    """Changing a column and the same value inside `after` (not the top-level key) is found."""
    target = chain[5]
    AuditEvent.objects.filter(pk=target.pk).update(object_id="999")
    _rewrite_payload(target, target.payload.replace('"i":5', '"object_id":"999","i":5'))
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, target.sequence)


def test_verifier_accepts_awkward_but_canonical_content(triggers_lifted):
    """Quotes, backslashes, `,"reason":"` inside values and non-ASCII text verify as valid."""
    audit_chain.record(
        AuditAction.CHECKPOINT,
        object_type='t"q',
        object_id='\\"',
        reason='ends with a quote " and a backslash \\ and ,"reason":"',
        after={"reason": ',"reason":"x"', "é": ["\n", None]},
    )
    with transaction.atomic(), audit_chain.batched():
        audit_chain.record(AuditAction.CHECKPOINT, object_type="t", object_id="", reason="\\")
    assert verified().valid


def test_verifier_finds_a_deleted_event(chain, triggers_lifted):
    AuditEvent.objects.filter(pk=chain[6].pk).delete()
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, chain[6].sequence)
    assert "deleted" in result.problem


def test_verifier_finds_a_deleted_last_event_against_the_head(chain, triggers_lifted):
    AuditEvent.objects.filter(pk=chain[-1].pk).delete()
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, chain[-1].sequence)


def test_verifier_finds_an_inserted_event(chain, triggers_lifted):
    # Make room at #4 by shifting later events up, then forge an event there.
    for event in reversed(chain[3:]):
        AuditEvent.objects.filter(pk=event.pk).update(sequence=event.sequence + 1)
    forged = chain[3]
    AuditEvent.objects.create(
        sequence=forged.sequence,
        occurred_at=forged.occurred_at,
        actor_name="intruder",
        action="x",
        object_type="t",
        object_id="1",
        payload="{}",
        prev_hash=chain[2].hash,
        hash=audit_chain.sha256_hex(chain[2].hash + "{}"),
    )
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, forged.sequence)


def test_verifier_finds_an_event_inserted_before_the_first(chain, triggers_lifted):
    AuditEvent.objects.create(
        sequence=0,
        occurred_at=chain[0].occurred_at,
        actor_name="intruder",
        action="x",
        object_type="t",
        object_id="1",
        payload="{}",
        prev_hash=audit_chain.GENESIS_HASH,
        hash=audit_chain.sha256_hex(audit_chain.GENESIS_HASH + "{}"),
    )
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, 1)


def test_verifier_finds_reordered_events(chain, triggers_lifted):
    a, b = chain[7], chain[8]
    AuditEvent.objects.filter(pk=a.pk).update(sequence=-1)
    AuditEvent.objects.filter(pk=b.pk).update(sequence=a.sequence)
    AuditEvent.objects.filter(pk=a.pk).update(sequence=b.sequence)
    result = verified()
    assert (result.valid, result.first_broken_sequence) == (False, a.sequence)


def test_verify_audit_command_exits_nonzero_when_broken(chain, triggers_lifted, capsys):
    call_command("verify_audit")
    assert f"valid: {len(chain)} events" in capsys.readouterr().out
    AuditEvent.objects.filter(pk=chain[1].pk).update(payload="{}")
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert f"BROKEN at event #{chain[1].sequence}" in capsys.readouterr().out


def test_verify_endpoint_for_auditor_and_refused_for_data_scientist(api, chain, auditor, member):
    response = api.as_user(auditor).get("/api/v1/audit-events/verify/")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True and body["checked"] == AuditChainHead.objects.get().sequence
    assert api.as_user(member).get("/api/v1/audit-events/verify/").status_code == 403


def test_audit_list_is_scoped_to_projects_with_export_right(api, project, other_project, auditor):
    response = api.as_user(auditor).get("/api/v1/audit-events/?object_type=registry.project")
    keys = {e["after"].get("key") for e in response.json()["results"]}
    assert keys == {"credit"}


def test_a_superuser_reads_the_events_of_every_project(api, project, other_project):
    from tests import factories

    admin = factories.user("root", is_superuser=True)
    response = api.as_user(admin).get("/api/v1/audit-events/?object_type=registry.project")
    keys = {e["after"].get("key") for e in response.json()["results"]}
    assert keys == {"credit", "secret"}


def test_stored_payloads_are_canonical_json_of_their_columns(owner):
    """Each append path (one event in one statement on PostgreSQL, a batch, SQLite's) writes
    the same canonical JSON: sorted keys, no spaces, non-ASCII kept, quotes escaped."""
    tricky = {"note": 'say "hi" — naïve\\path', "nested": {"b": [1, 2.5, None], "a": True}}
    audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="x", after=tricky)
    with transaction.atomic(), audit_chain.batched():
        for i in range(3):
            audit_chain.record(
                AuditAction.CHECKPOINT, object_type="test", object_id=f"b{i}", reason="ré"
            )
    events = list(AuditEvent.objects.order_by("-sequence")[:4])
    for event in events:
        fields = json.loads(event.payload)
        assert event.payload == audit_chain.canonical_json(fields)
        assert fields["occurred_at"] == audit_chain.utc_iso(event.occurred_at)
        assert fields["sequence"] == event.sequence
    assert json.loads(events[-1].payload)["after"] == tricky
    assert verified().valid


def test_payload_parts_cut_at_the_events_own_time_not_a_nested_one():
    """`occurred_at` inside before/after, and the cut's own text inside a value, leave the cut
    at the event's time: the parts around a time and a sequence give its canonical JSON."""
    event = {
        "actor_id": None,
        "actor_name": "system",
        "request_id": "",
        "action": "checkpoint",
        "object_type": "test",
        "object_id": '"occurred_at":"\0",',
        "project_id": None,
        "before": {"occurred_at": "\0", "sequence": 0},
        "after": {"x": {"occurred_at": "\0"}},
        "reason": '"occurred_at":"\\u0000",',
    }
    before_time, between = audit_chain._payload_parts(event)
    occurred, sequence = "2026-11-23T05:00:00.000001+00:00", 42
    payload = f"{before_time}{occurred}{between}{sequence}}}"
    assert payload == audit_chain.canonical_json(
        {**event, "occurred_at": occurred, "sequence": sequence}
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_single_append_keeps_djangos_checks_and_errors_on_its_own_cursor():
    """Outside query logging the PostgreSQL append runs on a cursor kept for the connection:
    a new connection gets a new one, and database errors still arrive as Django's."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite appends through Django's cursor")
    from django.db import DataError
    from django.db.transaction import TransactionManagementError

    assert not connection.queries_logged
    _append(2)
    kept = connection.stagegate_audit_cursor
    _append(1)
    assert connection.stagegate_audit_cursor is kept
    connection.close()
    _append(1)
    assert connection.stagegate_audit_cursor is not kept
    with pytest.raises(DataError):  # object_type is varchar(100)
        audit_chain.record(AuditAction.CHECKPOINT, object_type="x" * 101, object_id="1")
    with transaction.atomic():
        with pytest.raises(DataError), transaction.atomic():
            audit_chain.record(AuditAction.CHECKPOINT, object_type="x" * 101, object_id="1")
        _append(1)  # the savepoint rolled back: the transaction goes on
    with pytest.raises(TransactionManagementError), transaction.atomic():
        transaction.set_rollback(True)
        _append(1)
    assert verified().valid
    assert AuditEvent.objects.filter(object_type="x" * 101).count() == 0


def test_a_batch_appends_its_events_in_one_lock_of_the_head(django_assert_max_num_queries):
    head = AuditChainHead.objects.get(pk=1).sequence
    # Savepoint and release, then lock + insert-and-move on PostgreSQL (lock, insert, move on
    # SQLite), whatever the size of the batch; nothing is written until the block ends.
    with (
        django_assert_max_num_queries(5),
        transaction.atomic(),
        audit_chain.batched(),
        django_assert_max_num_queries(0),
    ):
        _append(20)
    sequences = list(
        AuditEvent.objects.filter(sequence__gt=head).values_list("sequence", flat=True)
    )
    assert sorted(sequences) == list(range(head + 1, head + 21))
    assert verified().valid


def test_record_many_appends_in_order_with_one_lock(owner, django_assert_max_num_queries):
    head = AuditChainHead.objects.get(pk=1).sequence
    entries = [
        audit_chain.Entry(AuditAction.CHECKPOINT, "test", str(i), after={"i": i}) for i in range(50)
    ]
    with django_assert_max_num_queries(3):
        assert audit_chain.record_many(entries, actor=owner) == 50
    events = list(AuditEvent.objects.filter(sequence__gt=head).order_by("sequence"))
    assert [e.object_id for e in events] == [str(i) for i in range(50)]
    assert {e.actor_id for e in events} == {owner.pk}
    assert verified().valid


def test_a_failed_batch_appends_nothing():
    head = AuditChainHead.objects.get(pk=1).sequence
    with pytest.raises(ValueError), transaction.atomic(), audit_chain.batched():
        _append(3)
        raise ValueError("the action failed")
    assert AuditChainHead.objects.get(pk=1).sequence == head
    assert verified().valid


def test_an_action_failing_inside_a_batch_cannot_commit_without_its_events():
    from django.db.transaction import TransactionManagementError

    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            with audit_chain.batched():
                audit_chain.record(AuditAction.CHECKPOINT, object_type="t", object_id="x")
                raise ValueError("the action failed")
        except ValueError:
            pass  # a caller swallowing the error cannot go on writing in this transaction
        AuditEvent.objects.count()


def test_one_clock_dates_the_trail_across_single_events_and_batches():
    head = AuditChainHead.objects.get(pk=1).sequence
    for _ in range(3):
        audit_chain.record(AuditAction.CHECKPOINT, object_type="t", object_id="single")
        with transaction.atomic(), audit_chain.batched():
            _append(2)
    times = list(
        AuditEvent.objects.filter(sequence__gt=head)
        .order_by("sequence")
        .values_list("occurred_at", flat=True)
    )
    assert len(times) == 9 and times == sorted(times)


def test_an_event_inside_a_rolled_back_savepoint_of_a_batch_is_not_appended():
    head = AuditChainHead.objects.get(pk=1).sequence
    with transaction.atomic(), audit_chain.batched():
        audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="kept")
        try:
            with transaction.atomic():
                audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="lost")
                raise ValueError("the inner step failed")
        except ValueError:
            pass
        audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="after")
    kept = AuditEvent.objects.filter(sequence__gt=head).order_by("sequence")
    assert [e.object_id for e in kept] == ["kept", "after"]
    assert verified().valid


def test_an_event_inside_a_released_savepoint_of_a_batch_is_kept():
    head = AuditChainHead.objects.get(pk=1).sequence
    changing = {"status": "before"}
    with transaction.atomic(), audit_chain.batched():
        audit_chain.record(AuditAction.CHECKPOINT, object_type="t", object_id="a", after=changing)
        changing["status"] = "changed later"  # the event says what was true when recorded
        with transaction.atomic():
            audit_chain.record(AuditAction.CHECKPOINT, object_type="t", object_id="inner")
    events = list(AuditEvent.objects.filter(sequence__gt=head).order_by("sequence"))
    assert {e.object_id for e in events} == {"a", "inner"}
    assert json.loads(next(e for e in events if e.object_id == "a").payload)["after"] == {
        "status": "before"
    }
    assert verified().valid


@pytest.mark.django_db(transaction=True)
def test_batched_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside a transaction"), audit_chain.batched():
        pass


def test_the_first_event_creates_the_chain_head(triggers_lifted):
    """The very first append (made while migrations run) finds no head and starts the chain."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
    AuditChainHead.objects.all().delete()
    audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="first")
    event = AuditEvent.objects.get()
    assert (event.sequence, event.prev_hash) == (1, audit_chain.GENESIS_HASH)
    assert verified().valid


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["transaction", "autocommit", "batched"])
def test_concurrent_appends_leave_no_fork_and_no_gap(mode):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes every writer by design")
    from django.db import connections

    barrier = threading.Barrier(8)
    errors = []

    def writer():
        try:
            barrier.wait()
            if mode == "autocommit":  # each event its own one-statement transaction
                _append(25)
            elif mode == "batched":
                for _ in range(5):
                    with transaction.atomic(), audit_chain.batched():
                        _append(5)
            else:
                with transaction.atomic():
                    _append(25)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    assert audit_chain.verify().valid
