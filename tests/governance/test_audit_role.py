"""The production set-up the README describes: the application's database role may append
to the audit table, the signature table and the lineage graph's two tables but has no UPDATE,
DELETE or TRUNCATE right on them, so it cannot disable or bypass their triggers the way a
table owner could."""

import pytest
from django.db import DatabaseError, connection, transaction

from governance import audit_chain
from governance.choices import AuditAction
from governance.models import AuditEvent, Signature
from governance.monitoring import plans
from lineage.models import Edge, Node
from tests.factories import PASSWORD

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
ROLE = "stagegate_app_test"
PROTECTED = [
    AuditEvent._meta.db_table,
    Signature._meta.db_table,
    Node._meta.db_table,
    Edge._meta.db_table,
]


@pytest.fixture
def app_role():
    """The application role, granted exactly as the README says."""
    if connection.vendor != "postgresql":
        pytest.skip("database roles and grants are PostgreSQL's; SQLite has triggers only")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {ROLE}")
        cursor.execute(f"CREATE ROLE {ROLE} NOLOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
        cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(PROTECTED)} FROM {ROLE}")
    yield ROLE
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"DROP OWNED BY {ROLE}")
        cursor.execute(f"DROP ROLE {ROLE}")


@pytest.mark.parametrize("table", PROTECTED)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET id = id",
        "DELETE FROM {t}",
        "TRUNCATE {t}",
        "ALTER TABLE {t} DISABLE TRIGGER USER",
    ],
)
def test_application_role_cannot_change_or_unprotect_the_protected_tables(
    app_role, table, statement
):
    audit_chain.record(AuditAction.CHECKPOINT, object_type="test", object_id="1")
    with (
        pytest.raises(DatabaseError, match="permission denied|must be owner"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SET LOCAL ROLE {app_role}")
        cursor.execute(statement.format(t=table))


def test_application_role_can_still_sign_and_audit(app_role, project, owner, compliance):
    draft = plans.propose_plan(
        project,
        actor=owner,
        description="retrain monthly",
        allowed_modifications={},
        protocol={},
        impact_assessment="unchanged",
    )
    events = AuditEvent.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {app_role}")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (app_role,)
    plans.approve_plan(draft, signer=compliance, password=PASSWORD)
    assert Signature.objects.filter(plan=draft, signer=compliance).exists()
    assert AuditEvent.objects.count() > events
