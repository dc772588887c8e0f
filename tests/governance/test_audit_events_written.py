"""Governance-significant actions write their audit events (DESIGN rule 1): a login lockout,
and a policy change — a new version proposed, signed by a compliance officer, a project moved
to it — each leave an event in the hash-chained trail, readable by the auditor."""

import pytest
from django.test import Client

from governance.audit_chain import verify
from governance.choices import AuditAction
from governance.models import AuditEvent, LifecyclePolicy, ProjectPolicy, Signature
from governance.policy_rules import default_definition
from registry.choices import ProjectRight
from registry.models import AccessChange
from tests import factories
from tests.factories import PASSWORD, Role

pytestmark = pytest.mark.django_db


def token_login(client, username, password):
    return client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
    )


def test_login_lockout_writes_one_audit_event(api, auditor):
    factories.user("stella")
    client = Client()
    for _ in range(4):
        token_login(client, "stella", "wrong")
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN_LOCKED_OUT).exists()
    assert token_login(client, "stella", "wrong").status_code == 403  # the fifth locks
    token_login(client, "stella", PASSWORD)  # refused while locked; no second event

    [event] = AuditEvent.objects.filter(action=AuditAction.LOGIN_LOCKED_OUT)
    change = AccessChange.objects.get(action="locked_out")
    assert (event.object_type, event.object_id) == ("registry.accesschange", str(change.pk))
    assert event.actor_id is None and event.project_id is None
    listed = api.as_user(auditor).get(
        "/api/v1/audit-events/", {"action": AuditAction.LOGIN_LOCKED_OUT}
    )
    [shown] = listed.json()["results"]
    assert shown["after"]["action"] == "locked_out" and shown["after"]["target"] == "stella"
    assert "locked after 5 failed logins" in shown["after"]["detail"]
    assert verify().valid


def test_policy_change_writes_its_audit_events(api, project, compliance, auditor):
    cora = factories.user("cora", role=Role.COMPLIANCE_OFFICER)
    factories.grant(project, cora, ProjectRight.VIEW, ProjectRight.MANAGE)
    proposed = api.as_user(compliance).post(
        "/api/v1/policies/",
        {"name": "credit-strict", "risk_tier": "high", "definition": default_definition("high")},
        format="json",
    )
    assert proposed.status_code == 201, proposed.json()
    policy = LifecyclePolicy.objects.get(pk=proposed.json()["id"])
    approved = api.as_user(cora).post(
        f"/api/v1/policies/{policy.pk}/approve/", {"password": PASSWORD, "comment": "agreed"}
    )
    assert approved.status_code == 200, approved.json()
    bound = api.as_user(cora).post(f"/api/v1/policies/{policy.pk}/bind/", {"project": "credit"})
    assert bound.status_code == 200, bound.json()

    client = api.as_user(auditor)
    of_policy = client.get(
        "/api/v1/audit-events/",
        {"object_type": "governance.lifecyclepolicy", "object_id": policy.pk},
    ).json()["results"]
    by_action = {event["action"]: event for event in of_policy}
    created = by_action[AuditAction.POLICY_CREATED]
    assert created["actor_id"] == compliance.pk
    assert created["after"] == {"name": "credit-strict", "version": 1, "risk_tier": "high"}
    signature = Signature.objects.get(policy=policy)
    signed = by_action[AuditAction.POLICY_APPROVED]
    assert signed["actor_id"] == cora.pk
    assert signed["after"] == {"signature": signature.pk, "record_sha256": signature.record_sha256}
    # The records' own history enters the trail too: the version created, then approved.
    assert {AuditAction.RECORD_CREATED, AuditAction.RECORD_UPDATED} <= set(by_action)

    binding = ProjectPolicy.objects.get(project=project)
    [moved] = client.get(
        "/api/v1/audit-events/",
        {"action": AuditAction.POLICY_BOUND, "object_id": binding.pk},
    ).json()["results"]
    assert moved["actor_id"] == cora.pk and moved["project_id"] == project.pk
    assert moved["after"] == {"project": "credit", "policy": "credit-strict v1"}
    assert moved["reason"] == "policy changed"
    assert [e["sequence"] for e in (created, signed, moved)] == sorted(
        e["sequence"] for e in (created, signed, moved)
    )
    assert verify().valid
