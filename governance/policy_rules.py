"""The shape of a lifecycle policy's definition, its validation, and the shipped defaults (read
from the fixture governance/fixtures/default_policies.json).

A definition:
    {
      "stages": [...], "initial_stage": "development", "terminal_stages": ["retired"],
      "transitions": [
        {"from": "validation", "to": "approved",
         "approvals": {"count": 2, "roles": ["reviewer", "compliance officer"],
                       "compliance_officer_required": true},
         "checks": ["evaluation_meets_acceptance", "beats_baseline", ...],
         "demote_previous_production": false},
        ...
      ],
      "settings": {"baseline_margin": 0.02, "required_model_card_fields": [...],
                   "request_expiry_days": 30, "fairness": {...},
                   "monitoring": {...}, "in_plan_approvals": {...}}
    }

`monitoring` (thresholds and breach actions; `monitoring.fairness` holds the fairness drift
limits, see governance/monitoring/fairness_drift.py) and `in_plan_approvals` (the lighter
approvals of a retrained version inside an approved change-control plan) came later than the
first policies:
a definition without them gets the defaults of :func:`monitoring_settings` and no light path.
"""

import copy
import functools
import json
from pathlib import Path
from typing import Any

from governance.monitoring import fairness_drift
from governance.monitoring.drift import DEFAULT_DECAY_THRESHOLDS, DEFAULT_DRIFT_THRESHOLDS
from registry.choices import Stage
from registry.models import ModelVersion
from registry.roles import Role

EVIDENCE_CHECKS = (
    "evaluation_meets_acceptance",
    "beats_baseline",
    "lineage_complete",
    "model_card_complete",
    "no_open_high_risk",
    "fairness_audit_passed",
)
SIGNING_ROLES = (Role.REVIEWER, Role.COMPLIANCE_OFFICER)
BREACH_ACTIONS = ("notify", "suspend", "retraining_ticket")
DEFAULT_MONITORING: dict[str, Any] = {
    "data_drift": DEFAULT_DRIFT_THRESHOLDS,
    "performance": DEFAULT_DECAY_THRESHOLDS,
    # Subgroup metric values against the validated fairness audit's (fairness_drift.py).
    "fairness": fairness_drift.DEFAULT_FAIRNESS_THRESHOLDS,
    "on_breach": ["notify", "retraining_ticket"],
}


def validate_definition(definition) -> None:
    """Raise ValueError naming the first problem in a policy definition."""
    if not isinstance(definition, dict):
        raise ValueError("a policy definition is a JSON object")
    stages = definition.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ValueError("stages must be a non-empty list")
    unknown = [s for s in stages if s not in Stage.values]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(map(str, unknown))}")
    if definition.get("initial_stage") not in stages:
        raise ValueError("initial_stage must be one of the stages")
    terminal = definition.get("terminal_stages", [])
    transitions = definition.get("transitions")
    if not isinstance(transitions, list) or not transitions:
        raise ValueError("transitions must be a non-empty list")
    seen = set()
    for index, rule in enumerate(transitions, start=1):
        where = f"transition {index}"
        if not isinstance(rule, dict):
            raise ValueError(f"{where} must be an object")
        source, target = rule.get("from"), rule.get("to")
        if source not in stages or target not in stages:
            raise ValueError(f"{where}: from and to must be stages of the policy")
        if source == target:
            raise ValueError(f"{where}: a transition must change the stage")
        if source in terminal:
            raise ValueError(f"{where}: {source} is terminal; nothing leaves it")
        if (source, target) in seen:
            raise ValueError(f"{where}: {source} → {target} is defined twice")
        seen.add((source, target))
        approvals = rule.get("approvals")
        if not isinstance(approvals, dict):
            raise ValueError(f"{where}: approvals must be an object")
        count = approvals.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"{where}: at least one approval is required")
        roles = approvals.get("roles")
        if not isinstance(roles, list) or not roles or any(r not in SIGNING_ROLES for r in roles):
            raise ValueError(f"{where}: approval roles must be among {', '.join(SIGNING_ROLES)}")
        checks = rule.get("checks", [])
        bad = [c for c in checks if c not in EVIDENCE_CHECKS]
        if bad:
            raise ValueError(f"{where}: unknown check(s) {', '.join(map(str, bad))}")
    settings = definition.get("settings", {})
    if not isinstance(settings, dict):
        raise ValueError("settings must be an object")
    monitoring = settings.get("monitoring", {})
    if not isinstance(monitoring, dict):
        raise ValueError("settings.monitoring must be an object")
    bad_actions = [a for a in monitoring.get("on_breach", []) if a not in BREACH_ACTIONS]
    if bad_actions:
        raise ValueError(f"unknown breach action(s) {', '.join(map(str, bad_actions))}")
    if "fairness" in monitoring:
        fairness_drift.validate_thresholds(monitoring["fairness"])
    light = settings.get("in_plan_approvals")
    if light is not None and (
        not isinstance(light, dict)
        or not isinstance(light.get("count"), int)
        or light["count"] < 1
        or any(r not in SIGNING_ROLES for r in light.get("roles", []))
    ):
        raise ValueError("in_plan_approvals needs a count of at least 1 and signing roles")
    fields = settings.get("required_model_card_fields", [])
    bad_fields = [f for f in fields if f not in ModelVersion.MODEL_CARD_FIELDS]
    if bad_fields:
        raise ValueError(f"unknown model card field(s) {', '.join(bad_fields)}")


def rule_for(definition: dict, source: str, target: str) -> dict | None:
    """The policy's rule for source → target, or None when the policy does not allow it."""
    for rule in definition["transitions"]:
        if rule["from"] == source and rule["to"] == target:
            return rule
    return None


def monitoring_settings(definition: dict) -> dict:
    """The policy's monitoring settings, with the defaults for anything it does not name."""
    given = definition.get("settings", {}).get("monitoring", {})
    merged = copy.deepcopy(DEFAULT_MONITORING)
    for key, value in given.items():
        # Threshold groups merge per test, so a policy may set only the PSI limits.
        if key in ("data_drift", "performance") and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        elif key == "fairness" and isinstance(value, dict):
            merged[key] = fairness_drift.merged_thresholds(value)
        else:
            merged[key] = value
    return merged


# The shipped default policies, one per risk tier: data, in a Django fixture a compliance
# officer can read and review (governance/defaults.py installs them after every migrate).
DEFAULT_POLICY_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "default_policies.json"


@functools.cache
def default_policy_records() -> tuple[dict, ...]:
    """The fields of each default policy in the fixture (validated when read)."""
    records = json.loads(DEFAULT_POLICY_FIXTURE.read_text())
    fields = tuple(r["fields"] for r in records if r["model"] == "governance.lifecyclepolicy")
    for record in fields:
        validate_definition(record["definition"])
    return fields


def _default_policies() -> dict[str, dict]:
    return {r["risk_tier"]: r["definition"] for r in default_policy_records()}


DEFAULT_POLICIES = _default_policies()


def default_definition(risk_tier: str) -> dict:
    """A copy of the shipped default definition for a risk tier."""
    return copy.deepcopy(DEFAULT_POLICIES[risk_tier])
