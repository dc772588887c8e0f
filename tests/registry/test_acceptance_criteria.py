"""Acceptance criteria decide a release, which is judged on a test-split dataset version only:
a criterion naming another split is refused where it is written, with the reason."""

import pytest
from django.core.exceptions import ValidationError

from registry import services
from registry.models import Project
from tests import factories

pytestmark = pytest.mark.django_db

API = "/api/v1"


def criterion(split: str) -> dict:
    return {"metric": "accuracy", "threshold": 0.8, "direction": "higher", "split": split}


@pytest.mark.parametrize("split", ["train", "validation", "production"])
def test_criterion_on_another_split_than_test_is_refused(owner, split):
    with pytest.raises(ValidationError) as excinfo:
        factories.project(owner, key="credit", acceptance_criteria=[criterion(split)])
    message = " ".join(excinfo.value.message_dict["acceptance_criteria"])
    assert f"criterion 1: split must be 'test', not '{split}'" in message
    assert "test-split dataset version" in message
    assert not Project.objects.filter(key="credit").exists()


def test_criterion_on_the_test_split_is_accepted(owner):
    project = factories.project(owner, key="credit", acceptance_criteria=[criterion("test")])
    assert project.acceptance_criteria == [criterion("test")]


def test_api_refuses_a_train_split_criterion_with_400(api, compliance):
    response = api.as_user(compliance).post(
        f"{API}/projects/",
        {
            "key": "fraud",
            "name": "Fraud",
            "risk_tier": "limited",
            "acceptance_criteria": [criterion("train")],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "split must be 'test', not 'train'" in str(response.json()["acceptance_criteria"])
    assert not Project.objects.filter(key="fraud").exists()


def test_project_with_criteria_stored_before_the_rule_stays_editable(project, owner):
    """Criteria stored naming another split (before the rule) do not block an unrelated edit;
    changing the criteria themselves is judged by the rule."""
    Project.objects.filter(pk=project.pk).update(acceptance_criteria=[criterion("validation")])
    services.update_project(project, actor=owner, description="Scores loan applications.")
    project.refresh_from_db()
    assert project.description == "Scores loan applications."
    with pytest.raises(ValidationError, match="split must be 'test', not 'train'"):
        services.update_project(project, actor=owner, acceptance_criteria=[criterion("train")])
    services.update_project(project, actor=owner, acceptance_criteria=[criterion("test")])
    project.refresh_from_db()
    assert project.acceptance_criteria == [criterion("test")]
