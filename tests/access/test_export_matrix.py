"""The document exports' permission matrix: request (202), list, follow, download and verify,
each × every role × (assigned project / unassigned project / anonymous), with the exact status
expected, and no export of the unassigned project in any list or count.

The expected outcomes are written out by hand from the access rules: an export is visible only
with the `export` right on its project (else 404, even to someone who may view the project);
reading exports needs a role that may read them (compliance officer, auditor, reviewer: else
403); requesting one needs the compliance officer's role and the `export` right, and a subject
the requester may see (an invisible one is 404, like a missing one). The matrix's reviewer has
no `export` right (as in the demo), so reads nothing; a reviewer given it is tested below.
`test_permission_matrix.test_every_api_endpoint_is_in_the_matrix` reads `URL_NAMES` here.
"""

import io

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from governance.choices import ExportKind, ExportStatus
from governance.exports import services, subjects
from governance.models import DocumentExport
from registry.choices import ProjectRight
from tests import factories
from tests.access.world import ASSIGNED, RIGHTS_ON_ASSIGNED, UNASSIGNED, E

ROLES = list(RIGHTS_ON_ASSIGNED)
A, U = ASSIGNED, UNASSIGNED

# One finished export of each project, read by each role.
READ_ONE = {
    "data scientist":     {A: 404, U: 404},  # views the project, but has no export right
    "reviewer":           {A: 404, U: 404},
    "compliance officer": {A: 200, U: 404},
    "auditor":            {A: 200, U: 404},
    "admin":              {A: 404, U: 404},
    "superuser":          {A: 200, U: 200},
}  # fmt: skip

# Expected status per URL name, role and project.
# fmt: off
EXPECTED = {
    "documentexport-list": {
        "data scientist":     {A: 403, U: 403},
        "reviewer":           {A: 200, U: 200},  # scoped: empty without the export right
        "compliance officer": {A: 200, U: 200},  # scoped: see test_list_shows_only_...
        "auditor":            {A: 200, U: 200},
        "admin":              {A: 403, U: 403},
        "superuser":          {A: 200, U: 200},
    },
    # An audit-trail report of the project.
    "documentexport-create": {
        "data scientist":     {A: 403, U: 404},
        "reviewer":           {A: 403, U: 404},
        "compliance officer": {A: 202, U: 404},
        "auditor":            {A: 403, U: 404},
        "admin":              {A: 404, U: 404},
        "superuser":          {A: 202, U: 202},
    },
    "documentexport-detail": READ_ONE,
    "documentexport-download": READ_ONE,
    "documentexport-verify": READ_ONE,
}
# fmt: on

# The URL name each row exercises.
URL_NAMES = {row: row for row in EXPECTED} | {"documentexport-create": "documentexport-list"}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _stored_files_stay(_media_per_test, settings, media):
    """The module's finished exports are stored once, so every test reads that folder."""
    settings.MEDIA_ROOT = media


@pytest.fixture(scope="module")
def exports(world, django_db_blocker, media):
    """One finished audit-trail report per project, in the world's transaction."""
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
        done = {}
        for key in (A, U):
            sue = world.people["superuser"]
            subject = subjects.resolve(ExportKind.AUDIT_TRAIL, {"project": key}, sue)
            export = services.request_export(subject, actor=sue)
            assert services.generate_export(export.pk) == ExportStatus.DONE
            done[key] = export
        yield done


def call(client, exports, row, key):
    """Send the row's request about project `key`; return the response."""
    if row == "documentexport-list":
        return client.get(reverse(row))
    if row == "documentexport-create":
        body = {"kind": ExportKind.AUDIT_TRAIL, "subject": {"project": key}}
        return client.post(reverse(URL_NAMES[row]), body, format="json")
    return client.get(reverse(row, args=[exports[key].pk]))


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
def test_status(world, exports, row, role, key):
    response = call(_client(world, role), exports, row, key)
    assert response.status_code == EXPECTED[row][role][key], response.content[:300]
    if row == "documentexport-download" and response.status_code == 200:
        assert b"".join(response.streaming_content).startswith(b"%PDF")


@pytest.mark.django_db
@pytest.mark.parametrize("row", list(EXPECTED))
@pytest.mark.parametrize("key", [A, U])
def test_anonymous_gets_401(world, exports, row, key):
    assert call(_client(world, None), exports, row, key).status_code == 401


@pytest.mark.django_db
def test_reviewer_with_the_export_right_reads_exports_but_cannot_request_one(
    world, exports, django_assert_max_num_queries
):
    factories.grant(world.projects[A], world.people["reviewer"], ProjectRight.EXPORT)
    client = _client(world, "reviewer")
    with django_assert_max_num_queries(12):
        listed = client.get(reverse("documentexport-list")).json()
    assert [item["id"] for item in listed["results"]] == [exports[A].pk]
    assert call(client, exports, "documentexport-detail", A).json()["id"] == exports[A].pk
    download = call(client, exports, "documentexport-download", A)
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert call(client, exports, "documentexport-verify", A).json()["matches"] is True
    refused = call(client, exports, "documentexport-create", A)
    assert refused.status_code == 403
    assert "role" in refused.json()["detail"]
    assert DocumentExport.objects.count() == 2  # nothing was queued
    # The right on one project shows nothing of another.
    for row in ("documentexport-detail", "documentexport-download", "documentexport-verify"):
        assert call(client, exports, row, U).status_code == 404


@pytest.mark.django_db
def test_reviewer_without_the_export_right_finds_no_export(world, exports):
    client = _client(world, "reviewer")  # view and review rights on the project, no export
    assert client.get(reverse("documentexport-list")).json()["count"] == 0
    for row in ("documentexport-detail", "documentexport-download", "documentexport-verify"):
        response = call(client, exports, row, A)
        assert response.status_code == 404, row
        assert call(client, exports, row, U).json() == response.json()  # says nothing more


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["compliance officer", "auditor", "reviewer", "superuser"])
def test_list_shows_only_projects_with_the_export_right(
    world, exports, role, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        body = _client(world, role).get(reverse("documentexport-list")).json()
    projects = {item["project"] for item in body["results"]}
    expected = {A, U} if role == "superuser" else {A} if E in RIGHTS_ON_ASSIGNED[role] else set()
    assert projects == expected
    assert body["count"] == len(projects)  # one export per project


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["data scientist", "compliance officer", "auditor"])
def test_export_of_an_invisible_subject_answers_like_a_missing_one(world, exports, role):
    client = _client(world, role)
    invisible = call(client, exports, "documentexport-create", U)
    body = {"kind": ExportKind.AUDIT_TRAIL, "subject": {"project": "nowhere"}}
    missing = client.post(reverse("documentexport-list"), body, format="json")
    assert invisible.status_code == missing.status_code == 404
    assert invisible.json() == missing.json()


@pytest.mark.django_db
def test_download_of_a_lost_file_is_a_clear_error_not_a_500(world, exports):
    from django.core.files.storage import default_storage

    export = exports[A]
    export.refresh_from_db()
    kept = default_storage.open(export.file.name, "rb").read()
    default_storage.delete(export.file.name)
    try:
        client = APIClient(raise_request_exception=False)
        client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens['compliance officer']}")
        response = client.get(reverse("documentexport-download", args=[export.pk]))
    finally:
        default_storage.save(export.file.name, io.BytesIO(kept))
    assert response.status_code in (409, 410), response.status_code
    assert response.json()["detail"]
