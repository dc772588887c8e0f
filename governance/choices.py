"""Enumerations of the governance records."""

from django.db import models


class AuditAction(models.TextChoices):
    """What an audit event records. Record-level changes come from the history hook."""

    RECORD_CREATED = "record.created", "Record created"
    RECORD_UPDATED = "record.updated", "Record updated"
    RECORD_DELETED = "record.deleted", "Record deleted"
    TRANSITION_REQUESTED = "transition.requested", "Transition requested"
    GATES_EVALUATED = "transition.gates_evaluated", "Gates evaluated"
    SIGNATURE_RECORDED = "signature.recorded", "Signature recorded"
    SIGNATURE_REFUSED = "signature.refused", "Signature refused (wrong password)"
    TRANSITION_APPLIED = "transition.applied", "Transition applied"
    TRANSITION_REJECTED = "transition.rejected", "Transition rejected"
    TRANSITION_WITHDRAWN = "transition.withdrawn", "Transition withdrawn"
    TRANSITION_SUPERSEDED = "transition.superseded", "Transition superseded"
    TRANSITION_EXPIRED = "transition.expired", "Transition expired"
    STAGE_CHANGED = "stage.changed", "Stage changed"
    POLICY_CREATED = "policy.created", "Policy version created"
    POLICY_APPROVED = "policy.approved", "Policy version approved"
    POLICY_BOUND = "policy.bound", "Project bound to a policy version"
    ACCESS_CHANGED = "access.changed", "Access changed"
    LOGIN_LOCKED_OUT = "login.locked_out", "Account locked out"
    EXPORT_CREATED = "export.created", "Document exported"
    FAIRNESS_AUDIT_REQUESTED = "fairness.requested", "Fairness audit requested"
    FAIRNESS_AUDIT_COMPLETED = "fairness.completed", "Fairness audit completed"
    FAIRNESS_AUDIT_USED = "fairness.used_in_gate", "Fairness audit used in a gate"
    MONITORING_BREACH = "monitoring.breach", "Monitoring breach"
    MONITORING_CHECK_FAILED = "monitoring.check_failed", "Monitoring check failed"
    CHECKPOINT = "audit.checkpoint", "Audit checkpoint written"


class SignatureMeaning(models.TextChoices):
    """What a signer attests to (21 CFR 11.50(a)(3): the meaning of the signature)."""

    AUTHORED = "authored", "Authored"
    REVIEWED = "reviewed", "Reviewed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    RESPONSIBILITY = "responsibility", "Responsibility"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Approved and applied"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    SUPERSEDED = "superseded", "Superseded"
    EXPIRED = "expired", "Expired"


class PolicyStatus(models.TextChoices):
    DRAFT = "draft", "Draft (awaiting a compliance officer's signature)"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


class ExportKind(models.TextChoices):
    """The documents Stagegate exports as PDF/A-3b with their machine-readable record."""

    DOSSIER = "dossier", "Model dossier"
    AUDIT_TRAIL = "audit_trail", "Audit-trail report"
    FAIRNESS = "fairness", "Fairness report"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
