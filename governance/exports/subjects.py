"""What a requested export is about: the subject given to the API, checked and resolved.

A subject names a record the requester may see (others answer 404, as if absent), in one of
the shapes of its kind; anything else is a 400 that says what was expected.
"""

from dataclasses import dataclass
from datetime import UTC

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.dateparse import parse_datetime

from governance.choices import ExportKind
from governance.errors import GovernanceError
from governance.exports.documents import fairness_audit_model
from registry.choices import ProjectRight
from registry.models import ModelVersion, Project


class FairnessUnavailable(GovernanceError):
    """Fairness reports were asked for before fairness audits exist in this installation."""


@dataclass(frozen=True)
class Subject:
    """The normalized subject stored on the export, and the project it belongs to."""

    kind: str
    value: dict
    project: Project


def _identifier(raw, key: str) -> int:
    value = raw.get(key) if isinstance(raw, dict) else raw
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationError({"subject": f"give the {key.replace('_', ' ')} id, e.g. 12"})
    return int(value)


def _moment(raw: dict, key: str) -> str | None:
    text = raw.get(key)
    if text in (None, ""):
        return None
    moment = parse_datetime(str(text)) if isinstance(text, str) else None
    if moment is None:
        raise ValidationError({"subject": f"{key} must be an ISO 8601 date-time"})
    if moment.tzinfo is None:
        raise ValidationError({"subject": f"{key} needs a time zone, e.g. 2026-01-01T00:00:00Z"})
    return moment.astimezone(UTC).isoformat()


def resolve(kind: str, raw, user) -> Subject:
    """The subject of an export request, among the records `user` may see."""
    if kind not in ExportKind.values:
        raise ValidationError({"kind": f"unknown kind {kind!r}; use one of {ExportKind.values}"})
    if kind == ExportKind.DOSSIER:
        pk = _identifier(raw, "model_version")
        version = (
            ModelVersion.objects.visible_to(user, ProjectRight.VIEW)
            .select_related("registered_model__project")
            .filter(pk=pk)
            .first()
        )
        if version is None:
            raise Http404("No such model version.")
        return Subject(kind, {"model_version": pk}, version.registered_model.project)
    if kind == ExportKind.AUDIT_TRAIL:
        fields = {"project": raw} if isinstance(raw, str) else raw
        if not isinstance(fields, dict) or not isinstance(fields.get("project"), str):
            raise ValidationError(
                {"subject": 'give {"project": key} with optional "since" and "until" (ISO 8601)'}
            )
        since, until = _moment(fields, "since"), _moment(fields, "until")
        if since and until and since >= until:
            raise ValidationError({"subject": "since must be before until"})
        project = Project.objects.visible_to(user, ProjectRight.VIEW).filter(key=fields["project"])
        if not project.exists():
            raise Http404("No such project.")
        return Subject(
            kind, {"project": fields["project"], "since": since, "until": until}, project.get()
        )
    audit_model = fairness_audit_model()
    if audit_model is None:
        raise FairnessUnavailable("fairness audits are not available")
    pk = _identifier(raw, "fairness_audit")
    visible = ModelVersion.objects.visible_to(user, ProjectRight.VIEW)
    audit = (
        audit_model.objects.filter(pk=pk, model_version__in=visible)
        .select_related("model_version__registered_model__project")
        .first()
    )
    if audit is None:
        raise Http404("No such fairness audit.")
    return Subject(kind, {"fairness_audit": pk}, audit.model_version.registered_model.project)
