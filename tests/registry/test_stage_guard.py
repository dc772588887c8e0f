"""A model version's stage changes only through a governance transition (issue 4, DESIGN rule 2).

The database refuses every other write of the stage (registry/stage_guard.py), on SQLite and
PostgreSQL alike (run this file on both); the ORM's own ways around `save()` are refused in
Python first, with a clearer message; the admin site and the API cannot write it either.
"""

import pytest
from django.db import DatabaseError, connection, models, transaction
from django.urls import reverse

from governance import transitions
from registry import services
from registry.choices import Stage
from registry.models import ModelVersion, ModelVersionQuerySet, StageWriteRefused
from registry.stage_guard import REFUSAL, moving_stage
from tests import factories
from tests.factories import PASSWORD
from tests.governance.builders import version_with_evidence

pytestmark = pytest.mark.django_db
TABLE = ModelVersion._meta.db_table


def stage_of(version) -> str:
    return ModelVersion.objects.values_list("stage", flat=True).get(pk=version.pk)


def execute(sql: str, params) -> None:
    # In a savepoint, so that a refused statement leaves the test's transaction usable.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def update_stage(version, stage: str) -> None:
    execute(f"UPDATE {TABLE} SET stage = %s WHERE id = %s", [stage, version.pk])


def insert_copy(version, *, stage: str, number: int) -> None:
    """Insert a copy of `version`'s row under another number and in `stage`, in raw SQL."""
    columns = [f.column for f in ModelVersion._meta.concrete_fields if not f.primary_key]
    given = {"version": number, "stage": stage}
    execute(
        f"INSERT INTO {TABLE} ({', '.join(columns)}) "
        f"SELECT {', '.join('%s' if c in given else c for c in columns)} FROM {TABLE} "
        "WHERE id = %s",
        [*(given[c] for c in columns if c in given), version.pk],
    )


@pytest.fixture
def version(project, owner):
    return factories.model_version(factories.registered_model(project, owner), owner)


@pytest.fixture
def validated(project, owner, reviewer):
    """A version moved development → validation by a real transition (one approval)."""
    version, _ = version_with_evidence(project, owner)
    request = transitions.request_transition(
        version, Stage.VALIDATION, actor=owner, justification="ready"
    )
    transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
    assert stage_of(version) == Stage.VALIDATION
    return ModelVersion.objects.get(pk=version.pk)


# --- The database refuses ---------------------------------------------------------------


def test_raw_sql_update_of_the_stage_is_refused(version):
    with pytest.raises(DatabaseError, match=REFUSAL):
        update_stage(version, Stage.PRODUCTION)
    assert stage_of(version) == Stage.DEVELOPMENT


def test_raw_sql_update_of_other_columns_is_not_refused(version):
    execute(f"UPDATE {TABLE} SET framework = %s, stage = stage WHERE id = %s", ["onnx", version.pk])
    assert ModelVersion.objects.get(pk=version.pk).framework == "onnx"


def test_raw_sql_insert_in_production_is_refused(version):
    with pytest.raises(DatabaseError, match=REFUSAL):
        insert_copy(version, stage=Stage.PRODUCTION, number=2)
    assert not ModelVersion.objects.filter(version=2).exists()
    insert_copy(version, stage=Stage.DEVELOPMENT, number=3)  # the initial stage is allowed
    assert stage_of(ModelVersion.objects.get(version=3)) == Stage.DEVELOPMENT


def test_an_orm_update_around_the_managers_check_is_refused(version):
    with pytest.raises(DatabaseError, match=REFUSAL), transaction.atomic():
        models.QuerySet.update(ModelVersion.objects.filter(pk=version.pk), stage=Stage.PRODUCTION)
    assert stage_of(version) == Stage.DEVELOPMENT


# --- The ORM refuses first, with a clearer message ---------------------------------------


def test_bulk_create_in_another_stage_is_refused(version):
    copy = ModelVersion(
        registered_model=version.registered_model,
        version=2,
        artifact_uri="s3://b/m2",
        artifact_sha256=factories.sha("m2"),
        created_by=version.created_by,
        stage=Stage.PRODUCTION,
    )
    with pytest.raises(StageWriteRefused, match="created in the development stage"):
        ModelVersion.objects.bulk_create([copy])
    assert not ModelVersion.objects.filter(version=2).exists()


def test_the_base_manager_is_the_guarded_one(version):
    assert isinstance(ModelVersion._base_manager.all(), ModelVersionQuerySet)
    with pytest.raises(StageWriteRefused):
        ModelVersion._base_manager.filter(pk=version.pk).update(stage=Stage.PRODUCTION)
    assert stage_of(version) == Stage.DEVELOPMENT


# --- Only a transition moves a stage ------------------------------------------------------


def test_a_transition_leaves_no_authorisation_behind_in_its_transaction(project, owner, reviewer):
    version, _ = version_with_evidence(project, owner)
    with transaction.atomic():
        request = transitions.request_transition(
            version, Stage.VALIDATION, actor=owner, justification="ready"
        )
        transitions.sign(request, signer=reviewer, meaning="approved", password=PASSWORD)
        assert stage_of(version) == Stage.VALIDATION
        with pytest.raises(DatabaseError, match=REFUSAL):
            update_stage(version, Stage.PRODUCTION)
    assert stage_of(version) == Stage.VALIDATION


def test_an_authorisation_is_for_its_own_version_only(project, owner, version):
    other = factories.model_version(version.registered_model, owner)
    with (
        transaction.atomic(),
        moving_stage(version),
        pytest.raises(DatabaseError, match=REFUSAL),
    ):
        update_stage(other, Stage.PRODUCTION)
    assert stage_of(other) == Stage.DEVELOPMENT


def test_an_authorisation_left_unused_is_withdrawn(version):
    class Interrupted(Exception):
        pass

    with transaction.atomic():
        with pytest.raises(Interrupted), moving_stage(version):
            raise Interrupted
        with pytest.raises(DatabaseError, match=REFUSAL):
            update_stage(version, Stage.PRODUCTION)
    assert stage_of(version) == Stage.DEVELOPMENT


# --- Admin site and API -------------------------------------------------------------------


@pytest.fixture
def superuser_client(client):
    client.force_login(factories.user("root", is_staff=True, is_superuser=True))
    return client


def test_admin_change_form_cannot_change_the_stage(superuser_client, validated):
    url = reverse("admin:registry_modelversion_change", args=[validated.pk])
    response = superuser_client.post(url, {"stage": Stage.PRODUCTION, "framework": "x"})
    assert response.status_code == 403
    assert stage_of(validated) == Stage.VALIDATION


def test_admin_history_revert_cannot_change_the_stage(superuser_client, validated):
    """simple-history would save a reverted older row (stage development, another artifact)
    for anyone who may view the history; here nobody may change a version, so nobody reverts."""
    first = validated.history.order_by("history_id").first()
    assert first.stage == Stage.DEVELOPMENT
    url = reverse(
        "admin:registry_modelversion_simple_history", args=[validated.pk, first.history_id]
    )
    form = superuser_client.get(url).context["adminform"].form
    data = {name: form.initial.get(name) or "" for name in form.fields}
    response = superuser_client.post(data=data | {"artifact_uri": "s3://elsewhere"}, path=url)
    assert response.status_code == 403
    validated.refresh_from_db()
    assert (validated.stage, validated.artifact_uri) == (Stage.VALIDATION, first.artifact_uri)


def test_api_answers_409_when_the_database_refuses_a_stage_write(
    api, project, member, version, monkeypatch
):
    """Were an action ever to write the stage around the transitions, the database's refusal
    would reach the API as a clear 409, not a 500."""

    def writes_the_stage(version, **fields):
        update_stage(version, Stage.PRODUCTION)

    monkeypatch.setattr(services, "update_model_version", writes_the_stage)
    response = api.as_user(member).patch(
        f"/api/v1/model-versions/{version.pk}/", {"description": "x"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["detail"] == f"{REFUSAL}; request a transition"
    assert stage_of(version) == Stage.DEVELOPMENT
