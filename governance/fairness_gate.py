"""The fairness gate: a passed audit of the same version, on the exact dataset version the
acceptance evaluation used, made under the project's current policy configuration."""

from governance.gates import GateResult, latest_evaluation
from governance.models import AuditStatus, FairnessAudit
from registry.models import DatasetVersion
from registry.prepared import PreparedQuery

# The version's finished audits, newest first, without their (large) results.
_DONE_AUDITS = PreparedQuery(
    lambda version_pk: (
        FairnessAudit.objects.filter(model_version_id=version_pk, status=AuditStatus.DONE)
        .defer("result", "config", "library_versions")
        .order_by("-completed_at", "-id")
    ),
    FairnessAudit,
)


def check_fairness(version, settings: dict) -> GateResult:
    from governance.fairness.audits import policy_config_sha256
    from governance.policies import current_policy

    name = "fairness_audit_passed"
    split = settings.get("fairness", {}).get("required_split", "test")
    evaluation = latest_evaluation(version, split)
    if evaluation is None:
        return GateResult(
            name,
            False,
            f"no fairness audit: no evaluation on a {split}-split dataset version to audit against",
        )
    dataset_version = evaluation.dataset_version
    policy = current_policy(version.project)
    current = policy_config_sha256(policy)
    done = _DONE_AUDITS(version_pk=version.pk)
    audit = next(
        (
            a
            for a in done
            if a.dataset_version_id == dataset_version.pk and a.policy_config_sha256 == current
        ),
        None,
    )
    evidence = {"dataset_version": dataset_version.pk}
    if audit is None:
        return GateResult(name, False, _missing(done, dataset_version, current), evidence=evidence)
    evidence["fairness_audit"] = audit.pk
    if audit.passed:
        return GateResult(
            name,
            True,
            f"fairness audit {audit.pk} on {dataset_version} passed every rule",
            evidence=evidence,
        )
    failing = [
        v["sentence"]
        for fs in (audit.result or {}).get("feature_sets", [])
        for v in fs.get("verdicts", [])
        if v.get("verdict") != "pass"
    ]
    return GateResult(
        name,
        False,
        f"fairness audit {audit.pk} did not pass: " + " ".join(failing[:3]),
        evidence=evidence,
    )


def _missing(done, dataset_version, current: str) -> str:
    """Why none of the version's finished audits counts, naming the audit that comes closest."""
    if not done:
        return f"no fairness audit of this version on {dataset_version}"
    elsewhere = next((a for a in done if a.policy_config_sha256 == current), None)
    if elsewhere is not None:
        # Evidence is bound to data versions (DESIGN rule 6).
        other = DatasetVersion.objects.select_related("dataset__project").get(
            pk=elsewhere.dataset_version_id
        )
        return (
            f"no fairness audit on {dataset_version}: fairness audit {elsewhere.pk} is on "
            f"another dataset version, {other}, and an audit of another dataset version does "
            "not count"
        )
    return (
        f"no fairness audit on {dataset_version} under the current policy configuration "
        "(audits under another configuration do not count)"
    )
