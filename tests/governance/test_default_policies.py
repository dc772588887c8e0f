"""The shipped default lifecycle policies: data in a Django fixture, installed by migrate."""

import json

import pytest

from governance.defaults import ensure_defaults
from governance.models import LifecyclePolicy
from governance.policy_rules import DEFAULT_POLICY_FIXTURE, rule_for, validate_definition
from registry.choices import RiskTier, Stage

pytestmark = pytest.mark.django_db


def fixture_records() -> list[dict]:
    return [r["fields"] for r in json.loads(DEFAULT_POLICY_FIXTURE.read_text())]


def test_the_fixture_ships_one_valid_approved_policy_per_risk_tier():
    records = fixture_records()
    assert sorted(r["risk_tier"] for r in records) == sorted(RiskTier.values)
    for record in records:
        validate_definition(record["definition"])
        assert record["status"] == "approved"
        assert record["is_default"] is True
        assert set(record["definition"]["stages"]) == set(Stage.values)


def test_migrate_installs_the_fixture_as_the_default_policies():
    for record in fixture_records():
        policy = LifecyclePolicy.objects.get(name=record["name"], version=record["version"])
        assert policy.risk_tier == record["risk_tier"]
        assert policy.definition == record["definition"]
        assert policy.status == "approved" and policy.is_default
        assert policy.approved_at is not None


def test_installing_the_defaults_again_changes_nothing():
    before = list(LifecyclePolicy.objects.order_by("pk").values())
    ensure_defaults()
    assert list(LifecyclePolicy.objects.order_by("pk").values()) == before


def test_the_high_risk_default_needs_two_approvals_with_a_compliance_officer_to_release():
    (high,) = [r["definition"] for r in fixture_records() if r["risk_tier"] == RiskTier.HIGH]
    for source, target in (("validation", "approved"), ("staging", "production")):
        rule = rule_for(high, source, target)
        assert rule is not None
        assert rule["approvals"]["count"] == 2
        assert rule["approvals"]["compliance_officer_required"] is True
        assert "fairness_audit_passed" in rule["checks"]
    production = rule_for(high, "staging", "production")
    assert production is not None and production["demote_previous_production"] is True


@pytest.mark.django_db(transaction=True)
def test_the_default_policy_binds_on_first_use_outside_any_transaction():
    # An API request that runs in autocommit (a fairness audit's, say) may be the first use.
    from governance.choices import AuditAction
    from governance.models import AuditEvent, ProjectPolicy
    from governance.policies import policy_for
    from tests import factories
    from tests.factories import Role

    owner = factories.user("olive", role=Role.DATA_SCIENTIST)
    project = factories.project(owner, key="fresh")
    ProjectPolicy.objects.filter(project=project).delete()
    policy = policy_for(project)
    assert policy.name == f"default-{project.risk_tier}-risk"
    assert ProjectPolicy.objects.get(project=project).policy == policy
    assert AuditEvent.objects.filter(
        action=AuditAction.POLICY_BOUND, project_id=project.pk
    ).exists()
