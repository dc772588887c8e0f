"""Enumerations used by the registry records."""

from django.db import models


class RiskTier(models.TextChoices):
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"


class TaskType(models.TextChoices):
    BINARY = "binary_classification", "Binary classification"
    MULTICLASS = "multiclass_classification", "Multiclass classification"
    REGRESSION = "regression", "Regression"


class Stage(models.TextChoices):
    """Stages of a model version's lifecycle; only governance transitions move between them."""

    DEVELOPMENT = "development", "Development"
    VALIDATION = "validation", "Validation"
    APPROVED = "approved", "Approved"
    STAGING = "staging", "Staging (shadow/canary)"
    PRODUCTION = "production", "Production"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"
    REJECTED = "rejected", "Rejected"
    SUSPENDED = "suspended", "Suspended"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"
    PRODUCTION = "production", "Production"


class Direction(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"


class Level(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class RiskStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATED = "mitigated", "Mitigated"
    ACCEPTED = "accepted", "Accepted"
    CLOSED = "closed", "Closed"


class ProjectRight(models.TextChoices):
    """Per-project rights, stored as django-guardian object permissions on Project."""

    VIEW = "view", "View the project and everything in it"
    CONTRIBUTE = "contribute", "Register datasets, runs, versions; request transitions"
    REVIEW = "review", "Review and sign transition requests"
    EXPORT = "export", "Export documents and read the audit trail"
    MANAGE = "manage", "Manage the project's settings and access"


# Metrics an evaluation computes, by task; acceptance criteria may name any of them.
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")
ALL_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS


class AccessAction(models.TextChoices):
    """Kinds of change to who may do what, as recorded in the access log."""

    RIGHT_GRANTED = "right_granted", "Project right granted"
    RIGHT_REVOKED = "right_revoked", "Project right revoked"
    ROLE_ADDED = "role_added", "Added to a role (group)"
    ROLE_REMOVED = "role_removed", "Removed from a role (group)"
    PERMISSION_ADDED = "permission_added", "Model permission added"
    PERMISSION_REMOVED = "permission_removed", "Model permission removed"
    USER_CREATED = "user_created", "User created"
    DEACTIVATED = "deactivated", "User deactivated"
    REACTIVATED = "reactivated", "User reactivated"
    STAFF_GRANTED = "staff_granted", "Admin site access granted"
    STAFF_REVOKED = "staff_revoked", "Admin site access revoked"
    SUPERUSER_GRANTED = "superuser_granted", "Superuser status granted"
    SUPERUSER_REVOKED = "superuser_revoked", "Superuser status revoked"
    LOCKED_OUT = "locked_out", "Locked out after failed logins"
    UNLOCKED = "unlocked", "Lockout cleared"
