"""Where it came from: code versions, runs, and the provenance graph.

The graph (`Node`, `Edge`) is written by the registry and lineage actions at the moment each
record is created, and never rewritten: a new version is a new node, so the lineage of a
model version as it was approved stays answerable after its data sets gain new versions.
Nodes and edges are append-only: their querysets and instances refuse every change and
deletion, and database triggers (lineage/append_only.py) refuse them for raw SQL too.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from lineage.append_only import REFUSAL
from lineage.choices import EdgeKind, NodeKind, RunKind, RunStatus
from registry.access import ProjectScopedQuerySet
from registry.insert_only import InsertOnlyModel, InsertOnlyQuerySet, InsertOnlyWrites
from registry.models import traced_history
from registry.validators import validate_json_object, validate_metrics

commit_validator = RegexValidator(
    re.compile(r"^[0-9a-f]{40}$"), "a commit SHA is 40 lowercase hexadecimal characters"
)


class CodeVersion(models.Model):
    """An exact state of source code: repository, commit, path, and whether it was dirty."""

    PROJECT_PATH = "project"

    project = models.ForeignKey(
        "registry.Project", on_delete=models.PROTECT, related_name="code_versions"
    )
    repository_url = models.CharField(max_length=1000)
    commit_sha = models.CharField(max_length=40, validators=[commit_validator])
    branch = models.CharField(max_length=255, blank=True)
    path = models.CharField(max_length=1000, blank=True)
    dirty = models.BooleanField(
        default=False,
        help_text="Uncommitted changes were present: the commit alone does not reproduce the code.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = traced_history()
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "repository_url", "commit_sha", "path", "dirty"],
                name="unique_code_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository_url}@{self.commit_sha[:12]}"


class Run(models.Model):
    """One execution of a job: its code, parameters, environment, inputs and outputs."""

    PROJECT_PATH = "project"

    project = models.ForeignKey("registry.Project", on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=300, help_text="The job this run executed.")
    kind = models.CharField(max_length=16, choices=RunKind.choices, default=RunKind.OTHER)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    # An OpenLineage run id, when the run arrived as OpenLineage events.
    external_id = models.UUIDField(null=True, blank=True, unique=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    code_version = models.ForeignKey(
        CodeVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="runs"
    )
    parameters = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    environment = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text="e.g. {python: '3.11.7', packages: {name: version}}.",
    )
    metrics = models.JSONField(default=dict, blank=True, validators=[validate_metrics])
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    input_datasets = models.ManyToManyField(
        "registry.DatasetVersion", blank=True, related_name="consumed_by_runs"
    )
    output_datasets = models.ManyToManyField(
        "registry.DatasetVersion", blank=True, related_name="produced_by_runs"
    )
    input_models = models.ManyToManyField(
        "registry.ModelVersion", blank=True, related_name="consumed_by_runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = traced_history(m2m_fields=[input_datasets, output_datasets, input_models])
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"

    def clean(self):
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValidationError({"ended_at": "a run cannot end before it starts"})


class LineageRewriteRefused(Exception):
    """A lineage node or edge was about to be changed or deleted: the graph is append-only."""


class AppendOnly(InsertOnlyModel):
    """Nodes and edges: inserted, never changed or deleted (registry/insert_only.py)."""

    class Meta:
        abstract = True

    @classmethod
    def refused(cls, what: str) -> Exception:
        return LineageRewriteRefused(f"{REFUSAL}: {cls._meta.verbose_name_plural} are never {what}")


class NodeQuerySet(InsertOnlyWrites, ProjectScopedQuerySet):
    """Nodes: insert-only, filtered by the rights a user holds on their projects."""


class Node(AppendOnly):
    """A vertex of the provenance graph: one immutable record version."""

    PROJECT_PATH = "project"

    kind = models.CharField(max_length=32, choices=NodeKind.choices)
    object_id = models.BigIntegerField()
    project = models.ForeignKey(
        "registry.Project", on_delete=models.PROTECT, related_name="lineage_nodes"
    )
    label = models.CharField(max_length=500)
    # The public node id (`dataset:<project>:<name>#<version>`, `run:<id>`, ... see
    # lineage.node_ids). Stored because the names in it never change, so a graph answer of
    # 10,000 nodes needs no join per kind to name them.
    ref = models.CharField(max_length=600, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = NodeQuerySet.as_manager()
    # True on a node made in the running transaction, until an edge leaves it (set and read by
    # lineage.recording, which skips the cycle check of an edge into such a node).
    _without_out_edges = False

    class Meta:
        # Related lookups and `_base_manager` get the guarded manager too, not a plain one.
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="unique_node_per_record")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.object_id}"


class Edge(AppendOnly):
    """A directed provenance link, from cause (`src`) to effect (`dst`). Append-only.

    The projects of both ends are copied onto the edge (nodes never change project), so a walk
    can keep to the projects a user may see by reading the edge index alone: the covering
    indexes give each direction the next node and its project without touching the node table.
    """

    # Indexed by the covering indexes below, whose first columns they are.
    src = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="out_edges", db_index=False
    )
    dst = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="in_edges", db_index=False)
    src_project = models.ForeignKey(
        "registry.Project", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    dst_project = models.ForeignKey(
        "registry.Project", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EdgeKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InsertOnlyQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["src", "dst", "kind"], name="unique_edge"),
            models.CheckConstraint(condition=~models.Q(src=models.F("dst")), name="no_self_edge"),
        ]
        indexes = [
            models.Index(fields=["src", "dst"], include=["dst_project"], name="edge_src_dst"),
            models.Index(fields=["dst", "src"], include=["src_project"], name="edge_dst_src"),
        ]

    def __str__(self) -> str:
        return f"{self.src} -{self.kind}-> {self.dst}"


class ReceivedEvent(models.Model):
    """An OpenLineage RunEvent as it was received, kept once per (runId, eventType, eventTime).

    The unique key makes ingestion idempotent: a client that retries a POST (openlineage-python
    retries on 5xx and timeouts) does not apply the same event twice.
    """

    PROJECT_PATH = "run__project"

    run_uuid = models.UUIDField()
    event_type = models.CharField(max_length=16)
    event_time = models.DateTimeField()
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="openlineage_events")
    payload = models.JSONField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["event_time", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run_uuid", "event_type", "event_time"], name="unique_openlineage_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.run_uuid} at {self.event_time.isoformat()}"
