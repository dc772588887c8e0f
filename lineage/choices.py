"""Enumerations of the lineage records."""

from django.db import models


class RunKind(models.TextChoices):
    PREPROCESSING = "preprocessing", "Preprocessing"
    TRAINING = "training", "Training"
    EVALUATION = "evaluation", "Evaluation"
    OTHER = "other", "Other"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ABORTED = "aborted", "Aborted"


class NodeKind(models.TextChoices):
    """Kinds of vertices in the provenance graph; each is one immutable record version."""

    DATASET_VERSION = "dataset_version", "Dataset version"
    RUN = "run", "Run"
    CODE_VERSION = "code_version", "Code version"
    MODEL_VERSION = "model_version", "Model version"
    EVALUATION = "evaluation", "Evaluation"
    FAIRNESS_AUDIT = "fairness_audit", "Fairness audit"
    EXPORT = "export", "Document export"


class EdgeKind(models.TextChoices):
    """How one record led to another (edges point from cause to effect)."""

    USED = "used", "was used by"
    GENERATED = "generated", "generated"
    CODE = "code", "was the code of"
    DERIVED = "derived", "was derived into"
    EVALUATED = "evaluated", "was evaluated by"
    PARENT = "parent", "was the parent run of"
