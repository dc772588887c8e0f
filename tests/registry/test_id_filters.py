"""Query-string references to other records by id (`?model=12`) take whole numbers in an id's
range and answer 400 otherwise: never a 500, on SQLite (which cannot compare a number past 64
bits with a column) or on PostgreSQL."""

import django_filters
import pytest
from django.urls import get_resolver

from registry.api.filters import IdFilter

pytestmark = pytest.mark.django_db


def viewsets_with_filters(patterns=None):
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if hasattr(pattern, "url_patterns"):
            yield from viewsets_with_filters(pattern.url_patterns)
            continue
        view = getattr(getattr(pattern, "callback", None), "cls", None)
        if getattr(view, "filterset_class", None) is not None:
            yield view


def test_every_filter_by_a_referenced_id_is_an_id_filter():
    checked = 0
    for view in set(viewsets_with_filters()):
        for name, filter_ in view.filterset_class.base_filters.items():
            if isinstance(filter_, django_filters.NumberFilter) and filter_.field_name.endswith(
                "_id"
            ):
                assert isinstance(filter_, IdFilter), f"{view.__name__}.{name}"
                checked += 1
    assert checked >= 9  # the walk found the filters


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit-events/?actor={}",
        "/api/v1/model-versions/?model={}",
        "/api/v1/model-versions/?run={}",
        "/api/v1/dataset-versions/?dataset={}",
        "/api/v1/evaluations/?dataset_version={}",
        "/api/v1/runs/?parent={}",
    ],
)
@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999", "0", "1.5"])
def test_an_id_out_of_range_gets_400_naming_the_parameter(api, project, compliance, path, value):
    url = path.format(value)
    response = api.as_user(compliance).get(url)
    assert response.status_code == 400, (url, response.content)
    parameter = path.split("?")[1].split("=")[0]
    assert parameter in response.json()


def test_the_largest_id_is_accepted_and_finds_nothing(api, project, compliance):
    response = api.as_user(compliance).get(f"/api/v1/model-versions/?model={2**63 - 1}")
    assert response.status_code == 200
    assert response.json()["count"] == 0
