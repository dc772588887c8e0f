"""Fairness audits: per-group results of one model version on one exact dataset version."""

from django.conf import settings
from django.db import models

from registry.access import ProjectScopedQuerySet


class AuditStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


def predictions_path(instance, filename: str) -> str:
    return f"fairness/{instance.model_version_id}/{filename}"


class FairnessAuditImmutable(Exception):
    """A finished fairness audit was about to change or be deleted."""


class FairnessAudit(models.Model):
    """A subgroup audit, configured by the project's policy before it runs, stored immutably.

    `dataset_version` is the evaluated data (the exact version a gate compares against);
    `predictions_version` is the uploaded predictions file, registered as its own dataset
    version by content hash.
    """

    PROJECT_PATH = "model_version__registered_model__project"

    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="fairness_audits"
    )
    dataset_version = models.ForeignKey(
        "registry.DatasetVersion", on_delete=models.PROTECT, related_name="fairness_audits"
    )
    predictions_version = models.ForeignKey(
        "registry.DatasetVersion", on_delete=models.PROTECT, related_name="+"
    )
    predictions = models.FileField(upload_to=predictions_path)
    predictions_sha256 = models.CharField(max_length=64)
    policy = models.ForeignKey(
        "governance.LifecyclePolicy", on_delete=models.PROTECT, related_name="+"
    )
    # The audit configuration as applied, and the hash of the policy part of it (the gate
    # accepts only audits made under the project's current policy configuration).
    config = models.JSONField()
    config_sha256 = models.CharField(max_length=64)
    policy_config_sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=AuditStatus.choices, default=AuditStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    passed = models.BooleanField(null=True)
    library_versions = models.JSONField(default=dict)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same inputs and configuration are the same audit (idempotent).
            models.UniqueConstraint(
                fields=["model_version", "dataset_version", "predictions_sha256", "config_sha256"],
                name="unique_fairness_audit_inputs",
            )
        ]

    def __str__(self) -> str:
        return f"fairness audit {self.pk} of {self.model_version}"

    def save(self, *args, **kwargs):
        # A finished audit is evidence: it is stored once and never rewritten.
        if self.pk and type(self).objects.filter(pk=self.pk, status=AuditStatus.DONE).exists():
            raise FairnessAuditImmutable(f"{self} is finished and cannot change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise FairnessAuditImmutable("fairness audits are never deleted")

    @property
    def project(self):
        return self.model_version.registered_model.project
