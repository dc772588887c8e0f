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

import functools

from django.contrib.auth import backends as auth_backends
from django.db import connection, models
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
    permission_codename(action)  # an unknown right is an error, whoever asks
    if not _can_act(user):
        return False
    if user.is_superuser:
        return True
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 WHERE {_right_sql()}", _right_params(user, project, action))
        return cursor.fetchone() is not None


def right_and_groups(user, project, action: str) -> tuple[bool, set[str]]:
    """`has_project_right(user, project, action)` and the names of the user's groups (their
    roles), read together in one statement: signing needs both, on its hot path."""
    if not _can_act(user):
        permission_codename(action)
        return False, set()
    # Only table names are interpolated into these statements; values are parameters.
    sql = (
        f"SELECT 'group', g.name FROM {_tables()['group']} g "  # noqa: S608
        f"JOIN {_tables()['membership']} m ON m.group_id = g.id WHERE m.user_id = %s "
        f"UNION ALL SELECT 'right', '' WHERE {_right_sql()}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, *_right_params(user, project, action)])
        rows = cursor.fetchall()
    groups = {name for kind, name in rows if kind == "group"}
    return user.is_superuser or any(kind == "right" for kind, _ in rows), groups


def right_annotations(user_pk: int, project, action: str, *, prefix: str = "right") -> dict:
    """Exists annotations saying whether a user holds `action` on a project directly or
    through a group, for a query that reads the project (or a record of it) anyway: `project`
    is an OuterRef to the project's id. Read the answer with `holds_right(instance, prefix)`;
    several rights can be read by one query under different prefixes. Superusers hold every
    right and are not seen here."""
    from registry.models import ProjectGroupObjectPermission, ProjectUserObjectPermission

    codename = permission_codename(action)
    return {
        f"{prefix}_direct": models.Exists(
            ProjectUserObjectPermission.objects.filter(
                user_id=user_pk, content_object_id=project, permission__codename=codename
            )
        ),
        f"{prefix}_via_group": models.Exists(
            ProjectGroupObjectPermission.objects.filter(
                group__user=user_pk, content_object_id=project, permission__codename=codename
            )
        ),
    }


def holds_right(instance, prefix: str = "right") -> bool:
    """The answer of `right_annotations` on an annotated instance."""
    return bool(getattr(instance, f"{prefix}_direct") or getattr(instance, f"{prefix}_via_group"))


def right_and_groups_annotations(user_pk: int, project, action: str, groups) -> dict:
    """`right_and_groups` as annotations of another query: for a check made by the statement
    that locks the record it guards (one statement fewer, and the same snapshot). `project`
    is an OuterRef to the project's id; `groups` the group names worth knowing. Read the
    answer with `right_and_groups_of`. Whether the user is active and a superuser is read
    from the database too, not from the user object in hand."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    users = get_user_model().objects.filter(pk=user_pk, is_active=True)
    return {
        "right_user_active": models.Exists(users),
        "right_superuser": models.Exists(users.filter(is_superuser=True)),
        **right_annotations(user_pk, project, action),
        **{
            f"right_group_{i}": models.Exists(Group.objects.filter(user=user_pk, name=name))
            for i, name in enumerate(groups)
        },
    }


def right_and_groups_of(instance, groups) -> tuple[bool, set[str]]:
    """The answer of `right_and_groups_annotations` on an annotated instance: whether the
    user holds the right, and which of `groups` they are in (none when they may not act)."""
    if not instance.right_user_active:
        return False, set()
    held = instance.right_superuser or holds_right(instance)
    return bool(held), {
        name for i, name in enumerate(groups) if getattr(instance, f"right_group_{i}")
    }


@functools.cache
def _tables() -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from registry.models import ProjectGroupObjectPermission, ProjectUserObjectPermission

    return {
        "group": Group._meta.db_table,
        "membership": get_user_model().groups.through._meta.db_table,
        "permission": Permission._meta.db_table,
        "user_right": ProjectUserObjectPermission._meta.db_table,
        "group_right": ProjectGroupObjectPermission._meta.db_table,
    }


@functools.cache
def _right_sql() -> str:
    """The condition that a user holds a right on a project, directly or through a group: the
    same as `Project.objects.visible_to`, as plain SQL for the checks made on every action."""
    t = _tables()
    return (
        f"EXISTS (SELECT 1 FROM {t['user_right']} d "  # noqa: S608
        f"JOIN {t['permission']} p ON p.id = d.permission_id "
        "WHERE d.user_id = %s AND d.content_object_id = %s AND p.codename = %s) "
        f"OR EXISTS (SELECT 1 FROM {t['group_right']} r "
        f"JOIN {t['permission']} p ON p.id = r.permission_id "
        f"JOIN {t['membership']} m ON m.group_id = r.group_id "
        "WHERE m.user_id = %s AND r.content_object_id = %s AND p.codename = %s)"
    )


def _right_params(user, project, action: str) -> list:
    codename = permission_codename(action)
    return [user.pk, project.pk, codename, user.pk, project.pk, codename]


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


class ModelBackend(auth_backends.ModelBackend):
    """Django's ModelBackend, reading a user's role permissions (their own and their groups')
    in one statement instead of two, and without building it anew each time: roles are
    groups with model permissions (what), checked on every API write before the project
    right (where)."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app}.{name}" for app, name in cursor.fetchall()}
        return user_obj._perm_cache


@functools.cache
def _permissions_sql() -> str:
    """The (app label, codename) of every model permission a user holds, directly or
    through a group (what Django's ModelBackend reads with two queries)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType

    user_model = get_user_model()
    t = _tables()
    own = user_model.user_permissions.through._meta.db_table
    by_group = Group.permissions.through._meta.db_table
    types = ContentType._meta.db_table
    # Only table names are interpolated; the user's id is a parameter.
    return (
        f"SELECT c.app_label, p.codename FROM {t['permission']} p "  # noqa: S608
        f"JOIN {types} c ON c.id = p.content_type_id "
        f"JOIN {own} u ON u.permission_id = p.id WHERE u.user_id = %s "
        f"UNION SELECT c.app_label, p.codename FROM {t['permission']} p "
        f"JOIN {types} c ON c.id = p.content_type_id "
        f"JOIN {by_group} g ON g.permission_id = p.id "
        f"JOIN {t['membership']} m ON m.group_id = g.group_id WHERE m.user_id = %s"
    )
