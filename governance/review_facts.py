"""What the review pages state about a request or version, computed without writing anything.

Who may sign a request and why not, the words a signature's meaning stands for, readable gate
names, the stages a version may be asked to move to, and the version's change history. The
actions in `governance.transitions` still decide; these only explain in advance.
"""

from dataclasses import dataclass
from datetime import UTC

from governance.choices import RequestStatus, SignatureMeaning
from governance.models import ProjectPolicy
from governance.policies import default_policy
from registry.choices import Stage
from registry.models import ModelVersion

GATE_LABELS = {
    "evaluation_meets_acceptance": "Evaluation meets the acceptance criteria",
    "beats_baseline": "Beats the majority-class baseline",
    "lineage_complete": "Lineage is complete",
    "model_card_complete": "Model card is complete",
    "no_open_high_risk": "No open high-impact risk",
    "fairness_audit_passed": "Fairness audit passed",
    "approvals": "Approvals",
}

# 21 CFR 11.50(a)(3): the signed record states what the signature means.
MEANING_WORDS: dict[str, str] = {
    SignatureMeaning.APPROVED: "I have reviewed the evidence shown and approve moving "
    "{version} from {source} to {target}.",
    SignatureMeaning.REJECTED: "I have reviewed the evidence shown and reject moving "
    "{version} from {source} to {target}.",
    SignatureMeaning.REVIEWED: "I have reviewed this request and its evidence.",
    SignatureMeaning.AUTHORED: "I authored this request.",
    SignatureMeaning.RESPONSIBILITY: "I take responsibility for this request.",
}

HISTORY_FIELDS = ("stage", "description", "framework", *ModelVersion.MODEL_CARD_FIELDS)


def gate_rows(results) -> list[dict]:
    """Stored gate results with a readable name for each gate."""
    return [
        {
            **g,
            "label": GATE_LABELS.get(g["name"], g["name"].replace("_", " ").capitalize()),
            "verdict": "Pass" if g["passed"] else "Fail",
            "css": "pass" if g["passed"] else "fail",
        }
        for g in results or []
    ]


def meaning_in_words(meaning: str, request) -> str:
    version = request.model_version
    return MEANING_WORDS[meaning].format(
        version=f"{version.registered_model.project.key}/{version.registered_model.name} "
        f"v{version.version}",
        source=Stage(request.from_stage).label,
        target=Stage(request.to_stage).label,
    )


def signing_refusal(user, request, *, role_names: set[str], can_review: bool) -> str:
    """Why `user` may not decide `request` now, or "" when they may."""
    if request.status != RequestStatus.PENDING:
        status = request.get_status_display().lower()
        return f"This request is {status}; it can no longer be signed."
    if user.pk == request.requested_by_id:
        return "You made this request: separation of duties means someone else decides it."
    if not can_review:
        return "You need the 'review' right on this project to sign its requests."
    allowed = request.rule.get("approvals", {}).get("roles", [])
    if not role_names & set(allowed):
        return "Your role may not sign this transition: it needs " + " or ".join(allowed) + "."
    if any(s.signer_id == user.pk for s in request.signatures.all()):
        return "You have already signed this request."
    return ""


def governing_policy(project):
    """The policy version that governs `project`, read without binding a default to it."""
    binding = ProjectPolicy.objects.filter(project=project).select_related("policy").first()
    return binding.policy if binding else default_policy(project.risk_tier)


def allowed_targets(version, policy) -> list[str]:
    """Stages the policy lets this version be asked to move to from where it is."""
    if policy is None:
        return []
    rules = policy.definition.get("transitions", [])
    return [rule["to"] for rule in rules if rule["from"] == version.stage]


def utc_stamp(moment) -> tuple[str, str]:
    """(ISO 8601, "YYYY-MM-DD HH:MM:SS UTC") of a moment, for <time> elements in long lists
    (formatted here: the template date filter costs ten times more per row)."""
    moment = moment.astimezone(UTC)
    return moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class HistoryRow:
    """One historical row of a model version: when, who, why, and what changed."""

    when_iso: str
    when: str
    who: str
    why: str
    what: str


STAGE_LABELS = {value: str(label) for value, label in Stage.choices}
HISTORY_KINDS = {"+": "Created", "~": "Changed", "-": "Deleted"}


def history_rows(version) -> list[HistoryRow]:
    """The version's django-simple-history rows, newest first, with what each one changed."""
    # Plain values, not model instances: a version page may carry hundreds of rows.
    records = list(
        version.history.order_by("-history_date", "-history_id").values(
            "history_date",
            "history_type",
            "history_change_reason",
            "history_actor_name",
            *HISTORY_FIELDS,
        )
    )
    rows = []
    for index, record in enumerate(records):
        older = records[index + 1] if index + 1 < len(records) else None
        if older is None or record["history_type"] == "+":
            changes = ["registered"]
        else:
            changes = []
            for name in HISTORY_FIELDS:
                before, after = older[name], record[name]
                if before == after:
                    continue
                if name == "stage":
                    changes.append(f"stage {STAGE_LABELS[before]} → {STAGE_LABELS[after]}")
                else:
                    changes.append(name.replace("_", " "))
        kind = HISTORY_KINDS.get(record["history_type"], record["history_type"])
        when_iso, when = utc_stamp(record["history_date"])
        rows.append(
            HistoryRow(
                when_iso=when_iso,
                when=when,
                who=record["history_actor_name"] or "system",
                why=record["history_change_reason"] or "—",
                what=f"{kind}: {', '.join(changes) or 'no tracked field changed'}",
            )
        )
    return rows


def fairness_audits(version) -> list[dict]:
    """The version's finished fairness audits, newest first, each with its per-group table,
    its rule verdicts in words, and a selection-rate chart (SVG) per feature set."""
    from django.utils.safestring import mark_safe

    from governance.fairness.charts import selection_rate_chart
    from governance.models import AuditStatus, FairnessAudit

    audits = (
        FairnessAudit.objects.filter(model_version=version, status=AuditStatus.DONE)
        .select_related("dataset_version__dataset")
        .order_by("-completed_at", "-pk")[:5]
    )
    shown = []
    for audit in audits:
        sets = []
        for feature_set in (audit.result or {}).get("feature_sets", []):
            metrics = [m for m in audit.config.get("metrics", []) if m != "count"]
            chart = ""
            if "selection_rate" in metrics:
                chart = mark_safe(selection_rate_chart(feature_set))  # noqa: S308 - our escaped SVG
            sets.append(
                {
                    "key": feature_set["key"],
                    "metrics": metrics,
                    "groups": [
                        {
                            "group": g["group"],
                            "count": g["count"],
                            "status": g["status"],
                            "values": [g["metrics"][m] for m in metrics],
                        }
                        for g in feature_set["groups"]
                        if g["status"] != "empty"
                    ],
                    "verdicts": feature_set.get("verdicts", []),
                    "chart": chart,
                }
            )
        shown.append(
            {
                "label": str(audit),
                "passed": audit.passed,
                "dataset_version": audit.dataset_version,
                "feature_sets": sets,
                "completed_at": audit.completed_at,
            }
        )
    return shown
