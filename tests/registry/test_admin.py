"""The admin site: scoped like the API, writing through the actions, versions read-only."""

import pytest
from django.test import Client

from registry import services
from registry.choices import ProjectRight
from registry.models import ModelVersion, RiskItem
from tests import factories

pytestmark = pytest.mark.django_db


def staff_client(user) -> Client:
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def risk(project, member):
    return services.add_risk(
        project, actor=member, description="Proxy bias", likelihood="low", impact="high"
    )


def test_project_changelist_shows_only_visible_projects(project, other_project, member):
    response = staff_client(member).get("/admin/registry/project/")
    assert response.status_code == 200
    listed = [p.key for p in response.context["cl"].result_list]
    assert listed == ["credit"]


def test_add_form_offers_only_projects_the_user_may_contribute_to(
    project, other_project, member, owner
):
    watched = factories.project(owner, key="watched")
    factories.grant(watched, member, ProjectRight.VIEW)
    response = staff_client(member).get("/admin/registry/riskitem/add/")
    assert response.status_code == 200
    choices = response.context["adminform"].form.fields["project"].queryset
    assert [p.key for p in choices] == ["credit"]


def test_adding_a_risk_in_admin_goes_through_the_action(project, member):
    response = staff_client(member).post(
        "/admin/registry/riskitem/add/",
        {
            "project": project.pk,
            "description": "Label leakage",
            "likelihood": "medium",
            "impact": "high",
            "status": "open",
        },
    )
    assert response.status_code == 302
    created = RiskItem.objects.get(description="Label leakage")
    row = created.history.get()
    assert row.history_user == member
    assert row.history_change_reason == "created in admin"


def test_adding_a_risk_to_an_invisible_project_is_refused(project, other_project, member):
    response = staff_client(member).post(
        "/admin/registry/riskitem/add/",
        {"project": other_project.pk, "description": "x", "likelihood": "low", "impact": "low"},
    )
    assert response.status_code == 200
    assert "project" in response.context["adminform"].form.errors
    assert not RiskItem.objects.exists()


def test_editing_needs_the_write_right_on_the_project(project, risk, viewer_staff):
    client = staff_client(viewer_staff)
    url = f"/admin/registry/riskitem/{risk.pk}/change/"
    assert client.get(url).status_code == 200  # readable
    response = client.post(
        url, {"description": "changed", "likelihood": "low", "impact": "low", "status": "closed"}
    )
    assert response.status_code == 403
    assert RiskItem.objects.get(pk=risk.pk).status == "open"


@pytest.fixture
def viewer_staff(project):
    """A compliance officer (may change risks by role) with only the view right here."""
    person = factories.user("vera", role=factories.Role.COMPLIANCE_OFFICER)
    factories.grant(project, person, ProjectRight.VIEW)
    return person


def test_editing_a_risk_in_admin_records_who_and_why(project, risk, member):
    response = staff_client(member).post(
        f"/admin/registry/riskitem/{risk.pk}/change/",
        {"description": "Proxy bias", "likelihood": "low", "impact": "high", "status": "mitigated"},
    )
    assert response.status_code == 302
    latest = RiskItem.objects.get(pk=risk.pk).history.latest()
    assert latest.status == "mitigated"
    assert latest.history_user == member
    assert latest.history_change_reason == "edited in admin"


def test_outsider_cannot_open_a_record_of_an_invisible_project(project, risk, outsider):
    response = staff_client(outsider).get(f"/admin/registry/riskitem/{risk.pk}/change/")
    assert response.status_code == 302  # "doesn't exist", back to the index
    assert risk.description not in response.content.decode()


def test_model_versions_cannot_be_added_or_edited_in_admin(project, member):
    version = factories.model_version(factories.registered_model(project, member), member)
    client = staff_client(member)
    assert client.get("/admin/registry/modelversion/add/").status_code == 403
    response = client.post(
        f"/admin/registry/modelversion/{version.pk}/change/", {"framework": "changed"}
    )
    assert response.status_code == 403
    assert ModelVersion.objects.get(pk=version.pk).framework == ""


def test_history_page_is_available(project, risk, member):
    response = staff_client(member).get(f"/admin/registry/riskitem/{risk.pk}/history/")
    assert response.status_code == 200
    assert "risk registered" in response.content.decode()
