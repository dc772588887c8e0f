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

Lineage migration 0005 installs these triggers (and the test suite lifts them around a table
flush): never change their names, which reversing the migration drops; add new ones in a new
migration.
"""

from registry.db_triggers import refusing_changes

NODE_TABLE = "lineage_node"
EDGE_TABLE = "lineage_edge"
TABLES = (NODE_TABLE, EDGE_TABLE)
# Every refusal starts so, on both databases.
REFUSAL = "the lineage graph is append-only"

TRIGGERS = refusing_changes(
    "lineage append-only",
    tables={table: table for table in TABLES},
    function="stagegate_lineage_append_only",
    refusal=REFUSAL,
    errcode="insufficient_privilege",
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove
