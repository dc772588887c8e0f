"""Database triggers that make the audit table append-only, on PostgreSQL and SQLite.

A table owner can still disable triggers, so production runs the application under a role
with no UPDATE, DELETE or TRUNCATE right on the table (see the README). The SQL here is used by
migration 0002 (and by the test suite to lift the triggers around a table flush): never change
these statements; add new ones in a new migration.
"""

from registry.db_triggers import TriggerSet

TABLE = "governance_auditevent"

POSTGRESQL_CREATE = [
    """
    CREATE OR REPLACE FUNCTION stagegate_audit_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION stagegate_audit_append_only()
    """,
    f"""
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION stagegate_audit_append_only()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS audit_no_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_no_truncate ON {TABLE}",
    "DROP FUNCTION IF EXISTS stagegate_audit_append_only()",
]

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END
    """,
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS audit_no_update", "DROP TRIGGER IF EXISTS audit_no_delete"]


TRIGGERS = TriggerSet(
    "append-only",
    create={"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE},
    drop={"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP},
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove
