"""What every Stagegate API view shares: scoping by project rights, and 404 before 403.

A viewset names its model; its queryset is always `Model.objects.visible_to(user, "view")`,
so lists, counts, filters and detail lookups never reach a project the user cannot see
(NetBox's RestrictedQuerySet, done once). Writes need the `contribute` right on the record's
project: a visible project without it answers 403, an invisible one 404.
"""

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import PermissionDenied

from registry.access import has_project_right
from registry.choices import ProjectRight
from registry.prepared import PreparedQuery


class VisibleRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference by id to a record the requesting user may see (others do not exist).

    The lookup is `get_queryset().get(pk=...)`, as in DRF, compiled once per model (see
    registry.prepared): building and compiling the rights subqueries each time took a quarter
    of the CPU of registering a model version. The record comes with its project (and what
    leads to it): every write checks a right on it."""

    default_error_messages = {
        "does_not_exist": "No record with id {pk_value} exists (or it is not visible to you).",
    }

    def __init__(self, model=None, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", model.objects.none() if model else None)
        super().__init__(**kwargs)

    def get_queryset(self):
        return _with_project(self.model.objects.visible_to(self._user(), ProjectRight.VIEW))

    def _user(self):
        return getattr(self.context.get("request"), "user", None)

    def to_internal_value(self, data):
        if self.pk_field is not None:
            return super().to_internal_value(data)
        try:
            found = find_visible(self.model, self._user(), data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if found is None:
            self.fail("does_not_exist", pk_value=data)
        return found


def find_visible(model, user, pk):
    """The `model` record with id `pk` that `user` may view (with its project), or None:
    `model.objects.visible_to(user, "view").filter(pk=pk).first()`, compiled once. An id that
    is not one raises TypeError or ValueError, as the queryset would."""
    if user is None or not (user.is_authenticated and user.is_active) or user.is_superuser:
        queryset = model.objects.visible_to(user, ProjectRight.VIEW)
        return _with_project(queryset).filter(pk=pk).first()
    pk_field = model._meta.pk  # an integer: every project-scoped model's id is
    if isinstance(pk, bool):
        raise TypeError(pk)
    pk = pk_field.get_prep_value(pk)
    low, high = connection.ops.integer_field_range(pk_field.get_internal_type())
    if (low is not None and pk < low) or (high is not None and pk > high):
        return None  # no such row (Django compiles such a filter as matching nothing)
    return _visible_by_pk(model).first(pk=pk, user_pk=user.pk)


@functools.cache
def _visible_by_pk(model) -> PreparedQuery:
    """`model.objects.visible_to(user, "view").filter(pk=pk)` for a user who is neither a
    superuser nor inactive (the others take the queryset's own path), compiled once."""
    user_model = get_user_model()

    def build(pk, user_pk):
        viewer = user_model(pk=user_pk, is_active=True, is_superuser=False)
        return _with_project(model.objects.visible_to(viewer, ProjectRight.VIEW)).filter(pk=pk)

    return PreparedQuery(build, model)


def _with_project(queryset):
    path = getattr(queryset.model, "PROJECT_PATH", None)
    return queryset.select_related(path) if path else queryset


class VisibleSlugRelatedField(serializers.SlugRelatedField):
    """A reference by key (e.g. a project's key) to a record the user may see."""

    default_error_messages = {
        "does_not_exist": (
            "No record with {slug_name} {value} exists (or it is not visible to you)."
        ),
    }

    def __init__(self, model=None, **kwargs):
        self.model = model
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", model.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return self.model.objects.visible_to(getattr(request, "user", None), ProjectRight.VIEW)


class FixedFieldsMixin:
    """Refuses a change to the fields a record keeps once registered: a 400 naming each one.

    Checked in validate(), so the error has the same shape as every other field error;
    update() then drops the (unchanged) fixed fields before calling the action.
    """

    fixed_fields: tuple[str, ...] = ()
    fixed_message = "cannot be changed after registration"

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is not None:
            changed = [
                name
                for name in self.fixed_fields
                if name in attrs and attrs[name] != getattr(self.instance, name)
            ]
            if changed:
                raise serializers.ValidationError(dict.fromkeys(changed, self.fixed_message))
        return attrs

    def changeable(self, validated_data: dict) -> dict:
        """The validated data without the fixed fields."""
        return {k: v for k, v in validated_data.items() if k not in self.fixed_fields}


def require_right(user, project, action: str) -> None:
    """403 unless `user` holds `action` on `project` (the project is already visible)."""
    if not has_project_right(user, project, action):
        raise PermissionDenied(
            f"You need the '{action}' right on project {project.key} to do this."
        )


def as_drf_error(exc: DjangoValidationError) -> serializers.ValidationError:
    """A model/service ValidationError as the API's 400 body."""
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(
            {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
        )
    return serializers.ValidationError({"non_field_errors": exc.messages})


class ScopedViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List / create / retrieve / update, scoped by project rights. Records are never deleted."""

    model: Any = None  # set by each subclass: a model whose manager has visible_to()
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    write_right = ProjectRight.CONTRIBUTE

    def get_queryset(self):
        queryset = self.model.objects.visible_to(self.request.user, ProjectRight.VIEW)
        return self.optimize(queryset)

    def optimize(self, queryset):
        """select_related / prefetch_related so a page costs a constant number of queries."""
        return queryset

    def project_of_new(self, serializer):
        """The project a record about to be created belongs to."""
        raise NotImplementedError

    def perform_create(self, serializer):
        self.require_role_permission("add")
        require_right(self.request.user, self.project_of_new(serializer), self.write_right)
        self.save_through_action(serializer)

    def perform_update(self, serializer):
        self.require_role_permission("change")
        require_right(self.request.user, serializer.instance.project, self.write_right)
        self.save_through_action(serializer)

    def require_role_permission(self, verb: str) -> None:
        """403 unless the user's role grants `verb` on this kind of record (e.g. add)."""
        opts = self.model._meta
        if not self.request.user.has_perm(f"{opts.app_label}.{verb}_{opts.model_name}"):
            raise PermissionDenied(
                f"Your role does not allow you to {verb} {opts.verbose_name_plural}."
            )

    @staticmethod
    def save_through_action(serializer):
        """Save (the serializer calls the action); the action's ValidationError is a 400."""
        try:
            serializer.save()
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None
