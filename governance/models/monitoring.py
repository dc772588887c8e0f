"""Monitoring of deployed model versions: reference data, checked batches, breaches, schedules,
retraining tickets and predetermined change-control plans."""

from django.conf import settings
from django.db import models

from registry.access import ProjectScopedQuerySet


class CheckStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class MonitoringKind(models.TextChoices):
    """The separate results of a check; each calls for a different response."""

    DATA_DRIFT = "data_drift", "Data drift"
    PREDICTION_DRIFT = "prediction_drift", "Prediction drift"
    PERFORMANCE = "performance", "Performance decay (concept drift)"
    FAIRNESS = "fairness", "Fairness drift"


class BatchSource(models.TextChoices):
    """What a production batch was given as."""

    ROWS = "rows", "Rows (CSV or Parquet)"
    SUMMARY = "summary", "Summary statistics (counts per bin and category)"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft (awaiting a compliance officer's signature)"
    APPROVED = "approved", "Approved"


def batch_path(instance, filename: str) -> str:
    return f"monitoring/{instance.model_version_id}/{filename}"


class MonitoringReference(models.Model):
    """The feature values of the dataset version a model version was validated on.

    Registered once per model version (the evaluation stores metrics, not rows), and tied to
    `dataset_version`, the test-split version of the version's latest evaluation.
    """

    PROJECT_PATH = "model_version__registered_model__project"

    model_version = models.OneToOneField(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="monitoring_reference"
    )
    dataset_version = models.ForeignKey(
        "registry.DatasetVersion", on_delete=models.PROTECT, related_name="+"
    )
    file = models.FileField(upload_to=batch_path)
    sha256 = models.CharField(max_length=64)
    row_count = models.PositiveBigIntegerField()
    columns = models.JSONField(default=list)
    # Each column's kind and bins as the drift check sees them (quantile edges, categories):
    # what summary-statistics batches are counted on (governance/monitoring/summary.py).
    profile = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"monitoring reference of {self.model_version}"

    @property
    def project(self):
        return self.model_version.registered_model.project


class MonitoringReport(models.Model):
    """One production batch of a model version checked against its reference data.

    Data drift, prediction drift, performance decay (labels present) and fairness drift
    (sensitive features and labels present) are stored separately, each with its own level.
    """

    PROJECT_PATH = "model_version__registered_model__project"

    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="monitoring_reports"
    )
    reference = models.ForeignKey(
        MonitoringReference, on_delete=models.PROTECT, related_name="reports"
    )
    reference_dataset_version = models.ForeignKey(
        "registry.DatasetVersion", on_delete=models.PROTECT, related_name="+"
    )
    # The uploaded file, or for summary statistics their canonical JSON.
    batch = models.FileField(upload_to=batch_path)
    batch_sha256 = models.CharField(max_length=64, db_index=True)
    source = models.CharField(max_length=16, choices=BatchSource.choices, default=BatchSource.ROWS)
    row_count = models.PositiveBigIntegerField(default=0)
    # The policy's monitoring settings as applied, so a report can be re-read as judged.
    thresholds = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=CheckStatus.choices, default=CheckStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    data_drift = models.JSONField(null=True, blank=True)
    prediction_drift = models.JSONField(null=True, blank=True)
    performance = models.JSONField(null=True, blank=True)
    fairness_drift = models.JSONField(null=True, blank=True)
    # {kind: "ok" | "warn" | "breach"} for the kinds that could be checked on this batch.
    levels = models.JSONField(default=dict)
    breached = models.JSONField(default=list, help_text="The kinds at breach level.")
    scheduled = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"monitoring report {self.pk} of {self.model_version}"

    @property
    def project(self):
        return self.model_version.registered_model.project


class MonitoringBreach(models.Model):
    """A breach of one kind in one report, and the policy actions taken for it.

    Unique per (report, kind): the row is created before the actions run, in the same
    transaction, so re-running a check never repeats them.
    """

    PROJECT_PATH = "report__model_version__registered_model__project"

    report = models.ForeignKey(MonitoringReport, on_delete=models.PROTECT, related_name="breaches")
    kind = models.CharField(max_length=32, choices=MonitoringKind.choices)
    # [{"action": "notify" | "suspend" | "retraining_ticket", "done": bool, "detail": str}]
    actions = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["report", "kind"], name="one_breach_per_report_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} breach in {self.report}"


class RetrainingTicket(models.Model):
    """A request to retrain a model version, opened by a monitoring breach."""

    PROJECT_PATH = "model_version__registered_model__project"

    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="retraining_tickets"
    )
    report = models.ForeignKey(
        MonitoringReport, on_delete=models.PROTECT, related_name="retraining_tickets"
    )
    reason = models.TextField()
    status = models.CharField(
        max_length=16, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"retraining ticket {self.pk} for {self.model_version}"


class MonitoringSchedule(models.Model):
    """How often the latest batch of a model's production versions is re-checked (Celery beat)."""

    PROJECT_PATH = "registered_model__project"

    registered_model = models.OneToOneField(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="monitoring_schedule"
    )
    interval_hours = models.PositiveIntegerField()
    last_run = models.DateTimeField(null=True, blank=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"every {self.interval_hours} h: {self.registered_model}"


class ChangeControlPlan(models.Model):
    """A predetermined change-control plan (in the manner of the FDA's PCCP) for a project.

    `allowed_modifications` describes what a retrained version may change, as data:
    {"same_input_schema": true, "same_framework": true}. `protocol` names the checks a
    retrained version must pass, with thresholds fixed before any retraining:
    {"checks": ["evaluation_meets_acceptance", ...], "max_metric_drop": {"accuracy": 0.01}}.
    Versioned per project; an approved plan is never edited. It is approved by a compliance
    officer's `Signature` (`plan.signatures`), bound to the hash of `plan_record(plan)`.
    """

    PROJECT_PATH = "project"

    project = models.ForeignKey(
        "registry.Project", on_delete=models.PROTECT, related_name="change_control_plans"
    )
    version = models.PositiveIntegerField()
    description = models.TextField()
    allowed_modifications = models.JSONField(default=dict)
    protocol = models.JSONField(default=dict)
    impact_assessment = models.TextField()
    status = models.CharField(max_length=16, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="unique_plan_version")
        ]

    def __str__(self) -> str:
        return f"change-control plan v{self.version} of {self.project}"

    @property
    def approval(self):
        """The compliance officer's approving signature, or None for a draft (reads
        prefetched `signatures` when they are)."""
        return next((s for s in self.signatures.all() if s.meaning == "approved"), None)
