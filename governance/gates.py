"""The gates of a transition: evidence checks and the approvals count.

Each evidence check is a named function of (model version, policy settings) returning a
GateResult: pass or fail, a sentence a reviewer can read, and the evidence it relied on
(record ids, the exact dataset version). The policy names which checks a transition needs.
"""

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef

from lineage.models import Run
from registry.choices import Direction, RiskStatus, Split
from registry.models import Evaluation, ModelVersion, RiskItem
from registry.prepared import PreparedQuery

CHECKS = {}


@dataclass
class GateResult:
    name: str
    passed: bool
    reason: str
    kind: str = "evidence"
    evidence: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        # The evidence is shared, not copied: a gate result is not changed once made.
        return {
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "kind": self.kind,
            "evidence": self.evidence,
        }


def check(name):
    """Register an evidence check under the name policies use."""

    def register(function):
        CHECKS[name] = function
        return function

    return register


def _meets(value: float, threshold: float, direction: str) -> bool:
    return value >= threshold if direction == Direction.HIGHER else value <= threshold


EVIDENCE_RELATED = (
    "registered_model__project__policy_binding__policy",
    "run__code_version",
)


def evidence_annotations(version_path: str = "") -> dict:
    """What the evidence checks read of a version's run and its project's risks, as
    annotations of a query that returns the version (at `version_path`), so that they are
    fetched in the same statement; the checks query for them when absent."""
    inputs = Run.input_datasets.through.objects.filter(run_id=OuterRef(f"{version_path}run_id"))
    open_high = RiskItem.objects.filter(
        project_id=OuterRef(f"{version_path}registered_model__project_id"),
        impact="high",
        status=RiskStatus.OPEN,
    )
    return {
        "evidence_run_has_inputs": Exists(inputs),
        "evidence_open_high_risk": Exists(open_high),
    }


def locked_version_queryset(version_pk):
    """The version locked, with what the evidence checks read (see `locked_for_evidence`)."""
    return (
        ModelVersion.objects.select_for_update(of=("self",))
        .select_related(*EVIDENCE_RELATED)
        .annotate(**evidence_annotations())
        .filter(pk=version_pk)
    )


_LOCKED_VERSION = PreparedQuery(locked_version_queryset, ModelVersion)


def locked_for_evidence(version_pk: int) -> ModelVersion:
    """The version, locked for the rest of the transaction, with what the evidence checks read
    of its run, its project's risks and its project's policy fetched in the same query."""
    return _LOCKED_VERSION.get(version_pk=version_pk)


def latest_evaluation(version: ModelVersion, split: str) -> Evaluation | None:
    """The most recent evaluation of `version` on a dataset version of `split`."""
    cached = getattr(version, "_latest_evaluations", None)
    if cached is not None:
        return cached.get(split)
    return (
        version.evaluations.filter(dataset_version__split=split)
        .select_related("dataset_version__dataset__project")
        .order_by("-created_at", "-id")
        .first()
    )


_EVALUATIONS = PreparedQuery(
    lambda version_pk: (
        Evaluation.objects.filter(model_version_id=version_pk)
        .select_related("dataset_version__dataset__project")
        .order_by("-created_at", "-id")
    ),
    Evaluation,
)


def _latest_evaluations(version: ModelVersion) -> dict[str, Evaluation]:
    """The latest evaluation per split, read once for all the checks of one evaluation."""
    latest: dict[str, Evaluation] = {}
    for evaluation in _EVALUATIONS(version_pk=version.pk):
        latest.setdefault(evaluation.dataset_version.split, evaluation)
    return latest


def latest_evaluation_on_any_split(version: ModelVersion) -> Evaluation | None:
    """The most recent evaluation of `version`, whatever the split of its dataset version."""
    cached = getattr(version, "_latest_evaluations", None)
    if cached is not None:
        return max(cached.values(), key=lambda e: (e.created_at, e.pk), default=None)
    return (
        version.evaluations.select_related("dataset_version__dataset__project")
        .order_by("-created_at", "-id")
        .first()
    )


@check("evaluation_meets_acceptance")
def evaluation_meets_acceptance(version: ModelVersion, settings: dict) -> GateResult:
    """Every acceptance criterion is met by the latest evaluation on a test-split dataset
    version. Data the model was trained or tuned on says nothing of how it does on new data,
    so an evaluation on another split never satisfies the gate, whatever a criterion names."""
    name = "evaluation_meets_acceptance"
    criteria = version.project.acceptance_criteria
    if not criteria:
        return GateResult(name, False, f"project {version.project.key} has no acceptance criteria")
    evaluation = latest_evaluation(version, Split.TEST)
    if evaluation is None:
        other = latest_evaluation_on_any_split(version)
        if other is None:
            return GateResult(name, False, "no evaluation on a test-split dataset version")
        return GateResult(
            name,
            False,
            f"evaluation on {other.dataset_version} is on the {other.dataset_version.split} "
            "split; the gate needs a test-split dataset version",
            evidence={"evaluation": other.pk, "dataset_version": other.dataset_version_id},
        )
    failures, evidence = [], []
    for criterion in criteria:
        metric = criterion["metric"]
        value = evaluation.metrics.get(metric)
        if value is None:
            failures.append(f"{metric} was not measured on {evaluation.dataset_version}")
            continue
        ok = _meets(value, criterion["threshold"], criterion["direction"])
        word = "≥" if criterion["direction"] == Direction.HIGHER else "≤"
        evidence.append(
            {
                "metric": metric,
                "value": value,
                "threshold": criterion["threshold"],
                "evaluation": evaluation.pk,
                "dataset_version": evaluation.dataset_version_id,
                "met": ok,
            }
        )
        if not ok:
            failures.append(
                f"{metric} {value:.4f} on {evaluation.dataset_version} does not meet "
                f"{word} {criterion['threshold']}"
            )
    if failures:
        return GateResult(
            name, False, "; ".join(sorted(set(failures))), evidence={"criteria": evidence}
        )
    return GateResult(
        name,
        True,
        "all acceptance criteria are met: "
        + ", ".join(f"{e['metric']} {e['value']:.4f}" for e in evidence),
        evidence={"criteria": evidence},
    )


@check("beats_baseline")
def beats_baseline(version: ModelVersion, settings: dict) -> GateResult:
    """The model beats the majority-class baseline by the policy's margin, on the latest
    evaluation on a test-split dataset version (as the acceptance criteria are judged)."""
    name = "beats_baseline"
    margin = float(settings.get("baseline_margin", 0.0))
    criteria = version.project.acceptance_criteria or []
    evaluation = latest_evaluation(version, Split.TEST)
    if evaluation is None:
        return GateResult(name, False, "no evaluation on a test-split dataset version")
    baseline = evaluation.baselines.get("majority_class") or evaluation.baselines.get("mean")
    if not baseline:
        return GateResult(
            name,
            False,
            f"the evaluation on {evaluation.dataset_version} has no majority-class baseline",
        )
    metric, direction = "accuracy", Direction.HIGHER
    for criterion in criteria:
        if criterion["metric"] in baseline and criterion["metric"] in evaluation.metrics:
            metric, direction = criterion["metric"], criterion["direction"]
            break
    if metric not in baseline or metric not in evaluation.metrics:
        return GateResult(name, False, f"{metric} is missing from the model or its baseline")
    model_value, base_value = evaluation.metrics[metric], baseline[metric]
    gain = model_value - base_value if direction == Direction.HIGHER else base_value - model_value
    evidence = {
        "metric": metric,
        "model": model_value,
        "baseline": base_value,
        "margin": margin,
        "evaluation": evaluation.pk,
        "dataset_version": evaluation.dataset_version_id,
    }
    sentence = (
        f"{metric} {model_value:.4f} against the majority-class baseline's "
        f"{base_value:.4f} (margin required {margin})"
    )
    if gain > margin:
        return GateResult(name, True, sentence, evidence=evidence)
    return GateResult(name, False, sentence + ": not beaten by the margin", evidence=evidence)


@check("lineage_complete")
def lineage_complete(version: ModelVersion, settings: dict) -> GateResult:
    """The run that produced the version names its code commit, data, parameters, environment."""
    name = "lineage_complete"
    if version.run_id is None:
        return GateResult(name, False, "no run is recorded as producing this version")
    run: Run | None
    if hasattr(version, "evidence_run_has_inputs"):  # read with the version
        run, has_inputs = version.run, version.evidence_run_has_inputs
    else:
        run = Run.objects.select_related("code_version").get(pk=version.run_id)
        has_inputs = Run.input_datasets.through.objects.filter(run_id=run.pk).exists()
    assert run is not None  # run_id is set
    missing = []
    if run.code_version is None:
        missing.append("code commit")
    elif run.code_version.dirty:
        missing.append("clean code commit (the code was dirty)")
    if not has_inputs:
        missing.append("input dataset versions")
    if not run.parameters:
        missing.append("parameters")
    if not run.environment:
        missing.append("environment")
    evidence = {"run": run.pk, "code_version": run.code_version_id}
    if missing:
        return GateResult(
            name, False, f"run {run.pk} lacks: {', '.join(missing)}", evidence=evidence
        )
    return GateResult(
        name,
        True,
        f"run {run.pk} records code, data, parameters and environment",
        evidence=evidence,
    )


@check("model_card_complete")
def model_card_complete(version: ModelVersion, settings: dict) -> GateResult:
    """The model card fields the policy requires are filled in."""
    required = settings.get("required_model_card_fields", ModelVersion.MODEL_CARD_FIELDS)
    empty = [f.replace("_", " ") for f in required if not str(getattr(version, f, "")).strip()]
    if empty:
        return GateResult(
            "model_card_complete", False, f"model card fields not filled in: {', '.join(empty)}"
        )
    return GateResult("model_card_complete", True, "the required model card fields are filled in")


@check("no_open_high_risk")
def no_open_high_risk(version: ModelVersion, settings: dict) -> GateResult:
    """No risk of high impact is still open in the project's risk register."""
    if getattr(version, "evidence_open_high_risk", None) is False:  # read with the version
        return GateResult("no_open_high_risk", True, "no open high-impact risk")
    open_risks = list(
        version.project.risks.filter(impact="high", status=RiskStatus.OPEN).values_list(
            "pk", "description"
        )
    )
    if open_risks:
        listed = "; ".join(f"#{pk} {text[:80]}" for pk, text in open_risks)
        return GateResult(
            "no_open_high_risk",
            False,
            f"open high-impact risk(s): {listed}",
            evidence={"risks": [pk for pk, _ in open_risks]},
        )
    return GateResult("no_open_high_risk", True, "no open high-impact risk")


@check("fairness_audit_passed")
def fairness_audit_passed(version: ModelVersion, settings: dict) -> GateResult:
    """A passed fairness audit of this version on the evaluation's exact dataset version."""
    from governance.fairness_gate import check_fairness

    return check_fairness(version, settings)


def evaluate_evidence(version: ModelVersion, rule: dict, settings: dict) -> list[GateResult]:
    """Run the evidence checks the rule names, in its order.

    The version's evaluations are read once for all the checks (several look at the latest
    evaluation of a split), and only for the duration of this call.
    """
    checks = rule.get("checks", [])
    if not checks:
        return []
    # Kept on the instance (not a model field) for the checks' latest_evaluation() calls.
    version.__dict__["_latest_evaluations"] = _latest_evaluations(version)
    try:
        return [CHECKS[name](version, settings) for name in checks]
    finally:
        del version.__dict__["_latest_evaluations"]
