"""The fairness gate: a passed audit of the same version on the same dataset version.

Until fairness audits are recorded for a version, the gate fails with "no fairness audit".
"""

from governance.gates import GateResult, latest_evaluation


def check_fairness(version, settings: dict) -> GateResult:
    name = "fairness_audit_passed"
    split = settings.get("fairness", {}).get("required_split", "test")
    evaluation = latest_evaluation(version, split)
    if evaluation is None:
        return GateResult(
            name,
            False,
            f"no fairness audit: no evaluation on a {split}-split dataset version to audit against",
        )
    return GateResult(
        name,
        False,
        f"no fairness audit of this version on {evaluation.dataset_version}",
        evidence={"dataset_version": evaluation.dataset_version_id},
    )
