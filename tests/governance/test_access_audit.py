"""Access changes reach the hash-chained audit trail."""

import pytest

from governance.audit_chain import verify
from governance.choices import AuditAction
from governance.models import AuditEvent
from registry.choices import ProjectRight
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_grant_is_an_audit_event_of_the_project(project, outsider):
    before = AuditEvent.objects.filter(action=AuditAction.ACCESS_CHANGED).count()
    factories.grant(project, outsider, ProjectRight.VIEW)
    events = AuditEvent.objects.filter(action=AuditAction.ACCESS_CHANGED, project_id=project.pk)
    assert (
        events.count() > 0
        and AuditEvent.objects.filter(action=AuditAction.ACCESS_CHANGED).count() > before
    )
    assert any('"target":"otto"' in e.payload for e in events)
    assert verify().valid
