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

Migration 0009 installs these triggers (and the test suite lifts them around a table flush):
never change their names, which reversing the migration drops; add new ones in a new
migration.
"""

from registry.db_triggers import refusing_changes

TABLE = "governance_signature"
# Every refusal starts so, on both databases.
REFUSAL = "signatures are never edited or deleted"

TRIGGERS = refusing_changes(
    "signature",
    tables={TABLE: "signature"},
    function="stagegate_signature_immutable",
    refusal=REFUSAL,
    errcode="restrict_violation",
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove
