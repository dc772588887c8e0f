"""A subgraph of the provenance graph as a W3C PROV document (serialized as PROV-JSON).

Runs are activities; every other node (dataset and model versions, code versions,
evaluations, audits, exports) is an entity; the people who recorded the runs are agents.
Edges become the PROV relation that says the same thing: an entity a run read was `used`,
what a run wrote `wasGeneratedBy` it, an entity made from another `wasDerivedFrom` it, a run
`wasAssociatedWith` the person who recorded it, and a child run `wasInformedBy` its parent.
"""

from prov.model import PROV_LABEL, ProvDocument, QualifiedName

from lineage.choices import NodeKind
from lineage.graph import Subgraph
from lineage.models import Run
from registry.history import printed_name

NAMESPACE = ("stagegate", "urn:stagegate:")


def _identifier(ref: str) -> str:
    return f"stagegate:{ref.replace('#', '/v')}"


def build(subgraph: Subgraph) -> ProvDocument:
    """The PROV document of a subgraph (one query, for the runs' agents)."""
    document = ProvDocument()
    document.add_namespace(*NAMESPACE)
    kinds = {}
    for node in subgraph.nodes:
        kinds[node.id] = node.kind
        attributes: dict[QualifiedName | str, str] = {
            PROV_LABEL: node.label,
            "stagegate:kind": node.kind,
            "stagegate:nodeId": node.ref,
            "stagegate:project": node.namespace,
        }
        if node.kind == NodeKind.RUN:
            document.activity(_identifier(node.ref), other_attributes=attributes)
        else:
            document.entity(_identifier(node.ref), attributes)
    refs = {node.id: node.ref for node in subgraph.nodes}
    run_ids = {node.object_id: node.ref for node in subgraph.nodes if node.kind == NodeKind.RUN}
    agents = set()
    for run in Run.objects.filter(pk__in=run_ids).select_related("created_by"):
        agent = f"stagegate:user/{run.created_by.get_username()}"
        if agent not in agents:
            document.agent(agent, {PROV_LABEL: printed_name(run.created_by)})
            agents.add(agent)
        document.wasAssociatedWith(_identifier(run_ids[run.pk]), agent)
    for src, dst, _kind in subgraph.edges:
        cause, effect = _identifier(refs[src]), _identifier(refs[dst])
        src_is_run, dst_is_run = kinds[src] == NodeKind.RUN, kinds[dst] == NodeKind.RUN
        if src_is_run and dst_is_run:
            document.wasInformedBy(effect, cause)
        elif dst_is_run:
            document.used(effect, cause)
        elif src_is_run:
            document.wasGeneratedBy(effect, cause)
        else:
            document.wasDerivedFrom(effect, cause)
    return document


def document(subgraph: Subgraph) -> str:
    """The subgraph as PROV-JSON text."""
    text = build(subgraph).serialize(format="json")
    assert text is not None  # without a destination, serialize() returns the text
    return text
