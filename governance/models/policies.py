"""Lifecycle policies: the stages, allowed transitions and gates, fixed before the work.

A policy version is data. Once approved (signed by a compliance officer) its definition never
changes; a change is a new version that needs its own approval before a project may use it.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from governance.choices import PolicyStatus
from registry.choices import RiskTier
from registry.models import traced_history


class PolicyImmutable(Exception):
    """An approved policy version's definition was about to change."""


class LifecyclePolicy(models.Model):
    """One version of a named lifecycle policy (see governance/policy_rules.py for the shape)."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    description = models.TextField(blank=True)
    definition = models.JSONField()
    status = models.CharField(
        max_length=16, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    # A shipped default for its risk tier: projects with no explicit binding use it.
    is_default = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    history = traced_history()

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="unique_policy_version"),
        ]
        verbose_name_plural = "lifecycle policies"

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk:
            stored = type(self).objects.filter(pk=self.pk).values("definition", "status").first()
            if (
                stored
                and stored["status"] != PolicyStatus.DRAFT
                and (stored["definition"] != self.definition)
            ):
                raise PolicyImmutable(f"{self} is approved: its definition cannot change")
        super().save(*args, **kwargs)

    def clean(self):
        from governance.policy_rules import validate_definition

        try:
            validate_definition(self.definition)
        except ValueError as exc:
            raise ValidationError({"definition": str(exc)}) from None


class ProjectPolicy(models.Model):
    """Which policy version governs a project's transitions. Changing it is an action."""

    PROJECT_PATH = "project"

    project = models.OneToOneField(
        "registry.Project", on_delete=models.PROTECT, related_name="policy_binding"
    )
    policy = models.ForeignKey(LifecyclePolicy, on_delete=models.PROTECT, related_name="bindings")
    bound_at = models.DateTimeField(auto_now=True)

    history = traced_history()

    def __str__(self) -> str:
        return f"{self.project} → {self.policy}"
