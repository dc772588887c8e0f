"""Checks every action runs before it writes a record."""

from django.core.exceptions import ValidationError


def validated_save(record, *, actor=None, reason: str = "", exclude=None) -> None:
    """Run the model's full validation, then save with who and why for its history.

    The actor is set on the record itself so that work outside a request (management
    commands, Celery tasks, the shell) still names who made the change.
    """
    record.full_clean(exclude=exclude)
    if actor is not None:
        record._history_user = actor
    # Always set, so a reason given for an earlier save of this instance is not reused.
    record._change_reason = reason
    record.save()


def require_same_project(project, *records, field: str) -> None:
    """Refuse links between records of different projects: rights are per project."""
    for record in records:
        if record is not None and record.project.pk != project.pk:
            raise ValidationError(
                {field: f"{record} belongs to project {record.project.key}, not {project.key}"}
            )
