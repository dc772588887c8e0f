"""Dataset versions are identified by content: the same hash registered twice is one version."""

from typing import Any

import pytest

from registry import services
from registry.models import DatasetVersion
from tests import factories

pytestmark = pytest.mark.django_db

SCHEMA = [{"name": "income", "type": "float"}, {"name": "sex", "type": "category"}]


@pytest.fixture
def loans(project, member):
    return services.register_dataset(project, actor=member, name="loans")


def register(dataset, actor, content: str, **fields):
    values: dict[str, Any] = {"uri": f"s3://b/{content}.parquet", "row_count": 100, "split": "test"}
    values.update(fields)
    return services.register_dataset_version(
        dataset, actor=actor, content_sha256=factories.sha(content), **values
    )


def payload(dataset, content: str, **fields):
    body = {
        "dataset": dataset.pk,
        "uri": f"s3://b/{content}.parquet",
        "content_sha256": factories.sha(content),
        "row_count": 100,
        "split": "test",
        "schema": SCHEMA,
        "sensitive_attributes": ["sex"],
    }
    body.update(fields)
    return body


def test_same_content_twice_returns_the_existing_version(loans, member):
    first, created = register(loans, member, "2025-q1")
    again, created_again = register(loans, member, "2025-q1")
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert DatasetVersion.objects.count() == 1
    loans.refresh_from_db()
    assert loans.last_version == 1


def test_same_content_with_other_details_is_still_the_existing_version(loans, member):
    first, _ = register(loans, member, "2025-q1", uri="s3://b/a.parquet")
    again, created = register(loans, member, "2025-q1", uri="s3://mirror/a.parquet")
    assert not created
    assert again.pk == first.pk
    assert again.uri == "s3://b/a.parquet"


def test_different_content_gets_the_next_version_number(loans, member):
    first, _ = register(loans, member, "2025-q1")
    second, created = register(loans, member, "2025-q2")
    assert created
    assert (first.version, second.version) == (1, 2)


def test_repeated_registrations_interleaved_never_duplicate(loans, member):
    # The sequential shape of concurrent clients retrying: every hash lands exactly once,
    # numbered in the order first seen, and every retry gets the original back.
    contents = ["a", "b", "a", "c", "b", "a", "c"]
    results = [register(loans, member, content) for content in contents]
    numbers = [version.version for version, _ in results]
    created = [flag for _, flag in results]
    assert numbers == [1, 2, 1, 3, 2, 1, 3]
    assert created == [True, True, False, True, False, False, False]
    assert DatasetVersion.objects.filter(dataset=loans).count() == 3


def test_unique_constraint_backs_the_idempotent_path(loans, member, monkeypatch):
    # If another transaction inserts the same hash between our existence check and our insert,
    # the unique constraint refuses ours and the action returns the winner's version.
    winner, _ = register(loans, member, "race")
    real_filter = DatasetVersion.objects.filter
    calls = {"n": 0}

    def filter_missing_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_filter(pk=-1)
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(DatasetVersion.objects, "filter", filter_missing_once)
    monkeypatch.setattr(DatasetVersion, "full_clean", lambda self, **kwargs: None)
    again, created = register(loans, member, "race")
    assert not created
    assert again.pk == winner.pk
    assert real_filter(dataset=loans).count() == 1


def test_same_hash_in_another_dataset_is_a_different_version(project, loans, member):
    other = services.register_dataset(project, actor=member, name="loans-copy")
    first, _ = register(loans, member, "shared")
    copy, created = register(other, member, "shared")
    assert created
    assert copy.pk != first.pk
    assert (copy.dataset, copy.version) == (other, 1)


def test_failed_registration_issues_no_number(loans, member):
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the point is what is left
        register(loans, member, "bad", split="holdout")
    version, _ = register(loans, member, "good")
    assert version.version == 1


def test_api_registers_then_returns_the_existing_version(api, loans, member):
    client = api.as_user(member)
    first = client.post("/api/v1/dataset-versions/", payload(loans, "2025-q1"))
    again = client.post("/api/v1/dataset-versions/", payload(loans, "2025-q1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["version"] == 1
    assert DatasetVersion.objects.count() == 1


def test_api_new_content_is_201_with_next_version(api, loans, member):
    client = api.as_user(member)
    client.post("/api/v1/dataset-versions/", payload(loans, "2025-q1"))
    second = client.post("/api/v1/dataset-versions/", payload(loans, "2025-q2"))
    assert second.status_code == 201
    assert second.json()["version"] == 2


def test_api_same_hash_in_another_dataset_is_201(api, project, loans, member):
    other = services.register_dataset(project, actor=member, name="copy")
    client = api.as_user(member)
    first = client.post("/api/v1/dataset-versions/", payload(loans, "same"))
    second = client.post("/api/v1/dataset-versions/", payload(other, "same"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


def test_api_refuses_sensitive_attribute_outside_schema(api, loans, member):
    response = api.as_user(member).post(
        "/api/v1/dataset-versions/",
        payload(loans, "x", sensitive_attributes=["ethnicity"]),
    )
    assert response.status_code == 400
    assert "ethnicity" in response.json()["sensitive_attributes"][0]
    assert not DatasetVersion.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_the_same_content_make_one_version():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so there is no race to test")
    import threading

    from django.db import connections

    actor = factories.user("conc", role=factories.Role.DATA_SCIENTIST)
    project = factories.project(actor, key="race")
    dataset = services.register_dataset(project, actor=actor, name="loans")
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(register(dataset, actor, "same-bytes"))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({version.pk for version, _ in results}) == 1
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1
