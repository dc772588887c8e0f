"""PROV-JSON export of a node's provenance, read back with the `prov` package."""

import pytest
from prov.model import (
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvUsage,
)

from tests.lineage.test_graph import build_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(project, member):
    return build_pipeline(project, member)


def read(response) -> ProvDocument:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return ProvDocument.deserialize(content=response.content.decode(), format="json")


def ids(document, record_type) -> set[str]:
    return {str(record.identifier) for record in document.get_records(record_type)}


def relations(document, record_type) -> set[tuple[str, str]]:
    found = set()
    for record in document.get_records(record_type):
        first, second = (str(value) for _, value in list(record.formal_attributes)[:2])
        found.add((first, second))
    return found


def test_prov_export_of_a_model_version(api, pipeline, member, django_assert_max_num_queries):
    client = api.as_user(member)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/lineage/prov", {"nodeId": "model:credit:scorer#2"})
    document = read(response)
    train, prepare = f"run:{pipeline.train.pk}", f"run:{pipeline.prepare.pk}"
    assert ids(document, ProvEntity) == {
        "stagegate:model:credit:scorer/v2",
        "stagegate:model:credit:scorer/v1",
        "stagegate:dataset:credit:features/v1",
        "stagegate:dataset:credit:raw/v1",
        f"stagegate:code:{pipeline.code.pk}",
    }
    assert ids(document, ProvActivity) == {f"stagegate:{train}", f"stagegate:{prepare}"}
    assert ids(document, ProvAgent) == {"stagegate:user/mina"}
    assert relations(document, ProvUsage) == {
        (f"stagegate:{train}", "stagegate:dataset:credit:features/v1"),
        (f"stagegate:{train}", f"stagegate:code:{pipeline.code.pk}"),
        (f"stagegate:{prepare}", "stagegate:dataset:credit:raw/v1"),
        (f"stagegate:{prepare}", f"stagegate:code:{pipeline.code.pk}"),
    }
    assert relations(document, ProvGeneration) == {
        ("stagegate:model:credit:scorer/v1", f"stagegate:{train}"),
        ("stagegate:dataset:credit:features/v1", f"stagegate:{prepare}"),
    }
    assert relations(document, ProvDerivation) == {
        ("stagegate:model:credit:scorer/v2", "stagegate:model:credit:scorer/v1")
    }
    assert relations(document, ProvAssociation) == {
        (f"stagegate:{train}", "stagegate:user/mina"),
        (f"stagegate:{prepare}", "stagegate:user/mina"),
    }


def test_prov_records_carry_the_node_id_and_label(api, pipeline, member):
    document = read(
        api.as_user(member).get("/api/v1/lineage/prov", {"nodeId": "dataset:credit:raw#1"})
    )
    (entity,) = document.get_records(ProvEntity)
    attributes = {str(k): v for k, v in entity.attributes}
    assert attributes["stagegate:nodeId"] == "dataset:credit:raw#1"
    assert attributes["prov:label"] == "credit/raw v1"


def test_prov_export_bad_input(api, pipeline, member, outsider):
    assert api.as_user(member).get("/api/v1/lineage/prov", {"nodeId": "x"}).status_code == 400
    response = api.as_user(outsider).get(
        "/api/v1/lineage/prov", {"nodeId": "model:credit:scorer#2"}
    )
    assert response.status_code == 404
