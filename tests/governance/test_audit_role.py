"""The production set-up the README describes: the application's database role may append
to the audit table but has no UPDATE, DELETE or TRUNCATE right on it, so it cannot disable
or bypass the triggers the way a table owner could."""

import pytest
from django.db import connection

from governance import audit_chain
from governance.choices import AuditAction
from governance.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
ROLE = "stagegate_app_test"


@pytest.fixture
def app_role():
    if connection.vendor != "postgresql":
        pytest.skip("database roles and grants are PostgreSQL's; SQLite has triggers only")
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {ROLE}")
        cursor.execute(f"CREATE ROLE {ROLE} NOLOGIN")
        cursor.execute(f"GRANT SELECT, INSERT ON {table} TO {ROLE}")
        cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {ROLE}")
    yield table
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"REVOKE ALL ON {table} FROM {ROLE}")
        cursor.execute(f"DROP ROLE {ROLE}")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET actor_name = 'x'",
        "DELETE FROM {t}",
        "TRUNCATE {t}",
        "ALTER TABLE {t} DISABLE TRIGGER USER",
    ],
)
def test_application_role_cannot_change_or_unprotect_the_audit_table(app_role, statement):
    from django.db import DatabaseError, transaction

    audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="1")
    with (
        pytest.raises(DatabaseError, match="permission denied|must be owner"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SET LOCAL ROLE {ROLE}")
        cursor.execute(statement.format(t=app_role))
