"""The access log: every change to who may do what is recorded here, whatever made it.

Grants and revokes of project rights (guardian's admin pages, `accounts.grant_project_rights`,
a shell), role (group) membership changes, model-permission changes, account flags
(deactivation, staff, superuser) and lockouts are caught by signal receivers on the tables
themselves, so no path can change access without leaving an `AccessChange` row.

This is the one module the audit trail hooks: each recorded change also sends
`access_changed`, inside the same transaction as the change, with
`(actor, action, target_user, target_group, project, right, change)`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import Signal, receiver

from config.request_context import current, current_user
from registry.choices import AccessAction
from registry.history import printed_name
from registry.models import AccessChange, ProjectGroupObjectPermission, ProjectUserObjectPermission

access_changed = Signal()
"""Sent after each AccessChange row is written. Keyword arguments: actor (a user or None for
the system), action (an AccessAction value), target_user, target_group, project (or None),
right (the project right, e.g. "view", or a permission "app.codename"), change (the row)."""

User = get_user_model()
_FLAGS = ("is_active", "is_staff", "is_superuser")
_FLAG_ACTIONS = {
    ("is_active", False): AccessAction.DEACTIVATED,
    ("is_active", True): AccessAction.REACTIVATED,
    ("is_staff", True): AccessAction.STAFF_GRANTED,
    ("is_staff", False): AccessAction.STAFF_REVOKED,
    ("is_superuser", True): AccessAction.SUPERUSER_GRANTED,
    ("is_superuser", False): AccessAction.SUPERUSER_REVOKED,
}

_explicit_actor: ContextVar[tuple[object | None] | None] = ContextVar(
    "stagegate_access_actor", default=None
)


@contextmanager
def changes_made_by(actor) -> Iterator[None]:
    """Attribute the access changes made in this block to `actor` (None: the system).

    Actions called outside a web request (the demo loader, a task, a test) name their actor
    explicitly; inside a request the logged-in user is the actor by default.
    """
    token = _explicit_actor.set((actor,))
    try:
        yield
    finally:
        _explicit_actor.reset(token)


def _actor():
    explicit = _explicit_actor.get()
    if explicit is not None:
        return explicit[0]
    return current_user()


def record(action, *, target_user=None, target_group=None, project=None, right="", detail=""):
    """Write one AccessChange row and announce it on `access_changed`."""
    actor = _actor()
    target = target_user if target_user is not None else target_group
    change = AccessChange.objects.create(
        action=action,
        actor=actor,
        actor_name=printed_name(actor),
        target_user=target_user,
        target_group=target_group,
        target_name=_name_of(target),
        project=project,
        right=right,
        detail=detail,
        request_id=current().request_id,
    )
    access_changed.send(
        sender=AccessChange,
        actor=actor,
        action=action,
        target_user=target_user,
        target_group=target_group,
        project=project,
        right=right,
        change=change,
    )
    return change


def _name_of(target) -> str:
    if target is None:
        return ""
    if isinstance(target, Group):
        return target.name
    return target.get_username()


def _project_right(permission: Permission) -> str:
    """ "view_project" → "view"; other permissions keep their full name."""
    suffix = "_project"
    if permission.content_type.app_label == "registry" and permission.codename.endswith(suffix):
        return permission.codename.removesuffix(suffix)
    return f"{permission.content_type.app_label}.{permission.codename}"


@receiver(post_save, sender=ProjectUserObjectPermission, dispatch_uid="access_log_user_grant")
@receiver(post_save, sender=ProjectGroupObjectPermission, dispatch_uid="access_log_group_grant")
def _right_granted(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        _record_right(AccessAction.RIGHT_GRANTED, instance)


@receiver(post_delete, sender=ProjectUserObjectPermission, dispatch_uid="access_log_user_revoke")
@receiver(post_delete, sender=ProjectGroupObjectPermission, dispatch_uid="access_log_group_revoke")
def _right_revoked(sender, instance, **kwargs):
    _record_right(AccessAction.RIGHT_REVOKED, instance)


def _record_right(action, grant):
    record(
        action,
        target_user=getattr(grant, "user", None),
        target_group=getattr(grant, "group", None),
        project=grant.content_object,
        right=_project_right(grant.permission),
    )


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="access_log_roles")
def _roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A user joined or left a role, from either side of the relation."""
    pairs = _m2m_pairs(instance, action, reverse, pk_set, User, Group, "groups", "user_set")
    for user, group, added in pairs:
        record(
            AccessAction.ROLE_ADDED if added else AccessAction.ROLE_REMOVED,
            target_user=user,
            right=group.name,
            detail=f"role {group.name}",
        )


@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="access_log_user_perms")
def _user_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    pairs = _m2m_pairs(
        instance, action, reverse, pk_set, User, Permission, "user_permissions", "user_set"
    )
    for user, permission, added in pairs:
        record(
            AccessAction.PERMISSION_ADDED if added else AccessAction.PERMISSION_REMOVED,
            target_user=user,
            right=_project_right(permission),
        )


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="access_log_role_perms")
def _role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A role's definition changed (its model-level permissions)."""
    pairs = _m2m_pairs(
        instance, action, reverse, pk_set, Group, Permission, "permissions", "group_set"
    )
    for group, permission, added in pairs:
        record(
            AccessAction.PERMISSION_ADDED if added else AccessAction.PERMISSION_REMOVED,
            target_group=group,
            right=_project_right(permission),
        )


def _m2m_pairs(instance, action, reverse, pk_set, owner_model, other_model, forward, backward):
    """(owner, other, added) for each link an m2m change made, whichever side it came from.

    A clear() sends no primary keys afterwards, so the links are read before ("pre_clear").
    """
    if action not in ("post_add", "post_remove", "pre_clear"):
        return []
    added = action == "post_add"
    if action == "pre_clear":
        related = getattr(instance, backward if reverse else forward).all()
    else:
        if not pk_set:
            return []
        related = (owner_model if reverse else other_model).objects.filter(pk__in=pk_set)
    if reverse:
        return [(owner, instance, added) for owner in related]
    return [(instance, other, added) for other in related]


@receiver(pre_save, sender=User, dispatch_uid="access_log_user_flags_before")
def _remember_flags(sender, instance, raw=False, update_fields=None, **kwargs):
    instance._access_flags_before = None
    if raw or instance.pk is None:
        return
    # A login saves only last_login: no need to read the flags back for it.
    if update_fields is not None and not set(update_fields) & set(_FLAGS):
        return
    instance._access_flags_before = User.objects.filter(pk=instance.pk).values(*_FLAGS).first()


@receiver(post_save, sender=User, dispatch_uid="access_log_user_flags")
def _flags_changed(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    if created:
        record(AccessAction.USER_CREATED, target_user=instance)
        return
    before = getattr(instance, "_access_flags_before", None)
    if not before:
        return
    for flag in _FLAGS:
        now = getattr(instance, flag)
        if before[flag] != now:
            record(_FLAG_ACTIONS[(flag, now)], target_user=instance)
            if flag == "is_active" and not now:
                # A deactivated account keeps no way in: its API tokens go with it.
                from rest_framework.authtoken.models import Token

                Token.objects.filter(user=instance).delete()
    instance._access_flags_before = None


@receiver(pre_delete, sender=User, dispatch_uid="access_log_no_user_deletion")
def _refuse_user_deletion(sender, instance, **kwargs):
    """User ids are never deleted (nor reused): records name their authors by id."""
    raise PermissionDenied(
        f"user {instance.get_username()} cannot be deleted; deactivate the account instead"
    )
