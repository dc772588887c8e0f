"""Evidence is bound to the right data: the acceptance gate counts only an evaluation on a
test-split dataset version, and the fairness gate only an audit on the exact dataset version
the acceptance evaluation used."""

import io

import pandas as pd
import pytest
from django.core.files.base import ContentFile

from governance import gates
from governance.fairness import audits
from governance.fairness_gate import check_fairness
from registry import services as registry
from registry.models import ModelVersion, Project
from tests import factories
from tests.governance.builders import good_predictions, version_with_evidence

pytestmark = pytest.mark.django_db

FAIRNESS = {"fairness": {"required_split": "test"}}


def fresh(version) -> ModelVersion:
    """The version read again, with its project as stored now."""
    return ModelVersion.objects.select_related("registered_model__project").get(pk=version.pk)


def acceptance(version) -> gates.GateResult:
    """The acceptance gate as a transition evaluates it (evaluations read once for all checks)."""
    [result] = gates.evaluate_evidence(
        fresh(version), {"checks": ["evaluation_meets_acceptance"]}, {}
    )
    return result


def evaluated_on_train_only(project, owner):
    version, _ = version_with_evidence(project, owner, evaluate=False)
    training = factories.dataset_version(project, owner, name="training", split="train")
    registry.record_evaluation(version, training, actor=owner, predictions=good_predictions())
    return version, training


# --- acceptance criteria: the test split only ------------------------------------------------


def test_train_split_evaluation_does_not_satisfy_the_acceptance_gate(project, owner):
    version, training = evaluated_on_train_only(project, owner)
    for result in (gates.evaluation_meets_acceptance(fresh(version), {}), acceptance(version)):
        assert not result.passed
        assert result.reason == (
            f"evaluation on {training} is on the train split; "
            "the gate needs a test-split dataset version"
        )


def test_criterion_stored_with_the_train_split_is_still_judged_on_the_test_split(project, owner):
    """A project whose criteria were stored naming the train split before the rule (the
    validator refuses it now): a train-split evaluation meeting them still does not pass."""
    criteria = [{"metric": "accuracy", "threshold": 0.7, "direction": "higher", "split": "train"}]
    Project.objects.filter(pk=project.pk).update(acceptance_criteria=criteria)
    version, _ = evaluated_on_train_only(project, owner)
    result = acceptance(version)
    assert not result.passed and "is on the train split" in result.reason
    baseline = gates.evaluate_evidence(fresh(version), {"checks": ["beats_baseline"]}, {})[0]
    assert not baseline.passed
    assert baseline.reason == "no evaluation on a test-split dataset version"

    holdout = factories.dataset_version(project, owner, name="holdout")
    registry.record_evaluation(version, holdout, actor=owner, predictions=good_predictions())
    result = acceptance(version)
    assert result.passed, result.reason
    assert [c["dataset_version"] for c in result.evidence["criteria"]] == [holdout.pk]


def test_test_split_evaluation_counts_even_when_a_newer_one_is_on_train(project, owner):
    version, holdout = version_with_evidence(project, owner)
    training = factories.dataset_version(project, owner, name="training", split="train")
    registry.record_evaluation(version, training, actor=owner, metrics={"accuracy": 0.1})
    result = acceptance(version)
    assert result.passed, result.reason
    assert result.evidence["criteria"][0]["dataset_version"] == holdout.pk


def test_no_evaluation_at_all_is_named(project, owner):
    version, _ = version_with_evidence(project, owner, evaluate=False)
    assert acceptance(version).reason == "no evaluation on a test-split dataset version"


# --- fairness: the exact dataset version -----------------------------------------------------


def fairness_csv(rows: int = 100) -> ContentFile:
    """Predictions that pass every fairness rule (two groups, equally well predicted)."""
    data: dict[str, list] = {"y_true": [], "y_pred": [], "sex": []}
    for i in range(rows):
        truth = i % 2
        data["y_true"].append(truth)
        data["y_pred"].append(truth if i % 10 else 1 - truth)
        data["sex"].append("f" if (i // 2) % 2 else "m")
    out = io.StringIO()
    pd.DataFrame(data).to_csv(out, index=False)
    return ContentFile(out.getvalue().encode(), name="predictions.csv")


def audit_on(version, dataset_version, owner):
    audit, _ = audits.request_audit(
        version,
        actor=owner,
        upload=fairness_csv(dataset_version.row_count),
        dataset_version=dataset_version,
        sensitive_features=["sex"],
    )
    return audits.run(audit.pk)


@pytest.fixture
def two_holdout_versions(project, owner):
    """A version evaluated on holdout v2; holdout v1 is an earlier content of the same data."""
    version, holdout_v1 = version_with_evidence(project, owner, evaluate=False)
    holdout_v2 = factories.dataset_version(project, owner, name="holdout", rows=100)
    assert holdout_v2.dataset_id == holdout_v1.dataset_id and holdout_v2.pk != holdout_v1.pk
    registry.record_evaluation(version, holdout_v2, actor=owner, predictions=good_predictions())
    return version, holdout_v1, holdout_v2


def test_fairness_audit_on_another_version_of_the_dataset_does_not_count(
    two_holdout_versions, owner
):
    version, holdout_v1, holdout_v2 = two_holdout_versions
    audit = audit_on(version, holdout_v1, owner)
    assert audit.passed is True
    result = check_fairness(fresh(version), FAIRNESS)
    assert not result.passed
    assert result.reason == (
        f"no fairness audit on {holdout_v2}: fairness audit {audit.pk} is on another dataset "
        f"version, {holdout_v1}, and an audit of another dataset version does not count"
    )
    assert result.evidence == {"dataset_version": holdout_v2.pk}


def test_fairness_audit_on_the_evaluated_dataset_version_counts(two_holdout_versions, owner):
    version, holdout_v1, holdout_v2 = two_holdout_versions
    audit_on(version, holdout_v1, owner)
    audit = audit_on(version, holdout_v2, owner)
    result = check_fairness(fresh(version), FAIRNESS)
    assert result.passed, result.reason
    assert result.evidence == {"dataset_version": holdout_v2.pk, "fairness_audit": audit.pk}
    assert str(holdout_v2) in result.reason


# --- the baseline margin ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("margin", "passes"),
    # good_predictions() is 90% accurate against a 50% majority-class baseline: a gain of 0.4.
    [(0.0, True), (0.39, True), (0.4, False), (0.41, False)],
)
def test_the_model_must_beat_the_baseline_by_more_than_the_policy_margin(
    project, owner, margin, passes
):
    version, _ = version_with_evidence(project, owner)
    result = gates.beats_baseline(fresh(version), {"baseline_margin": margin})
    assert result.passed is passes
    assert result.evidence["margin"] == margin
    assert result.evidence["model"] - result.evidence["baseline"] == pytest.approx(0.4)
    assert result.reason.endswith(f"(margin required {margin})") is passes


# --- lineage: every part of the run named ----------------------------------------------------


def version_made_by(project, owner, **run_fields) -> ModelVersion:
    inputs = run_fields.pop("inputs", None)
    if inputs is None:
        inputs = [factories.dataset_version(project, owner, name="training", split="train")]
    run = factories.run(project, owner, inputs=inputs, **run_fields)
    model = factories.registered_model(project, owner)
    return fresh(factories.model_version(model, owner, run=run))


def test_lineage_gate_passes_when_the_run_names_code_data_parameters_and_environment(
    project, owner
):
    version = version_made_by(project, owner, code=factories.code_version(project, owner))
    assert gates.lineage_complete(version, {}).passed


@pytest.mark.parametrize(
    ("leave_out", "missing"),
    [
        ("code", "code commit"),
        ("dirty code", "clean code commit (the code was dirty)"),
        ("inputs", "input dataset versions"),
        ("parameters", "parameters"),
        ("environment", "environment"),
    ],
)
def test_lineage_gate_names_what_the_run_lacks(project, owner, leave_out, missing):
    from lineage import services as lineage

    fields: dict = {"code": factories.code_version(project, owner)}
    if leave_out == "code":
        fields["code"] = None
    elif leave_out == "dirty code":
        fields["code"] = lineage.register_code_version(
            project,
            actor=owner,
            repository_url="https://git.example.com/team/model",
            commit_sha="d" * 40,
            dirty=True,
        )
    elif leave_out == "inputs":
        fields["inputs"] = []
    else:
        fields[leave_out] = {}
    result = gates.lineage_complete(version_made_by(project, owner, **fields), {})
    assert not result.passed
    assert result.reason.endswith(f"lacks: {missing}")
