"""Checks every action runs before it writes a record."""

from django.core.exceptions import ValidationError


def validated_save(record, *, actor=None, reason: str = "", exclude=None) -> None:
    """Run the model's full validation, then save with the actor and reason for its history."""
    record.full_clean(exclude=exclude)
    if reason:
        record._change_reason = reason
    if actor is not None:
        record._history_user = actor
    record.save()


def require_same_project(project, *records, field: str) -> None:
    """Refuse links between records of different projects: rights are per project."""
    for record in records:
        if record is not None and record.project.pk != project.pk:
            raise ValidationError(
                {field: f"{record} belongs to project {record.project.key}, not {project.key}"}
            )
