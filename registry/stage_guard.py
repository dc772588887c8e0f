"""The database's guard on a model version's stage (DESIGN rule 2), on PostgreSQL and SQLite.

Triggers on `registry_modelversion` refuse an UPDATE that changes the stage, and an INSERT in
any stage but the initial one, unless the transaction authorised that very version with
`moving_stage(version)`, which only the governance transition (governance/transitions.py
`_move`) uses. The Python checks on the model catch the ORM's writes with a clear message;
these triggers also catch what goes around them: `QuerySet._update`, a manager other than
`objects`, raw SQL.

How the authorisation reaches the trigger:
- PostgreSQL: a transaction-local setting (`set_config('stagegate.stage_move', id, true)`,
  one statement per move) holding the version's id; the trigger uses it up as it lets the
  write through, so it cannot authorise a later statement of the same transaction.
- SQLite has no session variables: each connection Django opens gets an SQL function,
  `stagegate_stage_move(id)`, that answers from a flag the context manager sets on that
  connection (Django's connections are per thread) and clears right after the block.

This is a guard against writes that skip the governance action, not against someone who
holds the database: a table owner can drop the triggers, and anyone with SQL can call
`set_config`. The SQL below is installed by registry migration 0004 (and used by the test
suite): never change these statements; add new ones in a new migration. On SQLite, a later
migration that remakes `registry_modelversion` (Django copies the table to alter it) drops
the triggers and must install them again; tests/registry/test_stage_guard.py would fail.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connections, router

from registry.db_triggers import TriggerSet

TABLE = "registry_modelversion"
SETTING = "stagegate.stage_move"
SQLITE_FUNCTION = "stagegate_stage_move"
# Every message of the guard starts so (see config/exceptions.py, which answers 409 with it).
REFUSAL = "the stage of a model version changes only through a governance transition"

# The initial stage is written as a literal ('development', registry.choices.Stage): these
# statements are a migration's and must not change when the code's constants do.
POSTGRESQL_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION stagegate_stage_guard() RETURNS trigger AS $$
    BEGIN
        IF current_setting('{SETTING}', true) = NEW.id::text THEN
            -- Used up: the authorisation lets exactly one write of this version through.
            PERFORM set_config('{SETTING}', '', true);
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '{REFUSAL} (request one): % of model version % refused', TG_OP, NEW.id
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER modelversion_stage_update BEFORE UPDATE OF stage ON {TABLE}
    FOR EACH ROW WHEN (OLD.stage IS DISTINCT FROM NEW.stage)
    EXECUTE FUNCTION stagegate_stage_guard()
    """,
    f"""
    CREATE TRIGGER modelversion_stage_insert BEFORE INSERT ON {TABLE}
    FOR EACH ROW WHEN (NEW.stage <> 'development')
    EXECUTE FUNCTION stagegate_stage_guard()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS modelversion_stage_update ON {TABLE}",
    f"DROP TRIGGER IF EXISTS modelversion_stage_insert ON {TABLE}",
    "DROP FUNCTION IF EXISTS stagegate_stage_guard()",
]

# The triggers call a function that only Django's connections have (see `_register_sqlite`):
# an outside sqlite3 shell cannot write the stage at all ("no such function"), even when
# the write is one a transition would make. Writes that leave the stage out still work there.
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER modelversion_stage_update BEFORE UPDATE OF stage ON {TABLE}
    WHEN OLD.stage IS NOT NEW.stage AND NOT {SQLITE_FUNCTION}(NEW.id)
    BEGIN SELECT RAISE(ABORT, '{REFUSAL} (request one): UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER modelversion_stage_insert BEFORE INSERT ON {TABLE}
    WHEN NEW.stage <> 'development' AND NOT {SQLITE_FUNCTION}(NEW.id)
    BEGIN SELECT RAISE(ABORT, '{REFUSAL} (request one): INSERT refused'); END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS modelversion_stage_update",
    "DROP TRIGGER IF EXISTS modelversion_stage_insert",
]


TRIGGERS = TriggerSet(
    "stage guard",
    create={"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE},
    drop={"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP},
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove


class SQLiteAuthorisation:
    """The version whose stage one SQLite connection may write now (None: no version)."""

    def __init__(self) -> None:
        self.version_id: int | None = None

    def allows(self, version_id) -> bool:
        return self.version_id is not None and version_id == self.version_id


def _sqlite_authorisation(connection) -> SQLiteAuthorisation:
    authorisation = getattr(connection, "stagegate_stage_move", None)
    if authorisation is None:
        authorisation = connection.stagegate_stage_move = SQLiteAuthorisation()
    return authorisation


def register_sqlite_function(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: give each new SQLite connection the trigger's function.
    It reads state that changes within a statement's life, so it is not deterministic."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_FUNCTION, 1, _sqlite_authorisation(connection).allows
        )


@contextmanager
def moving_stage(version) -> Iterator[None]:
    """Let the block write `version`'s stage once: the one door through which a stage moves.

    The block must save the version with its new stage (and nothing else of the guarded
    table). Opens no transaction: the caller's holds the version's row lock, and on
    PostgreSQL the authorisation lives only as long as that transaction.
    """
    if version.pk is None:
        raise ValueError("a model version must be saved before its stage can move")
    connection = connections[version._state.db or router.db_for_write(type(version))]
    if not connection.in_atomic_block:
        raise RuntimeError("a stage moves only inside a transaction (transaction.atomic)")
    version._stage_transition = True
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, str(version.pk)])
    else:
        _sqlite_authorisation(connection).version_id = version.pk
    try:
        yield
    except DatabaseError:
        # The transaction is broken and rolls back, and the authorisation with it.
        raise
    except BaseException:
        if postgresql:  # the write never happened: the authorisation was not used up
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, '', true)", [SETTING])
        raise
    finally:
        version._stage_transition = False
        if not postgresql:
            _sqlite_authorisation(connection).version_id = None
