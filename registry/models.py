"""What exists: projects, registered models and their versions, datasets, evaluations.

Records are created and changed through `registry.services` (the actions), which validate,
keep the lineage graph in step and run inside transactions. Every model keeps its history
with django-simple-history; every project-owned record is scoped by the project's rights.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from registry.access import ProjectQuerySet, ProjectScopedQuerySet
from registry.choices import AccessAction, Level, RiskStatus, RiskTier, Split, Stage, TaskType
from registry.history import OnceBuiltHistoryManager, TracedHistory
from registry.validators import (
    validate_acceptance_criteria,
    validate_json_object,
    validate_metrics,
    validate_schema,
    validate_sha256,
    validate_string_list,
)

key_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,62}$",
    "use 2–63 lowercase letters, digits or hyphens, starting with a letter or digit",
)


def traced_history(**kwargs) -> HistoricalRecords:
    """History with the actor's printed name and the request id on every row."""
    kwargs.setdefault("history_manager", OnceBuiltHistoryManager)
    return HistoricalRecords(bases=[TracedHistory], **kwargs)


class Project(models.Model):
    """An ML use case: what it is for, how risky it is, and what a model must achieve."""

    key = models.CharField(max_length=63, unique=True, validators=[key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    business_objective = models.TextField(blank=True)
    intended_use = models.TextField(blank=True)
    out_of_scope_uses = models.TextField(blank=True)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects"
    )
    acceptance_criteria = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_acceptance_criteria],
        help_text="List of {metric, threshold, direction: higher|lower, split}.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = traced_history()
    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        permissions = [
            ("contribute_project", "Can register records and request transitions in a project"),
            ("review_project", "Can review and sign a project's transition requests"),
            ("export_project", "Can export a project's documents and read its audit trail"),
            ("manage_project", "Can manage a project's settings and access"),
        ]

    def __str__(self) -> str:
        return self.key


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """A user's right on one project (guardian, with a real foreign key)."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    """A group's right on one project (guardian, with a real foreign key)."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class RiskItem(models.Model):
    """One entry of a project's risk register."""

    PROJECT_PATH = "project"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="risks")
    description = models.TextField()
    likelihood = models.CharField(max_length=8, choices=Level.choices)
    impact = models.CharField(max_length=8, choices=Level.choices)
    mitigation = models.TextField(blank=True)
    detection = models.TextField(blank=True, help_text="How the risk would be detected.")
    status = models.CharField(max_length=16, choices=RiskStatus.choices, default=RiskStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "id"]

    def __str__(self) -> str:
        return f"{self.project.key}: {self.description[:60]}"


class RegisteredModel(models.Model):
    """A model in a project; its versions are what move through the lifecycle."""

    PROJECT_PATH = "project"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=200, validators=[key_validator])
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=32, choices=TaskType.choices)
    # The highest version number ever issued: numbers are never reused.
    last_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], name="unique_model_name_per_project"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project.key}/{self.name}"


class StageWriteRefused(Exception):
    """A model version's stage was written outside a governance transition."""


class ModelVersionQuerySet(ProjectScopedQuerySet):
    """Model versions. A bulk write of the stage is refused: it would skip save(), so the
    transition check, the history row and the audit event (DESIGN rule 2). The database
    refuses it too (registry/stage_guard.py); these checks give the clearer message."""

    def update(self, **kwargs):
        if "stage" in kwargs:
            raise StageWriteRefused(
                "the stage of model versions cannot be bulk-updated; request a transition"
            )
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        if "stage" in fields:
            raise StageWriteRefused(
                "the stage of model versions cannot be bulk-updated; request a transition"
            )
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        if any(obj.stage != Stage.DEVELOPMENT for obj in objs):
            raise StageWriteRefused(
                "model versions are created in the development stage; request a transition"
            )
        return super().bulk_create(objs, *args, **kwargs)


class ModelVersion(models.Model):
    """One trained artifact of a registered model, with its model card and provenance."""

    PROJECT_PATH = "registered_model__project"
    MODEL_CARD_FIELDS = (
        "intended_use",
        "factors",
        "limitations",
        "ethical_considerations",
        "caveats",
    )

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="versions"
    )
    version = models.PositiveIntegerField(editable=False)
    artifact_uri = models.CharField(max_length=1000)
    artifact_sha256 = models.CharField(max_length=64, validators=[validate_sha256])
    framework = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    # Model card (Mitchell et al., "Model Cards for Model Reporting").
    intended_use = models.TextField(blank=True)
    factors = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    ethical_considerations = models.TextField(blank=True)
    caveats = models.TextField(blank=True)
    run = models.ForeignKey(
        "lineage.Run",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="model_versions",
        help_text="The run that produced this version.",
    )
    derived_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="derivatives"
    )
    # Written only by governance transitions (see save()).
    stage = models.CharField(
        max_length=16, choices=Stage.choices, default=Stage.DEVELOPMENT, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = traced_history()
    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["registered_model", "-version"]
        # Related lookups and `_base_manager` get the guarded manager too, not a plain one.
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "version"], name="unique_version_number_per_model"
            )
        ]
        indexes = [models.Index(fields=["stage"])]

    def __str__(self) -> str:
        return f"{self.registered_model} v{self.version}"

    def save(self, *args, **kwargs):
        # Stages move only through transitions (DESIGN rule 2): the governance action saves
        # the instance inside `registry.stage_guard.moving_stage`, which sets
        # `_stage_transition` and authorises the write for the database's guard.
        loaded = getattr(self, "_stage_as_loaded", Stage.DEVELOPMENT)
        if self.stage != loaded and not getattr(self, "_stage_transition", False):
            raise StageWriteRefused(
                f"the stage of {self} cannot be written directly; request a transition"
            )
        super().save(*args, **kwargs)
        self._stage_as_loaded = self.stage
        self._stage_transition = False

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stage_as_loaded = instance.__dict__.get("stage")
        return instance

    @property
    def project(self) -> Project:
        return self.registered_model.project


class Dataset(models.Model):
    """A named data set in a project; its content lives in immutable versions."""

    PROJECT_PATH = "project"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=200, validators=[key_validator])
    description = models.TextField(blank=True)
    # The highest version number ever issued: numbers are never reused.
    last_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], name="unique_dataset_name_per_project"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project.key}/{self.name}"


class DatasetVersion(models.Model):
    """One exact content of a data set, identified by its SHA-256, with its datasheet."""

    PROJECT_PATH = "dataset__project"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(editable=False)
    uri = models.CharField(max_length=1000)
    content_sha256 = models.CharField(max_length=64, validators=[validate_sha256])
    row_count = models.PositiveBigIntegerField(validators=[MinValueValidator(0)])
    schema = models.JSONField(default=list, blank=True, validators=[validate_schema])
    split = models.CharField(max_length=16, choices=Split.choices)
    # Datasheet (Gebru et al., "Datasheets for Datasets").
    motivation = models.TextField(blank=True)
    composition = models.TextField(blank=True)
    collection_process = models.TextField(blank=True)
    preprocessing = models.TextField(blank=True)
    known_biases = models.TextField(blank=True, help_text="Known biases and gaps.")
    sensitive_attributes = models.JSONField(
        default=list, blank=True, validators=[validate_string_list]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "version"], name="unique_dataset_version_number"
            ),
            # The same content registered twice is the same version (idempotent registration).
            models.UniqueConstraint(
                fields=["dataset", "content_sha256"], name="unique_dataset_content"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.version}"

    @property
    def project(self) -> Project:
        return self.dataset.project

    def clean(self):
        # clean() runs even when the fields' own validators failed: check only what they let by.
        try:
            validate_schema(self.schema)
            validate_string_list(self.sensitive_attributes)
        except ValidationError:
            return
        schema_names = {column["name"] for column in self.schema}
        unknown = [a for a in self.sensitive_attributes if schema_names and a not in schema_names]
        if unknown:
            raise ValidationError(
                {"sensitive_attributes": f"not columns of the schema: {', '.join(unknown)}"}
            )


def predictions_path(instance, filename: str) -> str:
    return f"predictions/{instance.model_version_id}/{filename}"


class Evaluation(models.Model):
    """A model version measured on one exact dataset version, with its baselines."""

    PROJECT_PATH = "model_version__registered_model__project"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="evaluations"
    )
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="evaluations"
    )
    metrics = models.JSONField(default=dict, validators=[validate_metrics])
    baselines = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text="{baseline name: {metric: value}}, e.g. majority_class, random, simple_model.",
    )
    predictions = models.FileField(upload_to=predictions_path, blank=True)
    predictions_sha256 = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.dataset_version}"


class AccessChange(models.Model):
    """One change to who may do what: a grant or revoke of a project right, a role (group)
    membership change, a deactivation, a lockout. Append-only; written by
    `registry.access_log`, which also sends the `access_changed` signal for the audit trail."""

    action = models.CharField(max_length=32, choices=AccessAction.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who made the change (empty: the system, e.g. a migration or a lockout).",
    )
    # Printed names are copied so the record reads the same whatever happens to the accounts.
    actor_name = models.CharField(max_length=300)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_changes",
    )
    target_group = models.ForeignKey(
        "auth.Group", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_name = models.CharField(max_length=300, help_text="The user's or group's name.")
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_changes",
    )
    right = models.CharField(
        max_length=255, blank=True, help_text="The project right or the permission concerned."
    )
    detail = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        where = f" on {self.project.key}" if self.project is not None else ""
        what = f" {self.right}" if self.right else ""
        return f"{self.get_action_display()}{what}: {self.target_name}{where} by {self.actor_name}"
