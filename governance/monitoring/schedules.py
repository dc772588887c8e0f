"""Scheduled re-checks: a model's MonitoringSchedule says how often the latest batch of each
of its production versions is checked again (against the policy's current thresholds)."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from governance.models import MonitoringReport, MonitoringSchedule
from governance.monitoring import checks
from registry.choices import Stage


def is_due(schedule: MonitoringSchedule, now) -> bool:
    return schedule.last_run is None or (
        schedule.last_run + timedelta(hours=schedule.interval_hours) <= now
    )


def run_due(now=None) -> int:
    """Queue a re-check for every due schedule; returns how many checks were queued."""
    now = now or timezone.now()
    queued = 0
    for schedule in MonitoringSchedule.objects.select_related("registered_model__project"):
        if not is_due(schedule, now):
            continue
        with transaction.atomic():
            # Locked so that two beat ticks on two workers do not both re-check.
            locked = MonitoringSchedule.objects.select_for_update().get(pk=schedule.pk)
            if not is_due(locked, now):
                continue
            latest = MonitoringReport.objects.filter(
                model_version__registered_model_id=locked.registered_model_id,
                model_version__stage=Stage.PRODUCTION,
            ).order_by("model_version_id", "-created_at", "-id")
            seen = set()
            for report in latest.select_related("model_version", "reference"):
                if report.model_version_id in seen:
                    continue
                seen.add(report.model_version_id)
                # The owner answers for the model; scheduled checks act in their name.
                checks.recheck(report, actor=locked.registered_model.project.owner)
                queued += 1
            locked.last_run = now
            locked.save(update_fields=["last_run"])
    return queued
