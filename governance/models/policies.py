"""Lifecycle policies: the stages, allowed transitions and gates, fixed before the work.

A policy version is data. Once approved (signed by a compliance officer) it never changes; a
change is a new version that needs its own approval before a project may use it. The rules
below hold for every way Django writes the table (save, queryset update and bulk_update,
delete); database triggers (governance/policy_triggers.py) hold them for raw SQL too.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction

from governance.choices import PolicyStatus, SignatureMeaning
from registry.choices import RiskTier
from registry.models import traced_history


class PolicyImmutable(Exception):
    """An approved, retired or bound policy version was about to change or be deleted."""


# The status moves a policy version makes: a compliance officer's signature approves a draft,
# an approved version is retired when it no longer governs, and an unused draft is abandoned.
STATUS_MOVES = {
    (PolicyStatus.DRAFT, PolicyStatus.APPROVED),
    (PolicyStatus.APPROVED, PolicyStatus.RETIRED),
    (PolicyStatus.DRAFT, PolicyStatus.RETIRED),
}
SETTLED = (PolicyStatus.APPROVED, PolicyStatus.RETIRED)


def _label(row: dict) -> str:
    return f"{row['name']} v{row['version']}"


def _state(row: dict, bound: bool) -> str:
    """What makes a stored version immutable, as a phrase: 'is approved', 'governs a project'."""
    if row["status"] in SETTLED:
        return f"is {row['status']}"
    return "governs a project" if bound else ""


def _approval_signed(after: dict) -> bool:
    """A compliance officer's approval signature exists on exactly this version's record."""
    from governance.models.transitions import Signature
    from governance.signing import digest, policy_record

    record = LifecyclePolicy(**after)
    return Signature.objects.filter(
        policy_id=after["id"],
        meaning=SignatureMeaning.APPROVED,
        record_sha256=digest(policy_record(record))[1],
    ).exists()


def change_refusal(stored: dict, changes: dict, *, bound: bool | None = None) -> str | None:
    """Why a stored policy version (its column values by attname) may not take `changes`, or
    None when it may. `bound` is whether a project is bound to it (read when not given)."""
    if bound is None:
        bound = stored["status"] == PolicyStatus.DRAFT and _is_bound(stored["id"])
    label, state = _label(stored), _state(stored, bound)
    # The approval sets the status and its time; every other column is the version itself.
    moving = {"status", "approved_at"} if stored["status"] == PolicyStatus.DRAFT else {"status"}
    changed = sorted(
        name
        for name, value in changes.items()
        if name not in moving and (_is_expression(value) or value != stored[name])
    )
    if changed and state:
        fields = ", ".join(name.removesuffix("_id").replace("_", " ") for name in changed)
        return f"{label} {state}: its {fields} cannot change; propose a new policy version"
    old, new = stored["status"], changes.get("status", stored["status"])
    if _is_expression(new):
        return f"the status of {label} is set only by the policy actions"
    if new == old:
        return None
    if (old, new) not in STATUS_MOVES:
        if old == PolicyStatus.APPROVED and new == PolicyStatus.DRAFT:
            return f"{label} is approved: it never goes back to draft; propose a new version"
        return f"{label} is {old}: it cannot become {new}"
    if new == PolicyStatus.APPROVED and not _approval_signed({**stored, **changes}):
        return (
            f"{label} is approved only by a compliance officer's signature on this version "
            "(approve_policy_version)"
        )
    return None


def _is_expression(value) -> bool:
    return hasattr(value, "resolve_expression")


def _is_bound(policy_pk) -> bool:
    return ProjectPolicy.objects.filter(policy_id=policy_pk).exists()


def _attnames() -> list[str]:
    return [field.attname for field in LifecyclePolicy._meta.concrete_fields]


class LifecyclePolicyQuerySet(models.QuerySet):
    """Policy versions. Bulk writes keep the rules of `LifecyclePolicy.save()` and `delete()`:
    a bulk write that skipped them would change a version projects are governed by."""

    def update(self, **kwargs):
        changes = {}
        for name, value in kwargs.items():
            field = self.model._meta.get_field(name)
            changes[field.attname] = value.pk if isinstance(value, models.Model) else value
        rows = list(self.values(*_attnames()))
        drafts = [row["id"] for row in rows if row["status"] == PolicyStatus.DRAFT]
        bound = set(
            ProjectPolicy.objects.filter(policy_id__in=drafts).values_list("policy_id", flat=True)
        )
        for row in rows:
            refusal = change_refusal(row, changes, bound=row["id"] in bound)
            if refusal:
                raise PolicyImmutable(refusal)
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        # Each version is saved on its own, through save()'s checks and with its history row:
        # the table holds a few policy versions, not enough to need one statement.
        objs = list(objs)
        if any(obj.pk is None for obj in objs):
            raise ValueError("All bulk_update() objects must have a primary key set.")
        with transaction.atomic(using=self.db):
            for obj in objs:
                obj.save(update_fields=fields, using=self.db)
        return len(objs)

    def delete(self):
        settled = self.filter(
            models.Q(status__in=SETTLED)
            | models.Exists(ProjectPolicy.objects.filter(policy_id=models.OuterRef("pk")))
        ).first()
        if settled is not None:
            raise PolicyImmutable(settled.deletion_refusal())
        return super().delete()

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]


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
    objects = LifecyclePolicyQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="unique_policy_version"),
        ]
        verbose_name_plural = "lifecycle policies"

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs):
        refusal = self.change_refusal(kwargs.get("update_fields"))
        if refusal:
            raise PolicyImmutable(refusal)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        refusal = self.deletion_refusal()
        if refusal:
            raise PolicyImmutable(refusal)
        return super().delete(*args, **kwargs)

    def clean(self):
        from governance.policy_rules import validate_definition

        # Forms (the admin's) show the refusal instead of failing in save().
        refusal = self.change_refusal()
        if refusal:
            raise ValidationError(refusal)
        try:
            validate_definition(self.definition)
        except ValueError as exc:
            raise ValidationError({"definition": str(exc)}) from None

    def change_refusal(self, update_fields=None) -> str | None:
        """Why saving this instance (or only `update_fields`) would be refused, or None."""
        if self._state.adding or self.pk is None:
            return None
        stored = type(self).objects.filter(pk=self.pk).values(*_attnames()).first()
        if stored is None:
            return None
        written = None if update_fields is None else set(update_fields)
        changes = {
            field.attname: getattr(self, field.attname)
            for field in self._meta.concrete_fields
            if written is None or field.name in written or field.attname in written
        }
        return change_refusal(stored, changes)

    def deletion_refusal(self) -> str | None:
        """Why deleting this version is refused, or None: an approved or retired version, or
        one a project is bound to, stays on record with the decisions made under it."""
        stored = type(self).objects.filter(pk=self.pk).values("name", "version", "status").first()
        if stored is None:
            return None
        state = _state(stored, bound=_is_bound(self.pk))
        if state:
            return f"{_label(stored)} {state}: it is never deleted"
        return None


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
