"""Predetermined change-control plans (in the manner of the FDA's PCCP): what a retrained
version may change, what it must pass, and the lighter approvals it then takes.

A plan is versioned per project and approved by a compliance officer's electronic signature
(password re-entered, bound to the SHA-256 of the plan's canonical JSON). A retrained version —
`derived_from` the version in production, trained on newer versions of the same datasets —
that stays inside the project's latest approved plan and passes every check of its protocol
is "in plan": `request_transition` then uses the policy's `in_plan_approvals` for it. Any other
retrained version is flagged "outside the change-control plan" and takes the full path.
"""

from django.db import transaction
from django.utils import timezone

from governance import audit_chain
from governance.choices import AuditAction, SignatureMeaning
from governance.errors import Conflict, NotAllowed
from governance.gates import GateResult, evaluate_evidence, latest_evaluation
from governance.models import ChangeControlPlan, PlanStatus, Signature
from governance.policy_rules import EVIDENCE_CHECKS
from governance.signing import confirm_password, digest
from registry.access import has_project_right
from registry.choices import ProjectRight, Stage
from registry.history import printed_name
from registry.roles import Role

MODIFICATIONS = ("same_input_schema", "same_framework")
# Transitions whose approvals an in-plan version may lighten; evidence checks are never dropped.
LIGHT_PATH_TARGETS = (Stage.APPROVED, Stage.STAGING, Stage.PRODUCTION)
LOWER_IS_BETTER = ("mae", "rmse")
OUTSIDE = "outside the change-control plan"


def validate_plan(allowed_modifications: dict, protocol: dict) -> None:
    """Raise Conflict naming the first problem in a plan's modifications or protocol."""
    if not isinstance(allowed_modifications, dict) or any(
        k not in MODIFICATIONS for k in allowed_modifications
    ):
        raise Conflict(f"allowed_modifications may only set {', '.join(MODIFICATIONS)}")
    if not isinstance(protocol, dict):
        raise Conflict("the protocol must be an object")
    unknown = [c for c in protocol.get("checks", []) if c not in EVIDENCE_CHECKS]
    if unknown:
        raise Conflict(f"unknown protocol check(s) {', '.join(map(str, unknown))}")
    drops = protocol.get("max_metric_drop", {})
    if not isinstance(drops, dict) or any(
        not isinstance(v, int | float) or isinstance(v, bool) or v < 0 for v in drops.values()
    ):
        raise Conflict("max_metric_drop maps metric names to non-negative numbers")


@transaction.atomic
def propose_plan(
    project,
    *,
    actor,
    description: str,
    allowed_modifications: dict,
    protocol: dict,
    impact_assessment: str,
) -> ChangeControlPlan:
    """A new draft version of the project's change-control plan."""
    if not has_project_right(actor, project, ProjectRight.CONTRIBUTE):
        raise NotAllowed(f"you need the 'contribute' right on {project.key} to propose a plan")
    validate_plan(allowed_modifications, protocol)
    if not impact_assessment.strip():
        raise Conflict("a change-control plan needs an impact assessment")
    latest = (
        ChangeControlPlan.objects.select_for_update()
        .filter(project=project)
        .order_by("-version")
        .first()
    )
    plan = ChangeControlPlan.objects.create(
        project=project,
        version=(latest.version + 1) if latest else 1,
        description=description,
        allowed_modifications=allowed_modifications,
        protocol=protocol,
        impact_assessment=impact_assessment,
        created_by=actor,
    )
    audit_chain.record(
        AuditAction.RECORD_CREATED,
        target=plan,
        actor=actor,
        after={"version": plan.version, "protocol": protocol},
    )
    return plan


def plan_record(plan: ChangeControlPlan) -> dict:
    """The content a plan approval attests to."""
    return {
        "change_control_plan": {
            "id": plan.pk,
            "project": plan.project.key,
            "version": plan.version,
            "description": plan.description,
            "allowed_modifications": plan.allowed_modifications,
            "protocol": plan.protocol,
            "impact_assessment": plan.impact_assessment,
        }
    }


def approve_plan(
    plan, *, signer, password: str, comment: str = "", http_request=None
) -> ChangeControlPlan:
    """A compliance officer (not the author, with the `review` right on the project) signs a
    draft plan, which approves it. The signature is a `Signature` on the plan."""
    confirm_password(
        signer, password, http_request
    )  # outside the transaction: a failure must be counted
    with transaction.atomic():
        plan = (
            ChangeControlPlan.objects.select_for_update().select_related("project").get(pk=plan.pk)
        )
        if plan.status != PlanStatus.DRAFT:
            raise Conflict(f"{plan} is already approved")
        if not signer.groups.filter(name=Role.COMPLIANCE_OFFICER).exists():
            raise NotAllowed("only a compliance officer can approve a change-control plan")
        if not has_project_right(signer, plan.project, ProjectRight.REVIEW):
            raise NotAllowed(
                f"you need the 'review' right on {plan.project.key} to approve its plan"
            )
        if plan.created_by_id == signer.pk:
            raise NotAllowed("the author of a change-control plan cannot approve it")
        # 21 CFR 11.70: bind the signature to the hash of exactly what was signed.
        text, sha = digest(plan_record(plan))
        signature = Signature.objects.create(
            plan=plan,
            signer=signer,
            printed_name=printed_name(signer),
            role=Role.COMPLIANCE_OFFICER,
            signed_at=timezone.now(),
            meaning=SignatureMeaning.APPROVED,
            comment=comment,
            record_sha256=sha,
            signed_record=text,
        )
        plan.status = PlanStatus.APPROVED
        plan.save(update_fields=["status"])
        audit_chain.record(
            AuditAction.SIGNATURE_RECORDED,
            target=plan,
            actor=signer,
            reason=comment,
            after={
                "meaning": "approved",
                "signature": signature.pk,
                "record_sha256": sha,
                "plan_version": plan.version,
            },
        )
    return plan


def current_record_sha256(plan: ChangeControlPlan) -> str:
    """The hash of the plan as it is now; a signature on another hash no longer matches."""
    return digest(plan_record(plan))[1]


def current_plan(project) -> ChangeControlPlan | None:
    return (
        ChangeControlPlan.objects.filter(project=project, status=PlanStatus.APPROVED)
        .order_by("-version")
        .first()
    )


def _inputs(version) -> dict:
    if version.run_id is None:
        return {}
    return {dv.dataset_id: dv for dv in version.run.input_datasets.all()}


def assess(version, settings: dict) -> tuple[bool, list[str], ChangeControlPlan | None]:
    """Whether a retrained version is inside the project's approved plan, with the reasons
    it is not (empty when it is)."""
    parent = version.derived_from
    plan = current_plan(version.registered_model.project)
    if parent is None:
        return False, ["not a retrained version (no derived_from)"], plan
    if plan is None:
        return False, ["the project has no approved change-control plan"], None
    reasons = []
    if parent.stage != Stage.PRODUCTION:
        reasons.append(f"derived from {parent}, which is in {parent.stage}, not production")
    if parent.registered_model_id != version.registered_model_id:
        reasons.append("derived from a version of another model")
    allowed = plan.allowed_modifications
    if allowed.get("same_framework", True) and version.framework != parent.framework:
        reasons.append(f"framework changed from {parent.framework!r} to {version.framework!r}")
    if allowed.get("same_input_schema", True):
        mine, theirs = _inputs(version), _inputs(parent)
        if not mine or set(mine) != set(theirs):
            reasons.append("not trained on the same datasets as the parent version")
        else:
            for dataset_id, new in mine.items():
                old = theirs[dataset_id]
                if new.schema != old.schema:
                    reasons.append(f"{new} has a different schema from {old}")
            if all(mine[d].pk == theirs[d].pk for d in mine):
                reasons.append("not trained on newer dataset versions")
    checks = plan.protocol.get("checks", [])
    for gate in evaluate_evidence(version, {"checks": checks}, settings):
        if not gate.passed:
            reasons.append(f"protocol check {gate.name} failed: {gate.reason}")
    drops = plan.protocol.get("max_metric_drop", {})
    if drops:
        mine_eval, parent_eval = (
            latest_evaluation(version, "test"),
            latest_evaluation(parent, "test"),
        )
        for metric, limit in drops.items():
            new = (mine_eval.metrics if mine_eval else {}).get(metric)
            old = (parent_eval.metrics if parent_eval else {}).get(metric)
            if new is None or old is None:
                reasons.append(f"{metric} is not measured on a test split for both versions")
                continue
            drop = (new - old) if metric in LOWER_IS_BETTER else (old - new)
            if drop > limit:
                reasons.append(f"{metric} dropped {drop:.4g} from the parent (limit {limit})")
    return not reasons, reasons, plan


def is_in_plan(version, settings: dict | None = None) -> bool:
    """True when a retrained version stays inside the approved plan and passes its protocol."""
    from governance.policies import policy_for

    settings = (
        settings
        if settings is not None
        else policy_for(version.project).definition.get("settings", {})
    )
    return assess(version, settings)[0]


def rule_for_version(version, rule: dict, definition: dict) -> dict:
    """The transition rule for `version`: the policy's, or its in-plan variant.

    Only a retrained version moving towards production is concerned. Inside the plan, the
    approvals become the policy's `in_plan_approvals` and the protocol's checks are added to
    the rule's (so they are re-checked when the transition applies); outside it, the full rule
    is kept and marked so the gate results say "outside the change-control plan".
    """
    settings = definition.get("settings", {})
    light = settings.get("in_plan_approvals")
    if version.derived_from_id is None or light is None or rule["to"] not in LIGHT_PATH_TARGETS:
        return rule
    in_plan, reasons, plan = assess(version, settings)
    if not in_plan:
        return {**rule, "change_control": {"in_plan": False, "reasons": reasons}}
    assert plan is not None  # a version is in plan only under an approved plan
    checks = list(rule.get("checks", []))
    checks += [c for c in plan.protocol.get("checks", []) if c not in checks]
    return {
        **rule,
        "checks": checks,
        "approvals": dict(light),
        "change_control": {"in_plan": True, "plan": plan.pk, "plan_version": plan.version},
    }


def change_control_gates(rule: dict) -> list[GateResult]:
    """The informational gate result saying whether the request is inside the plan."""
    marker = rule.get("change_control")
    if marker is None:
        return []
    if marker["in_plan"]:
        reason = f"inside change-control plan v{marker['plan_version']}: in-plan approvals apply"
    else:
        reason = f"{OUTSIDE}: " + "; ".join(marker["reasons"]) + "; the full approvals apply"
    return [GateResult("change_control_plan", True, reason, kind="change_control", evidence=marker)]
