"""Migration 0006 moves change-control plan signatures from the plan's own columns into
`Signature` rows, with the same signer, printed name, time, hash and signed text, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from governance.models import Signature
from governance.monitoring import plans
from governance.signing import digest
from registry.choices import ProjectRight
from tests import factories
from tests.factories import PASSWORD

BEFORE = [("governance", "0005_monitoring")]
AFTER = [("governance", "0006_plan_signatures_summary_batches")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_plan_signatures_move_to_signature_rows_and_back(owner, compliance):
    project = factories.project(owner, key="plans")
    factories.grant(project, compliance, ProjectRight.VIEW, ProjectRight.REVIEW)
    draft = plans.propose_plan(
        project,
        actor=owner,
        description="draft",
        allowed_modifications={},
        protocol={},
        impact_assessment="i",
    )
    plan = plans.propose_plan(
        project,
        actor=owner,
        description="retrain monthly",
        allowed_modifications={"same_framework": True},
        protocol={"checks": ["beats_baseline"]},
        impact_assessment="unchanged",
    )
    plans.approve_plan(plan, signer=compliance, password=PASSWORD, comment="as agreed")
    signed = Signature.objects.get(plan=plan)
    try:
        old_apps = migrate(BEFORE)
        OldPlan = old_apps.get_model("governance", "ChangeControlPlan")
        old = OldPlan.objects.get(pk=plan.pk)
        assert old.approved_by_id == compliance.pk
        assert old.approved_by_name == "Casey Tester"
        assert old.approved_at == signed.signed_at
        assert (old.record_sha256, old.signed_record) == (
            signed.record_sha256,
            signed.signed_record,
        )
        assert OldPlan.objects.get(pk=draft.pk).approved_by_id is None
        assert not old_apps.get_model("governance", "Signature").objects.exists()

        new_apps = migrate(AFTER)
        moved = new_apps.get_model("governance", "Signature").objects.get()
    finally:
        migrate(AFTER)
    assert moved.plan_id == plan.pk
    assert (moved.signer_id, moved.printed_name, moved.signed_at) == (
        compliance.pk,
        "Casey Tester",
        signed.signed_at,
    )
    assert (moved.role, moved.meaning, moved.comment) == (
        "compliance officer",
        "approved",
        "as agreed",
    )
    assert (moved.record_sha256, moved.signed_record) == (
        signed.record_sha256,
        signed.signed_record,
    )
    assert moved.record_sha256 == digest(plans.plan_record(plan))[1]
    assert moved.request_id is None and moved.policy_id is None
