"""The permission matrix: every API endpoint × every role × (assigned project / unassigned
project / anonymous), with the exact status expected, and no leak of the unassigned project
in lists, counts, searches or filters.

The expected outcomes are written out below by hand from the access rules (roles say what
kind of thing a person may do, project rights say where; an invisible record is 404, a
reference to one is the same 400 as a reference to nothing). Endpoints are discovered from
the URLconf: a new endpoint fails `test_every_api_endpoint_is_in_the_matrix` until it has
its rows here.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from registry.choices import ProjectRight
from registry.management.commands.load_demo import RIGHTS_OF_ROLE
from tests.access.test_export_matrix import URL_NAMES as EXPORT_URL_NAMES
from tests.access.test_governance_matrix import URL_NAMES as GOVERNANCE_URL_NAMES
from tests.access.test_lineage_matrix import URL_NAMES as LINEAGE_URL_NAMES
from tests.access.test_monitoring_matrix import URL_NAMES as MONITORING_URL_NAMES
from tests.access.world import ASSIGNED, RIGHTS_ON_ASSIGNED, UNASSIGNED

V = ProjectRight.VIEW
ROLES = list(RIGHTS_ON_ASSIGNED)

# Expected status of (list, create, retrieve, update) per endpoint, role and project.
# "update" is a PATCH; endpoints of immutable records refuse it with 405.
# fmt: off
EXPECTED = {
    "project": {
        "data scientist":     {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 403, 404, 404)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 403, 404, 404)},
        "compliance officer": {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 404, 404)},
        "auditor":            {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 403, 404, 404)},
        "admin":              {ASSIGNED: (200, 201, 404, 404), UNASSIGNED: (200, 201, 404, 404)},
        "superuser":          {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 200, 200)},
    },
    "risk": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 400, 404, 404)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        # The role may record risks, but the demo gives compliance no `contribute` right.
        "compliance officer": {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "auditor":            {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "admin":              {ASSIGNED: (200, 400, 404, 404), UNASSIGNED: (200, 400, 404, 404)},
        "superuser":          {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 200, 200)},
    },
    "registeredmodel": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 400, 404, 404)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "auditor":            {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "admin":              {ASSIGNED: (200, 400, 404, 404), UNASSIGNED: (200, 400, 404, 404)},
        "superuser":          {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 200, 200)},
    },
    "modelversion": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 400, 404, 404)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "auditor":            {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "admin":              {ASSIGNED: (200, 400, 404, 404), UNASSIGNED: (200, 400, 404, 404)},
        "superuser":          {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 200, 200)},
    },
    "dataset": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 400, 404, 404)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "auditor":            {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "admin":              {ASSIGNED: (200, 400, 404, 404), UNASSIGNED: (200, 400, 404, 404)},
        "superuser":          {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 200, 200)},
    },
    "datasetversion": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "auditor":            {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "admin":              {ASSIGNED: (200, 400, 404, 405), UNASSIGNED: (200, 400, 404, 405)},
        "superuser":          {ASSIGNED: (200, 201, 200, 405), UNASSIGNED: (200, 201, 200, 405)},
    },
    "evaluation": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "auditor":            {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "admin":              {ASSIGNED: (200, 400, 404, 405), UNASSIGNED: (200, 400, 404, 405)},
        "superuser":          {ASSIGNED: (200, 201, 200, 405), UNASSIGNED: (200, 201, 200, 405)},
    },
    "codeversion": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "auditor":            {ASSIGNED: (200, 403, 200, 405), UNASSIGNED: (200, 400, 404, 405)},
        "admin":              {ASSIGNED: (200, 400, 404, 405), UNASSIGNED: (200, 400, 404, 405)},
        "superuser":          {ASSIGNED: (200, 201, 200, 405), UNASSIGNED: (200, 201, 200, 405)},
    },
    "run": {
        "data scientist":     {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 400, 404, 404)},
        "reviewer":           {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "compliance officer": {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "auditor":            {ASSIGNED: (200, 403, 200, 403), UNASSIGNED: (200, 400, 404, 404)},
        "admin":              {ASSIGNED: (200, 400, 404, 404), UNASSIGNED: (200, 400, 404, 404)},
        "superuser":          {ASSIGNED: (200, 201, 200, 200), UNASSIGNED: (200, 201, 200, 200)},
    },
}
# fmt: on

# API endpoints outside the routers, with the status each caller gets.
OTHER_ENDPOINTS = {
    # Exchanging a wrong password for a token is a 400 for anyone (see tests/access/test_login).
    "auth-token": {"method": "post", "anonymous": 400, "user": 400},
    # The schema and its docs describe the API, not any project: they are public.
    "schema": {"method": "get", "anonymous": 200, "user": 200},
    "api-docs": {"method": "get", "anonymous": 200, "user": 200},
}

# Which projects' records each role sees in lists (superusers see every project).
SEES = {role: ({ASSIGNED} if V in rights else set()) for role, rights in RIGHTS_ON_ASSIGNED.items()}
SEES["superuser"] = {ASSIGNED, UNASSIGNED}

OPERATIONS = ("list", "create", "retrieve", "update")


CHANGE = {
    "project": {"name": "Renamed"},
    "risk": {"status": "mitigated"},
    "registeredmodel": {"description": "changed"},
    "modelversion": {"description": "changed"},
    "dataset": {"description": "changed"},
    "datasetversion": {"uri": "s3://elsewhere"},
    "evaluation": {"notes": "changed"},
    "codeversion": {"branch": "changed"},
    "run": {"status": "completed"},
}


def _client(world, role):
    client = APIClient()
    if role is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
    return client


def _api_urls():
    """(name, pattern) of every URL under /api/v1/, read from the URLconf."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((pattern.name, prefix + str(pattern.pattern)))

    walk(get_resolver().url_patterns, "")
    return [(name, route) for name, route in found if route.startswith("api/v1/")]


def _url(endpoint, operation, world=None, project_key=None):
    from django.urls import reverse

    if operation in ("list", "create"):
        return reverse(f"{endpoint}-list")
    return reverse(f"{endpoint}-detail", args=[world.lookup(endpoint, project_key)])


# --- the matrix is complete -------------------------------------------------------------


def test_every_api_endpoint_is_in_the_matrix():
    in_matrix = (
        {f"{basename}-{kind}" for basename in EXPECTED for kind in ("list", "detail")}
        | set(GOVERNANCE_URL_NAMES.values())
        | set(LINEAGE_URL_NAMES.values())
        | set(EXPORT_URL_NAMES.values())
        | set(MONITORING_URL_NAMES.values())
        | set(OTHER_ENDPOINTS)
    )
    found = {name for name, _ in _api_urls()}
    assert found - in_matrix == set(), "add the new endpoints' rows to a matrix"
    assert in_matrix - found == set(), "rows for endpoints that no longer exist"


def test_matrix_people_hold_the_rights_the_demo_gives_their_role():
    demo = {str(role): set(rights) for role, rights in RIGHTS_OF_ROLE.items()}
    assert {role: rights for role, rights in RIGHTS_ON_ASSIGNED.items() if role in demo} == demo
    assert all(role in EXPECTED[endpoint] for endpoint in EXPECTED for role in ROLES)


# --- every endpoint × role × project -----------------------------------------------------


CASES = [
    pytest.param(
        endpoint, operation, role, project_key, id=f"{endpoint}-{operation}-{role}-{project_key}"
    )
    for endpoint in EXPECTED
    for operation in OPERATIONS
    for role in ROLES
    for project_key in (ASSIGNED, UNASSIGNED)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "operation", "role", "project_key"), CASES)
def test_status(world, endpoint, operation, role, project_key):
    client = _client(world, role)
    expected = EXPECTED[endpoint][role][project_key][OPERATIONS.index(operation)]
    url = _url(endpoint, operation, world, project_key)
    if operation == "list":
        response = client.get(url)
    elif operation == "create":
        response = client.post(url, world.new_record(endpoint, project_key), format="json")
    elif operation == "retrieve":
        response = client.get(url)
    else:
        response = client.patch(url, CHANGE[endpoint], format="json")
    assert response.status_code == expected, response.content[:300]
    if expected == 400:
        # A reference to an invisible project's record reads exactly like one to nothing.
        text = response.content.decode()
        assert "does not exist" in text or "not visible to you" in text


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", list(EXPECTED))
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("project_key", [ASSIGNED, UNASSIGNED])
def test_anonymous_gets_401(world, endpoint, operation, project_key):
    client = _client(world, None)
    url = _url(endpoint, operation, world, project_key)
    method = {"list": "get", "create": "post", "retrieve": "get", "update": "patch"}[operation]
    assert getattr(client, method)(url, {}, format="json").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(OTHER_ENDPOINTS))
@pytest.mark.parametrize("role", [None, "data scientist"])
def test_other_api_endpoints(world, name, role):
    from django.urls import reverse

    spec = OTHER_ENDPOINTS[name]
    client = _client(world, role)
    if spec["method"] == "post":
        response = client.post(reverse(name), {"username": "dana", "password": "wrong"})
    else:
        response = client.get(reverse(name))
    assert response.status_code == spec["anonymous" if role is None else "user"]


# --- lists, counts, searches and filters never leak ------------------------------------


def _project_keys(endpoint, results):
    field = "key" if endpoint == "project" else "project"
    return {item[field] for item in results}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_list_shows_only_visible_projects_records(
    world, endpoint, role, django_assert_max_num_queries
):
    client = _client(world, role)
    with django_assert_max_num_queries(12):
        body = client.get(_url(endpoint, "list")).json()
    assert _project_keys(endpoint, body["results"]) == SEES[role]
    assert body["count"] == len(SEES[role])  # one record of each kind per project


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", [e for e in EXPECTED if e != "project"])
@pytest.mark.parametrize("role", ROLES)
def test_filter_by_unassigned_project_finds_nothing(world, endpoint, role):
    body = _client(world, role).get(_url(endpoint, "list"), {"project": UNASSIGNED}).json()
    expected = 1 if UNASSIGNED in SEES[role] else 0
    assert body["count"] == expected
    assert len(body["results"]) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_search_for_unassigned_project_finds_nothing(world, role):
    body = _client(world, role).get("/api/v1/projects/", {"search": UNASSIGNED}).json()
    assert body["count"] == (1 if UNASSIGNED in SEES[role] else 0)


# Filters by a related record's id: (endpoint, filter, the record kind it names).
RELATED_FILTERS = [
    ("modelversion", "run", "run"),
    ("modelversion", "model", "registeredmodel"),
    ("datasetversion", "dataset", "dataset"),
    ("evaluation", "model_version", "modelversion"),
    ("evaluation", "dataset_version", "datasetversion"),
    ("run", "code_version", "codeversion"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "filter_name", "kind"), RELATED_FILTERS)
@pytest.mark.parametrize("role", [r for r in ROLES if r != "superuser"])
def test_filter_by_invisible_record_answers_like_a_missing_one(
    world, endpoint, filter_name, kind, role
):
    client = _client(world, role)
    invisible = world.records[UNASSIGNED][kind].pk
    by_invisible = client.get(_url(endpoint, "list"), {filter_name: invisible})
    by_missing = client.get(_url(endpoint, "list"), {filter_name: 10**9})
    assert by_invisible.status_code == by_missing.status_code
    assert by_invisible.json() == by_missing.json()
    if by_invisible.status_code == 200:
        assert by_invisible.json()["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "filter_name", "kind"), RELATED_FILTERS)
def test_filter_by_visible_record_finds_it(world, endpoint, filter_name, kind):
    client = _client(world, "data scientist")
    visible = world.records[ASSIGNED][kind].pk
    body = client.get(_url(endpoint, "list"), {filter_name: visible}).json()
    assert body["count"] == 1
