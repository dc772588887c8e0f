"""On PostgreSQL list parameters go in the binary format (registry.apps._binary_arrays): bulk
inserts send each column as one array, and text arrays were escaped element by element in
Python. Values that need escaping in the text format must arrive as they were."""

import pytest
from django.db import connection
from psycopg.adapt import PyFormat
from psycopg.types.array import ListBinaryDumper

from registry.models import Dataset

pytestmark = pytest.mark.django_db

AWKWARD = ['quote " and \\ backslash', "{braces}, commas", "NULL", "", "ünïcödé ✓", "tab\there"]


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no array parameters")


@pytest.mark.postgres
def test_lists_are_sent_in_the_binary_format(postgresql):
    connection.ensure_connection()
    dumper = connection.connection.adapters.get_dumper(list, PyFormat.AUTO)
    assert dumper is ListBinaryDumper


def test_a_bulk_insert_keeps_every_text_value_as_it_was(project):  # on SQLite too
    rows = [
        Dataset(project=project, name=f"d{i}", description=text) for i, text in enumerate(AWKWARD)
    ]
    Dataset.objects.bulk_create(rows)
    stored = dict(Dataset.objects.filter(project=project).values_list("name", "description"))
    assert stored == {f"d{i}": text for i, text in enumerate(AWKWARD)}


@pytest.mark.postgres
def test_array_parameters_of_other_types_still_work(postgresql):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x FROM unnest(%s::bigint[]) x WHERE x = ANY(%s::bigint[]) ORDER BY x",
            [[3, 1, 2**40, None], [2**40, 3]],
        )
        assert [row[0] for row in cursor.fetchall()] == [3, 2**40]
