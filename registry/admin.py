"""Admin site for the registry: every changelist is scoped by the user's project rights,
records are created through the actions, and each page links to the record's history."""

from django.contrib import admin
from guardian.admin import GuardedModelAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from registry import services
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


class ScopedAdmin(SimpleHistoryAdmin):
    """A changelist shows only records of projects the user may view (superusers: all)."""

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user, ProjectRight.VIEW)


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
    fields = ["description", "likelihood", "impact", "status"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(GuardedModelAdminMixin, ScopedAdmin):
    """Projects, with guardian's "Object permissions" page to grant and revoke rights."""

    list_display = ["key", "name", "risk_tier", "owner", "updated_at"]
    list_filter = ["risk_tier"]
    search_fields = ["key", "name", "description"]
    list_select_related = ["owner"]
    inlines = [RiskInline]

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
    list_filter = ["status", "impact", "likelihood"]
    search_fields = ["description", "project__key"]
    list_select_related = ["project"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ScopedAdmin):
    list_display = ["name", "project", "task_type", "last_version", "updated_at"]
    list_filter = ["task_type", "project"]
    search_fields = ["name", "project__key"]
    list_select_related = ["project"]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["project", "name", "task_type", "last_version"] if obj else ["last_version"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ImmutableAdmin):
    list_display = ["registered_model", "version", "stage", "framework", "created_at"]
    list_filter = ["stage", "registered_model__project"]
    search_fields = ["registered_model__name", "artifact_sha256"]
    list_select_related = ["registered_model__project"]


@admin.register(Dataset)
class DatasetAdmin(ScopedAdmin):
    list_display = ["name", "project", "last_version", "updated_at"]
    list_filter = ["project"]
    search_fields = ["name", "project__key"]
    list_select_related = ["project"]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["project", "name", "last_version"] if obj else ["last_version"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ImmutableAdmin):
    list_display = ["dataset", "version", "split", "row_count", "content_sha256", "created_at"]
    list_filter = ["split", "dataset__project"]
    search_fields = ["dataset__name", "content_sha256"]
    list_select_related = ["dataset__project"]


@admin.register(Evaluation)
class EvaluationAdmin(ImmutableAdmin):
    list_display = ["model_version", "dataset_version", "created_at"]
    list_filter = ["model_version__registered_model__project"]
    list_select_related = ["model_version__registered_model__project", "dataset_version__dataset"]
