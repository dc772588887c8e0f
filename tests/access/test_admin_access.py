"""Access control in the admin site: granting and revoking project rights end to end, who
may do it, users deactivated but never deleted, and changelists scoped by project rights."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse

from registry import services
from registry.access_log import access_changed
from registry.admin import project_of
from registry.choices import AccessAction, ProjectRight
from registry.models import AccessChange, Project, RiskItem
from registry.roles import Role
from tests import factories

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def admin_user(db):
    """An administrator (the role, not a superuser) who manages access to `project`."""
    return factories.user("ada", role=Role.ADMIN, is_staff=True)


@pytest.fixture
def managed(project, admin_user):
    factories.grant(project, admin_user, ProjectRight.VIEW, ProjectRight.MANAGE)
    return project


@pytest.fixture
def uma(db):
    return factories.user("uma", role=Role.DATA_SCIENTIST)


def submit(browser, url, data):
    """Post a form as a browser does: with the CSRF token the page's cookie carries."""
    browser.get(url)
    token = browser.cookies["csrftoken"].value
    return browser.post(url, {**data, "csrfmiddlewaretoken": token})


def logged_in(user):
    """A browser (CSRF checks on) logged in through the admin's login form."""
    browser = Client(enforce_csrf_checks=True)
    response = submit(
        browser,
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": factories.PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302, response.content[:500]
    return browser


def permissions_url(project, kind=None, target=None):
    if kind is None:
        return reverse("admin:registry_project_permissions", args=[project.pk])
    return reverse(f"admin:registry_project_permissions_manage_{kind}", args=[project.pk, target])


@pytest.fixture
def signals():
    sent = []

    def listener(sender, **kwargs):
        sent.append(kwargs)

    access_changed.connect(listener)
    yield sent
    access_changed.disconnect(listener)


# --- grant and revoke, end to end -------------------------------------------------------


def test_admin_grants_and_revokes_view_through_guardian_pages(
    api, managed, admin_user, uma, signals
):
    browser = logged_in(admin_user)
    project_url = f"/api/v1/projects/{managed.key}/"
    assert api.as_user(uma).get(project_url).status_code == 404

    page = browser.get(permissions_url(managed))
    assert page.status_code == 200
    chosen = submit(browser, permissions_url(managed), {"user": "uma", "submit_manage_user": "1"})
    assert chosen.status_code == 302
    assert chosen["Location"] == permissions_url(managed, "user", uma.pk)

    granted = submit(
        browser, permissions_url(managed, "user", uma.pk), {"permissions": "view_project"}
    )
    assert granted.status_code == 302
    assert api.as_user(uma).get(project_url).status_code == 200

    # Nothing ticked: the browser sends only the CSRF token.
    revoked = submit(browser, permissions_url(managed, "user", uma.pk), {})
    assert revoked.status_code == 302
    assert api.as_user(uma).get(project_url).status_code == 404

    changes = AccessChange.objects.filter(target_user=uma, project=managed).order_by("id")
    assert [(c.action, c.right, c.actor, c.actor_name) for c in changes] == [
        (AccessAction.RIGHT_GRANTED, "view", admin_user, "Ada Tester"),
        (AccessAction.RIGHT_REVOKED, "view", admin_user, "Ada Tester"),
    ]
    assert all(c.request_id for c in changes)
    announced = [(s["action"], s["target_user"], s["project"], s["right"]) for s in signals]
    assert announced == [
        (AccessAction.RIGHT_GRANTED, uma, managed, "view"),
        (AccessAction.RIGHT_REVOKED, uma, managed, "view"),
    ]
    assert all(s["actor"] == admin_user for s in signals)


def test_admin_grants_a_right_to_a_role_group(api, managed, admin_user):
    auditor = factories.user("aldo", role=Role.AUDITOR)
    browser = logged_in(admin_user)
    group = Group.objects.get(name=Role.AUDITOR)
    response = submit(
        browser, permissions_url(managed, "group", group.pk), {"permissions": ["view_project"]}
    )
    assert response.status_code == 302
    assert api.as_user(auditor).get(f"/api/v1/projects/{managed.key}/").status_code == 200
    change = AccessChange.objects.get(target_group=group, action=AccessAction.RIGHT_GRANTED)
    assert (change.action, change.right, change.project, change.actor) == (
        AccessAction.RIGHT_GRANTED,
        "view",
        managed,
        admin_user,
    )
    assert change.target_name == Role.AUDITOR


def test_rights_form_offers_only_the_project_rights(managed, admin_user, uma):
    page = logged_in(admin_user).get(permissions_url(managed, "user", uma.pk))
    offered = [value for value, _ in page.context["form"].fields["permissions"].choices]
    assert offered == [f"{right}_project" for right in ProjectRight.values]


def test_permissions_page_lists_who_holds_rights(managed, admin_user, member):
    page = logged_in(admin_user).get(permissions_url(managed))
    holders = {user.username for user in page.context["users_perms"]}
    assert {"olive", "mina", "ada"} <= holders


def test_administrator_without_manage_right_cannot_open_the_permissions_page(project, admin_user):
    factories.grant(project, admin_user, ProjectRight.VIEW)
    assert logged_in(admin_user).get(permissions_url(project)).status_code == 403


def test_administrator_without_view_right_gets_404_for_the_permissions_page(
    project, admin_user, uma
):
    browser = logged_in(admin_user)
    assert browser.get(permissions_url(project)).status_code == 404
    grant = submit(
        browser, permissions_url(project, "user", uma.pk), {"permissions": "view_project"}
    )
    assert grant.status_code == 404
    assert not AccessChange.objects.filter(target_user=uma, project=project).exists()


def test_manager_without_the_administrator_role_cannot_grant(project, compliance, uma):
    compliance.is_staff = True
    compliance.save()
    factories.grant(project, compliance, ProjectRight.MANAGE)
    browser = logged_in(compliance)
    response = submit(
        browser, permissions_url(project, "user", uma.pk), {"permissions": "view_project"}
    )
    assert response.status_code == 403
    assert not AccessChange.objects.filter(target_user=uma, project=project).exists()


def test_grant_lists_show_only_visible_projects(managed, admin_user, other_project, outsider):
    response = logged_in(admin_user).get(
        reverse("admin:registry_projectuserobjectpermission_changelist")
    )
    assert response.status_code == 200
    projects = {grant.content_object.key for grant in response.context["cl"].result_list}
    assert projects == {managed.key}
    assert other_project.key not in response.content.decode()


# --- the access log records every path --------------------------------------------------


def test_grants_made_by_actions_name_their_actor(project, owner, uma):
    services.grant_project_rights(project, uma, [ProjectRight.VIEW], actor=owner)
    change = AccessChange.objects.get(target_user=uma, project=project)
    assert (change.action, change.actor, change.right) == (
        AccessAction.RIGHT_GRANTED,
        owner,
        "view",
    )


def test_role_membership_changes_are_recorded_from_either_side(uma, owner):
    from registry import accounts
    from registry.access_log import changes_made_by

    before = AccessChange.objects.latest("id").pk
    accounts.add_to_role(uma, Role.REVIEWER, actor=owner)
    reviewers = Group.objects.get(name=Role.REVIEWER)
    with changes_made_by(owner):
        reviewers.user_set.remove(uma)
        uma.groups.clear()
    changes = AccessChange.objects.filter(target_user=uma, pk__gt=before)
    assert [(c.action, c.right, c.actor) for c in changes.order_by("id")] == [
        (AccessAction.ROLE_ADDED, Role.REVIEWER, owner),
        (AccessAction.ROLE_REMOVED, Role.REVIEWER, owner),
        (AccessAction.ROLE_REMOVED, Role.DATA_SCIENTIST, owner),
    ]


def test_admin_role_change_on_the_user_page_is_recorded(admin_user, uma):
    before = AccessChange.objects.latest("id").pk
    browser = logged_in(admin_user)
    url = reverse("admin:auth_user_change", args=[uma.pk])
    form = browser.get(url).context["adminform"].form
    data = {name: form.initial.get(name) for name in form.fields if not form.fields[name].disabled}
    data = {k: v for k, v in data.items() if v is not None}
    data["groups"] = [Group.objects.get(name=Role.REVIEWER).pk]
    data["date_joined_0"], data["date_joined_1"] = uma.date_joined.strftime(
        "%Y-%m-%d %H:%M:%S"
    ).split()
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = submit(browser, url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    changes = AccessChange.objects.filter(target_user=uma, pk__gt=before)
    assert {(c.action, c.right, c.actor) for c in changes} == {
        (AccessAction.ROLE_ADDED, Role.REVIEWER, admin_user),
        (AccessAction.ROLE_REMOVED, Role.DATA_SCIENTIST, admin_user),
    }


def test_administrator_cannot_make_themselves_superuser(admin_user):
    browser = logged_in(admin_user)
    page = browser.get(reverse("admin:auth_user_change", args=[admin_user.pk]))
    assert "is_superuser" not in page.context["adminform"].form.fields
    assert "user_permissions" not in page.context["adminform"].form.fields


def test_administrator_cannot_edit_a_superuser(admin_user):
    root = factories.user("root", is_staff=True, is_superuser=True)
    browser = logged_in(admin_user)
    url = reverse("admin:auth_user_password_change", args=[root.pk])
    assert browser.get(url).status_code == 403


# --- deactivation, never deletion -------------------------------------------------------


def test_admin_deactivates_a_user_who_keeps_their_id(admin_user, uma, signals):
    browser = logged_in(admin_user)
    response = submit(
        browser,
        reverse("admin:auth_user_changelist"),
        {"action": "deactivate_users", "_selected_action": [uma.pk]},
    )
    assert response.status_code == 302
    uma.refresh_from_db()
    assert uma.is_active is False
    change = AccessChange.objects.get(action=AccessAction.DEACTIVATED)
    assert (change.target_user, change.actor) == (uma, admin_user)
    assert any(s["action"] == AccessAction.DEACTIVATED for s in signals)
    login = Client().post("/accounts/login/", {"username": "uma", "password": factories.PASSWORD})
    assert login.status_code == 200  # the form again, not a redirect
    assert "_auth_user_id" not in login.wsgi_request.session


def test_unticking_active_on_the_user_page_is_recorded_as_deactivation(uma, owner):
    from registry.access_log import changes_made_by

    with changes_made_by(owner):
        uma.is_active = False
        uma.save()
    assert AccessChange.objects.get(action=AccessAction.DEACTIVATED).actor == owner


def test_administrator_cannot_deactivate_themselves(admin_user):
    browser = logged_in(admin_user)
    submit(
        browser,
        reverse("admin:auth_user_changelist"),
        {"action": "deactivate_users", "_selected_action": [admin_user.pk]},
    )
    admin_user.refresh_from_db()
    assert admin_user.is_active is True


def test_admin_offers_no_way_to_delete_a_user(admin_user, uma):
    browser = logged_in(admin_user)
    changelist = browser.get(reverse("admin:auth_user_changelist"))
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "deactivate_users" in actions
    assert browser.get(reverse("admin:auth_user_delete", args=[uma.pk])).status_code == 403


def test_a_user_cannot_be_deleted_even_in_code(uma):
    # Refused twice over: the access log's rows protect the account, and deletion of any
    # account is refused.
    with pytest.raises((PermissionDenied, ProtectedError)), transaction.atomic():
        uma.delete()
    assert User.objects.filter(pk=uma.pk).exists()


# --- changelists are scoped by project rights -------------------------------------------

CHANGELISTS = [
    "registry_project",
    "registry_riskitem",
    "registry_registeredmodel",
    "registry_modelversion",
    "registry_dataset",
    "registry_datasetversion",
    "registry_evaluation",
    "lineage_codeversion",
    "lineage_run",
]


@pytest.fixture
def two_projects(owner, outsider):
    """Project A ("alpha") and project B ("bravo"), one record of each kind in each."""
    made = {}
    for key, actor in (("alpha", owner), ("bravo", outsider)):
        project = factories.project(actor, key=key)
        data = factories.dataset_version(project, actor, name=f"{key}-data", rows=10)
        code = factories.code_version(project, actor)
        run = factories.run(project, actor, inputs=[data], code=code, name=f"{key}-run")
        model = factories.registered_model(project, actor, name=f"{key}-model")
        version = factories.model_version(model, actor, run=run)
        services.record_evaluation(version, data, actor=actor, metrics={"accuracy": 0.9})
        services.add_risk(
            project, actor=actor, description=f"{key} risk", likelihood="low", impact="low"
        )
        made[key] = {"project": project, "risk": project.risks.get(), "run": run}
    return made


@pytest.fixture
def staff_auditor(two_projects):
    person = factories.user("audrey", role=Role.AUDITOR, is_staff=True)
    factories.grant(two_projects["alpha"]["project"], person, ProjectRight.VIEW)
    return person


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_staff_with_view_on_a_sees_only_a_in_each_changelist(
    staff_auditor, two_projects, changelist, django_assert_max_num_queries
):
    browser = Client()
    browser.force_login(staff_auditor)
    with django_assert_max_num_queries(20):
        response = browser.get(reverse(f"admin:{changelist}_changelist"))
    assert response.status_code == 200
    results = list(response.context["cl"].result_list)
    assert len(results) == 1
    assert project_of(results[0]).key == "alpha"
    # Not in the rows, nor in the sidebar filters.
    assert "bravo" not in response.content.decode()


def test_history_of_an_invisible_record_is_404(staff_auditor, two_projects):
    browser = Client()
    browser.force_login(staff_auditor)
    risk = two_projects["bravo"]["risk"]
    visible = two_projects["alpha"]["risk"]
    assert (
        browser.get(reverse("admin:registry_riskitem_history", args=[visible.pk])).status_code
        == 200
    )
    assert (
        browser.get(reverse("admin:registry_riskitem_history", args=[risk.pk])).status_code == 404
    )
    run = two_projects["bravo"]["run"]
    assert browser.get(reverse("admin:lineage_run_history", args=[run.pk])).status_code == 404


def test_change_page_of_an_invisible_record_reads_like_a_missing_one(staff_auditor, two_projects):
    browser = Client()
    browser.force_login(staff_auditor)
    hidden = browser.get(
        reverse("admin:registry_riskitem_change", args=[two_projects["bravo"]["risk"].pk])
    )
    missing = browser.get(reverse("admin:registry_riskitem_change", args=[10**9]))
    assert hidden.status_code == missing.status_code == 302
    assert hidden["Location"] == missing["Location"]


def test_access_log_shows_changes_of_visible_projects_only(admin_user, two_projects, uma):
    factories.grant(two_projects["alpha"]["project"], admin_user, ProjectRight.VIEW)
    factories.grant(two_projects["bravo"]["project"], uma, ProjectRight.VIEW)
    browser = Client()
    browser.force_login(admin_user)
    response = browser.get(reverse("admin:registry_accesschange_changelist"))
    assert response.status_code == 200
    shown = {c.project.key for c in response.context["cl"].result_list if c.project_id}
    assert shown == {"alpha"}
    assert "bravo" not in response.content.decode()


# --- records written in the admin go through the actions, where the user may contribute ---


@pytest.fixture
def staff_scientist(two_projects):
    person = factories.user("sam", role=Role.DATA_SCIENTIST, is_staff=True)
    alpha = two_projects["alpha"]["project"]
    factories.grant(alpha, person, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    return person


def test_admin_offers_only_projects_the_user_contributes_to(staff_scientist, two_projects, owner):
    factories.project(owner, key="charlie")
    factories.grant(Project.objects.get(key="charlie"), staff_scientist, ProjectRight.VIEW)
    browser = logged_in(staff_scientist)
    form = browser.get(reverse("admin:registry_riskitem_add")).context["adminform"].form
    assert [p.key for p in form.fields["project"].queryset] == ["alpha"]


def test_risk_added_in_the_admin_goes_through_the_action(staff_scientist, two_projects):
    browser = logged_in(staff_scientist)
    alpha = two_projects["alpha"]["project"]
    response = submit(
        browser,
        reverse("admin:registry_riskitem_add"),
        {
            "project": alpha.pk,
            "description": "data drift",
            "likelihood": "medium",
            "impact": "high",
            "status": "open",
        },
    )
    assert response.status_code == 302
    risk = RiskItem.objects.get(description="data drift")
    assert risk.history.get().history_change_reason == "registered in admin"
    assert risk.history.get().history_user == staff_scientist


def test_record_of_a_project_viewed_but_not_contributed_to_is_read_only(
    staff_scientist, two_projects, owner
):
    alpha = two_projects["alpha"]["project"]
    reader = factories.user("reed", role=Role.DATA_SCIENTIST, is_staff=True)
    factories.grant(alpha, reader, ProjectRight.VIEW)
    risk = two_projects["alpha"]["risk"]
    url = reverse("admin:registry_riskitem_change", args=[risk.pk])
    browser = logged_in(reader)
    assert browser.get(url).context["has_change_permission"] is False
    response = submit(browser, url, {"project": alpha.pk, "description": "rewritten"})
    assert response.status_code == 403
    risk.refresh_from_db()
    assert risk.description == "alpha risk"
