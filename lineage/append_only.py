"""Database triggers that make the lineage graph append-only, on PostgreSQL and SQLite.

A node is one immutable record version and an edge one provenance link between two of them
(DESIGN: history is kept, nothing is rewritten): the graph a reviewer approved stays the graph
an inspector reads later. The triggers refuse UPDATE and DELETE on both tables (and TRUNCATE on
PostgreSQL); inserts stay allowed. The models refuse the ORM's writes first, with a clearer
message (lineage/models.py `AppendOnlyQuerySet`); the triggers also catch raw SQL.

A table owner can still disable triggers, so production runs the application under a role
with no UPDATE, DELETE or TRUNCATE right on these tables (see the README). A later migration
that must rewrite rows (a data migration) lifts the triggers around its change, in the same
migration; on SQLite, a migration that remakes one of these tables (Django copies a table to
alter it) drops its triggers and must install them again.

The SQL here is installed by lineage migration 0005 (and used by the test suite to lift the
triggers around a table flush): never change these statements; add new ones in a new migration.
"""

from registry.db_triggers import TriggerSet

NODE_TABLE = "lineage_node"
EDGE_TABLE = "lineage_edge"
TABLES = (NODE_TABLE, EDGE_TABLE)
# Every refusal starts so, on both databases.
REFUSAL = "the lineage graph is append-only"

POSTGRESQL_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION stagegate_lineage_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    *(
        statement
        for table in TABLES
        for statement in (
            f"""
            CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION stagegate_lineage_append_only()
            """,
            f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION stagegate_lineage_append_only()
            """,
        )
    ),
]
POSTGRESQL_DROP = [
    *(
        statement
        for table in TABLES
        for statement in (
            f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        )
    ),
    "DROP FUNCTION IF EXISTS stagegate_lineage_append_only()",
]

SQLITE_CREATE = [
    statement
    for table in TABLES
    for statement in (
        f"""
        CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE refused on {table}'); END
        """,
        f"""
        CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE refused on {table}'); END
        """,
    )
]
SQLITE_DROP = [
    statement
    for table in TABLES
    for statement in (
        f"DROP TRIGGER IF EXISTS {table}_no_update",
        f"DROP TRIGGER IF EXISTS {table}_no_delete",
    )
]


TRIGGERS = TriggerSet(
    "lineage append-only",
    create={"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE},
    drop={"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP},
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove
