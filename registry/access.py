"""The one place that decides who sees what.

Rights are django-guardian object permissions on Project (direct foreign-key tables, so the
check is one indexed subquery). Everything under a project inherits the project's rights:
each scoped model names the path to its project in `PROJECT_PATH`, and its queryset's
`visible_to(user, action)` filters through it. Every API view, page, export and lineage
query starts from `visible_to`; superusers are the only exception.
"""

from django.db import models
from django.db.models import Q

from registry.choices import ProjectRight


def permission_codename(action: str) -> str:
    """The guardian permission codename for a project right ("view" → "view_project")."""
    if action not in ProjectRight.values:
        raise ValueError(f"unknown project right {action!r}; use one of {ProjectRight.values}")
    return f"{action}_project"


def _can_act(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


class ProjectQuerySet(models.QuerySet):
    """Projects, filtered by the rights a user holds on each one."""

    def visible_to(self, user, action: str = ProjectRight.VIEW):
        codename = permission_codename(action)
        if not _can_act(user):
            return self.none()
        if user.is_superuser:
            return self
        from registry.models import ProjectGroupObjectPermission, ProjectUserObjectPermission

        direct = ProjectUserObjectPermission.objects.filter(
            user=user, permission__codename=codename
        ).values("content_object_id")
        via_group = ProjectGroupObjectPermission.objects.filter(
            group__user=user, permission__codename=codename
        ).values("content_object_id")
        return self.filter(Q(pk__in=direct) | Q(pk__in=via_group))


class ProjectScopedQuerySet(models.QuerySet):
    """Records that belong to a project through `model.PROJECT_PATH`."""

    def visible_to(self, user, action: str = ProjectRight.VIEW):
        if not _can_act(user):
            permission_codename(action)
            return self.none()
        if user.is_superuser:
            return self
        from registry.models import Project

        projects = Project.objects.visible_to(user, action).values("pk")
        return self.filter(**{f"{self.model.PROJECT_PATH}__in": projects})


def has_project_right(user, project, action: str) -> bool:
    """Whether `user` holds `action` on `project` (one query; superusers always do)."""
    if not _can_act(user):
        return False
    if user.is_superuser:
        return True
    from registry.models import Project

    return Project.objects.visible_to(user, action).filter(pk=project.pk).exists()
