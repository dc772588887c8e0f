"""Accounts and their access: the actions that grant, revoke and deactivate, and lockouts.

Each action names its actor; the changes themselves are recorded by `registry.access_log`
(which catches every path, including guardian's admin pages), so these actions only decide
and change. Lockouts come from django-axes: `lockout_response` is its AXES_LOCKOUT_CALLABLE,
answering the API with JSON and the login pages with the login form and a clear message.
"""

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import render
from guardian.shortcuts import assign_perm, remove_perm

from registry.access import permission_codename
from registry.access_log import changes_made_by, record
from registry.choices import AccessAction

LOCKED_OUT_MESSAGE = (
    "This account is locked after too many failed logins. Try again later, or ask an "
    "administrator to unlock it."
)


@transaction.atomic
def grant_project_rights(project, user_or_group, rights, *, actor) -> None:
    """Give a user or a group the listed rights on `project` (already-held rights are kept)."""
    with changes_made_by(actor):
        for right in rights:
            assign_perm(permission_codename(right), user_or_group, project)


@transaction.atomic
def revoke_project_rights(project, user_or_group, rights, *, actor) -> None:
    """Take the listed rights on `project` away from a user or a group."""
    with changes_made_by(actor):
        for right in rights:
            remove_perm(permission_codename(right), user_or_group, project)


@transaction.atomic
def deactivate_user(user, *, actor) -> None:
    """Close an account: it keeps its id and history, but can no longer log in or use a token.

    Accounts are never deleted: records name their authors and signers by user id.
    """
    if actor is not None and actor.pk == user.pk:
        raise ValidationError("you cannot deactivate your own account")
    if not user.is_active:
        return
    with changes_made_by(actor):
        user.is_active = False
        user.save(update_fields=["is_active"])


@transaction.atomic
def reactivate_user(user, *, actor) -> None:
    """Open a deactivated account again (it needs a new API token)."""
    if user.is_active:
        return
    with changes_made_by(actor):
        user.is_active = True
        user.save(update_fields=["is_active"])


def add_to_role(user, role: str, *, actor) -> None:
    """Put a user in a role (group)."""
    with changes_made_by(actor):
        user.groups.add(Group.objects.get(name=role))


def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out login attempt gets (django-axes' AXES_LOCKOUT_CALLABLE): 403 and a
    clear message, as JSON for the API, on the login form for the web and admin pages."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": LOCKED_OUT_MESSAGE}, status=403)
    username = (credentials or {}).get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out_message": LOCKED_OUT_MESSAGE}
    return render(request, "registration/login.html", context, status=403)


@receiver(user_locked_out, dispatch_uid="accounts_locked_out")
def _locked_out(sender, request, username, **kwargs):
    # axes repeats this signal for every attempt made during a lockout (each one extends
    # it); the lockout began with the attempt whose failure reached the limit.
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    user = get_user_model().objects.filter(username=username).first()
    with changes_made_by(None):
        record(
            AccessAction.LOCKED_OUT,
            target_user=user,
            detail=f"{username!r} locked after {settings.AXES_FAILURE_LIMIT} failed logins",
        )


@receiver(post_delete, sender=AccessAttempt, dispatch_uid="accounts_unlocked")
def _unlocked(sender, instance, **kwargs):
    """A lockout ended: cleared by an administrator, or expired after the cool-off."""
    if instance.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return
    user = get_user_model().objects.filter(username=instance.username).first()
    record(AccessAction.UNLOCKED, target_user=user, detail=f"{instance.username!r} unlocked")
