"""Transition requests and the electronic signatures that decide them."""

from django.conf import settings
from django.db import models

from governance.choices import RequestStatus, SignatureMeaning
from registry.access import ProjectScopedQuerySet
from registry.choices import ProjectRight, Stage
from registry.insert_only import InsertOnlyModel, InsertOnlyWrites
from registry.models import traced_history


class TransitionRequest(models.Model):
    """A request to move one model version from one stage to another, with its gate results."""

    PROJECT_PATH = "model_version__registered_model__project"

    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="transition_requests"
    )
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    justification = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transition_requests"
    )
    requested_by_name = models.CharField(max_length=300)
    policy = models.ForeignKey(
        "governance.LifecyclePolicy", on_delete=models.PROTECT, related_name="requests"
    )
    # The policy's rule for this transition, copied when the request is made.
    rule = models.JSONField()
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True
    )
    # [{name, passed, reason, evidence}] from the last evaluation.
    gate_results = models.JSONField(default=list)
    gates_evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A request is made only while none is pending, under the version's row lock; the
            # database holds it too, so applying one never leaves another pending behind.
            models.UniqueConstraint(
                fields=["model_version"],
                condition=models.Q(status="pending"),
                name="one_pending_request_per_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version}: {self.from_stage} → {self.to_stage} ({self.status})"

    @property
    def project(self):
        return self.model_version.registered_model.project

    @property
    def is_open(self) -> bool:
        return self.status == RequestStatus.PENDING


class SignatureAltered(Exception):
    """A signature was about to be changed or deleted; signatures are permanent."""


class SignatureQuerySet(InsertOnlyWrites, ProjectScopedQuerySet):
    """Signatures. They are inserted complete and never edited or deleted (21 CFR 11.10(e),
    11.70): a bulk write would skip `Signature.save()` and `delete()`, so it is refused too
    (registry/insert_only.py). The database refuses what goes around both
    (governance/signature_triggers.py)."""

    def visible_to(self, user, action: str = ProjectRight.VIEW):
        """Signatures of requests and plans of projects the user holds `action` on; policy
        signatures are on records every signed-in user may read."""
        if user is None or not (user.is_authenticated and user.is_active):
            return self.none()
        if user.is_superuser:
            return self
        from registry.models import Project

        projects = Project.objects.visible_to(user, action).values("pk")
        return self.filter(
            models.Q(request__model_version__registered_model__project__in=projects)
            | models.Q(plan__project__in=projects)
            | models.Q(policy__isnull=False)
        )


class Signature(InsertOnlyModel):
    """An electronic signature (21 CFR 11.50, 11.70) on a transition request, a policy version
    or a change-control plan version.

    It shows the signer's printed name, the UTC time and the meaning, and is bound to the
    SHA-256 of exactly what was signed (the canonical JSON in `signed_record`), so a signed
    record that later changes shows as no longer matching.
    """

    PROJECT_PATH = "request__model_version__registered_model__project"

    # Exactly one of request, policy and plan: the record this signature is on.
    request = models.ForeignKey(
        TransitionRequest,
        on_delete=models.PROTECT,
        related_name="signatures",
        null=True,
        blank=True,
    )
    policy = models.ForeignKey(
        "governance.LifecyclePolicy",
        on_delete=models.PROTECT,
        related_name="signatures",
        null=True,
        blank=True,
    )
    plan = models.ForeignKey(
        "governance.ChangeControlPlan",
        on_delete=models.PROTECT,
        related_name="signatures",
        null=True,
        blank=True,
    )
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures"
    )
    printed_name = models.CharField(max_length=300)
    role = models.CharField(max_length=50, help_text="The role the signer signed in.")
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=16, choices=SignatureMeaning.choices)
    comment = models.TextField(blank=True)
    record_sha256 = models.CharField(max_length=64)
    signed_record = models.TextField(help_text="The canonical JSON that was signed.")

    objects = SignatureQuerySet.as_manager()

    class Meta:
        ordering = ["signed_at", "id"]
        # Related lookups and `_base_manager` get the guarded manager too, not a plain one.
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["request", "signer"], name="one_signature_per_signer"),
            models.UniqueConstraint(
                fields=["policy", "signer"], name="one_policy_signature_per_signer"
            ),
            models.UniqueConstraint(
                fields=["plan", "signer"], name="one_plan_signature_per_signer"
            ),
            models.CheckConstraint(
                condition=models.Q(request__isnull=False, policy__isnull=True, plan__isnull=True)
                | models.Q(request__isnull=True, policy__isnull=False, plan__isnull=True)
                | models.Q(request__isnull=True, policy__isnull=True, plan__isnull=False),
                name="signature_on_one_record",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.signed_at:%Y-%m-%d %H:%M:%S} UTC"
        return f"{self.printed_name} — {self.get_meaning_display()} — {when}"

    @classmethod
    def refused(cls, what: str) -> Exception:
        return SignatureAltered(f"signatures are never {what}")

    @property
    def project(self):
        if self.request_id:
            return self.request.project
        return self.plan.project if self.plan_id else None
