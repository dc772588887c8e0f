"""Bad input to the lineage API is a 4xx that says what is wrong, never a 500, and stores
nothing: OpenLineage events (strings the databases refuse, URIs, times out of range, deep
nesting, oversized and gzip-bomb bodies, facet field types) and the graph's query parameters
(nodeId, depth, maxNodes, asOf). Then the same promise under a few hundred random mutations.
Run this file on SQLite and on PostgreSQL: the two refuse different things."""

import copy
import gzip
import json
import random
import uuid
import zlib
from urllib.parse import quote

import pytest

from governance.models import AuditEvent
from lineage import node_ids
from lineage.models import Node, ReceivedEvent, Run
from lineage.openlineage import validate
from registry.models import DatasetVersion
from tests.lineage.test_openlineage import (
    FEATURES,
    ORDERS,
    _with_parent,
    event,
    facet,
    post,
    send,
    with_code,
)

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
TIME_RANGE = "between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59Z"
STORED = (Run, ReceivedEvent, Node, DatasetVersion, AuditEvent)


def stored() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in STORED}


def full_event(run_id: str | None = None) -> dict:
    """A valid event using every part Stagegate reads: code, parent, data sets and their
    facets, the processing engine."""
    body = with_code(event("COMPLETE", run_id, inputs=[ORDERS], outputs=[FEATURES]))
    _with_parent(body, str(uuid.uuid4()))
    body["run"]["facets"]["processing_engine"] = {
        **facet("ProcessingEngineRunFacet", version="3.5.0"),
        "name": "spark",
    }
    return copy.deepcopy(body)  # the builders share ORDERS and FEATURES: mutate a copy


def with_custom_facet(**fields):
    return lambda e: e["run"]["facets"].update(custom=facet("CustomRunFacet", **fields))


def with_output(**changes):
    return lambda e: e.update(outputs=[{**copy.deepcopy(FEATURES), **changes}])


def with_row_count(value):
    def change(e):
        e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = value

    return change


def with_code_location(**fields):
    def change(e):
        e["job"]["facets"]["sourceCodeLocation"] = facet("SourceCodeLocationJobFacet", **fields)

    return change


def nested(levels: int) -> list:
    """[[...[0]...]]: `levels` lists, one in the other."""
    value: list = [0]
    for _ in range(levels - 1):
        value = [value]
    return value


NESTED_150 = nested(150)


# --- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda e: e.update(producer="http://[x"), "producer: must be a URI", id="producer"
        ),
        pytest.param(
            lambda e: e["run"]["facets"].update(
                nominalTime={**facet("NominalTimeRunFacet"), "_producer": "http://[x"}
            ),
            "run.facets.nominalTime._producer: must be a URI",
            id="facet-producer",
        ),
        pytest.param(
            lambda e: e["job"].update(name="daily\x00features"),
            "job.name: must not contain NUL characters",
            id="nul-in-job-name",
        ),
        pytest.param(
            lambda e: e["job"].update(namespace="cred\x00it"),
            "job.namespace: must not contain NUL characters",
            id="nul-in-namespace",
        ),
        pytest.param(
            with_output(name="daily/orders\x00.parquet"),
            "outputs[0].name: must not contain NUL characters",
            id="nul-in-dataset-name",
        ),
        pytest.param(
            with_custom_facet(notes=["fine", "not\x00fine"]),
            "run.facets.custom.notes[1]: must not contain NUL characters",
            id="nul-in-a-payload-string",
        ),
        pytest.param(
            with_custom_facet(**{"key\x00": 1}),
            'run.facets.custom: the key "key\\u0000" must not contain NUL characters',
            id="nul-in-a-key",
        ),
        pytest.param(
            with_output(name="\ud83d"),
            "outputs[0].name: must not contain unpaired surrogates",
            id="lone-surrogate-in-dataset-name",
        ),
        pytest.param(
            lambda e: e["job"].update(name="x\udfff"),
            "job.name: must not contain unpaired surrogates",
            id="lone-surrogate-in-job-name",
        ),
        pytest.param(
            with_custom_facet(**{"\ud800": "x"}),
            'run.facets.custom: the key "\\ud800" must not contain unpaired surrogates',
            id="lone-surrogate-in-a-key",
        ),
        pytest.param(
            with_custom_facet(score=float("nan")),
            "run.facets.custom.score: must be a finite number",
            id="nan",
        ),
        pytest.param(
            with_custom_facet(score=float("-inf")),
            "run.facets.custom.score: must be a finite number",
            id="infinity",
        ),
        pytest.param(
            with_custom_facet(deep=NESTED_150),
            "run.facets.custom.deep" + "[0]" * 96 + ": nested more than 100 levels deep",
            id="nested-too-deep-to-store",
        ),
        pytest.param(
            lambda e: e.update(eventTime="9999-12-31T23:59:59-23:59"),
            f"eventTime: must be {TIME_RANGE}",
            id="event-time-after-year-9999-in-utc",
        ),
        pytest.param(
            lambda e: e.update(eventTime="0001-01-01T00:00:00+01:00"),
            f"eventTime: must be {TIME_RANGE}",
            id="event-time-before-year-1-in-utc",
        ),
        pytest.param(
            lambda e: e["run"].update(runId=f"{uuid.uuid4()}\n"),
            "run.runId: must be a UUID",
            id="run-id-with-a-trailing-newline",
        ),
        pytest.param(
            lambda e: e.update(eventTime="2026-11-22T10:00:00Z\n"),
            "eventTime: must be an RFC 3339 date-time",
            id="event-time-with-a-trailing-newline",
        ),
        pytest.param(
            with_row_count(True),
            "outputs[0].outputFacets.outputStatistics.rowCount: must be an integer",
            id="row-count-bool",
        ),
        pytest.param(
            with_row_count("42"),
            "outputs[0].outputFacets.outputStatistics.rowCount: must be an integer",
            id="row-count-string",
        ),
        pytest.param(
            with_row_count(2**63),
            "outputs[0].outputFacets.outputStatistics.rowCount: must be at most "
            "9223372036854775807",
            id="row-count-too-large",
        ),
        pytest.param(
            lambda e: e["inputs"][0]["facets"]["schema"]["fields"][0].update(type=7),
            "inputs[0].facets.schema.fields[0].type: must be a string",
            id="schema-field-type",
        ),
        pytest.param(
            with_code_location(url="https://git.example.com/x", version="0" * 40),
            "job.facets.sourceCodeLocation: 'type' is a required property",
            id="source-code-location-without-type",
        ),
        pytest.param(
            with_code_location(type="git", repoUrl="https://git.example.com/x"),
            "job.facets.sourceCodeLocation: 'url' is a required property",
            id="source-code-location-without-url",
        ),
        pytest.param(
            with_code_location(type=["git"], url="https://git.example.com/x"),
            "job.facets.sourceCodeLocation.type: must be a string",
            id="source-code-location-type-not-a-string",
        ),
    ],
)
def test_an_invalid_event_is_400_naming_the_error_and_stores_nothing(
    api, project, member, change, message
):
    body = full_event()
    change(body)
    client = api.as_user(member)
    before = stored()
    response = post(client, body)
    assert response.status_code == 400, response.content
    assert any(message in error for error in response.json()["errors"]["0"]), response.json()
    assert stored() == before


def test_the_event_these_cases_start_from_is_valid(api, project, member):
    send(api.as_user(member), full_event())


@pytest.mark.parametrize(
    "event_time",
    [
        "0001-01-02T00:00:00Z",
        "0001-01-01T23:00:00-01:00",
        "9999-12-30T23:59:59.999999Z",
        "9999-12-31T00:00:00+01:00",
    ],
)
def test_the_earliest_and_latest_event_times_are_accepted(api, project, member, event_time):
    client = api.as_user(member)
    send(client, event("START", eventTime=event_time))
    assert client.get("/api/v1/lineage", {"nodeId": "job:credit:daily_features"}).status_code == 200


def test_the_facets_the_openlineage_python_client_writes_are_still_valid():
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, RunEvent, RunState
    from openlineage.client.event_v2 import Run as ClientRun
    from openlineage.client.facet_v2 import (
        output_statistics_output_dataset,
        schema_dataset,
        source_code_location_job,
    )
    from openlineage.client.serde import Serde

    fields = schema_dataset.SchemaDatasetFacetFields
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[fields(name="customer", fields=[fields(name="id", type="BIGINT")])]
    )
    # Without a rowCount (the client's is optional), a url that is not a URI, a tag version.
    statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(size=10)
    code = source_code_location_job.SourceCodeLocationJobFacet(
        type="git", url="git@github.com:team/pipeline.git", version="v1.2"
    )
    body = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-11-22T10:00:00Z",
        run=ClientRun(runId=str(uuid.uuid4())),
        job=Job(namespace="credit", name="train", facets={"sourceCodeLocation": code}),
        inputs=[InputDataset(namespace="s3://raw", name="customers", facets={"schema": schema})],
        outputs=[
            OutputDataset(
                namespace="s3://features",
                name="customers",
                outputFacets={"outputStatistics": statistics},
            )
        ],
        producer="https://github.com/example/pipeline/v1",
    )
    assert validate(json.loads(Serde.to_json(body))) == []


def test_an_invalid_event_in_a_batch_is_refused_by_its_index(api, project, member):
    bad = event("START")
    bad["job"]["name"] = "a\x00b"
    client = api.as_user(member)
    before = stored()
    response = post(client, [event("START"), bad], "/api/v1/lineage/batch")
    assert response.status_code == 400
    assert response.json()["errors"] == {"1": ["job.name: must not contain NUL characters"]}
    assert stored() == before


def test_a_walk_reports_at_most_ten_bad_strings_per_event(api, project, member):
    body = full_event()
    body["run"]["facets"]["custom"] = facet("CustomRunFacet", notes=["\x00"] * 1000)
    client = api.as_user(member)
    response = post(client, body)
    assert response.status_code == 400
    errors = response.json()["errors"]["0"]
    assert len(errors) == 11
    assert errors[-1] == "(further errors of this kind are not listed)"


# --- bodies ------------------------------------------------------------------------------------


def post_raw(client, raw: bytes, path="/api/v1/lineage", **headers):
    return client.post(path, raw, content_type="application/json", **headers)


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/lineage/batch"])
def test_json_nested_too_deeply_to_parse_is_400(api, project, member, path):
    client = api.as_user(member)
    before = stored()
    response = post_raw(client, b"[" * 100_000 + b"]" * 100_000, path)
    assert response.status_code == 400
    assert response.json() == {"detail": "the body is not JSON: nested too deeply"}
    assert stored() == before


def one_member_bomb() -> bytes:
    """64 MB of JSON whitespace in one gzip member: some 60 kB on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [compressor.compress(b" " * MB) for _ in range(64)]
    return b"".join([*parts, compressor.flush()])


def many_members_bomb() -> bytes:
    """A gigabyte of JSON whitespace as 1,024 gzip members of a megabyte each: 1 MB on the
    wire (gzip.decompress would inflate every one)."""
    return gzip.compress(b" " * MB, 9) * 1024


@pytest.mark.parametrize("bomb", [one_member_bomb, many_members_bomb])
def test_a_gzip_body_inflating_past_the_limit_is_413(api, project, member, bomb):
    client = api.as_user(member)
    before = stored()
    response = post_raw(client, bomb(), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is larger than 20 MB once decompressed"}
    assert stored() == before


def test_a_body_over_the_limit_is_413(api, project, member):
    client = api.as_user(member)
    response = post_raw(client, b" " * (20 * MB + 1))
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is larger than 20 MB"}


def test_a_gzip_body_of_several_members_is_read_whole(api, project, member):
    text = json.dumps(event("START")).encode()
    body = gzip.compress(text[:10]) + gzip.compress(text[10:])
    response = post_raw(api.as_user(member), body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(gzip.compress(b"{}")[:-5], id="truncated"),
        pytest.param(b"not gzip", id="not-gzip"),
        pytest.param(gzip.compress(b"{}") + b"trailing", id="trailing-garbage"),
    ],
)
def test_a_body_that_is_not_gzip_is_400(api, project, member, body):
    response = post_raw(api.as_user(member), body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json() == {"detail": "the body is not valid gzip"}


# --- graph parameters --------------------------------------------------------------------------


@pytest.fixture
def recorded(api, project, member):
    """A run of job `daily_features` that read ORDERS and wrote FEATURES."""
    return send(
        api.as_user(member), with_code(event("COMPLETE", inputs=[ORDERS], outputs=[FEATURES]))
    )


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/lineage/prov"])
@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        pytest.param("nodeId=job:credit:daily%00features", "nodeId", "NUL", id="nul-in-job"),
        pytest.param("nodeId=dataset:s3://b:a%00", "nodeId", "NUL", id="nul-in-dataset"),
        pytest.param("nodeId=run:1%0A", "nodeId", "is not a node id", id="newline-after-run"),
        pytest.param(
            "nodeId=dataset:credit:orders%231%0A",
            "nodeId",
            "version number",
            id="newline-after-version",
        ),
        pytest.param(
            "nodeId=run:1&depth=%EF%BC%91", "depth", "whole number", id="full-width-depth"
        ),
        pytest.param(
            "nodeId=run:1&maxNodes=%D9%A3", "maxNodes", "whole number", id="arabic-indic-max-nodes"
        ),
        pytest.param("nodeId=run:1&depth=1_0", "depth", "whole number", id="underscored-depth"),
        pytest.param("nodeId=run:1&depth=%205", "depth", "whole number", id="spaced-depth"),
        pytest.param(
            "nodeId=run:1&asOf=0001-01-01T00:00:00%2B01:00",
            "asOf",
            TIME_RANGE,
            id="as-of-before-year-1",
        ),
        pytest.param(
            "nodeId=run:1&asOf=9999-12-31T23:59:59-23:59",
            "asOf",
            TIME_RANGE,
            id="as-of-after-year-9999",
        ),
    ],
)
def test_a_malformed_graph_parameter_is_400_naming_it(
    api, recorded, member, path, query, field, message
):
    response = api.as_user(member).get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert message in response.json()[field]


@pytest.mark.parametrize(
    "text", ["run:1\n", "job:credit:a\x00b", "dataset:s3://b:\ud800", "code:1\x00"]
)
def test_node_ids_with_newlines_nul_or_surrogates_are_malformed(text):
    with pytest.raises(node_ids.MalformedNodeId):
        node_ids.parse(text)


def test_the_graph_takes_ascii_depth_and_max_nodes(api, recorded, member):
    response = api.as_user(member).get(
        "/api/v1/lineage", {"nodeId": "job:credit:daily_features", "depth": "1", "maxNodes": "10"}
    )
    assert response.status_code == 200
    assert len(response.json()["graph"]) == 4  # the run, its code, its input, its output


# --- random mutations --------------------------------------------------------------------------

DEEP = "\u2063deep\u2063"  # stands for nesting too deep for the test client's json.dumps
ODD_STRINGS = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\n", "%00", "ß" * 3, "a" * 70_000]
ODD_VALUES: list[object] = [
    *ODD_STRINGS,
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    -(10**1000),
    2**63,
    1e308,
    float("nan"),
    float("inf"),
    {},
    [],
    {"a": {"b": {"c": []}}},
    [[[[[]]]]],
    NESTED_150,
    DEEP,
    "2026-11-22T10:00:00Z",
    "9999-12-31T23:59:59-23:59",
    str(uuid.UUID(int=0)),
    "http://[x",
    "credit",
]


def paths(value, prefix=()):
    """Every (container, key) of a JSON value, depth first."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from paths(value[key], (*prefix, key))
    elif isinstance(value, list):
        for index in range(len(value)):
            yield value, index
            yield from paths(value[index], (*prefix, index))


def mutate(body: dict, rng: random.Random) -> list[str]:
    """Apply 1-3 random mutations to `body`; what was done, for the failure message."""
    done = []
    for _ in range(rng.randint(1, 3)):
        container, key = rng.choice(list(paths(body)))
        action = rng.choice(["delete", "replace", "replace", "add", "rename"])
        odd = copy.deepcopy(rng.choice(ODD_VALUES))
        if action == "delete" or (action == "rename" and isinstance(container, list)):
            del container[key]
        elif action == "replace":
            container[key] = odd
        elif action == "add" and isinstance(container, dict):
            container[rng.choice(ODD_STRINGS + ["facets", "runId", "name"])] = odd
        elif action == "add":
            container.append(odd)
        else:
            container[rng.choice(ODD_STRINGS)] = container.pop(key)
        done.append(f"{action} {key!r} -> {odd!r}"[:200])
    return done


def json_text(body) -> str:
    text = json.dumps(body)
    return text.replace(json.dumps(DEEP), "[" * 5000 + "]" * 5000)


def test_random_mutations_of_an_event_are_never_a_server_error(api, project, member):
    rng = random.Random(20261122)
    client = api.as_user(member)
    seen = set()
    for attempt in range(300):
        body = full_event(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        if rng.random() < 0.3:
            body["run"]["facets"]["parent"]["run"]["runId"] = body["run"]["runId"]
        done = mutate(body, rng)
        batch = rng.random() < 0.2
        before = stored()
        try:
            response = client.post(
                "/api/v1/lineage/batch" if batch else "/api/v1/lineage",
                json_text([body] if batch else body),
                content_type="application/json",
            )
        except Exception as exc:  # the test client re-raises a view's exception
            pytest.fail(f"attempt {attempt}: {done}: {exc!r}")
        assert response.status_code < 500, (attempt, done, response.content[:500])
        if response.status_code >= 400:
            assert stored() == before, (attempt, done, response.content[:500])
        seen.add(response.status_code)
    assert {201, 400} <= seen


NODE_ID_PARTS = [
    "dataset:",
    "model:",
    "run:",
    "job:",
    "code:",
    "evaluation:",
    "credit",
    ":",
    "#",
    "1",
    "0",
    "-1",
    "daily_features",
    "s3://features",
    "postgres://db.example.com:5432",
    "daily/orders.parquet",
    str(uuid.UUID(int=7)),
    "\x00",
    "\n",
    "\ud800",
    "\uff11",
    "\u0663",
    "%",
    " ",
    "a" * 700,
    "9" * 30,
]
ODD_PARTS = ["\x00", "\n", "\ud800", "\uff11", "#", ":", "a" * 700]
NUMBERS = ["", "0", "1", "-1", "3", "\uff11", "1e3", "9" * 30, "\x00", "1.5", " 2", "1_0", "abc"]
DIRECTIONS = ["both", "upstream", "downstream", "", "UP", "\x00"]
TIMES = [
    "",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00+05:30",
    "0001-01-01T00:00:00+01:00",
    "0001-01-02T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01T00:00:00",
    "now",
    "approved",
    "\x00",
    "\ud800",
]


def random_node_id(rng: random.Random, valid: list[str]) -> str:
    """Mostly a node id that names a node, as it is or with odd parts put in it (where the
    lookups reach the database); else odd parts alone."""
    if rng.random() < 0.2:
        return "".join(rng.choice(NODE_ID_PARTS) for _ in range(rng.randint(1, 6)))
    node_id = rng.choice(valid)
    for _ in range(rng.choice([0, 1, 1, 2])):
        at = rng.randint(0, len(node_id))
        node_id = node_id[:at] + rng.choice(ODD_PARTS) + node_id[at:]
    return node_id


def random_parameter(rng: random.Random, usual: list[str], odd: list[str]) -> str:
    # Mostly usual: an odd one is refused before the others are used.
    return rng.choice(odd) if rng.random() < 0.3 else rng.choice(usual)


def test_random_graph_queries_are_never_a_server_error(api, recorded, member):
    rng = random.Random(20261123)
    client = api.as_user(member)
    run_id, run_uuid = recorded["run"], recorded["runId"]
    valid = [
        "job:credit:daily_features",
        f"job:credit:daily_features#{run_id}",
        f"job:credit:daily_features#{run_uuid}",
        "job:credit:another_job",
        f"run:{run_id}",
        f"run:{run_uuid}",
        *Node.objects.values_list("ref", flat=True),
        f"dataset:{ORDERS['namespace']}:{ORDERS['name']}",
        f"dataset:{FEATURES['namespace']}:{FEATURES['name']}#1",
    ]
    for attempt in range(300):
        params = {"nodeId": random_node_id(rng, valid)}
        for name, usual, odd in (
            ("depth", ["1", "3"], NUMBERS),
            ("maxNodes", ["2", "100"], NUMBERS),
            ("direction", ["both", "upstream", "downstream"], DIRECTIONS),
            ("asOf", ["2100-01-01T00:00:00Z", "2100-01-01T00:00:00+05:30"], TIMES),
        ):
            if rng.random() < 0.5:
                params[name] = random_parameter(rng, usual, odd)
        query = "&".join(
            f"{name}={quote(value, safe='', errors='surrogatepass')}"
            for name, value in params.items()
        )
        for path in ("/api/v1/lineage", "/api/v1/lineage/prov"):
            try:
                response = client.get(f"{path}?{query}")
            except Exception as exc:
                pytest.fail(f"attempt {attempt}: {path}?{query}: {exc!r}")
            assert response.status_code < 500, (attempt, path, params, response.content[:300])
