"""A model version with complete evidence for the high-risk policy, built with the actions."""

import io

from django.core.files.base import ContentFile

from registry import services as registry
from tests import factories


def predictions_csv(rows: list[tuple[int, int, float]]) -> ContentFile:
    body = io.StringIO()
    body.write("y_true,y_pred,y_score\n")
    for t, p, s in rows:
        body.write(f"{t},{p},{s}\n")
    return ContentFile(body.getvalue().encode(), name="predictions.csv")


def good_predictions(n: int = 100) -> ContentFile:
    """90% accurate predictions on balanced labels (majority baseline: 50%)."""
    rows = []
    for i in range(n):
        truth = i % 2
        pred = truth if i % 10 else 1 - truth
        rows.append((truth, pred, 0.9 if pred else 0.1))
    return predictions_csv(rows)


def version_with_evidence(project, actor, *, card=True, lineage=True, evaluate=True):
    """A version of a new model; each part of its evidence can be left out."""
    test_data = factories.dataset_version(project, actor, name="holdout", rows=100)
    train_data = factories.dataset_version(project, actor, name="training", split="train")
    run = None
    if lineage:
        code = factories.code_version(project, actor)
        run = factories.run(project, actor, inputs=[train_data], code=code)
    model = factories.registered_model(project, actor)
    fields = {}
    if card:
        fields = {
            name: f"{name} described"
            for name in (
                "intended_use",
                "factors",
                "limitations",
                "ethical_considerations",
                "caveats",
            )
        }
    version = factories.model_version(model, actor, run=run, **fields)
    if evaluate:
        registry.record_evaluation(version, test_data, actor=actor, predictions=good_predictions())
    return version, test_data


def bind_changed_policy(project, *, proposer, compliance, name, tier="high", change):
    """Move `project` to a new policy version: the shipped `tier` default with `change`
    applied to a copy of its definition, proposed by `proposer` and signed by `compliance`,
    through the real actions."""
    from governance import policies
    from governance.policy_rules import default_definition
    from tests.factories import PASSWORD

    definition = default_definition(tier)
    change(definition)
    policy = policies.propose_policy_version(
        actor=proposer, name=name, risk_tier=tier, definition=definition
    )
    policies.approve_policy_version(policy, signer=compliance, password=PASSWORD)
    policies.bind_policy(project, policy, actor=compliance)
    return policy


def add_fast_track(definition: dict) -> None:
    """development → production on one reviewer's approval and no evidence, demoting the
    model's previous production version."""
    definition["transitions"].append(
        {
            "from": "development",
            "to": "production",
            "checks": [],
            "approvals": {"count": 1, "roles": ["reviewer"], "compliance_officer_required": False},
            "demote_previous_production": True,
        }
    )


def require_two_approvals(definition: dict) -> None:
    """development → validation needs two approvals (reviewers or compliance officers)."""
    for rule in definition["transitions"]:
        if (rule["from"], rule["to"]) == ("development", "validation"):
            rule["approvals"] = {
                "count": 2,
                "roles": ["reviewer", "compliance officer"],
                "compliance_officer_required": False,
            }
