"""The lineage endpoints' permission matrix: the Marquez-shaped graph, PROV-JSON, a model
version's upstream and a dataset version's downstream, and OpenLineage ingestion, each ×
every role × (assigned project / unassigned project / anonymous), with the exact status
expected, and no sign of the unassigned project in any answer.

The expected outcomes are written out by hand from the access rules: reading lineage needs
the `view` right on the start node's project (an invisible node is 404, like a missing one);
posting OpenLineage events needs the data scientist's role (`lineage.add_run`, else 403
whatever the namespace) and the `contribute` right on the project the job's namespace names
(404 if that project is invisible). `test_permission_matrix.test_every_api_endpoint_is_in_
the_matrix` reads `URL_NAMES` here.
"""

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.access.world import ASSIGNED, RIGHTS_ON_ASSIGNED, UNASSIGNED

ROLES = list(RIGHTS_ON_ASSIGNED)
A, U = ASSIGNED, UNASSIGNED

# Reading: the start node's project must be visible.
READ = {
    "data scientist":     {A: 200, U: 404},
    "reviewer":           {A: 200, U: 404},
    "compliance officer": {A: 200, U: 404},
    "auditor":            {A: 200, U: 404},
    "admin":              {A: 404, U: 404},
    "superuser":          {A: 200, U: 200},
}  # fmt: skip
# Posting a RunEvent whose job namespace is the project's key.
POST = {
    "data scientist":     {A: 201, U: 404},
    "reviewer":           {A: 403, U: 403},
    "compliance officer": {A: 403, U: 403},
    "auditor":            {A: 403, U: 403},
    "admin":              {A: 403, U: 403},
    "superuser":          {A: 201, U: 201},
}  # fmt: skip

# Expected status per row (URL name, or URL name and method), role and project.
EXPECTED = {
    "lineage-get": READ,
    "lineage-prov": READ,
    "modelversion-upstream": READ,
    "datasetversion-downstream": READ,
    "lineage-post": POST,
    "lineage-batch": POST,
}

# The URL name each row exercises.
URL_NAMES = {row: row.removesuffix("-get").removesuffix("-post") for row in EXPECTED}

PRODUCER = "https://github.com/example/pipeline/v1"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"


def run_event(namespace: str) -> dict:
    """A minimal valid OpenLineage RunEvent of a job in `namespace` (a project key)."""
    return {
        "eventType": "START",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": "nightly_features", "facets": {}},
        "inputs": [],
        "outputs": [],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def model_node(world, key) -> str:
    version = world.records[key]["modelversion"]
    return f"model:{key}:{version.registered_model.name}#{version.version}"


def call(world, client, row, key):
    """Send the row's request about project `key`'s records; return the response."""
    records = world.records[key]
    if row == "lineage-get":
        return client.get(reverse("lineage"), {"nodeId": model_node(world, key)})
    if row == "lineage-prov":
        return client.get(reverse("lineage-prov"), {"nodeId": model_node(world, key)})
    if row == "modelversion-upstream":
        return client.get(reverse(row, args=[records["modelversion"].pk]))
    if row == "datasetversion-downstream":
        return client.get(reverse(row, args=[records["datasetversion"].pk]))
    if row == "lineage-post":
        return client.post(reverse("lineage"), run_event(key), format="json")
    return client.post(reverse("lineage-batch"), [run_event(key)], format="json")


def _client(world, role):
    client = APIClient()
    if role is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
    return client


CASES = [
    pytest.param(row, role, key, id=f"{row}-{role}-{key}")
    for row in EXPECTED
    for role in ROLES
    for key in (A, U)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "role", "key"), CASES)
def test_status(world, row, role, key):
    response = call(world, _client(world, role), row, key)
    assert response.status_code == EXPECTED[row][role][key], response.content[:300]
    if response.status_code in (200, 201) and role != "superuser":
        # Nothing of the unassigned project, not even its key, in a visible answer.
        assert UNASSIGNED not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("row", list(EXPECTED))
@pytest.mark.parametrize("key", [A, U])
def test_anonymous_gets_401(world, row, key):
    assert call(world, _client(world, None), row, key).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["lineage", "lineage-prov"])
@pytest.mark.parametrize("role", [r for r in ROLES if r != "superuser"])
def test_invisible_node_answers_like_a_missing_one(world, name, role):
    client = _client(world, role)
    invisible = model_node(world, U)
    missing = invisible.replace(UNASSIGNED, "nowhere")
    by_invisible = client.get(reverse(name), {"nodeId": invisible})
    by_missing = client.get(reverse(name), {"nodeId": missing})
    assert by_invisible.status_code == by_missing.status_code == 404
    assert by_invisible.content.decode() == by_missing.content.decode().replace(
        "nowhere", UNASSIGNED
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", [r for r in ROLES if r != "superuser"])
def test_short_model_id_resolves_among_visible_projects_only(world, role):
    # Both projects have a model of the same name: the short form is ambiguous only to
    # someone who sees both.
    version = world.records[A]["modelversion"]
    short = f"model:{version.registered_model.name}:{version.version}"
    response = _client(world, role).get(reverse("lineage"), {"nodeId": short})
    assert response.status_code == READ[role][A]


@pytest.mark.django_db
def test_posting_into_an_invisible_namespace_answers_like_an_unknown_one(world):
    client = _client(world, "data scientist")
    invisible = client.post(reverse("lineage"), run_event(UNASSIGNED), format="json")
    unknown = client.post(reverse("lineage"), run_event("nowhere"), format="json")
    assert invisible.status_code == unknown.status_code == 404
    assert invisible.content.decode() == unknown.content.decode().replace("nowhere", UNASSIGNED)
