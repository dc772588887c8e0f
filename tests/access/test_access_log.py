"""The access log records every change to who may do what, whoever made it and however."""

import pytest
from django.contrib.auth.models import Group, Permission
from guardian.shortcuts import assign_perm, remove_perm

from registry import accounts
from registry.access_log import access_changed, changes_made_by
from registry.choices import AccessAction, ProjectRight
from registry.models import AccessChange
from registry.roles import Role
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_changes():
    """The AccessChange rows written after the fixture was set up, oldest first."""
    start = AccessChange.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return lambda: list(AccessChange.objects.filter(pk__gt=start).order_by("id"))


def test_grant_and_revoke_through_guardian_directly_are_recorded(project, outsider, new_changes):
    with changes_made_by(project.owner):
        assign_perm("view_project", outsider, project)
        remove_perm("view_project", outsider, project)
    assert [(c.action, c.right, c.target_user, c.project) for c in new_changes()] == [
        (AccessAction.RIGHT_GRANTED, "view", outsider, project),
        (AccessAction.RIGHT_REVOKED, "view", outsider, project),
    ]


def test_granting_a_right_already_held_records_nothing(project, member, new_changes):
    accounts.grant_project_rights(project, member, [ProjectRight.VIEW], actor=project.owner)
    assert new_changes() == []


def test_revoke_action_takes_the_right_away(api, project, member, new_changes):
    accounts.revoke_project_rights(
        project, member, [ProjectRight.VIEW, ProjectRight.CONTRIBUTE], actor=project.owner
    )
    assert api.as_user(member).get("/api/v1/projects/credit/").status_code == 404
    assert {(c.action, c.right, c.actor) for c in new_changes()} == {
        (AccessAction.RIGHT_REVOKED, "view", project.owner),
        (AccessAction.RIGHT_REVOKED, "contribute", project.owner),
    }


def test_group_grant_is_recorded_against_the_group(project, new_changes):
    reviewers = Group.objects.get(name=Role.REVIEWER)
    accounts.grant_project_rights(project, reviewers, [ProjectRight.REVIEW], actor=None)
    (change,) = new_changes()
    assert (change.target_group, change.target_user, change.target_name) == (
        reviewers,
        None,
        Role.REVIEWER,
    )
    assert (change.actor, change.actor_name) == (None, "system")


def test_staff_and_superuser_flags_are_recorded(outsider, owner, new_changes):
    with changes_made_by(owner):
        outsider.is_staff = True
        outsider.is_superuser = True
        outsider.save()
        outsider.is_superuser = False
        outsider.save()
    assert [c.action for c in new_changes()] == [
        AccessAction.STAFF_GRANTED,
        AccessAction.SUPERUSER_GRANTED,
        AccessAction.SUPERUSER_REVOKED,
    ]


def test_a_login_records_no_access_change(api, outsider, new_changes):
    response = api.post("/api/v1/auth/token", {"username": "otto", "password": factories.PASSWORD})
    assert response.status_code == 200
    outsider.refresh_from_db()
    assert outsider.last_login is not None
    assert new_changes() == []


def test_role_definition_changes_are_recorded(owner, new_changes):
    auditors = Group.objects.get(name=Role.AUDITOR)
    permission = Permission.objects.get(codename="add_run")
    with changes_made_by(owner):
        auditors.permissions.add(permission)
    (change,) = new_changes()
    assert (change.action, change.target_group, change.right) == (
        AccessAction.PERMISSION_ADDED,
        auditors,
        "lineage.add_run",
    )


def test_every_change_is_announced_with_its_row(project, outsider):
    sent = []

    def listener(sender, **kwargs):
        sent.append(kwargs)

    access_changed.connect(listener)
    try:
        accounts.grant_project_rights(project, outsider, [ProjectRight.VIEW], actor=project.owner)
    finally:
        access_changed.disconnect(listener)
    (signal,) = sent
    assert signal["change"] == AccessChange.objects.latest("id")
    assert {k: signal[k] for k in ("actor", "action", "target_user", "project", "right")} == {
        "actor": project.owner,
        "action": AccessAction.RIGHT_GRANTED,
        "target_user": outsider,
        "project": project,
        "right": "view",
    }
    assert signal["target_group"] is None


def test_deactivating_oneself_is_refused(owner):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        accounts.deactivate_user(owner, actor=owner)
    owner.refresh_from_db()
    assert owner.is_active
