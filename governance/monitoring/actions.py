"""What a monitoring breach sets off, by policy: an audit event always, then any of notify the
owners, request suspension, open a retraining ticket (`settings.monitoring.on_breach`).

Each breach (report, kind) is acted on exactly once: its `MonitoringBreach` row is created in
the same transaction as the actions, and a second run finds it and does nothing.
"""

from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from governance import audit_chain, transitions
from governance.choices import AuditAction
from governance.errors import Conflict, NotAllowed
from governance.models import (
    MonitoringBreach,
    MonitoringReport,
    RetrainingTicket,
)
from governance.monitoring import fairness_drift
from registry.choices import Stage

SUSPENDABLE = (Stage.PRODUCTION, Stage.STAGING)


def _summary(report: MonitoringReport, kind: str) -> str:
    result = {
        "data_drift": report.data_drift,
        "prediction_drift": report.prediction_drift,
        "performance": report.performance,
        "fairness": report.fairness_drift,
    }[kind] or {}
    if kind == "data_drift":
        drifted = [n for n, f in result.get("features", {}).items() if f["level"] == "breach"]
        return f"data drift breach in feature(s) {', '.join(drifted)}"
    if kind == "performance":
        failing = [m["reason"] for m in result.get("metrics", []) if m["level"] == "breach"]
        return "performance decay: " + "; ".join(failing)
    if kind == "fairness":
        drifted = [
            fairness_drift.describe(s)
            for s in result.get("subgroups", [])
            if s["level"] == "breach"
        ]
        failing = [
            v["sentence"]
            for fs in result.get("feature_sets", [])
            for v in fs.get("verdicts", [])
            if v.get("verdict") == "fail"
        ]
        return "fairness drift: " + "; ".join(drifted[:5] + failing[:3])
    return f"prediction drift: {result.get('reason', '')}"


def _notify(report, reason: str) -> str:
    version = report.model_version
    project = version.registered_model.project
    recipients = sorted(
        {p.email for p in (project.owner, version.created_by) if p is not None and p.email}
    )
    if not recipients:
        return "no owner has an email address"
    # Sent after commit: a rolled-back breach must not have told anyone.
    transaction.on_commit(
        lambda: send_mail(
            f"[Stagegate] Monitoring breach: {version}",
            f"Monitoring report {report.pk} of {version} (project {project.key}) breached its "
            f"policy thresholds.\n\n{reason}\n",
            None,
            recipients,
        )
    )
    return "emailed " + ", ".join(recipients)


def _suspend(report, reason: str) -> tuple[bool, str]:
    """Request suspension in the project owner's name: the owner answers for the model, and a
    reviewer's signature is still needed to apply it (the owner cannot sign their own request)."""
    version = report.model_version
    if version.stage not in SUSPENDABLE:
        return False, f"not requested: {version} is in {version.stage}"
    owner = version.registered_model.project.owner
    try:
        with transaction.atomic():
            request = transitions.request_transition(
                version,
                Stage.SUSPENDED,
                actor=owner,
                justification=f"Monitoring report {report.pk} breached: {reason}",
            )
    except (Conflict, NotAllowed) as exc:
        return False, f"not requested: {exc}"
    return True, f"transition request {request.pk} to suspended"


def _ticket(report, reason: str) -> tuple[bool, str]:
    ticket = RetrainingTicket.objects.create(
        model_version=report.model_version, report=report, reason=reason
    )
    audit_chain.record(
        AuditAction.RECORD_CREATED,
        target=ticket,
        after={"report": report.pk, "reason": reason},
    )
    return True, f"retraining ticket {ticket.pk}"


def act_on_breaches(report: MonitoringReport) -> list[MonitoringBreach]:
    """Record and act on every breached kind of a finished report not acted on before."""
    created = []
    actions = report.thresholds.get("on_breach", [])
    for kind in report.breached:
        if MonitoringBreach.objects.filter(report=report, kind=kind).exists():
            continue
        reason = _summary(report, kind)
        try:
            with transaction.atomic():
                breach = MonitoringBreach.objects.create(report=report, kind=kind)
                taken = []
                for action in actions:
                    if action == "notify":
                        taken.append(
                            {"action": action, "done": True, "detail": _notify(report, reason)}
                        )
                    elif action == "suspend":
                        done, detail = _suspend(report, reason)
                        taken.append({"action": action, "done": done, "detail": detail})
                    elif action == "retraining_ticket":
                        done, detail = _ticket(report, reason)
                        taken.append({"action": action, "done": done, "detail": detail})
                breach.actions = taken
                breach.save(update_fields=["actions"])
                audit_chain.record(
                    AuditAction.MONITORING_BREACH,
                    target=report,
                    reason=reason,
                    after={"kind": kind, "level": "breach", "actions": taken},
                )
        except IntegrityError:
            # A concurrent run of the same check created it first; it acts, this one does not.
            continue
        created.append(breach)
    return created
