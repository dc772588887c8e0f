"""`manage.py load_demo`: two projects with data, runs, versions and evaluations, demo users
in their role groups, and a second run that changes nothing."""

from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command

from registry.access import has_project_right
from registry.management.commands.load_demo import DEMO_PASSWORD, DEMO_USERS
from registry.models import ModelVersion, Project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def row_counts() -> dict[str, int]:
    """Rows in every table Stagegate owns, history tables included."""
    return {
        model._meta.label: model._default_manager.count()
        for app in ("registry", "lineage", "auth")
        for model in apps.get_app_config(app).get_models()
    }


def load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def test_demo_loads_two_high_risk_projects_with_evaluated_versions():
    assert "Demo data loaded." in load()
    projects = Project.objects.order_by("key")
    assert [p.key for p in projects] == ["credit-risk", "readmission"]
    assert {p.risk_tier for p in projects} == {"high"}
    for project in projects:
        assert project.acceptance_criteria
        assert project.risks.exists()
        assert project.datasets.get().versions.filter(split="test").exists()
        assert project.runs.filter(status="completed", code_version__isnull=False).exists()
    versions = ModelVersion.objects.all()
    assert versions.count() == 3
    for version in versions:
        evaluation = version.evaluations.get()
        assert evaluation.metrics["accuracy"] > evaluation.baselines["majority_class"]["accuracy"]
        assert evaluation.predictions_sha256
        assert version.run is not None


def test_demo_users_are_in_their_role_groups_with_project_rights():
    load()
    users = {u.username: u for u in get_user_model().objects.all()}
    credit = Project.objects.get(key="credit-risk")
    for username, _, role in DEMO_USERS:
        user = users[username]
        assert user.groups.filter(name=role).exists(), username
        assert user.check_password(DEMO_PASSWORD), username
    assert has_project_right(users["dana"], credit, "contribute")
    assert has_project_right(users["rory"], credit, "review")
    assert has_project_right(users["avery"], credit, "view")
    assert not has_project_right(users["avery"], credit, "contribute")
    assert has_project_right(users["casey"], credit, "export")
    assert users["admin"].is_superuser


def test_demo_history_names_the_demo_actor():
    load()
    version = ModelVersion.objects.filter(registered_model__name="default-scorer").first()
    created = version.history.earliest()
    assert created.history_user.username == "dana"
    assert created.history_change_reason == "model version registered"


def test_loading_the_demo_twice_changes_nothing(media_root):
    load()
    before = row_counts()
    files_before = sorted(media_root.rglob("*"))
    assert "already loaded" in load()
    assert row_counts() == before
    assert sorted(media_root.rglob("*")) == files_before
