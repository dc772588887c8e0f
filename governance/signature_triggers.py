"""Database triggers that keep electronic signatures as they were made, on PostgreSQL and SQLite.

A signature (21 CFR 11.50, 11.70) is inserted complete and never edited or deleted: the
triggers refuse every UPDATE and DELETE on the signature table, and TRUNCATE on PostgreSQL.
Every signature Stagegate holds is a row of this one table, whether it signs a transition
request, a policy version or a change-control plan. The model refuses the same through the ORM
(governance/models/transitions.py); these triggers also catch what goes around it: raw SQL, a
manager other than `objects`, `QuerySet._update`.

A table owner can still disable triggers, so production runs the application under a role
with no UPDATE, DELETE or TRUNCATE right on the table (see the README). On SQLite, a later
migration that remakes `governance_signature` (Django copies the table to alter it) drops
these triggers with it and must install them again; tests/governance/
test_signature_immutability.py would fail.

The SQL here is used by migration 0009 (and by the test suite to lift the triggers around a
table flush): never change these statements; add new ones in a new migration.
"""

from registry.db_triggers import TriggerSet

TABLE = "governance_signature"
# Every refusal starts so, on both databases.
REFUSAL = "signatures are never edited or deleted"

POSTGRESQL_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION stagegate_signature_immutable() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER signature_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION stagegate_signature_immutable()
    """,
    f"""
    CREATE TRIGGER signature_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION stagegate_signature_immutable()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS signature_no_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS signature_no_truncate ON {TABLE}",
    "DROP FUNCTION IF EXISTS stagegate_signature_immutable()",
]

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER signature_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER signature_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE refused'); END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS signature_no_update",
    "DROP TRIGGER IF EXISTS signature_no_delete",
]


TRIGGERS = TriggerSet(
    "signature",
    create={"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE},
    drop={"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP},
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove
