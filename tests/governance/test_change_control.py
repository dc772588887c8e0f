"""Predetermined change-control plans: a retrained version inside the approved plan takes the
policy's lighter approvals; one outside it is flagged and takes the full path."""

import json

import pytest
from django.db import IntegrityError, transaction

from governance import transitions
from governance.choices import AuditAction
from governance.errors import Conflict, NotAllowed
from governance.models import (
    AuditEvent,
    ChangeControlPlan,
    LifecyclePolicy,
    Signature,
    TransitionRequest,
)
from governance.models.transitions import SignatureAltered
from governance.monitoring import plans
from governance.signing import digest
from registry import services as registry
from tests.factories import PASSWORD
from tests.governance.builders import bind_changed_policy
from tests.governance.test_monitoring import (
    deploy,
    minimal_project,
    move,
    validated_version,
)

pytestmark = pytest.mark.django_db
PROTOCOL = {
    "checks": ["evaluation_meets_acceptance", "beats_baseline"],
    "max_metric_drop": {"accuracy": 0.01},
}


@pytest.fixture
def shop(owner, member, reviewer, compliance, auditor):
    return minimal_project(owner, member, reviewer, compliance, auditor)


@pytest.fixture
def parent(shop, owner, reviewer, compliance):
    """A production version; then the project moves to a policy whose promotion to production
    needs two approvals including a compliance officer's (in-plan: one reviewer)."""
    version = deploy(shop, owner, reviewer)

    def strict_promotion(definition):
        for rule in definition["transitions"]:
            if rule["to"] == "production":
                rule["approvals"] = {
                    "count": 2,
                    "roles": ["reviewer", "compliance officer"],
                    "compliance_officer_required": True,
                }

    bind_changed_policy(
        shop,
        proposer=owner,
        compliance=compliance,
        name="shop-strict",
        tier="minimal",
        change=strict_promotion,
    )
    return version


@pytest.fixture
def plan(shop, owner, compliance):
    plan = plans.propose_plan(
        shop,
        actor=owner,
        description="Quarterly retraining on fresh data, same features and model family.",
        allowed_modifications={"same_input_schema": True, "same_framework": True},
        protocol=PROTOCOL,
        impact_assessment="Same intended use and population; risk unchanged.",
    )
    return plans.approve_plan(plan, signer=compliance, password=PASSWORD)


def retrain(parent, owner, reviewer, **fields):
    """A version derived from `parent`, trained on a newer version of its training data,
    brought to `approved`."""
    child = validated_version(
        parent.registered_model.project, owner, model=parent.registered_model, derived_from=parent
    )
    if fields:
        registry.update_model_version(child, actor=owner, **fields)
    move(child, "validation", owner=owner, reviewer=reviewer)
    move(child, "approved", owner=owner, reviewer=reviewer)
    return child


def gate(request, name="change_control_plan") -> dict:
    request.refresh_from_db()
    return next(g for g in request.gate_results if g["name"] == name)


def test_in_plan_retrain_takes_the_light_path(plan, parent, owner, reviewer):
    child = retrain(parent, owner, reviewer)
    assert plans.is_in_plan(child)
    request = transitions.request_transition(
        child, "production", actor=owner, justification="scheduled retrain"
    )
    assert request.rule["approvals"]["count"] == 1
    assert request.rule["change_control"] == {
        "in_plan": True,
        "plan": plan.pk,
        "plan_version": 1,
    }
    assert gate(request)["reason"].startswith("inside change-control plan v1")
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == "applied"
    parent.refresh_from_db()
    assert parent.stage == "deprecated"


def test_out_of_plan_retrain_is_flagged_and_takes_the_full_path(
    plan, parent, owner, reviewer, compliance
):
    child = retrain(parent, owner, reviewer, framework="xgboost")
    request = transitions.request_transition(
        child, "production", actor=owner, justification="new model family"
    )
    flag = gate(request)
    assert "outside the change-control plan" in flag["reason"]
    assert "framework changed" in flag["reason"]
    assert request.rule["approvals"]["count"] == 2
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == "pending"
    assert "compliance officer's approval is still required" in gate(request, "approvals")["reason"]
    transitions.sign(request, signer=compliance, meaning="approved", password=PASSWORD)
    request.refresh_from_db()
    assert request.status == "applied"


def test_retrain_on_the_same_data_version_is_outside_the_plan(plan, parent, owner, reviewer):
    child = validated_version(
        parent.registered_model.project,
        owner,
        model=parent.registered_model,
        derived_from=parent,
        train=parent.run.input_datasets.get(),
    )
    in_plan, reasons, _ = plans.assess(child, {})
    assert not in_plan
    assert "not trained on newer dataset versions" in reasons


def test_protocol_metric_drop_beyond_the_limit_is_outside_the_plan(
    shop, parent, owner, compliance, reviewer
):
    strict = plans.propose_plan(
        shop,
        actor=owner,
        description="No accuracy loss at all",
        allowed_modifications={},
        protocol={"checks": [], "max_metric_drop": {"accuracy": -0.0}},
        impact_assessment="Unchanged.",
    )
    plans.approve_plan(strict, signer=compliance, password=PASSWORD)
    child = retrain(parent, owner, reviewer)
    registry.record_evaluation(
        child,
        child.evaluations.first().dataset_version,
        actor=owner,
        metrics={"accuracy": 0.5},
    )
    in_plan, reasons, _ = plans.assess(child, {})
    assert not in_plan
    assert any("accuracy dropped" in r for r in reasons)


def test_without_an_approved_plan_a_retrain_is_outside(shop, parent, owner, reviewer):
    draft = plans.propose_plan(
        shop,
        actor=owner,
        description="draft",
        allowed_modifications={},
        protocol=PROTOCOL,
        impact_assessment="Unchanged.",
    )
    assert draft.status == "draft"
    child = retrain(parent, owner, reviewer)
    request = transitions.request_transition(child, "production", actor=owner, justification="x")
    assert "no approved change-control plan" in gate(request)["reason"]
    assert request.rule["approvals"]["count"] == 2


def test_a_new_model_is_not_flagged(shop, owner):
    version = validated_version(shop, owner)
    request = transitions.request_transition(version, "validation", actor=owner, justification="x")
    assert "change_control" not in request.rule
    assert all(g["name"] != "change_control_plan" for g in request.gate_results)
    assert TransitionRequest.objects.count() == 1


def test_plan_approval_is_a_bound_signature_of_a_compliance_officer(
    shop, owner, reviewer, compliance
):
    plan = plans.propose_plan(
        shop,
        actor=owner,
        description="d",
        allowed_modifications={"same_framework": True},
        protocol=PROTOCOL,
        impact_assessment="i",
    )
    with pytest.raises(NotAllowed):
        plans.approve_plan(plan, signer=reviewer, password=PASSWORD)
    plans.approve_plan(plan, signer=compliance, password=PASSWORD, comment="fit for purpose")
    plan.refresh_from_db()
    assert plan.status == "approved"
    signature = Signature.objects.get(plan=plan)
    assert plan.approval == signature
    assert (signature.signer, signature.printed_name) == (compliance, "Casey Tester")
    assert (signature.role, signature.meaning) == ("compliance officer", "approved")
    assert signature.comment == "fit for purpose"
    assert signature.record_sha256 == digest(plans.plan_record(plan))[1]
    assert json.loads(signature.signed_record) == plans.plan_record(plan)
    assert signature.request_id is None and signature.policy_id is None
    assert signature.project == shop
    event = AuditEvent.objects.get(action=AuditAction.SIGNATURE_RECORDED, object_id=str(plan.pk))
    assert json.loads(event.payload)["after"]["signature"] == signature.pk
    with pytest.raises(Conflict):
        plans.approve_plan(plan, signer=compliance, password=PASSWORD)
    with pytest.raises(SignatureAltered):
        signature.delete()


def test_plans_are_versioned_and_validated(shop, owner):
    first = plans.propose_plan(
        shop,
        actor=owner,
        description="a",
        allowed_modifications={},
        protocol={},
        impact_assessment="i",
    )
    second = plans.propose_plan(
        shop,
        actor=owner,
        description="b",
        allowed_modifications={},
        protocol={},
        impact_assessment="i",
    )
    assert (first.version, second.version) == (1, 2)
    with pytest.raises(Conflict, match="unknown protocol check"):
        plans.propose_plan(
            shop,
            actor=owner,
            description="c",
            allowed_modifications={},
            protocol={"checks": ["vibes"]},
            impact_assessment="i",
        )
    with pytest.raises(Conflict, match="impact assessment"):
        plans.propose_plan(
            shop,
            actor=owner,
            description="c",
            allowed_modifications={},
            protocol={},
            impact_assessment=" ",
        )


# --- API -------------------------------------------------------------------------------------

PLANS = "/api/v1/change-control-plans/"


def test_plan_proposed_and_approved_through_the_api(api, shop, owner, compliance):
    body = {
        "project": shop.key,
        "description": "Retrain monthly",
        "allowed_modifications": {"same_framework": True},
        "protocol": PROTOCOL,
        "impact_assessment": "Unchanged risk.",
    }
    response = api.as_user(owner).post(PLANS, body, format="json")
    assert response.status_code == 201, response.content
    plan_id = response.json()["id"]
    assert response.json()["status"] == "draft"
    wrong = api.as_user(compliance).post(
        f"{PLANS}{plan_id}/approve/", {"password": "wrong"}, format="json"
    )
    assert wrong.status_code == 403
    response = api.as_user(compliance).post(
        f"{PLANS}{plan_id}/approve/", {"password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["approved_by_name"] == "Casey Tester"
    signature = Signature.objects.get(plan_id=plan_id)
    assert body["record_sha256"] == signature.record_sha256 == body["current_record_sha256"]
    assert body["approved_at"].startswith(signature.signed_at.strftime("%Y-%m-%dT%H:%M:%S"))
    [shown] = body["signatures"]
    assert (shown["id"], shown["printed_name"], shown["meaning"]) == (
        signature.pk,
        "Casey Tester",
        "approved",
    )
    assert shown["record_matches"] is True


def test_bad_protocol_is_refused_through_the_api(api, shop, owner):
    body = {
        "project": shop.key,
        "description": "d",
        "protocol": {"checks": ["vibes"]},
        "impact_assessment": "i",
    }
    response = api.as_user(owner).post(PLANS, body, format="json")
    assert response.status_code == 409
    assert "vibes" in str(response.json())


def test_outsider_gets_404_for_a_plan(api, plan, outsider, django_assert_max_num_queries):
    client = api.as_user(outsider)
    assert client.get(f"{PLANS}{plan.pk}/").status_code == 404
    with django_assert_max_num_queries(8):
        assert client.get(PLANS).json()["count"] == 0
    response = client.post(
        PLANS,
        {"project": "shop", "description": "d", "impact_assessment": "i"},
        format="json",
    )
    assert response.status_code == 400


def test_plan_list_costs_a_constant_number_of_queries(
    api, shop, owner, auditor, django_assert_max_num_queries
):
    for n in range(4):
        plans.propose_plan(
            shop,
            actor=owner,
            description=f"plan {n}",
            allowed_modifications={},
            protocol={},
            impact_assessment="i",
        )
    client = api.as_user(auditor)
    client.get(PLANS)  # the first request of a client also opens its session
    with django_assert_max_num_queries(6):
        response = client.get(PLANS)
    assert response.json()["count"] == 4


def test_a_plan_changed_after_signing_no_longer_matches_its_signature(api, plan, auditor):
    client = api.as_user(auditor)
    assert client.get(f"{PLANS}{plan.pk}/").json()["signatures"][0]["record_matches"] is True
    # Nothing in Stagegate edits an approved plan; a change made behind its back shows.
    ChangeControlPlan.objects.filter(pk=plan.pk).update(protocol={"checks": []})
    body = client.get(f"{PLANS}{plan.pk}/").json()
    assert body["signatures"][0]["record_matches"] is False
    assert body["record_sha256"] != body["current_record_sha256"]


def test_a_draft_plan_has_no_signature(api, shop, owner):
    response = api.as_user(owner).post(
        PLANS,
        {"project": shop.key, "description": "d", "impact_assessment": "i"},
        format="json",
    )
    body = response.json()
    assert (body["signatures"], body["approved_by_name"], body["approved_at"]) == ([], "", None)


def test_a_signature_is_on_exactly_one_record(plan, compliance):
    signature = plan.approval
    policy = LifecyclePolicy.objects.filter(status="approved").first()
    fields = {
        "signer": compliance,
        "printed_name": "Casey Tester",
        "role": "compliance officer",
        "signed_at": signature.signed_at,
        "meaning": "approved",
        "record_sha256": signature.record_sha256,
        "signed_record": signature.signed_record,
    }
    for records in ({}, {"plan": plan, "policy": policy}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Signature.objects.create(**records, **fields)


def test_plan_signatures_are_scoped_to_the_plans_project(plan, compliance, outsider, auditor):
    assert Signature.objects.visible_to(auditor).filter(plan=plan).exists()
    assert not Signature.objects.visible_to(outsider).filter(plan=plan).exists()
