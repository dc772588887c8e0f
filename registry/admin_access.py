"""Admin pages for access control: users (deactivated, never deleted), roles, who holds which
right on which project, and the access log.

Grants and revokes are made on each project's "Object permissions" page (guardian, see
`registry.admin.ProjectAdmin`); the lists here show the result and are read-only.
"""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Q

from registry import accounts
from registry.admin import VisibleRelatedFilter
from registry.choices import ProjectRight
from registry.models import (
    AccessChange,
    Project,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
)

User = get_user_model()

# Fields only a superuser may change: otherwise an administrator could raise their own powers.
SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class StagegateUserAdmin(UserAdmin):
    """Users: created, given roles, deactivated and reactivated here, never deleted."""

    list_display = ["username", "first_name", "last_name", "email", "is_active", "is_staff"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    actions = ["deactivate_users", "reactivate_users"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # An administrator who is not a superuser cannot take over a superuser's account.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += SUPERUSER_ONLY_FIELDS
        return readonly

    @admin.action(description="Deactivate the selected users", permissions=["change"])
    def deactivate_users(self, request, queryset):
        done = 0
        for user in queryset:
            try:
                accounts.deactivate_user(user, actor=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{user}: {exc.messages[0]}", messages.ERROR)
        self.message_user(request, f"{done} user(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Reactivate the selected users", permissions=["change"])
    def reactivate_users(self, request, queryset):
        for user in queryset:
            accounts.reactivate_user(user, actor=request.user)
        self.message_user(request, f"{queryset.count()} user(s) reactivated.", messages.SUCCESS)


@admin.register(Group)
class RoleAdmin(GroupAdmin):
    """Roles are groups; their permissions are defined in `registry.roles` (superusers may
    adjust them here). Membership is changed on each user's page."""

    list_display = ["name", "member_count"]

    @admin.display(description="members")
    def member_count(self, group):
        return group.user_set.count()

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["permissions"]

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class RightFilter(admin.SimpleListFilter):
    title = "right"
    parameter_name = "right"

    def lookups(self, request, model_admin):
        return ProjectRight.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(permission__codename=f"{self.value()}_project")
        return queryset


class ProjectGrantAdmin(admin.ModelAdmin):
    """Who holds which right on which project (read-only: grant and revoke on the project's
    "Object permissions" page), limited to the projects the user may view."""

    list_filter = [RightFilter, ("content_object", VisibleRelatedFilter)]
    list_select_related = ["content_object", "permission"]

    def get_queryset(self, request):
        visible = Project.objects.visible_to(request.user, ProjectRight.VIEW)
        return super().get_queryset(request).filter(content_object__in=visible.values("pk"))

    @admin.display(description="project", ordering="content_object__key")
    def project(self, grant):
        return grant.content_object.key

    @admin.display(description="right", ordering="permission__codename")
    def right(self, grant):
        return grant.permission.codename.removesuffix("_project")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProjectUserObjectPermission)
class ProjectUserRightAdmin(ProjectGrantAdmin):
    list_display = ["project", "user", "right"]
    list_filter = [*ProjectGrantAdmin.list_filter, "user__is_active"]
    list_select_related = [*ProjectGrantAdmin.list_select_related, "user"]
    search_fields = ["user__username", "user__last_name", "content_object__key"]


@admin.register(ProjectGroupObjectPermission)
class ProjectGroupRightAdmin(ProjectGrantAdmin):
    list_display = ["project", "group", "right"]
    list_filter = [*ProjectGrantAdmin.list_filter, "group"]
    list_select_related = [*ProjectGrantAdmin.list_select_related, "group"]
    search_fields = ["group__name", "content_object__key"]


@admin.register(AccessChange)
class AccessChangeAdmin(admin.ModelAdmin):
    """The access log: grants, revokes, role changes, deactivations, lockouts (read-only).

    Changes on a project show only to those who may view it; account-wide changes (roles,
    deactivations, lockouts) to everyone allowed to read the log.
    """

    list_display = ["at", "action", "target_name", "project", "right", "actor_name"]
    list_filter = ["action", ("project", VisibleRelatedFilter)]
    search_fields = ["target_name", "actor_name", "right", "detail"]
    list_select_related = ["project"]
    date_hierarchy = "at"

    def get_queryset(self, request):
        visible = Project.objects.visible_to(request.user, ProjectRight.VIEW)
        return (
            super()
            .get_queryset(request)
            .filter(Q(project__isnull=True) | Q(project__in=visible.values("pk")))
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
