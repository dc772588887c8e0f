"""Shared fixtures: one named user per role, an assigned project, and API clients.

The people: `owner` (data scientist who owns `project`), `member` (data scientist with
contribute rights), `reviewer`, `compliance`, `auditor` (each assigned to `project`), and
`outsider` (a data scientist with no right on `project`); `second_reviewer` (riley, a reviewer
of `project` too) where two distinct approvals are needed.
"""

import pytest
from rest_framework.test import APIClient

from registry.choices import ProjectRight
from tests import factories
from tests.factories import Role


@pytest.fixture(autouse=True)
def _media_per_test(settings, tmp_path):
    """Each test stores uploads and exports in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def owner(db):
    return factories.user("olive", role=Role.DATA_SCIENTIST)


@pytest.fixture
def member(db):
    return factories.user("mina", role=Role.DATA_SCIENTIST)


@pytest.fixture
def reviewer(db):
    return factories.user("rory", role=Role.REVIEWER)


@pytest.fixture
def compliance(db):
    return factories.user("casey", role=Role.COMPLIANCE_OFFICER)


@pytest.fixture
def auditor(db):
    return factories.user("avery", role=Role.AUDITOR)


@pytest.fixture
def outsider(db):
    return factories.user("otto", role=Role.DATA_SCIENTIST)


@pytest.fixture
def second_reviewer(project):
    person = factories.user("riley", role=Role.REVIEWER)
    factories.grant(project, person, ProjectRight.VIEW, ProjectRight.REVIEW)
    return person


@pytest.fixture
def project(owner, member, reviewer, compliance, auditor):
    project = factories.project(owner, key="credit")
    factories.grant(project, member, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    factories.grant(project, reviewer, ProjectRight.VIEW, ProjectRight.REVIEW)
    factories.grant(
        project, compliance, ProjectRight.VIEW, ProjectRight.REVIEW, ProjectRight.EXPORT
    )
    factories.grant(project, auditor, ProjectRight.VIEW, ProjectRight.EXPORT)
    return project


@pytest.fixture
def other_project(outsider):
    """A project that only `outsider` can see."""
    return factories.project(outsider, key="secret")


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` authenticates it with the user's token."""
    client = APIClient()

    def as_user(user):
        client.force_authenticate(user=None)
        client.credentials()
        if user is not None:
            from rest_framework.authtoken.models import Token

            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    client.as_user = as_user
    return client


@pytest.fixture(autouse=True, scope="session")
def _lift_audit_triggers_around_flush():
    """Transactional tests empty every table between tests (Django's `flush`), which the
    audit table's append-only triggers (and those of the approved policy versions and of the
    signatures) rightly refuse. Only here, the triggers are lifted for the flush and put back
    at once; the suite checks them in tests/governance."""
    from django.core.management.commands import flush
    from django.db import connections

    from governance import audit_triggers, policy_triggers, signature_triggers
    from lineage import append_only as lineage_triggers

    original = flush.Command.handle

    def handle(self, **options):
        connection = connections[options.get("database") or "default"]
        lineage_triggers.remove(connection)
        audit_triggers.remove(connection)
        policy_triggers.remove(connection)
        signature_triggers.remove(connection)
        try:
            return original(self, **options)
        finally:
            lineage_triggers.install(connection)
            audit_triggers.install(connection)
            policy_triggers.install(connection)
            signature_triggers.install(connection)

    flush.Command.handle = handle
    yield
    flush.Command.handle = original
