"""The one place that decides who sees what.

Rights are django-guardian object permissions on Project (direct foreign-key tables, so the
check is one indexed subquery). Everything under a project inherits the project's rights:
each scoped model names the path to its project in `PROJECT_PATH`, and its queryset's
`visible_to(user, action)` filters through it. Every API view, page, export and lineage
query starts from `visible_to`; superusers are the only exception. The API's query-string
filters by related records (`VisibleChoicesFilterBackend`) and the admin site
(`registry.admin.ScopedAdmin`) go through it too, and `may_manage_access` decides who may
grant and revoke rights on a project.
"""

from django.db import models
from django.db.models import Q
from django_filters.filters import QuerySetRequestMixin
from django_filters.rest_framework import DjangoFilterBackend

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


def may_manage_access(user, project) -> bool:
    """Whether `user` may grant and revoke rights on `project`: the administrator role's
    permission on the grant tables (what) and the project's `manage` right (where)."""
    if not _can_act(user):
        return False
    if user.is_superuser:
        return True
    return user.has_perms(
        [
            "registry.add_projectuserobjectpermission",
            "registry.delete_projectuserobjectpermission",
            "registry.add_projectgroupobjectpermission",
            "registry.delete_projectgroupobjectpermission",
        ]
    ) and has_project_right(user, project, ProjectRight.MANAGE)


class VisibleChoicesFilterBackend(DjangoFilterBackend):
    """django-filter's backend, with every filter by a related record (`?dataset=12`)
    accepting only records the user may see.

    Left alone, such a filter validates the id against every row: an invisible record's id
    answers 200 with no results where an unknown id answers 400, which confirms it exists.
    Here both answer 400 with the same message.
    """

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        for filter_ in filterset.filters.values():
            model = getattr(getattr(filter_, "queryset", None), "model", None)
            if isinstance(filter_, QuerySetRequestMixin) and _is_scoped(model):
                filter_.queryset = model.objects.visible_to(request.user, ProjectRight.VIEW)
        return filterset


def _is_scoped(model) -> bool:
    """Whether a model's records are filtered by project rights (it has `visible_to`)."""
    return model is not None and hasattr(model.objects.none(), "visible_to")
