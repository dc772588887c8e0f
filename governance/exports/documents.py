"""What each document says: its machine-readable record, and the template context drawn from it.

A document is made in two steps. First its record is read from the registry as plain JSON
data (this is what gets attached to the PDF and hashed); then the template renders that
record, with presentation helpers (the lineage drawing, fairness tables and charts) derived
from it and from nothing else.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Q
from django.utils.safestring import mark_safe

from governance import audit_chain
from governance.audit_chain import utc_iso
from governance.choices import ExportKind
from governance.exports import charts, lineage_diagram
from governance.models import AuditChainHead, AuditEvent, ProjectPolicy, TransitionRequest
from lineage.choices import NodeKind
from lineage.models import Node, Run
from registry.choices import Direction
from registry.models import DatasetVersion, ModelVersion, Project

# The dossier's sections, in the order a reviewer of an FDA submission or an EU AI Act
# Annex IV technical file expects them.
DOSSIER_SECTIONS = (
    ("control", "Document control"),
    ("general", "1. General description and intended use"),
    ("card", "2. Model card"),
    ("datasheets", "3. Datasheets of the data used"),
    ("lineage", "4. Lineage"),
    ("evaluation", "5. Evaluation against acceptance criteria and baselines"),
    ("fairness", "6. Fairness"),
    ("risks", "7. Risk register"),
    ("plans", "8. Change-control and monitoring plans"),
    ("changes", "9. Change history and approvals"),
    ("appendix", "Appendix A. Audit-trail extract"),
)
AUDIT_TRAIL_SECTIONS = (
    ("verification", "Audit-chain verification"),
    ("events", "Audit events"),
)
FAIRNESS_SECTIONS = (
    ("audit", "Fairness audit"),
    ("groups", "Results per subgroup"),
    ("rules", "Rules"),
)
NO_FAIRNESS_AUDIT = "No fairness audit recorded for this version"


def fairness_audit_model():
    """The FairnessAudit model once the fairness work is installed, else None."""
    try:
        return apps.get_model("governance", "FairnessAudit")
    except LookupError:
        return None


@dataclass(frozen=True)
class DocumentMeta:
    """Who made the document, when, and the audit chain head it anchors."""

    document_id: str
    kind: str
    generated_at: datetime
    generated_by: str

    def as_record(self, title: str, head: dict) -> dict:
        return {
            "id": self.document_id,
            "kind": self.kind,
            "title": title,
            "generated_at": utc_iso(self.generated_at),
            "generated_by": self.generated_by,
            "audit_chain_head": head,
        }


def chain_head() -> dict:
    head = AuditChainHead.objects.get(pk=1)
    return {"sequence": head.sequence, "hash": head.hash}


# --- Pieces shared by the documents ----------------------------------------------------------


def _user_name(user) -> str:
    from registry.history import printed_name

    return printed_name(user)


def _project(project: Project) -> dict:
    return {
        "id": project.pk,
        "key": project.key,
        "name": project.name,
        "description": project.description,
        "business_objective": project.business_objective,
        "intended_use": project.intended_use,
        "out_of_scope_uses": project.out_of_scope_uses,
        "risk_tier": project.risk_tier,
        "owner": _user_name(project.owner),
        "acceptance_criteria": project.acceptance_criteria,
    }


def _events(queryset) -> list[dict]:
    rows = queryset.order_by("sequence").values_list(
        "sequence", "occurred_at", "actor_name", "action", "object_type", "object_id", "payload"
    )
    events = []
    for sequence, occurred_at, actor, action, object_type, object_id, payload in rows.iterator(
        chunk_size=2000
    ):
        fields = json.loads(payload)
        events.append(
            {
                "sequence": sequence,
                "occurred_at": utc_iso(occurred_at),
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "before": fields.get("before") or {},
                "after": fields.get("after") or {},
                "reason": fields.get("reason") or "",
            }
        )
    return events


def _signature(signature) -> dict:
    return {
        "id": signature.pk,
        "request": signature.request_id,
        "printed_name": signature.printed_name,
        "role": signature.role,
        "signed_at": utc_iso(signature.signed_at),
        "meaning": signature.meaning,
        "comment": signature.comment,
        "record_sha256": signature.record_sha256,
    }


def _dataset_version(version: DatasetVersion) -> dict:
    return {
        "id": version.pk,
        "label": str(version),
        "dataset": version.dataset.name,
        "version": version.version,
        "split": version.split,
        "uri": version.uri,
        "content_sha256": version.content_sha256,
        "row_count": version.row_count,
        "schema": version.schema,
        "motivation": version.motivation,
        "composition": version.composition,
        "collection_process": version.collection_process,
        "preprocessing": version.preprocessing,
        "known_biases": version.known_biases,
        "sensitive_attributes": version.sensitive_attributes,
        "created_by": _user_name(version.created_by),
        "created_at": utc_iso(version.created_at),
    }


def _run(run: Run) -> dict:
    code = run.code_version
    return {
        "id": run.pk,
        "name": run.name,
        "kind": run.kind,
        "status": run.status,
        "parent": run.parent_id,
        "code": None
        if code is None
        else {
            "repository_url": code.repository_url,
            "commit_sha": code.commit_sha,
            "branch": code.branch,
            "path": code.path,
            "dirty": code.dirty,
        },
        "parameters": run.parameters,
        "environment": run.environment,
        "metrics": run.metrics,
        "started_at": utc_iso(run.started_at) if run.started_at else None,
        "ended_at": utc_iso(run.ended_at) if run.ended_at else None,
        "input_datasets": sorted(d.pk for d in run.input_datasets.all()),
        "output_datasets": sorted(d.pk for d in run.output_datasets.all()),
    }


def _fairness_audit(audit) -> dict:
    return {
        "id": audit.pk,
        "model_version": audit.model_version_id,
        "dataset_version": audit.dataset_version_id,
        "dataset_version_label": str(audit.dataset_version),
        "status": str(audit.status),
        "passed": audit.passed,
        "result": audit.result or {},
        "created_at": utc_iso(audit.created_at) if getattr(audit, "created_at", None) else None,
    }


def _policy_of(project: Project):
    """The policy version governing a project, read without binding anything."""
    from governance.policies import default_policy

    binding = ProjectPolicy.objects.filter(project=project).select_related("policy").first()
    return binding.policy if binding is not None else default_policy(project.risk_tier)


def _meets(value: float, threshold: float, direction: str) -> bool:
    return value >= threshold if direction == Direction.HIGHER else value <= threshold


# --- The model dossier -----------------------------------------------------------------------


def dossier_record(version: ModelVersion, meta: DocumentMeta, *, head: dict) -> dict:
    """Everything a reviewer needs about one model version, as plain data."""
    version = ModelVersion.objects.select_related(
        "registered_model__project__owner", "created_by", "run"
    ).get(pk=version.pk)
    model = version.registered_model
    project = model.project
    title = f"Model dossier — {project.key}/{model.name} v{version.version}"

    node = Node.objects.filter(kind=NodeKind.MODEL_VERSION, object_id=version.pk).first()
    graph = lineage_diagram.upstream(node) if node else {"nodes": [], "edges": []}
    upstream_ids: dict[str, list[int]] = {kind: [] for kind in NodeKind.values}
    for n in graph["nodes"]:
        upstream_ids[n["kind"]].append(n["object_id"])

    evaluations = list(
        version.evaluations.select_related("dataset_version__dataset").order_by("created_at", "id")
    )
    audit_model = fairness_audit_model()
    audits = (
        list(
            audit_model.objects.filter(model_version=version)
            .select_related("dataset_version__dataset")
            .order_by("pk")
        )
        if audit_model
        else []
    )
    dataset_ids = (
        set(upstream_ids[NodeKind.DATASET_VERSION])
        | {e.dataset_version_id for e in evaluations}
        | {a.dataset_version_id for a in audits}
    )
    datasets = DatasetVersion.objects.filter(pk__in=dataset_ids).select_related(
        "dataset", "created_by"
    )
    runs = (
        Run.objects.filter(pk__in=upstream_ids[NodeKind.RUN])
        .select_related("code_version")
        .prefetch_related("input_datasets", "output_datasets")
        .order_by("started_at", "created_at", "id")
    )
    requests = list(
        TransitionRequest.objects.filter(model_version=version)
        .select_related("policy")
        .prefetch_related("signatures")
        .order_by("created_at", "id")
    )
    signatures = [s for r in requests for s in r.signatures.all()]
    policy = _policy_of(project)
    policy_settings = policy.definition.get("settings", {}) if policy else {}

    extract = Q(object_type="registry.modelversion", object_id=str(version.pk))
    for object_type, ids in (
        ("governance.transitionrequest", [r.pk for r in requests]),
        ("governance.signature", [s.pk for s in signatures]),
        ("registry.evaluation", [e.pk for e in evaluations]),
        ("governance.fairnessaudit", [a.pk for a in audits]),
    ):
        if ids:
            extract |= Q(object_type=object_type, object_id__in=[str(i) for i in ids])

    return {
        "document": meta.as_record(title, head),
        "project": _project(project),
        "model": {
            "id": model.pk,
            "name": model.name,
            "description": model.description,
            "task_type": model.task_type,
        },
        "model_version": {
            "id": version.pk,
            "version": version.version,
            "stage": version.stage,
            "artifact_uri": version.artifact_uri,
            "artifact_sha256": version.artifact_sha256,
            "framework": version.framework,
            "description": version.description,
            "model_card": {f: getattr(version, f) for f in ModelVersion.MODEL_CARD_FIELDS},
            "run": version.run_id,
            "derived_from": version.derived_from_id,
            "created_by": _user_name(version.created_by),
            "created_at": utc_iso(version.created_at),
        },
        "signatures": [_signature(s) for s in signatures],
        "datasets": [_dataset_version(d) for d in sorted(datasets, key=lambda d: (d.split, d.pk))],
        "lineage": {
            "run": version.run_id,
            "runs": [_run(r) for r in runs],
            "graph": graph,
        },
        "evaluations": [
            {
                "id": e.pk,
                "dataset_version": e.dataset_version_id,
                "dataset_version_label": str(e.dataset_version),
                "split": e.dataset_version.split,
                "metrics": e.metrics,
                "baselines": e.baselines,
                "predictions_sha256": e.predictions_sha256,
                "notes": e.notes,
                "created_at": utc_iso(e.created_at),
            }
            for e in evaluations
        ],
        "acceptance": _acceptance(project.acceptance_criteria or [], evaluations),
        "fairness": {
            "available": audit_model is not None,
            "audits": [_fairness_audit(a) for a in audits],
        },
        "risks": [
            {
                "id": r.pk,
                "description": r.description,
                "likelihood": r.likelihood,
                "impact": r.impact,
                "mitigation": r.mitigation,
                "detection": r.detection,
                "status": r.status,
            }
            for r in project.risks.order_by("pk")
        ],
        "policy": None
        if policy is None
        else {
            "id": policy.pk,
            "name": policy.name,
            "version": policy.version,
            "status": policy.status,
            "transitions": policy.definition.get("transitions", []),
        },
        "change_control_plan": policy_settings.get("change_control_plan"),
        "monitoring_plan": policy_settings.get("monitoring_plan")
        or policy_settings.get("monitoring"),
        "transitions": [
            {
                "id": r.pk,
                "from_stage": r.from_stage,
                "to_stage": r.to_stage,
                "status": r.status,
                "justification": r.justification,
                "requested_by": r.requested_by_name,
                "policy": str(r.policy),
                "created_at": utc_iso(r.created_at),
                "decided_at": utc_iso(r.decided_at) if r.decided_at else None,
                "decision_note": r.decision_note,
                "gate_results": [
                    {k: g.get(k) for k in ("name", "passed", "reason")} for g in r.gate_results
                ],
                "signatures": [_signature(s) for s in r.signatures.all()],
            }
            for r in requests
        ],
        "history": [
            {
                "at": utc_iso(h.history_date),
                "type": {"+": "created", "~": "changed", "-": "deleted"}[h.history_type],
                "by": h.history_actor_name,
                "reason": h.history_change_reason or "",
                "stage": h.stage,
            }
            for h in version.history.order_by("history_date", "history_id")
        ],
        "audit_extract": {
            "events": _events(AuditEvent.objects.filter(extract)),
            "verification": audit_chain.verify().as_dict(),
        },
    }


def _acceptance(criteria: list, evaluations: list) -> list[dict]:
    """Each acceptance criterion against the latest evaluation on its split."""
    latest = {}
    for evaluation in evaluations:
        latest[evaluation.dataset_version.split] = evaluation
    results = []
    for criterion in criteria:
        evaluation = latest.get(criterion["split"])
        value = evaluation.metrics.get(criterion["metric"]) if evaluation else None
        baseline = (evaluation.baselines.get("majority_class") or {}) if evaluation else {}
        results.append(
            {
                **criterion,
                "evaluation": evaluation.pk if evaluation else None,
                "dataset_version_label": str(evaluation.dataset_version) if evaluation else "",
                "value": value,
                "majority_class_baseline": baseline.get(criterion["metric"]),
                "met": None
                if value is None
                else _meets(value, criterion["threshold"], criterion["direction"]),
            }
        )
    return results


def dossier_context(record: dict) -> dict:
    return {
        "sections": dict(DOSSIER_SECTIONS),
        "diagram": mark_safe(lineage_diagram.svg(record["lineage"]["graph"])),  # noqa: S308 - escaped
        "fairness_audits": [charts.audit_view(a) for a in record["fairness"]["audits"]],
        "no_fairness_audit": NO_FAIRNESS_AUDIT,
        "runs_by_id": {r["id"]: r for r in record["lineage"]["runs"]},
        "datasets_by_id": {d["id"]: d for d in record["datasets"]},
    }


# --- The audit-trail report ------------------------------------------------------------------


def audit_trail_record(subject: dict, meta: DocumentMeta, *, head: dict) -> dict:
    """Every event of a project (optionally within a time range), with the chain's verification."""
    project = Project.objects.select_related("owner").get(key=subject["project"])
    events = AuditEvent.objects.filter(project_id=project.pk)
    if subject.get("since"):
        events = events.filter(occurred_at__gte=datetime.fromisoformat(subject["since"]))
    if subject.get("until"):
        events = events.filter(occurred_at__lt=datetime.fromisoformat(subject["until"]))
    span = " to ".join(filter(None, (subject.get("since"), subject.get("until"))))
    title = f"Audit-trail report — {project.key}" + (f" ({span})" if span else "")
    return {
        "document": meta.as_record(title, head),
        "project": _project(project),
        "range": {"since": subject.get("since"), "until": subject.get("until")},
        "verification": audit_chain.verify().as_dict(),
        "events": _events(events),
    }


def audit_trail_context(record: dict) -> dict:
    return {"sections": dict(AUDIT_TRAIL_SECTIONS)}


# --- The fairness report ---------------------------------------------------------------------


def fairness_record(subject: dict, meta: DocumentMeta, *, head: dict) -> dict:
    """One fairness audit with the model version and data it was about."""
    audit_model = fairness_audit_model()
    audit = audit_model.objects.select_related(
        "model_version__registered_model__project__owner", "dataset_version__dataset"
    ).get(pk=subject["fairness_audit"])
    version = audit.model_version
    project = version.registered_model.project
    title = f"Fairness report — {project.key}/{version.registered_model.name} v{version.version}"
    return {
        "document": meta.as_record(title, head),
        "project": _project(project),
        "model_version": {
            "id": version.pk,
            "model": version.registered_model.name,
            "version": version.version,
            "stage": version.stage,
        },
        "dataset": _dataset_version(audit.dataset_version),
        "audit": _fairness_audit(audit),
    }


def fairness_context(record: dict) -> dict:
    return {"sections": dict(FAIRNESS_SECTIONS), "audit_view": charts.audit_view(record["audit"])}


@dataclass(frozen=True)
class DocumentKind:
    """How one kind of document is made: its template, record and context."""

    template: str
    record: Callable[..., dict]
    context: Callable[[dict], dict]


def _dossier_from_subject(subject: dict, meta: DocumentMeta, *, head: dict) -> dict:
    return dossier_record(ModelVersion.objects.get(pk=subject["model_version"]), meta, head=head)


KINDS: dict[str, DocumentKind] = {
    ExportKind.DOSSIER: DocumentKind("pdf/dossier.html", _dossier_from_subject, dossier_context),
    ExportKind.AUDIT_TRAIL: DocumentKind(
        "pdf/audit_trail.html", audit_trail_record, audit_trail_context
    ),
    ExportKind.FAIRNESS: DocumentKind("pdf/fairness.html", fairness_record, fairness_context),
}
