"""The one-statement right checks answer what `Project.objects.visible_to` answers."""

import pytest
from django.contrib.auth.models import Group
from django.db.models import OuterRef

from registry.access import (
    has_project_right,
    right_and_groups,
    right_and_groups_annotations,
    right_and_groups_of,
)
from registry.choices import ProjectRight
from registry.models import Project
from registry.roles import Role
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(project, owner):
    direct = factories.user("direct", role=Role.REVIEWER)
    factories.grant(project, direct, ProjectRight.VIEW, ProjectRight.REVIEW)
    team = Group.objects.create(name="credit-team")
    via_group = factories.user("grouped", role=Role.COMPLIANCE_OFFICER)
    via_group.groups.add(team)
    factories.grant(project, team, ProjectRight.REVIEW)
    nobody = factories.user("nobody", role=Role.REVIEWER)
    inactive = factories.user("gone", role=Role.REVIEWER)
    factories.grant(project, inactive, ProjectRight.REVIEW)
    inactive.is_active = False
    inactive.save()
    admin = factories.user("root", is_superuser=True)
    other = factories.project(owner, key="other")
    return {
        "direct": direct,
        "via_group": via_group,
        "nobody": nobody,
        "inactive": inactive,
        "admin": admin,
        "other_project": other,
    }


@pytest.mark.parametrize("action", ProjectRight.values)
@pytest.mark.parametrize("who", ["direct", "via_group", "nobody", "inactive", "admin"])
def test_same_answer_as_the_queryset(project, people, who, action):
    user = people[who]
    for target in (project, people["other_project"]):
        expected = Project.objects.visible_to(user, action).filter(pk=target.pk).exists()
        assert has_project_right(user, target, action) is expected
        assert right_and_groups(user, target, action)[0] is expected


def test_right_and_groups_names_the_groups(project, people):
    assert right_and_groups(people["via_group"], project, ProjectRight.REVIEW) == (
        True,
        {Role.COMPLIANCE_OFFICER, "credit-team"},
    )
    assert right_and_groups(people["nobody"], project, ProjectRight.REVIEW) == (
        False,
        {Role.REVIEWER},
    )
    assert right_and_groups(people["inactive"], project, ProjectRight.REVIEW) == (False, set())


def test_an_unknown_right_is_refused(project, people):
    for user in (people["direct"], people["inactive"]):
        with pytest.raises(ValueError, match="unknown project right"):
            has_project_right(user, project, "fly")
        with pytest.raises(ValueError, match="unknown project right"):
            right_and_groups(user, project, "fly")


def test_one_query_each(project, people, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert has_project_right(people["via_group"], project, ProjectRight.REVIEW)
    with django_assert_num_queries(1):
        assert right_and_groups(people["via_group"], project, ProjectRight.REVIEW)[0]


@pytest.mark.parametrize("action", ProjectRight.values)
@pytest.mark.parametrize("who", ["direct", "via_group", "nobody", "inactive", "admin"])
def test_the_annotations_answer_what_right_and_groups_answers(project, people, who, action):
    user = people[who]
    roles = (Role.COMPLIANCE_OFFICER, Role.REVIEWER, "credit-team")
    for target in (project, people["other_project"]):
        annotations = right_and_groups_annotations(user.pk, OuterRef("pk"), action, roles)
        annotated = Project.objects.annotate(**annotations).get(pk=target.pk)
        may, groups = right_and_groups(user, target, action)
        assert right_and_groups_of(annotated, roles) == (may, groups & set(roles))
