"""Sets of database triggers kept as SQL per database vendor.

Stagegate holds some rules in the database itself, where no code path can go around them: the
audit table is append-only (governance/audit_triggers.py), an approved policy version never
changes (governance/policy_triggers.py), an electronic signature is never edited or deleted
(governance/signature_triggers.py), and a model version's stage moves only through a
transition (registry/stage_guard.py). Each keeps its statements for PostgreSQL and SQLite in
a `TriggerSet`, which a migration installs (and removes, when reversed) and the test suite
lifts around a table flush.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TriggerSet:
    """The statements that create and drop one rule's triggers, per vendor."""

    rule: str
    create: dict[str, list[str]] = field(default_factory=dict)
    drop: dict[str, list[str]] = field(default_factory=dict)

    def statements(self, vendor: str, *, create: bool) -> list[str]:
        """The statements for a database vendor ('postgresql' or 'sqlite')."""
        found = (self.create if create else self.drop).get(vendor)
        if found is None:
            raise NotImplementedError(f"no {self.rule} triggers for {vendor}")
        return found

    def install(self, connection) -> None:
        self._run(connection, create=True)

    def remove(self, connection) -> None:
        self._run(connection, create=False)

    def _run(self, connection, *, create: bool) -> None:
        with connection.cursor() as cursor:
            for sql in self.statements(connection.vendor, create=create):
                cursor.execute(sql)


def refusing_changes(
    rule: str, *, tables: dict[str, str], function: str, refusal: str, errcode: str
) -> TriggerSet:
    """Triggers that refuse every UPDATE and DELETE on `tables` (each table with the prefix of
    its triggers' names), and TRUNCATE on PostgreSQL: rows are only ever inserted. Each
    refusal starts with `refusal`; on PostgreSQL it carries `errcode`."""
    create = [
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '{refusal}: % refused on %', TG_OP, TG_TABLE_NAME
                USING ERRCODE = '{errcode}';
        END;
        $$ LANGUAGE plpgsql
        """
    ]
    drop, sqlite_create, sqlite_drop = [], [], []
    for table, prefix in tables.items():
        create += [
            f"CREATE TRIGGER {prefix}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {prefix}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
        drop += [
            f"DROP TRIGGER IF EXISTS {prefix}_no_update_delete ON {table}",
            f"DROP TRIGGER IF EXISTS {prefix}_no_truncate ON {table}",
        ]
        for operation in ("UPDATE", "DELETE"):
            name = f"{prefix}_no_{operation.lower()}"
            sqlite_create.append(
                f"CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{refusal}: {operation} refused on {table}'); END"
            )
            sqlite_drop.append(f"DROP TRIGGER IF EXISTS {name}")
    drop.append(f"DROP FUNCTION IF EXISTS {function}()")
    return TriggerSet(
        rule,
        create={"postgresql": create, "sqlite": sqlite_create},
        drop={"postgresql": drop, "sqlite": sqlite_drop},
    )
