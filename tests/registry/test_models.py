"""Registry records: validation that names the problem, history on every change, version
numbers never reused, and a stage that only transitions may write."""

import pytest
from django.core.exceptions import ValidationError

from config.request_context import acting_as
from registry import services
from registry.choices import Stage
from registry.models import Dataset, DatasetVersion, ModelVersion, Project, StageWriteRefused
from tests import factories

pytestmark = pytest.mark.django_db

GOOD_CRITERION = {"metric": "accuracy", "threshold": 0.8, "direction": "higher", "split": "test"}


def error_of(excinfo, field):
    """The messages a ValidationError gives for one field, as one string."""
    return " ".join(excinfo.value.message_dict[field])


# --- Project ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Credit", "credit risk", "x", "-credit", "crédit", "a" * 64])
def test_project_key_must_be_lowercase_slug(owner, key):
    with pytest.raises(ValidationError) as excinfo:
        factories.project(owner, key=key)
    assert "lowercase letters, digits or hyphens" in error_of(excinfo, "key")
    assert not Project.objects.filter(key=key).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "auc"}, "unknown metric 'auc'"),
        ({"direction": "up"}, "direction must be 'higher' or 'lower'"),
        ({"threshold": "0.8"}, "threshold must be a number"),
        ({"threshold": True}, "threshold must be a number"),
        ({"split": "holdout"}, "split must be one of train, validation, test, production"),
    ],
)
def test_acceptance_criterion_is_refused_with_its_problem_named(owner, change, message):
    criteria = [GOOD_CRITERION, {**GOOD_CRITERION, **change}]
    with pytest.raises(ValidationError) as excinfo:
        factories.project(owner, key="credit", acceptance_criteria=criteria)
    assert f"criterion 2: {message}" in error_of(excinfo, "acceptance_criteria")


def test_acceptance_criterion_missing_a_key_is_refused(owner):
    with pytest.raises(ValidationError) as excinfo:
        factories.project(owner, acceptance_criteria=[{"metric": "accuracy"}])
    assert "criterion 1 is missing threshold, direction, split" in error_of(
        excinfo, "acceptance_criteria"
    )


def test_acceptance_criteria_must_be_a_list(owner):
    with pytest.raises(ValidationError) as excinfo:
        factories.project(owner, acceptance_criteria=GOOD_CRITERION)
    assert "must be a list" in error_of(excinfo, "acceptance_criteria")


def test_project_key_cannot_be_changed_by_update(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.update_project(project, actor=owner, key="renamed")
    assert "cannot be changed" in error_of(excinfo, "key")


def test_project_owner_gets_every_right_on_creation(owner):
    created = factories.project(owner, key="fraud")
    for right in ("view", "contribute", "review", "export", "manage"):
        assert Project.objects.visible_to(owner, right).filter(pk=created.pk).exists()


# --- Risk register ----------------------------------------------------------------------


def test_risk_likelihood_must_be_a_level(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.add_risk(
            project, actor=owner, description="Leak", likelihood="often", impact="high"
        )
    assert "likelihood" in excinfo.value.message_dict


def test_risk_needs_a_description(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.add_risk(project, actor=owner, description="", likelihood="low", impact="high")
    assert "description" in excinfo.value.message_dict


# --- Registered models and versions -----------------------------------------------------


def test_model_name_must_be_a_slug(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        factories.registered_model(project, owner, name="Credit Scorer")
    assert "name" in excinfo.value.message_dict


def test_model_name_is_unique_within_a_project(project, owner, other_project, outsider):
    factories.registered_model(project, owner, name="scorer")
    with pytest.raises(ValidationError) as excinfo:
        factories.registered_model(project, owner, name="scorer")
    assert "a model named 'scorer' exists in credit" in error_of(excinfo, "name")
    factories.registered_model(other_project, outsider, name="scorer")


def test_model_task_type_must_be_known(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        factories.registered_model(project, owner, task_type="clustering")
    assert "task_type" in excinfo.value.message_dict


@pytest.mark.parametrize(
    "digest", ["abc", "A" * 64, "g" * 64, factories.sha("x") + "0", factories.sha("x")[:-1]]
)
def test_model_version_artifact_sha256_is_validated(project, owner, digest):
    model = factories.registered_model(project, owner)
    with pytest.raises(ValidationError) as excinfo:
        factories.model_version(model, owner, artifact_sha256=digest)
    assert "64 lowercase hexadecimal" in error_of(excinfo, "artifact_sha256")
    assert not ModelVersion.objects.exists()


def test_model_version_numbers_are_never_reused(project, owner):
    model = factories.registered_model(project, owner)
    first = factories.model_version(model, owner)
    second = factories.model_version(model, owner)
    # Even if a version row disappeared (e.g. removed by a database administrator),
    # its number is not issued again.
    ModelVersion.objects.filter(pk=second.pk).delete()
    third = factories.model_version(model, owner)
    assert (first.version, second.version, third.version) == (1, 2, 3)
    model.refresh_from_db()
    assert model.last_version == 3


def test_a_failed_registration_does_not_consume_a_version_number(project, owner):
    model = factories.registered_model(project, owner)
    with pytest.raises(ValidationError):
        factories.model_version(model, owner, artifact_sha256="bad")
    assert factories.model_version(model, owner).version == 1


def test_model_version_numbers_are_per_model(project, owner):
    a = factories.registered_model(project, owner)
    b = factories.registered_model(project, owner)
    factories.model_version(a, owner)
    assert factories.model_version(b, owner).version == 1


def test_model_version_cannot_link_a_run_of_another_project(
    project, owner, other_project, outsider
):
    foreign_run = factories.run(other_project, outsider)
    model = factories.registered_model(project, owner)
    with pytest.raises(ValidationError) as excinfo:
        factories.model_version(model, owner, run=foreign_run)
    assert "belongs to project secret, not credit" in error_of(excinfo, "run")


def test_model_version_derives_only_from_the_same_model(project, owner):
    a = factories.model_version(factories.registered_model(project, owner), owner)
    b = factories.registered_model(project, owner)
    with pytest.raises(ValidationError) as excinfo:
        factories.model_version(b, owner, derived_from=a)
    assert "same model" in error_of(excinfo, "derived_from")


def test_model_version_provenance_is_fixed_after_registration(project, owner):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    with pytest.raises(ValidationError) as excinfo:
        services.update_model_version(version, actor=owner, artifact_uri="s3://elsewhere")
    assert "cannot be changed after registration" in error_of(excinfo, "artifact_uri")


# --- The stage is written only by transitions -------------------------------------------


def test_stage_cannot_be_saved_directly(project, owner):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    version.stage = Stage.PRODUCTION
    with pytest.raises(StageWriteRefused):
        version.save()
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.DEVELOPMENT


def test_stage_of_a_loaded_version_cannot_be_saved_directly(project, owner):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    loaded = ModelVersion.objects.get(pk=version.pk)
    loaded.stage = Stage.APPROVED
    with pytest.raises(StageWriteRefused):
        loaded.save()
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.DEVELOPMENT


def test_new_version_cannot_be_created_in_another_stage(project, owner):
    model = factories.registered_model(project, owner)
    with pytest.raises(StageWriteRefused):
        ModelVersion(
            registered_model=model,
            version=1,
            artifact_uri="s3://b/m",
            artifact_sha256=factories.sha("m"),
            created_by=owner,
            stage=Stage.PRODUCTION,
        ).save()
    assert not ModelVersion.objects.exists()


def test_stage_cannot_be_bulk_updated(project, owner):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    with pytest.raises(StageWriteRefused):
        ModelVersion.objects.filter(pk=version.pk).update(stage=Stage.PRODUCTION)
    version.stage = Stage.PRODUCTION
    with pytest.raises(StageWriteRefused):
        ModelVersion.objects.bulk_update([version], ["stage"])
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.DEVELOPMENT
    assert ModelVersion.objects.filter(pk=version.pk).update(framework="onnx") == 1


def test_stage_cannot_be_changed_through_the_update_action(project, owner):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    with pytest.raises(ValidationError) as excinfo:
        services.update_model_version(version, actor=owner, stage=Stage.PRODUCTION)
    assert "stage" in excinfo.value.message_dict


def test_api_refuses_stage_on_create(api, project, member):
    model = factories.registered_model(project, member)
    response = api.as_user(member).post(
        "/api/v1/model-versions/",
        {
            "registered_model": model.pk,
            "artifact_uri": "s3://b/m",
            "artifact_sha256": factories.sha("m"),
            "stage": "production",
        },
    )
    assert response.status_code == 400
    assert "transition" in response.json()["stage"][0]
    assert not ModelVersion.objects.exists()


def test_api_refuses_stage_on_update(api, project, member):
    version = factories.model_version(factories.registered_model(project, member), member)
    client = api.as_user(member)
    for method in (client.patch, client.put):
        response = method(
            f"/api/v1/model-versions/{version.pk}/",
            {
                "registered_model": version.registered_model_id,
                "artifact_uri": version.artifact_uri,
                "artifact_sha256": version.artifact_sha256,
                "stage": "production",
            },
        )
        assert response.status_code == 400
        assert "stage" in response.json()
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.DEVELOPMENT


# --- Datasets ---------------------------------------------------------------------------


def dataset_version(project, actor, **fields):
    dataset = Dataset.objects.filter(project=project, name="loans").first()
    dataset = dataset or services.register_dataset(project, actor=actor, name="loans")
    values = {
        "content_sha256": factories.sha("loans-1"),
        "uri": "s3://b/loans.parquet",
        "row_count": 10,
        "split": "test",
        "schema": [{"name": "income", "type": "float"}, {"name": "sex", "type": "category"}],
    }
    values.update(fields)
    return services.register_dataset_version(dataset, actor=actor, **values)


def test_dataset_version_content_sha256_is_validated(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, content_sha256="F" * 64)
    assert "64 lowercase hexadecimal" in error_of(excinfo, "content_sha256")


def test_schema_refuses_a_duplicate_column(project, owner):
    schema = [{"name": "income", "type": "float"}, {"name": "income", "type": "integer"}]
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, schema=schema)
    assert "column 2: duplicate column name 'income'" in error_of(excinfo, "schema")


def test_schema_refuses_an_unknown_type(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, schema=[{"name": "income", "type": "money"}])
    assert "column 1: type must be one of integer, float" in error_of(excinfo, "schema")


def test_schema_column_needs_a_name(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, schema=[{"type": "float"}])
    assert "column 1 is missing name" in error_of(excinfo, "schema")


def test_sensitive_attribute_must_be_a_schema_column(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, sensitive_attributes=["sex", "ethnicity"])
    assert "not columns of the schema: ethnicity" in error_of(excinfo, "sensitive_attributes")
    assert not DatasetVersion.objects.exists()


def test_sensitive_attributes_must_be_strings(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, sensitive_attributes=[1])
    assert "list of non-empty strings" in error_of(excinfo, "sensitive_attributes")


def test_dataset_version_split_must_be_known(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        dataset_version(project, owner, split="holdout")
    assert "split" in excinfo.value.message_dict


def test_dataset_version_numbers_are_never_reused(project, owner):
    first, _ = dataset_version(project, owner, content_sha256=factories.sha("a"))
    second, _ = dataset_version(project, owner, content_sha256=factories.sha("b"))
    DatasetVersion.objects.filter(pk=second.pk).delete()
    third, _ = dataset_version(project, owner, content_sha256=factories.sha("c"))
    assert (first.version, second.version, third.version) == (1, 2, 3)


# --- Evaluations ------------------------------------------------------------------------


def test_evaluation_refuses_a_dataset_version_of_another_project(
    project, owner, other_project, outsider
):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    foreign = factories.dataset_version(other_project, outsider)
    with pytest.raises(ValidationError) as excinfo:
        services.record_evaluation(version, foreign, actor=owner, metrics={"accuracy": 0.9})
    assert "belongs to project secret" in error_of(excinfo, "dataset_version")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"metrics": {"accuracy": "high"}}, "metrics", "metric 'accuracy' must be a number"),
        ({"metrics": {"accuracy": True}}, "metrics", "metric 'accuracy' must be a number"),
        ({"metrics": [0.9]}, "metrics", "must be a JSON object"),
        ({"metrics": {}}, "metrics", "give the metrics or upload the predictions"),
        (
            {"metrics": {"accuracy": 0.9}, "baselines": ["majority"]},
            "baselines",
            "must be a JSON object",
        ),
    ],
)
def test_evaluation_metrics_are_validated(project, owner, fields, field, message):
    version = factories.model_version(factories.registered_model(project, owner), owner)
    data = factories.dataset_version(project, owner)
    with pytest.raises(ValidationError) as excinfo:
        services.record_evaluation(version, data, actor=owner, **fields)
    assert message in error_of(excinfo, field)


# --- History: who, when, why ------------------------------------------------------------


def _records_of_every_kind(project, owner):
    model = factories.registered_model(project, owner)
    version = factories.model_version(model, owner)
    data = factories.dataset_version(project, owner)
    return {
        "project": project,
        "risk": services.add_risk(
            project, actor=owner, description="Leak", likelihood="low", impact="high"
        ),
        "registered model": model,
        "model version": version,
        "dataset": data.dataset,
        "dataset version": data,
        "evaluation": services.record_evaluation(
            version, data, actor=owner, metrics={"accuracy": 0.9}
        ),
    }


def test_every_record_created_by_an_action_has_a_history_row_naming_the_actor(project, owner):
    for kind, record in _records_of_every_kind(project, owner).items():
        created = record.history.earliest()
        assert created.history_type == "+", kind
        assert created.history_user == owner, kind
        assert created.history_actor_name == "Olive Tester", kind
        assert created.history_change_reason, kind


def test_update_through_an_action_writes_history_with_actor_and_reason(project, owner):
    services.update_project(project, actor=owner, name="Credit v2", reason="renamed by board")
    latest = project.history.latest()
    assert latest.history_type == "~"
    assert latest.name == "Credit v2"
    assert latest.history_user == owner
    assert latest.history_actor_name == "Olive Tester"
    assert latest.history_change_reason == "renamed by board"
    assert project.history.count() == 2
    assert project.history.earliest().name != "Credit v2"


def test_history_carries_the_request_id_of_the_context(project, owner):
    with acting_as(owner, request_id="req-42", reason="quarterly review"):
        services.update_project(project, actor=owner, description="Reviewed")
    latest = project.history.latest()
    assert latest.history_request_id == "req-42"
    assert latest.history_user == owner


def test_history_records_the_api_request(api, project, owner):
    response = api.as_user(owner).patch(
        "/api/v1/projects/credit/",
        {"description": "Scores loans", "change_reason": "clarified scope"},
    )
    assert response.status_code == 200, response.json()
    latest = Project.objects.get(pk=project.pk).history.latest()
    assert latest.description == "Scores loans"
    assert latest.history_user == owner
    assert latest.history_actor_name == "Olive Tester"
    assert latest.history_change_reason == "clarified scope"
    assert latest.history_request_id == response["X-Request-ID"]
    assert len(latest.history_request_id) == 32


def test_history_keeps_the_actor_name_when_the_account_is_renamed(project, owner):
    services.update_project(project, actor=owner, description="x")
    owner.first_name, owner.last_name = "Someone", "Else"
    owner.save()
    assert project.history.latest().history_actor_name == "Olive Tester"


def test_a_refused_change_writes_no_history(project, owner):
    before = project.history.count()
    with pytest.raises(ValidationError):
        services.update_project(project, actor=owner, risk_tier="extreme")
    assert project.history.count() == before


def test_a_new_owner_gets_every_right_on_the_project(project, owner, outsider):
    services.update_project(project, actor=owner, owner=outsider, reason="handed over")
    for right in ("view", "contribute", "review", "export", "manage"):
        assert Project.objects.visible_to(outsider, right).filter(pk=project.pk).exists()
