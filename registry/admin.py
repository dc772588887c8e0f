"""Admin site for the registry: every changelist is scoped by the user's project rights,
records are created through the actions, and each page links to the record's history.

Scoping here follows the API: a changelist, its filters, its history pages and its choices
of related records show only projects the user may view; changing a record needs the same
project right as in the API (`contribute`, `manage` for a project itself).
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from guardian.admin import (
    AdminGroupObjectPermissionsForm,
    AdminUserObjectPermissionsForm,
    GuardedModelAdminMixin,
)
from simple_history.admin import SimpleHistoryAdmin

from registry import services
from registry.access import has_project_right, may_manage_access
from registry.choices import ProjectRight
from registry.models import (
    Dataset,
    DatasetVersion,
    Evaluation,
    ModelVersion,
    Project,
    RegisteredModel,
    RiskItem,
)


class VisibleRelatedFilter(admin.RelatedFieldListFilter):
    """A sidebar filter by a related record that lists only the records the user may see
    (the default filter would list every project, naming those the user has no right on)."""

    def field_choices(self, field, request, model_admin):
        visible = field.related_model.objects.visible_to(request.user, ProjectRight.VIEW)
        return field.get_choices(
            include_blank=False, limit_choices_to={"pk__in": visible.values("pk")}
        )


def project_of(record):
    """The project a record belongs to, along its `PROJECT_PATH` (a project is its own)."""
    if isinstance(record, Project):
        return record
    for step in record.PROJECT_PATH.split("__"):
        record = getattr(record, step)
    return record


class ScopedAdmin(SimpleHistoryAdmin):
    """A changelist shows only records of projects the user may view (superusers: all)."""

    write_right = ProjectRight.CONTRIBUTE

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user, ProjectRight.VIEW)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if allowed and obj is not None:
            return has_project_right(request.user, project_of(obj), self.write_right)
        return allowed

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related.objects.none(), "visible_to"):
            # New records go only where the user may contribute.
            kwargs["queryset"] = related.objects.visible_to(request.user, self.write_right)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def history_view(self, request, object_id, extra_context=None):
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        obj = self._require_visible(request, object_id)
        if request.method == "POST" and not self.has_change_history_permission(request, obj):
            # simple-history saves a revert posted by anyone who may view the history; for a
            # record nobody may change here that would write it around its actions (e.g. a
            # model version's stage and provenance back to an older row's).
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _require_visible(self, request, object_id):
        # simple-history falls back to the last historical row of an object it cannot find
        # in the queryset; a record of an invisible project must not be found that way.
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(_("No such record."))
        return obj


class ImmutableAdmin(ScopedAdmin):
    """Versions and evidence are registered through the API and never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RiskInline(admin.TabularInline):
    model = RiskItem
    extra = 0
    fields = readonly_fields = ("description", "likelihood", "impact", "status")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class ProjectRightsFormMixin:
    """Guardian's object-permission form offering only the project rights (not the
    meaningless object-level add/change/delete of a project)."""

    def get_obj_perms_field_choices(self):
        return [(f"{right.value}_project", right.label) for right in ProjectRight]


class ProjectUserRightsForm(ProjectRightsFormMixin, AdminUserObjectPermissionsForm):
    pass


class ProjectGroupRightsForm(ProjectRightsFormMixin, AdminGroupObjectPermissionsForm):
    pass


@admin.register(Project)
class ProjectAdmin(GuardedModelAdminMixin, ScopedAdmin):
    """Projects, with guardian's "Object permissions" page to grant and revoke rights.

    Granting needs the administrator role's permission on the grant tables and the project's
    `manage` right (superusers: every project); every grant and revoke made on those pages is
    recorded by `registry.access_log`.
    """

    list_display = ["key", "name", "risk_tier", "owner", "updated_at"]
    list_filter = ["risk_tier"]
    search_fields = ["key", "name", "description"]
    list_select_related = ["owner"]
    inlines = [RiskInline]
    write_right = ProjectRight.MANAGE

    def get_obj_perms_manage_user_form(self, request):
        return ProjectUserRightsForm

    def get_obj_perms_manage_group_form(self, request):
        return ProjectGroupRightsForm

    def obj_perms_manage_view(self, request, object_pk):
        return self._managing_access(request, object_pk, super().obj_perms_manage_view)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        return self._managing_access(
            request, object_pk, super().obj_perms_manage_user_view, user_id
        )

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        return self._managing_access(
            request, object_pk, super().obj_perms_manage_group_view, group_id
        )

    def _managing_access(self, request, object_pk, view, *args):
        project = self.get_object(request, object_pk)
        if project is None:
            raise Http404(_("No such project."))
        if not may_manage_access(request.user, project):
            raise PermissionDenied
        # Guardian's views ask has_change_permission(request, None) for the page; here the
        # question is "may this user manage access to this project", answered above.
        request.stagegate_managing_access = True
        return view(request, object_pk, *args)

    def has_change_permission(self, request, obj=None):
        if getattr(request, "stagegate_managing_access", False):
            return True
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return ["key"] if obj else []

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data}
            services.update_project(obj, actor=request.user, reason="edited in admin", **fields)
        else:
            created = services.create_project(
                actor=request.user, reason="created in admin", **form.cleaned_data
            )
            obj.pk = created.pk


@admin.register(RiskItem)
class RiskItemAdmin(ScopedAdmin):
    list_display = ["project", "description", "likelihood", "impact", "status"]
    list_filter = ["status", "impact", "likelihood", ("project", VisibleRelatedFilter)]
    search_fields = ["description", "project__key"]
    list_select_related = ["project"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            services.update_risk(obj, actor=request.user, reason="edited in admin", **fields)
        else:
            project = fields.pop("project")
            obj.pk = services.add_risk(
                project, actor=request.user, reason="registered in admin", **fields
            ).pk


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ScopedAdmin):
    list_display = ["name", "project", "task_type", "last_version", "updated_at"]
    list_filter = ["task_type", ("project", VisibleRelatedFilter)]
    search_fields = ["name", "project__key"]
    list_select_related = ["project"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            services.update_model(obj, actor=request.user, reason="edited in admin", **fields)
        else:
            project = fields.pop("project")
            obj.pk = services.register_model(
                project, actor=request.user, reason="registered in admin", **fields
            ).pk

    def get_readonly_fields(self, request, obj=None):
        return ["project", "name", "task_type", "last_version"] if obj else ["last_version"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ImmutableAdmin):
    list_display = ["registered_model", "version", "stage", "framework", "created_at"]
    list_filter = ["stage", ("registered_model__project", VisibleRelatedFilter)]
    search_fields = ["registered_model__name", "artifact_sha256"]
    list_select_related = ["registered_model__project"]


@admin.register(Dataset)
class DatasetAdmin(ScopedAdmin):
    list_display = ["name", "project", "last_version", "updated_at"]
    list_filter = [("project", VisibleRelatedFilter)]
    search_fields = ["name", "project__key"]
    list_select_related = ["project"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            services.update_dataset(obj, actor=request.user, reason="edited in admin", **fields)
        else:
            project = fields.pop("project")
            obj.pk = services.register_dataset(
                project, actor=request.user, reason="registered in admin", **fields
            ).pk

    def get_readonly_fields(self, request, obj=None):
        return ["project", "name", "last_version"] if obj else ["last_version"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ImmutableAdmin):
    list_display = ["dataset", "version", "split", "row_count", "content_sha256", "created_at"]
    list_filter = ["split", ("dataset__project", VisibleRelatedFilter)]
    search_fields = ["dataset__name", "content_sha256"]
    list_select_related = ["dataset__project"]


@admin.register(Evaluation)
class EvaluationAdmin(ImmutableAdmin):
    list_display = ["model_version", "dataset_version", "created_at"]
    list_filter = [("model_version__registered_model__project", VisibleRelatedFilter)]
    list_select_related = ["model_version__registered_model__project", "dataset_version__dataset"]


# Access-control pages (users, roles, grants, access log) register themselves on import.
from registry import admin_access  # noqa: E402, F401
