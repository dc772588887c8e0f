"""Database triggers that keep approved and retired policy versions as they were signed, on
PostgreSQL and SQLite.

They refuse an UPDATE of such a version that changes anything but its status, a status move
other than approved → retired, and a DELETE. They read only the policy row itself: a trigger
naming another table would break SQLite's rebuild of that table in a later migration. The
model (governance/models/policies.py) holds the rules that need other tables (a version bound
to a project, the approval signature). A migration that rebuilds the policy table on SQLite
drops these triggers with it and must install them again.

The SQL here is used by migration 0008 (and by the test suite to lift the triggers around a
table flush): never change these statements; add new ones in a new migration.
"""

from registry.db_triggers import TriggerSet

TABLE = "governance_lifecyclepolicy"

# Every column of a policy version but its status, as of migration 0008.
_COLUMNS = (
    "id",
    "name",
    "version",
    "risk_tier",
    "description",
    "definition",
    "is_default",
    "created_by_id",
    "created_at",
    "approved_at",
)
_NEW_ROW = ", ".join(f"NEW.{column}" for column in _COLUMNS)
_OLD_ROW = ", ".join(f"OLD.{column}" for column in _COLUMNS)
_SQLITE_CHANGED = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in _COLUMNS)
_STATUS_KEPT = "(NEW.status = OLD.status OR (OLD.status = 'approved' AND NEW.status = 'retired'))"

POSTGRESQL_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION stagegate_policy_version_immutable() RETURNS trigger AS $$
    BEGIN
        IF OLD.status NOT IN ('approved', 'retired') THEN
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'policy version % v% is %: DELETE refused',
                OLD.name, OLD.version, OLD.status USING ERRCODE = 'restrict_violation';
        END IF;
        IF ({_NEW_ROW}) IS DISTINCT FROM ({_OLD_ROW}) OR NOT {_STATUS_KEPT} THEN
            RAISE EXCEPTION 'policy version % v% is %: UPDATE refused (propose a new version)',
                OLD.name, OLD.version, OLD.status USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER policy_version_immutable BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION stagegate_policy_version_immutable()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS policy_version_immutable ON {TABLE}",
    "DROP FUNCTION IF EXISTS stagegate_policy_version_immutable()",
]

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER policy_version_no_update BEFORE UPDATE ON {TABLE}
    FOR EACH ROW WHEN OLD.status IN ('approved', 'retired')
        AND ({_SQLITE_CHANGED} OR NOT {_STATUS_KEPT})
    BEGIN
        SELECT RAISE(ABORT, 'approved and retired policy versions are immutable: UPDATE refused');
    END
    """,
    f"""
    CREATE TRIGGER policy_version_no_delete BEFORE DELETE ON {TABLE}
    FOR EACH ROW WHEN OLD.status IN ('approved', 'retired')
    BEGIN
        SELECT RAISE(ABORT, 'approved and retired policy versions are immutable: DELETE refused');
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS policy_version_no_update",
    "DROP TRIGGER IF EXISTS policy_version_no_delete",
]


TRIGGERS = TriggerSet(
    "policy version",
    create={"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE},
    drop={"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP},
)
# What the migrations and the test suite call.
statements = TRIGGERS.statements
install = TRIGGERS.install
remove = TRIGGERS.remove
