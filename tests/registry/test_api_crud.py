"""The REST API, endpoint by endpoint: list, create, retrieve, update, errors, scoping,
pagination, filters, search, ordering, role permissions and constant-query lists."""

from typing import cast

import pytest
from django.conf import settings
from django.utils import timezone

from lineage import services as lineage
from lineage.models import Run
from registry import services
from registry.choices import ProjectRight
from registry.models import (
    Dataset,
    ModelVersion,
    Project,
    RegisteredModel,
    RiskItem,
)
from tests import factories
from tests.factories import Role

pytestmark = pytest.mark.django_db

API = "/api/v1"
# Whether config/settings.py names the choice sets several fields share (see the schema tests).
SHARED_ENUMS_NAMED = "LevelEnum" in cast(dict, settings.SPECTACULAR_SETTINGS).get(
    "ENUM_NAME_OVERRIDES", {}
)
COMMIT = "3f6c2a9d1e8b7c4a5f0e9d8c7b6a5f4e3d2c1b0a"


@pytest.fixture
def viewer(project):
    """A data scientist who may see `project` but not contribute to it."""
    person = factories.user("vic", role=Role.DATA_SCIENTIST)
    factories.grant(project, person, ProjectRight.VIEW)
    return person


@pytest.fixture
def records(project, member):
    """One record of every kind in `project`, linked as a real pipeline links them."""
    code = factories.code_version(project, member, commit=COMMIT)
    train = factories.dataset_version(project, member, name="loans", split="train")
    test = factories.dataset_version(project, member, name="loans", split="test", rows=10)
    run = factories.run(project, member, code=code, inputs=[train], name="train-scorer")
    model = factories.registered_model(project, member, name="scorer")
    version = factories.model_version(model, member, run=run, framework="sklearn")
    evaluation = services.record_evaluation(
        version, test, actor=member, metrics={"accuracy": 0.9}, notes="first look"
    )
    risk = services.add_risk(
        project, actor=member, description="Proxy bias", likelihood="medium", impact="high"
    )
    return {
        "projects": project,
        "risks": risk,
        "models": model,
        "model-versions": version,
        "datasets": train.dataset,
        "dataset-versions": test,
        "code-versions": code,
        "runs": run,
        "evaluations": evaluation,
    }


def detail_url(endpoint, record):
    lookup = record.key if endpoint == "projects" else record.pk
    return f"{API}/{endpoint}/{lookup}/"


ENDPOINTS = [
    "projects",
    "risks",
    "models",
    "model-versions",
    "datasets",
    "dataset-versions",
    "code-versions",
    "runs",
    "evaluations",
]
IMMUTABLE = ["dataset-versions", "code-versions", "evaluations"]


# --- Reading, and what cannot be seen ---------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_list_shows_the_visible_record(api, records, member, endpoint):
    body = api.as_user(member).get(f"{API}/{endpoint}/").json()
    ids = [item.get("id", item.get("key")) for item in body["results"]]
    record = records[endpoint]
    assert (record.key if endpoint == "projects" else record.pk) in ids


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_retrieve_returns_the_record(api, records, auditor, endpoint):
    response = api.as_user(auditor).get(detail_url(endpoint, records[endpoint]))
    assert response.status_code == 200
    body = response.json()
    if endpoint == "projects":
        assert body["key"] == "credit"
    else:
        assert body["id"] == records[endpoint].pk


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_outsider_gets_404_for_records_of_a_project_it_cannot_see(
    api, records, outsider, other_project, endpoint
):
    client = api.as_user(outsider)
    url = detail_url(endpoint, records[endpoint])
    assert client.get(url).status_code == 404
    assert client.patch(url, {"description": "mine now"}).status_code in (404, 405)
    assert client.get(f"{API}/{endpoint}/").json()["count"] == (endpoint == "projects")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_id_is_404(api, records, member, endpoint):
    lookup = "no-such-project" if endpoint == "projects" else 999_999
    response = api.as_user(member).get(f"{API}/{endpoint}/{lookup}/")
    assert response.status_code == 404


@pytest.mark.parametrize("endpoint", IMMUTABLE)
def test_immutable_records_cannot_be_updated(api, records, member, endpoint):
    client = api.as_user(member)
    url = detail_url(endpoint, records[endpoint])
    assert client.patch(url, {"notes": "x"}).status_code == 405
    assert client.put(url, {"notes": "x"}).status_code == 405


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_records_are_never_deleted_through_the_api(api, records, owner, endpoint):
    response = api.as_user(owner).delete(detail_url(endpoint, records[endpoint]))
    assert response.status_code == 405


def test_anonymous_gets_401_on_every_endpoint(api, records):
    for endpoint in ENDPOINTS:
        assert api.get(f"{API}/{endpoint}/").status_code == 401


# --- Roles and rights on writes ---------------------------------------------------------


def create_payloads(records):
    """A valid body for creating one new record on each endpoint."""
    return {
        "projects": {"key": "fraud", "name": "Fraud", "risk_tier": "limited"},
        "risks": {
            "project": "credit",
            "description": "Drift",
            "likelihood": "low",
            "impact": "medium",
        },
        "models": {"project": "credit", "name": "ranker", "task_type": "regression"},
        "model-versions": {
            "registered_model": records["models"].pk,
            "artifact_uri": "s3://b/m2",
            "artifact_sha256": factories.sha("m2"),
        },
        "datasets": {"project": "credit", "name": "bureau"},
        "dataset-versions": {
            "dataset": records["datasets"].pk,
            "uri": "s3://b/new.parquet",
            "content_sha256": factories.sha("new"),
            "row_count": 5,
            "split": "validation",
        },
        "code-versions": {
            "project": "credit",
            "repository_url": "https://git.example.com/x",
            "commit_sha": "a" * 40,
        },
        "runs": {"project": "credit", "name": "prep", "kind": "preprocessing"},
        "evaluations": {
            "model_version": records["model-versions"].pk,
            "dataset_version": records["dataset-versions"].pk,
            "metrics": {"accuracy": 0.8},
        },
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_auditor_cannot_create_anything(api, records, auditor, endpoint):
    before = Project.objects.count(), RiskItem.objects.count(), Run.objects.count()
    response = api.as_user(auditor).post(f"{API}/{endpoint}/", create_payloads(records)[endpoint])
    assert response.status_code == 403
    assert "Your role does not allow you" in response.json()["detail"]
    assert (Project.objects.count(), RiskItem.objects.count(), Run.objects.count()) == before


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "projects"])
def test_member_creates_records_through_the_api(api, records, member, endpoint):
    response = api.as_user(member).post(f"{API}/{endpoint}/", create_payloads(records)[endpoint])
    assert response.status_code == 201, response.json()
    assert response.json()["id"] not in (None, records[endpoint].pk)


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "projects"])
def test_viewer_without_contribute_right_gets_403(api, records, viewer, endpoint):
    response = api.as_user(viewer).post(f"{API}/{endpoint}/", create_payloads(records)[endpoint])
    assert response.status_code == 403
    assert "'contribute' right on project credit" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "projects"])
def test_outsider_creating_in_an_invisible_project_gets_400_not_visible(
    api, records, outsider, endpoint
):
    response = api.as_user(outsider).post(f"{API}/{endpoint}/", create_payloads(records)[endpoint])
    assert response.status_code == 400
    messages = [m for field in response.json().values() for m in field]
    assert any("not visible to you" in m for m in messages), messages


def test_compliance_officer_creates_a_project_and_owns_it(api, compliance):
    response = api.as_user(compliance).post(
        f"{API}/projects/",
        {
            "key": "fraud",
            "name": "Fraud",
            "risk_tier": "limited",
            "acceptance_criteria": [
                {"metric": "recall", "threshold": 0.9, "direction": "higher", "split": "test"}
            ],
        },
    )
    assert response.status_code == 201, response.json()
    assert response.json()["owner"] == "casey"
    assert response.json()["owner_name"] == "Casey Tester"
    detail = api.as_user(compliance).get(f"{API}/projects/fraud/")
    assert detail.status_code == 200


def test_data_scientist_cannot_create_a_project(api, member):
    response = api.as_user(member).post(
        f"{API}/projects/", {"key": "fraud", "name": "Fraud", "risk_tier": "limited"}
    )
    assert response.status_code == 403
    assert not Project.objects.filter(key="fraud").exists()


# --- Updates ----------------------------------------------------------------------------


def test_project_owner_updates_descriptive_fields(api, project, owner):
    response = api.as_user(owner).patch(
        f"{API}/projects/credit/", {"name": "Credit scoring", "risk_tier": "limited"}
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.name, project.risk_tier) == ("Credit scoring", "limited")


def test_project_update_needs_the_manage_right(api, project, member):
    response = api.as_user(member).patch(f"{API}/projects/credit/", {"name": "Mine"})
    assert response.status_code == 403
    assert "'manage' right" in response.json()["detail"]


def test_project_key_cannot_be_changed(api, project, owner):
    response = api.as_user(owner).put(
        f"{API}/projects/credit/", {"key": "debit", "name": "Debit", "risk_tier": "high"}
    )
    assert response.status_code == 400
    assert response.json()["key"] == ["a project's key cannot be changed"]


def test_risk_status_is_updated(api, records, member):
    risk = records["risks"]
    response = api.as_user(member).patch(
        f"{API}/risks/{risk.pk}/", {"status": "mitigated", "mitigation": "Feature dropped"}
    )
    assert response.status_code == 200, response.json()
    risk.refresh_from_db()
    assert (risk.status, risk.mitigation) == ("mitigated", "Feature dropped")


def test_risk_cannot_move_to_another_project(api, records, owner):
    factories.project(owner, key="fraud")
    response = api.as_user(owner).patch(f"{API}/risks/{records['risks'].pk}/", {"project": "fraud"})
    assert response.status_code == 400
    assert "cannot move between projects" in response.json()["project"][0]


def test_model_description_is_updated_but_not_its_name(api, records, member):
    url = f"{API}/models/{records['models'].pk}/"
    client = api.as_user(member)
    assert client.patch(url, {"description": "Scores loans"}).status_code == 200
    response = client.patch(url, {"name": "renamed"})
    assert response.status_code == 400
    assert response.json()["name"] == ["cannot be changed after registration"]
    assert RegisteredModel.objects.get(pk=records["models"].pk).name == "scorer"


def test_model_card_is_updated_but_not_the_artifact(api, records, member):
    version = records["model-versions"]
    url = f"{API}/model-versions/{version.pk}/"
    client = api.as_user(member)
    response = client.patch(url, {"limitations": "Not for business loans"})
    assert response.status_code == 200, response.json()
    assert response.json()["limitations"] == "Not for business loans"
    response = client.patch(url, {"artifact_sha256": factories.sha("other")})
    assert response.status_code == 400
    assert response.json()["artifact_sha256"] == ["cannot be changed after registration"]
    assert ModelVersion.objects.get(pk=version.pk).artifact_sha256 == version.artifact_sha256


def test_dataset_description_is_updated_but_not_its_name(api, records, member):
    url = f"{API}/datasets/{records['datasets'].pk}/"
    client = api.as_user(member)
    assert client.patch(url, {"description": "Applications"}).status_code == 200
    assert client.patch(url, {"name": "renamed"}).status_code == 400
    assert Dataset.objects.get(pk=records["datasets"].pk).name == "loans"


def test_run_is_completed_with_its_end_and_metrics(api, records, member):
    run = records["runs"]
    response = api.as_user(member).patch(
        f"{API}/runs/{run.pk}/",
        {"status": "completed", "ended_at": timezone.now().isoformat(), "metrics": {"loss": 0.3}},
    )
    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert (run.status, run.metrics) == ("completed", {"loss": 0.3})


def test_run_parameters_cannot_be_rewritten(api, records, member):
    response = api.as_user(member).patch(
        f"{API}/runs/{records['runs'].pk}/", {"parameters": {"max_depth": 99}}
    )
    assert response.status_code == 400
    assert response.json()["parameters"] == ["cannot be changed after the run is recorded"]


def test_update_by_a_viewer_is_403(api, records, viewer):
    response = api.as_user(viewer).patch(
        f"{API}/risks/{records['risks'].pk}/", {"status": "closed"}
    )
    assert response.status_code == 403
    assert RiskItem.objects.get(pk=records["risks"].pk).status == "open"


# --- Bad input: 400 with field messages -------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "change", "field", "message"),
    [
        ("projects", {"key": "Bad Key"}, "key", "lowercase letters"),
        ("projects", {"risk_tier": "extreme"}, "risk_tier", "not a valid choice"),
        (
            "projects",
            {"acceptance_criteria": [{"metric": "auc", "threshold": 1, "direction": "higher"}]},
            "acceptance_criteria",
            "missing split",
        ),
        (
            "projects",
            {
                "acceptance_criteria": [
                    {"metric": "auc", "threshold": 1, "direction": "higher", "split": "test"}
                ]
            },
            "acceptance_criteria",
            "unknown metric 'auc'",
        ),
        ("risks", {"impact": "huge"}, "impact", "not a valid choice"),
        ("risks", {"description": ""}, "description", "may not be blank"),
        ("models", {"task_type": "clustering"}, "task_type", "not a valid choice"),
        ("models", {"name": "Has Spaces"}, "name", "lowercase letters"),
        ("models", {"name": "scorer"}, "name", "a model named 'scorer' exists in credit"),
        ("model-versions", {"artifact_sha256": "abc"}, "artifact_sha256", "SHA-256"),
        ("model-versions", {"registered_model": 999_999}, "registered_model", "not visible"),
        ("model-versions", {"artifact_uri": ""}, "artifact_uri", "may not be blank"),
        ("datasets", {"name": "loans"}, "name", "a dataset named 'loans' exists"),
        ("dataset-versions", {"content_sha256": "0" * 63}, "content_sha256", "SHA-256"),
        ("dataset-versions", {"row_count": -1}, "row_count", "greater than or equal to 0"),
        ("dataset-versions", {"split": "holdout"}, "split", "not a valid choice"),
        (
            "dataset-versions",
            {"schema": [{"name": "a", "type": "float"}, {"name": "a", "type": "float"}]},
            "schema",
            "duplicate column name 'a'",
        ),
        ("code-versions", {"commit_sha": "abc123"}, "commit_sha", "40 lowercase hexadecimal"),
        ("code-versions", {"repository_url": ""}, "repository_url", "may not be blank"),
        ("runs", {"kind": "deploy"}, "kind", "not a valid choice"),
        ("runs", {"parameters": [1, 2]}, "parameters", "must be a JSON object"),
        (
            "runs",
            {"started_at": "2026-01-02T00:00:00Z", "ended_at": "2026-01-01T00:00:00Z"},
            "ended_at",
            "cannot end before it starts",
        ),
        ("runs", {"input_datasets": [999_999]}, "input_datasets", "not visible"),
        ("evaluations", {"metrics": {"accuracy": "good"}}, "metrics", "must be a number"),
        ("evaluations", {"metrics": {}}, "metrics", "give the metrics or upload"),
        ("evaluations", {"baselines": [1]}, "baselines", "must be a JSON object"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    api, records, member, compliance, endpoint, change, field, message
):
    client = api.as_user(compliance if endpoint == "projects" else member)
    body = {**create_payloads(records)[endpoint], **change}
    response = client.post(f"{API}/{endpoint}/", body)
    assert response.status_code == 400, response.json()
    messages = " ".join(str(m) for m in response.json()[field])
    assert message in messages


def test_malformed_json_is_400(api, project, member):
    response = api.as_user(member).post(
        f"{API}/models/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


# --- Pagination -------------------------------------------------------------------------


def test_pagination_reports_count_and_links(api, project, member):
    RiskItem.objects.bulk_create(
        RiskItem(project=project, description=f"risk {n}", likelihood="low", impact="low")
        for n in range(5)
    )
    client = api.as_user(member)
    first = client.get(f"{API}/risks/", {"page_size": 2}).json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert "page=2" in first["next"] and "page_size=2" in first["next"]
    last = client.get(first["next"].replace("page=2", "page=3")).json()
    assert len(last["results"]) == 1
    assert last["next"] is None
    assert "page=2" in last["previous"]
    seen = {r["id"] for r in first["results"]}
    assert not seen & {r["id"] for r in last["results"]}


def test_page_size_is_capped_at_500(api, project, member):
    RiskItem.objects.bulk_create(
        RiskItem(project=project, description=f"risk {n}", likelihood="low", impact="low")
        for n in range(501)
    )
    body = api.as_user(member).get(f"{API}/risks/", {"page_size": 10_000}).json()
    assert body["count"] == 501
    assert len(body["results"]) == 500
    assert body["next"] is not None


def test_default_page_size_is_50(api, project, member):
    RiskItem.objects.bulk_create(
        RiskItem(project=project, description=f"risk {n}", likelihood="low", impact="low")
        for n in range(51)
    )
    assert len(api.as_user(member).get(f"{API}/risks/").json()["results"]) == 50


def test_page_beyond_the_end_is_404(api, records, member):
    assert api.as_user(member).get(f"{API}/risks/", {"page": 9}).status_code == 404


# --- Filters, search and ordering -------------------------------------------------------


def ids(response):
    assert response.status_code == 200, response.json()
    return [item.get("id", item.get("key")) for item in response.json()["results"]]


@pytest.fixture
def two_projects(records, owner, member):
    """`records` in credit, plus a second project (fraud) the member can also see."""
    fraud = factories.project(owner, key="fraud", risk_tier="limited")
    factories.grant(fraud, member, ProjectRight.VIEW, ProjectRight.CONTRIBUTE)
    model = factories.registered_model(fraud, member, name="detector")
    data = factories.dataset_version(fraud, member, name="txns", split="validation")
    run = factories.run(fraud, member, name="prep-fraud", kind="preprocessing", status="failed")
    version = factories.model_version(model, member, description="gradient boosted detector")
    code = factories.code_version(fraud, member)
    risk = services.add_risk(
        fraud, actor=member, description="Label leakage", likelihood="high", impact="low"
    )
    evaluation = services.record_evaluation(version, data, actor=member, metrics={"f1": 0.5})
    return {
        "fraud": fraud,
        "models": model,
        "dataset-versions": data,
        "runs": run,
        "model-versions": version,
        "code-versions": code,
        "risks": risk,
        "evaluations": evaluation,
    }


@pytest.mark.parametrize(
    "endpoint",
    ["risks", "models", "model-versions", "datasets", "dataset-versions", "code-versions", "runs"],
)
def test_filter_by_project(api, records, two_projects, member, endpoint):
    client = api.as_user(member)
    credit = ids(client.get(f"{API}/{endpoint}/", {"project": "credit"}))
    fraud = ids(client.get(f"{API}/{endpoint}/", {"project": "fraud"}))
    assert records[endpoint].pk in credit
    assert records[endpoint].pk not in fraud
    assert credit and fraud
    assert not set(credit) & set(fraud)


def test_filter_projects_by_risk_tier(api, two_projects, member):
    assert ids(api.as_user(member).get(f"{API}/projects/", {"risk_tier": "limited"})) == ["fraud"]


def test_filter_model_versions_by_project_model_and_stage(api, records, two_projects, member):
    client = api.as_user(member)
    credit_version = records["model-versions"].pk
    fraud_version = two_projects["model-versions"].pk
    url = f"{API}/model-versions/"
    assert ids(client.get(url, {"project": "fraud"})) == [fraud_version]
    assert ids(client.get(url, {"model": records["models"].pk})) == [credit_version]
    assert ids(client.get(url, {"model_name": "detector"})) == [fraud_version]
    assert set(ids(client.get(url, {"stage": "development"}))) == {credit_version, fraud_version}
    assert ids(client.get(url, {"stage": "production"})) == []
    assert ids(client.get(url, {"run": records["runs"].pk})) == [credit_version]
    bad = client.get(url, {"stage": "shipped"})
    assert bad.status_code == 400
    assert "stage" in bad.json()


def test_filter_runs_by_kind_and_status(api, records, two_projects, member):
    client = api.as_user(member)
    url = f"{API}/runs/"
    assert ids(client.get(url, {"kind": "preprocessing"})) == [two_projects["runs"].pk]
    assert ids(client.get(url, {"status": "running"})) == [records["runs"].pk]
    assert ids(client.get(url, {"status": "failed", "kind": "training"})) == []
    assert ids(client.get(url, {"code_version": records["code-versions"].pk})) == [
        records["runs"].pk
    ]


def test_filter_dataset_versions_by_split_and_dataset(api, records, two_projects, member):
    client = api.as_user(member)
    url = f"{API}/dataset-versions/"
    assert ids(client.get(url, {"split": "validation"})) == [two_projects["dataset-versions"].pk]
    loans = ids(client.get(url, {"dataset": records["datasets"].pk}))
    assert len(loans) == 2
    assert records["dataset-versions"].pk in loans
    digest = records["dataset-versions"].content_sha256
    assert ids(client.get(url, {"content_sha256": digest})) == [records["dataset-versions"].pk]


def test_filter_evaluations_by_model_version_and_project(api, records, two_projects, member):
    client = api.as_user(member)
    url = f"{API}/evaluations/"
    assert ids(client.get(url, {"model_version": records["model-versions"].pk})) == [
        records["evaluations"].pk
    ]
    assert ids(client.get(url, {"project": "fraud"})) == [two_projects["evaluations"].pk]


def test_filter_risks_by_status_and_impact(api, records, two_projects, member):
    client = api.as_user(member)
    assert ids(client.get(f"{API}/risks/", {"impact": "low"})) == [two_projects["risks"].pk]
    assert ids(client.get(f"{API}/risks/", {"status": "closed"})) == []


def test_filtering_by_an_invisible_id_reveals_nothing(api, records, outsider, other_project):
    # An id that exists (in a project the outsider cannot see) and one that does not must
    # answer alike, or the filter would tell an outsider which ids exist.
    client = api.as_user(outsider)
    for endpoint, params in [
        ("runs", {"code_version": records["code-versions"].pk}),
        ("model-versions", {"run": records["runs"].pk}),
        ("dataset-versions", {"dataset": records["datasets"].pk}),
        ("evaluations", {"model_version": records["model-versions"].pk}),
        ("evaluations", {"dataset_version": records["dataset-versions"].pk}),
    ]:
        existing = client.get(f"{API}/{endpoint}/", params)
        missing = client.get(f"{API}/{endpoint}/", dict.fromkeys(params, 999_999))
        assert (existing.status_code, missing.status_code) == (200, 200), endpoint
        assert existing.json()["count"] == missing.json()["count"] == 0


@pytest.mark.parametrize(
    ("endpoint", "term", "key"),
    [
        ("projects", "Fraud", "fraud"),
        ("risks", "leakage", "risks"),
        ("models", "detect", "models"),
        ("model-versions", "gradient", "model-versions"),
        ("datasets", "txns", "dataset-versions"),
        ("dataset-versions", "txns", "dataset-versions"),
        ("code-versions", None, "code-versions"),
        ("runs", "prep-fraud", "runs"),
        ("evaluations", "detector", "evaluations"),
    ],
)
def test_search(api, records, two_projects, member, endpoint, term, key):
    record = two_projects[key]
    if endpoint == "code-versions":
        term = record.commit_sha[:12]
    found = ids(api.as_user(member).get(f"{API}/{endpoint}/", {"search": term}))
    expected = record.dataset.pk if endpoint == "datasets" else record.pk
    if endpoint == "projects":
        expected = "fraud"
    assert found == [expected]


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("projects", "key"),
        ("risks", "id"),
        ("models", "name"),
        ("model-versions", "version"),
        ("datasets", "name"),
        ("dataset-versions", "row_count"),
        ("code-versions", "created_at"),
        ("runs", "created_at"),
        ("evaluations", "created_at"),
    ],
)
def test_ordering(api, records, two_projects, member, endpoint, field):
    client = api.as_user(member)
    ascending = client.get(f"{API}/{endpoint}/", {"ordering": field}).json()["results"]
    descending = client.get(f"{API}/{endpoint}/", {"ordering": f"-{field}"}).json()["results"]
    values = [item[field] for item in ascending]
    assert len(values) >= 2
    assert values == sorted(values)
    assert [item[field] for item in descending] == sorted(values, reverse=True)


# --- Constant queries whatever the page size --------------------------------------------


def forty(endpoint, project, owner):
    """40 records for one list endpoint, each with the relations its serializer shows.

    Rows share their related records: an N+1 would still query once per row, and the
    fixture stays cheap.
    """
    model = factories.registered_model(project, owner, name="shared-model")
    data = factories.dataset_version(project, owner, name="shared-data")
    if endpoint in ("runs", "evaluations"):
        version = factories.model_version(model, owner)
        code = factories.code_version(project, owner)
        out = factories.dataset_version(project, owner, name="shared-data", split="train")
    for n in range(40):
        if endpoint == "projects":
            factories.project(owner, key=f"extra-{n}")
        elif endpoint == "risks":
            services.add_risk(
                project, actor=owner, description=f"r{n}", likelihood="low", impact="low"
            )
        elif endpoint == "models":
            factories.registered_model(project, owner, name=f"model-{n}")
        elif endpoint == "model-versions":
            factories.model_version(model, owner)
        elif endpoint == "evaluations":
            services.record_evaluation(version, data, actor=owner, metrics={"f1": 0.5})
        elif endpoint == "datasets":
            services.register_dataset(project, actor=owner, name=f"data-{n}")
        elif endpoint == "dataset-versions":
            factories.dataset_version(project, owner, name="shared-data")
        elif endpoint == "code-versions":
            factories.code_version(project, owner)
        elif endpoint == "runs":
            run = lineage.create_run(
                project,
                actor=owner,
                name=f"train-{n}",
                kind="training",
                code_version=code,
                input_datasets=[data],
                input_models=[version],
                output_datasets=[out],
            )
            if n < 2:
                factories.model_version(model, owner, run=run)


# One bound per endpoint, the same for a page of 1 and a page of 40: the token lookup, the
# count, the page, and one query per prefetched relation (runs: inputs, outputs, versions).
LIST_QUERY_BOUNDS = {
    "projects": 3,
    "risks": 3,
    "models": 3,
    "model-versions": 3,
    "datasets": 3,
    "dataset-versions": 3,
    "code-versions": 3,
    "runs": 7,
    "evaluations": 3,
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_list_runs_a_constant_number_of_queries_whatever_the_page_size(
    api, project, owner, django_assert_max_num_queries, endpoint
):
    forty(endpoint, project, owner)
    client = api.as_user(owner)
    for page_size in (1, 40):
        with django_assert_max_num_queries(LIST_QUERY_BOUNDS[endpoint]):
            response = client.get(f"{API}/{endpoint}/", {"page_size": page_size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == page_size
        assert response.json()["count"] >= 40


# --- OpenAPI schema and docs ------------------------------------------------------------


def test_openapi_schema_is_served(api, member):
    response = api.as_user(member).get(f"{API}/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for endpoint in ENDPOINTS:
        assert f"/api/v1/{endpoint}/" in paths
    assert "/api/v1/projects/{key}/" in paths


def test_api_docs_page_is_served(api, member):
    response = api.as_user(member).get(f"{API}/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_generation_reports_no_errors():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._error_cache, dict(GENERATOR_STATS._error_cache)


@pytest.mark.xfail(
    not SHARED_ENUMS_NAMED,
    strict=True,
    reason="RiskItem.likelihood and .impact share the Level choices, so drf-spectacular warns "
    "'multiple names for the same choice set (ImpactEnum)'; needs SPECTACULAR_SETTINGS"
    "['ENUM_NAME_OVERRIDES'] = {'LevelEnum': 'registry.choices.Level'} in config/settings.py",
)
def test_schema_generation_reports_no_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, dict(GENERATOR_STATS._warn_cache)
