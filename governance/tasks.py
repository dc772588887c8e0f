"""Celery tasks of the governance app (a worker's autodiscovery looks here). Each receives the
actor and request id and acts as them."""

from celery import shared_task
from django.contrib.auth import get_user_model

from config.request_context import acting_as
from governance.exports.tasks import render_export  # noqa: F401 - found by autodiscovery


@shared_task(acks_late=True)
def run_fairness_audit_task(audit_id: int, actor_id: int | None = None, request_id: str = ""):
    """Compute a fairness audit (idempotent: re-running a finished audit changes nothing)."""
    from governance.fairness import audits

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    with acting_as(actor, request_id=request_id, reason="fairness audit"):
        audit = audits.run(audit_id)
    return {"id": audit.pk, "status": audit.status, "passed": audit.passed}


@shared_task(acks_late=True)
def run_monitoring_check_task(report_id: int, actor_id: int | None = None, request_id: str = ""):
    """Check a production batch, then act on its breaches (idempotent: each breach once)."""
    from governance.monitoring import actions, checks

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    with acting_as(actor, request_id=request_id, reason="monitoring check"):
        report = checks.run(report_id)
        breaches = actions.act_on_breaches(report) if report.status == "done" else []
    return {
        "id": report.pk,
        "status": report.status,
        "levels": report.levels,
        "breaches": [b.kind for b in breaches],
    }


@shared_task(acks_late=True)
def run_scheduled_monitoring_task():
    """Celery beat: re-check the latest batch of each production version whose model has a
    MonitoringSchedule that is due."""
    from governance.monitoring import schedules

    return {"queued": schedules.run_due()}


@shared_task(acks_late=True)
def expire_transition_requests_task():
    """Celery beat: close as expired the pending transition requests past their policy's
    `request_expiry_days` (idempotent: a second run finds nothing more to expire)."""
    from governance import transitions

    return {"expired": [request.pk for request in transitions.expire_stale_requests()]}
