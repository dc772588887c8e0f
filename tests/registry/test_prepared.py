"""PreparedQuery: a queryset compiled once returns what the queryset returns."""

import pytest
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.db.transaction import TransactionManagementError

from registry.models import ModelVersion, Project, RegisteredModel
from registry.prepared import PreparedQuery
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(project, owner):
    model = factories.registered_model(project, owner)
    return [factories.model_version(model, owner) for _ in range(3)]


def _by_model(model_pk):
    return (
        ModelVersion.objects.filter(registered_model_id=model_pk)
        .select_related("registered_model__project")
        .annotate(models_in_project=Count("registered_model__project__models"))
        .order_by("-id")
    )


def test_returns_the_querysets_instances_with_related_records_and_annotations(
    versions, django_assert_num_queries
):
    prepared = PreparedQuery(_by_model, ModelVersion)
    model_pk = versions[0].registered_model_id
    expected = list(_by_model(model_pk))
    for _ in range(2):  # compiled on the first call, reused on the second
        with django_assert_num_queries(1):
            got = prepared(model_pk=model_pk)
            # The related records came with the row: reading them costs no query.
            assert [v.registered_model.project.key for v in got] == ["credit"] * 3
        assert [v.pk for v in got] == [v.pk for v in expected]
        assert [v.models_in_project for v in got] == [v.models_in_project for v in expected]
        assert [v.created_at for v in got] == [v.created_at for v in expected]
        assert all(not v._state.adding and v._state.db == "default" for v in got)


def test_each_call_uses_its_own_values(project, owner, versions):
    other = factories.registered_model(project, owner)
    mine = factories.model_version(other, owner)
    prepared = PreparedQuery(_by_model, ModelVersion)
    assert len(prepared(model_pk=versions[0].registered_model_id)) == 3
    assert [v.pk for v in prepared(model_pk=other.pk)] == [mine.pk]
    assert prepared(model_pk=other.pk + 10_000) == []


def test_get_and_first(versions):
    prepared = PreparedQuery(lambda pk: ModelVersion.objects.filter(pk=pk), ModelVersion)
    assert prepared.get(pk=versions[1].pk) == versions[1]
    assert prepared.first(pk=versions[1].pk) == versions[1]
    assert prepared.first(pk=-1) is None
    with pytest.raises(ModelVersion.DoesNotExist):
        prepared.get(pk=-1)
    several = PreparedQuery(
        lambda model_pk: ModelVersion.objects.filter(registered_model_id=model_pk), ModelVersion
    )
    with pytest.raises(ModelVersion.MultipleObjectsReturned):
        several.get(model_pk=versions[0].registered_model_id)


def test_deferred_fields_load_when_read(versions):
    prepared = PreparedQuery(
        lambda pk: ModelVersion.objects.filter(pk=pk).defer("description"), ModelVersion
    )
    version = prepared.get(pk=versions[0].pk)
    assert "description" in version.get_deferred_fields()
    assert version.description == versions[0].description


def test_a_value_that_does_not_reach_the_parameters_is_refused(versions):
    # A slice is written into the SQL, not passed as a parameter: it cannot be prepared.
    sliced = PreparedQuery(lambda n: ModelVersion.objects.all()[:n], ModelVersion)
    with pytest.raises((ValueError, TypeError)):
        sliced(n=2)


def test_a_queryset_of_another_model_is_refused(versions):
    wrong = PreparedQuery(lambda pk: RegisteredModel.objects.filter(pk=pk), ModelVersion)
    with pytest.raises(TypeError, match="RegisteredModel"):
        wrong(pk=1)


@pytest.mark.django_db(transaction=True)
def test_row_locks_still_need_a_transaction(versions):
    locked = PreparedQuery(
        lambda pk: ModelVersion.objects.select_for_update().filter(pk=pk), ModelVersion
    )
    with transaction.atomic():
        assert locked.get(pk=versions[0].pk) == versions[0]  # compiled here
    # Compiling checks this; a prepared query must too, though it does not compile again.
    with pytest.raises(TransactionManagementError):
        locked.get(pk=versions[0].pk)


def test_annotation_subqueries_take_the_value_too(project, owner, versions):
    has_versions = Exists(ModelVersion.objects.filter(registered_model__project_id=OuterRef("pk")))
    prepared = PreparedQuery(
        lambda pk: Project.objects.filter(pk=pk).annotate(has_versions=has_versions), Project
    )
    empty = factories.project(owner, key="empty")
    assert prepared.get(pk=project.pk).has_versions is True
    assert prepared.get(pk=empty.pk).has_versions is False


def test_every_use_of_a_value_takes_it_on_int4_columns_too(project, owner):
    # auth_user's id is an int4 on PostgreSQL: a stand-in outside its range was compiled as
    # "matches nothing", without a parameter, so an Exists on it was always false there (the
    # value still reached the other subqueries, so the statement was not refused).
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    inactive = factories.user("inactive")
    inactive.is_active = False
    inactive.save()

    def build(project_pk, user_pk):
        return Project.objects.filter(pk=project_pk).annotate(
            active=Exists(users.filter(pk=user_pk, is_active=True)),
            owned=Exists(Project.objects.filter(pk=project_pk, owner_id=user_pk)),
        )

    prepared = PreparedQuery(build, Project)
    for user in (owner, inactive):
        got = prepared.get(project_pk=project.pk, user_pk=user.pk)
        expected = build(project.pk, user.pk).get()
        assert (got.active, got.owned) == (expected.active, expected.owned)
    assert prepared.get(project_pk=project.pk, user_pk=owner.pk).active is True


def test_a_value_changed_before_it_reaches_the_sql_is_refused(versions):
    shifted = PreparedQuery(lambda pk: ModelVersion.objects.filter(pk=pk + 1), ModelVersion)
    with pytest.raises(ValueError, match="changed with the values"):
        shifted(pk=versions[0].pk)


def test_string_values_named_as_strings_are_parameters_too(project, other_project):
    prepared = PreparedQuery(lambda key: Project.objects.filter(key=key), Project, strings=("key",))
    assert prepared.get(key="credit") == project
    assert prepared.get(key=other_project.key) == other_project
    assert prepared.first(key="no-such-project") is None
    with pytest.raises(TypeError, match="key must be a str"):
        prepared.first(key=project.pk)


def test_a_string_value_not_named_as_one_or_transformed_is_refused(project):
    with pytest.raises(ValueError, match="changed with the values but is not one"):
        PreparedQuery(
            lambda key: Project.objects.filter(key__contains=key), Project, strings=("key",)
        ).first(key="cred")
    with pytest.raises(TypeError, match="pk must be an int"):
        PreparedQuery(lambda pk: Project.objects.filter(pk=pk), Project).first(pk=str(project.pk))
