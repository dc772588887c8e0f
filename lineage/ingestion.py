"""Applying a request's OpenLineage events as one set-based batch.

`lineage.openlineage` validates the events and reads each into a `ParsedEvent`; `apply()` then
writes them with a number of queries that does not grow with the number of events:

1. **Look up** everything the events name, one query per kind: the projects their namespaces
   name (with the view and contribute rights), the events already received for those projects
   (idempotency by runId, eventType, eventTime), the runs (with what they read and wrote), data
   sets, dataset versions and code versions. The dataset versions are those the events name
   (by the digest of their identity) and those an input without a version facet may read: the
   latest of its data set, or the one before its run's first write of it.
   Existing runs and data sets are locked (FOR UPDATE, in id order) as the one-at-a-time
   actions lock them: runs change status, data sets issue version numbers.
2. **Plan** in Python, event by event in order, exactly as the actions would apply them one at
   a time: a run created by its first event (its parent created as a stub if unknown, its code
   version registered), then updated by later ones (START/RUNNING never reopen an ended run);
   a dataset version per identity, numbered in order, which later events of the batch see (an
   input without a version facet reads the latest, as it would one event per request); each
   run linked once to each version it read or wrote. Every record is validated here: a bad
   event stops the batch with its index.
3. **Write** with bulk inserts and updates: data sets, dataset versions, code versions, runs,
   their graph nodes and edges, the links, the received events. The new edges are checked for
   cycles by one recursive query (`recording.find_cycle`).
4. **Record** what changed as the actions would, through `registry.history.write_history`:
   a history row per creation and per update (a run updated by three events has three rows,
   each with the state that event left, its links included), stamped with the actor, the
   request id and the reason, and the audit events those rows stand for, chained in one
   append. Each received event is an audit event too, with the digest of its payload, so the
   stored payload can be checked against the tamper-evident trail.

Everything runs in the caller's transaction: a refused event leaves nothing behind. Two
requests creating the same record at once collide on a unique constraint; the loser's
transaction is rolled back and `ingest` runs the batch again, when it finds the winner's rows.
"""

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import (
    F,
    IntegerField,
    ManyToManyField,
    Model,
    OuterRef,
    Q,
    Value,
)
from django.utils import timezone

from lineage import recording
from lineage.choices import EdgeKind, RunKind, RunStatus
from lineage.models import CodeVersion, Edge, Node, ReceivedEvent, Run
from registry.access import holds_right, right_annotations
from registry.choices import ProjectRight, Split
from registry.history import RecordChange, write_history
from registry.models import Dataset, DatasetVersion, Project
from registry.prepared import PreparedQuery

STATUS_OF_EVENT = {
    "START": RunStatus.RUNNING,
    "RUNNING": RunStatus.RUNNING,
    "COMPLETE": RunStatus.COMPLETED,
    "FAIL": RunStatus.FAILED,
    "ABORT": RunStatus.ABORTED,
}
TERMINAL = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED}
RUN_MUTABLE = ("status", "started_at", "ended_at")
LINK_FIELDS = ("input_datasets", "output_datasets", "input_models")


class IngestionError(Exception):
    """An event that cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, detail, status: int = 400):
        super().__init__(detail)
        self.detail = detail
        self.status = status


def refuse(index: int, message, status: int = 400):
    """The error that refuses the whole batch because of event `index`."""
    messages = message if isinstance(message, list) else [message]
    return IngestionError({"errors": {str(index): messages}}, status=status)


@dataclass(frozen=True)
class DatasetRef:
    """An input or output data set of an event, as Stagegate records it.

    `content_sha256` is the digest of the identity of the version the event names (see
    `lineage.openlineage`). A `latest` ref (an input without a version facet) names none: its
    version is found when the batch is planned (`Batch._input_version`), and `content_sha256`
    is the identity of a first version, recorded only when there is none to read.
    """

    name: str
    description: str
    content_sha256: str
    uri: str
    row_count: int
    schema: list
    latest: bool = False


@dataclass
class ParsedEvent:
    """One valid RunEvent, read (see `lineage.openlineage.parse`)."""

    index: int
    payload: dict
    run_uuid: uuid.UUID
    event_type: str
    event_time: datetime
    namespace: str
    job_name: str
    parent: tuple[uuid.UUID, str, str] | None  # the parent's runId, namespace, job name
    code: dict | None  # repository_url, commit_sha, path, branch
    environment: dict
    inputs: list[DatasetRef]
    outputs: list[DatasetRef]
    warnings: list[str] = field(default_factory=list)  # accepted, but not all recorded

    @property
    def key(self) -> tuple:
        return (self.run_uuid, self.event_type, self.event_time)


class _Link:
    """One run-to-record link (a row of a run's many-to-many table), new or existing."""

    __slots__ = ("target", "target_id", "through_id")

    def __init__(self, target=None, target_id=None, through_id=None):
        self.target, self.target_id, self.through_id = target, target_id, through_id

    @property
    def key(self):
        return self.target_id if self.target is None else self.target.pk


@dataclass
class _RunState:
    run: Run
    new: bool
    parent: "_RunState | None" = None
    links: dict[str, list[_Link]] = field(default_factory=lambda: {f: [] for f in LINK_FIELDS})
    # What the run is linked to, by record identity (existing records by pk, new by object).
    linked: dict[str, set] = field(default_factory=lambda: {f: set() for f in LINK_FIELDS})
    # The data sets it reads a version of, and the first version number it wrote of each, by
    # data set identity: where an input without a version facet finds its version.
    read: set = field(default_factory=set)
    first_written: dict[tuple, int] = field(default_factory=dict)

    @property
    def run_uuid(self) -> uuid.UUID:
        # Every run a batch plans or loads is one an OpenLineage runId names.
        assert self.run.external_id is not None
        return self.run.external_id


@dataclass
class _Change:
    """A change planned now and recorded once every record has its id."""

    record: Model
    kind: str
    reason: str = ""
    values: dict = field(default_factory=dict)
    before: dict = field(default_factory=dict)
    links: dict[str, list[_Link]] | None = None
    links_before: dict[str, list[_Link]] | None = None
    summary: dict | None = None


def _identity(record):
    return ("pk", record.pk) if record.pk is not None else ("new", id(record))


def _validate(record, index: int, exclude: list[str]) -> None:
    try:
        record.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise refuse(index, exc.messages) from None


def _project_with_rights(key: str, user: int):
    """The project with that key, and whether `user` may view it and contribute to it."""
    return Project.objects.filter(key=key).annotate(
        **right_annotations(user, OuterRef("pk"), ProjectRight.VIEW, prefix="view"),
        **right_annotations(user, OuterRef("pk"), ProjectRight.CONTRIBUTE, prefix="contribute"),
    )


_PROJECT_WITH_RIGHTS = PreparedQuery(_project_with_rights, Project, strings=("key",))


class Batch:
    """One request's events, planned in order and written together."""

    def __init__(self, actor, events: list[ParsedEvent]):
        self.actor = actor
        self.events = events
        self.now = timezone.now()
        # An answer, or for a planned event a function giving it once the run has its id.
        self.results: list[dict | Callable[[], dict]] = []
        self.projects: dict[str, Project] = {}
        self.states: dict[uuid.UUID, _RunState] = {}
        self.new_runs: list[_RunState] = []
        self.updated_runs: dict[int, Run] = {}
        self.datasets: dict[tuple[int, str], Dataset] = {}
        self.new_datasets: list[Dataset] = []
        self.renumbered: dict[int, Dataset] = {}
        self.versions: dict[tuple[int, str, str], DatasetVersion] = {}
        self.new_versions: list[DatasetVersion] = []
        # The versions an input without a version facet may read, by (data set identity,
        # number): the latest stored, the one before a run's first write, those planned here.
        self.numbered: dict[tuple[tuple, int], DatasetVersion] = {}
        self.code_versions: dict[tuple, CodeVersion] = {}
        self.new_code_versions: list[CodeVersion] = []
        self.edges: list[tuple[Model, Model, str, int]] = []
        self.received: list[ReceivedEvent] = []
        self.changes: list[_Change] = []

    # --- 1. look up ---------------------------------------------------------------------------

    def apply(self) -> list[dict]:
        self._resolve_projects()
        fresh = self._skip_duplicates()
        self._load(fresh)
        for event in fresh:
            self._plan(event)
        self._write()
        answers = [result() if callable(result) else result for result in self.results]
        for event, answer in zip(self.events, answers, strict=True):
            if event.warnings:
                answer["warnings"] = event.warnings
        return answers

    def _skip_duplicates(self) -> list[ParsedEvent]:
        # An event is a repeat only of one received for the same project: the same key sent
        # to another namespace is refused by _plan, as any event of another project's run.
        received = {
            (*key, project_id)
            for *key, project_id in ReceivedEvent.objects.filter(
                run_uuid__in={e.run_uuid for e in self.events}
            ).values_list("run_uuid", "event_type", "event_time", "run__project_id")
        }
        fresh = []
        for event in self.events:
            answer = {"runId": str(event.run_uuid), "eventType": event.event_type}
            key = (*event.key, self.projects[event.namespace].pk)
            if key in received:
                self.results.append({**answer, "result": "duplicate"})
                continue
            received.add(key)
            fresh.append(event)
            self.results.append(answer)  # completed by _plan
        return fresh

    def _resolve_projects(self) -> None:
        """Every namespace an event names is a project the poster may view (404) and
        contribute to (403); checked for duplicates too, which answer nothing otherwise."""
        wanted = {e.namespace for e in self.events}
        wanted |= {e.parent[1] for e in self.events if e.parent is not None}
        visible, writable = {}, set()
        # One look-up per namespace (a request names one, rarely more), each compiled once.
        for key in sorted(wanted):
            project = _PROJECT_WITH_RIGHTS.first(key=key, user=self.actor.pk)
            if project is None:
                continue
            if self.actor.is_superuser or holds_right(project, "view"):
                visible[key] = project
                if self.actor.is_superuser or holds_right(project, "contribute"):
                    writable.add(key)
        for event in self.events:
            namespaces = [event.namespace] + ([event.parent[1]] if event.parent else [])
            for namespace in namespaces:
                if namespace not in visible:
                    raise refuse(
                        event.index,
                        f"namespace {namespace!r}: no project with that key (or it is not "
                        "visible to you); the job namespace must be a Stagegate project key",
                        status=404,
                    )
                if namespace not in writable:
                    raise refuse(
                        event.index,
                        f"You need the 'contribute' right on project {namespace} to post its "
                        "lineage.",
                        status=403,
                    )
        self.projects = visible

    def _load(self, events: list[ParsedEvent]) -> None:
        uuids = {e.run_uuid for e in events} | {e.parent[0] for e in events if e.parent}
        runs = Run.objects.select_for_update().filter(external_id__in=uuids).order_by("pk")
        for run in runs:
            self.states[run.external_id] = _RunState(run=run, new=False)
        self._load_links()
        dataset_names = {
            (self.projects[e.namespace].pk, ref.name)
            for e in events
            for ref in e.inputs + e.outputs
        }
        if dataset_names:
            datasets = (
                Dataset.objects.select_for_update()
                .filter(
                    project_id__in={p for p, _ in dataset_names},
                    name__in={n for _, n in dataset_names},
                )
                .order_by("pk")
            )
            by_id = {}
            projects = {p.pk: p for p in self.projects.values()}
            for dataset in datasets:
                if (dataset.project_id, dataset.name) in dataset_names:
                    dataset.project = projects[dataset.project_id]
                    self.datasets[(dataset.project_id, dataset.name)] = dataset
                    by_id[dataset.pk] = dataset
            hashes = {ref.content_sha256 for e in events for ref in e.inputs + e.outputs}
            wanted = Q(content_sha256__in=hashes)
            # The data sets whose latest version an input may be: those read without a version
            # facet by a run not reading them yet.
            read_latest = set()
            for e in events:
                state = self.states.get(e.run_uuid)
                reads = state.read if state is not None else set()
                for ref in e.inputs:
                    dataset = self.datasets.get((self.projects[e.namespace].pk, ref.name))
                    if ref.latest and dataset is not None and _identity(dataset) not in reads:
                        read_latest.add(dataset.pk)
            if read_latest:
                wanted |= Q(dataset_id__in=read_latest, version=F("dataset__last_version"))
            # The version before a run's first write of a data set it may read: numbers are
            # issued one by one under the data set's lock, so it is the one numbered just below.
            for state in self.states.values():
                for (_, dataset_id), first in state.first_written.items():
                    already_read = ("pk", dataset_id) in state.read
                    if dataset_id in read_latest and not already_read and first > 1:
                        wanted |= Q(dataset_id=dataset_id, version=first - 1)
            for version in DatasetVersion.objects.filter(dataset_id__in=by_id).filter(wanted):
                version.dataset = by_id[version.dataset_id]
                key = (version.dataset.project_id, version.dataset.name, version.content_sha256)
                self.versions[key] = version
                self.numbered[(_identity(version.dataset), version.version)] = version
        commits = {e.code["commit_sha"] for e in events if e.code}
        if commits:
            for code in CodeVersion.objects.filter(
                project_id__in={self.projects[e.namespace].pk for e in events if e.code},
                commit_sha__in=commits,
            ):
                code_key = (
                    code.project_id,
                    code.repository_url,
                    code.commit_sha,
                    code.path,
                    code.dirty,
                )
                self.code_versions[code_key] = code

    def _load_links(self) -> None:
        """The links of the existing runs (one query over the three link tables): new links
        are added only once, and each history row lists every link the run has then, as
        simple-history's rows do."""
        existing = {s.run.pk: s for s in self.states.values()}
        if not existing:
            return
        tables = []
        for name in LINK_FIELDS:
            through, source, target = _link_table(name)
            # A model version has no data set: its two columns are NULL.
            dataset, number = (
                (Value(None, output_field=IntegerField()),) * 2
                if name == "input_models"
                else (F(f"{target}__dataset_id"), F(f"{target}__version"))
            )
            tables.append(
                through._default_manager.filter(**{f"{source}_id__in": existing})
                .annotate(link=Value(name), of_dataset=dataset, number=number)
                .values_list("link", "pk", f"{source}_id", f"{target}_id", "of_dataset", "number")
            )
        rows = tables[0].union(*tables[1:], all=True)
        for name, through_id, run_id, target_id, dataset_id, number in sorted(
            rows, key=lambda row: row[1]
        ):
            state = existing[run_id]
            state.links[name].append(_Link(target_id=target_id, through_id=through_id))
            state.linked[name].add(("pk", target_id))
            if name == "input_datasets":
                state.read.add(("pk", dataset_id))
            elif name == "output_datasets":
                _wrote(state, ("pk", dataset_id), number)

    # --- 2. plan ------------------------------------------------------------------------------

    def _plan(self, event: ParsedEvent) -> None:
        project = self.projects[event.namespace]
        state = self.states.get(event.run_uuid)
        if state is not None and state.run.project_id != project.pk:
            raise _run_not_available(event, "run.runId", event.run_uuid)
        read = (self._input_version(state, project, ref, event.index) for ref in event.inputs)
        inputs = [version for version in read if version is not None]
        outputs = [self._dataset_version(project, ref, event.index) for ref in event.outputs]
        status = STATUS_OF_EVENT.get(event.event_type)
        times = {}
        if event.event_type == "START":
            times["started_at"] = event.event_time
        elif status in TERMINAL:
            times["ended_at"] = event.event_time
        reason = f"OpenLineage {event.event_type} event"
        if state is None:
            parent = self._parent(project, event)
            code = self._code_version(project, event)
            run = Run(
                project=project,
                name=event.job_name[:300],
                kind=RunKind.OTHER,
                status=status or RunStatus.RUNNING,
                external_id=event.run_uuid,
                code_version=code,
                environment=event.environment,
                created_by=self.actor,
                **times,
            )
            if parent is not None and not parent.new:
                run.parent = parent.run
            _validate(run, event.index, ["project", "parent", "code_version", "created_by"])
            state = self._new_run(run, parent)
            if code is not None:
                self._edge(code, run, EdgeKind.CODE, event.index)
            if parent is not None:
                self._edge(parent.run, run, EdgeKind.PARENT, event.index)
            self._link(state, inputs, outputs, event.index)
            self.changes.append(
                _Change(run, "+", reason, values=self._run_values(run), links=_copy(state.links))
            )
            result = "created"
        else:
            run = state.run
            before_links = _copy(state.links)
            fields: dict[str, object] = dict(times)
            # A START or RUNNING that arrives after the run ended does not reopen it.
            if status and not (status == RunStatus.RUNNING and run.status in TERMINAL):
                fields["status"] = status
            before = {}
            for name, value in fields.items():
                if getattr(run, name) != value:
                    before[name] = getattr(run, name)
                    setattr(run, name, value)
            _validate(run, event.index, ["project", "parent", "code_version", "created_by"])
            if not state.new:
                self.updated_runs[run.pk] = run
            self._link(state, inputs, outputs, event.index)
            self.changes.append(
                _Change(
                    run,
                    "~",
                    reason,
                    values=self._run_values(run),
                    before=before,
                    links=_copy(state.links),
                    links_before=before_links,
                )
            )
            result = "updated"
        received = ReceivedEvent(
            run_uuid=event.run_uuid,
            event_type=event.event_type,
            event_time=event.event_time,
            run=run,
            payload=event.payload,
            received_by=self.actor,
        )
        self.received.append(received)
        self.changes.append(_Change(received, "+", reason, summary={"event": event}))
        answer = self.results[event.index]
        assert isinstance(answer, dict)  # _skip_duplicates left this event's answer
        answer["result"] = result
        self.results[event.index] = lambda: {**answer, "run": run.pk}

    def _run_values(self, run: Run) -> dict:
        return {name: getattr(run, name) for name in RUN_MUTABLE} | {"updated_at": self.now}

    def _new_run(self, run: Run, parent: _RunState | None) -> _RunState:
        state = _RunState(run=run, new=True, parent=parent)
        self.states[state.run_uuid] = state
        self.new_runs.append(state)
        return state

    def _parent(self, project: Project, event: ParsedEvent) -> _RunState | None:
        if event.parent is None:
            return None
        parent_uuid, namespace, job_name = event.parent
        if self.projects[namespace].pk != project.pk:
            raise refuse(
                event.index, "run.facets.parent: the parent job must be in the same namespace"
            )
        parent = self.states.get(parent_uuid)
        if parent is not None:
            if parent.run.project_id != project.pk:
                raise _run_not_available(event, "run.facets.parent.run.runId", parent_uuid)
            return parent
        stub = Run(
            project=project,
            name=job_name[:300],
            kind=RunKind.OTHER,
            status=RunStatus.RUNNING,
            external_id=parent_uuid,
            created_by=self.actor,
        )
        _validate(stub, event.index, ["project", "parent", "code_version", "created_by"])
        state = self._new_run(stub, None)
        self.changes.append(
            _Change(
                stub,
                "+",
                "named as the parent of an OpenLineage run",
                values=self._run_values(stub),
                links=_copy(state.links),
            )
        )
        return state

    def _code_version(self, project: Project, event: ParsedEvent) -> CodeVersion | None:
        if event.code is None:
            return None
        code = event.code
        key = (project.pk, code["repository_url"], code["commit_sha"], code["path"], False)
        existing = self.code_versions.get(key)
        if existing is not None:
            return existing
        created = CodeVersion(project=project, dirty=False, **code)
        _validate(created, event.index, ["project"])
        self.code_versions[key] = created
        self.new_code_versions.append(created)
        self.changes.append(_Change(created, "+", "from an OpenLineage sourceCodeLocation facet"))
        return created

    def _input_version(
        self, state: _RunState | None, project: Project, ref: DatasetRef, index: int
    ) -> DatasetVersion | None:
        """The version an input is: the one its version facet names; else the version of that
        data set the run already reads (None: nothing more to link); else the latest version,
        or for a run that wrote the data set already, the version before its first write (what
        it read then: never one of its own versions or their descendants); else a first one."""
        if not ref.latest:
            return self._dataset_version(project, ref, index)
        dataset = self._dataset(project, ref, index)
        key = _identity(dataset)
        if state is not None and key in state.read:
            return None
        first_written = state.first_written.get(key) if state is not None else None
        # A run that wrote the data set read it before: the version its first write followed.
        number = dataset.last_version if first_written is None else first_written - 1
        version = self.numbered.get((key, number))
        if version is not None:
            return version
        return self._dataset_version(project, ref, index)  # its first version, as first seen

    def _dataset(self, project: Project, ref: DatasetRef, index: int) -> Dataset:
        dataset = self.datasets.get((project.pk, ref.name))
        if dataset is None:
            dataset = Dataset(project=project, name=ref.name, description=ref.description)
            _validate(dataset, index, ["project"])
            self.datasets[(project.pk, ref.name)] = dataset
            self.new_datasets.append(dataset)
            self.changes.append(
                _Change(dataset, "+", "dataset registered", values={"last_version": 0})
            )
        return dataset

    def _dataset_version(self, project: Project, ref: DatasetRef, index: int) -> DatasetVersion:
        """The version a ref names (by its content_sha256), planned if it is new."""
        dataset = self._dataset(project, ref, index)
        key = (project.pk, ref.name, ref.content_sha256)
        version = self.versions.get(key)
        if version is not None:
            return version
        number = dataset.last_version + 1
        version = DatasetVersion(
            dataset=dataset,
            version=number,
            content_sha256=ref.content_sha256,
            uri=ref.uri,
            row_count=ref.row_count,
            schema=ref.schema,
            # OpenLineage does not say what a data set is for; pipelines feed training.
            split=Split.TRAIN,
            created_by=self.actor,
        )
        _validate(version, index, ["dataset", "created_by"])
        dataset.last_version = number
        if dataset.pk is not None:
            self.renumbered[dataset.pk] = dataset
        self.versions[key] = version
        self.numbered[(_identity(dataset), number)] = version
        self.new_versions.append(version)
        self.changes.append(_Change(version, "+", "from an OpenLineage event"))
        self.changes.append(
            _Change(
                dataset,
                "~",
                values={"last_version": number, "updated_at": self.now},
                before={"last_version": number - 1},
            )
        )
        return version

    def _link(self, state: _RunState, inputs, outputs, index: int) -> None:
        for name, versions in (("input_datasets", inputs), ("output_datasets", outputs)):
            for version in versions:
                identity = _identity(version)
                if identity in state.linked[name]:
                    continue
                state.linked[name].add(identity)
                state.links[name].append(_Link(target=version))
                if name == "input_datasets":
                    state.read.add(_identity(version.dataset))
                    self._edge(version, state.run, EdgeKind.USED, index)
                else:
                    _wrote(state, _identity(version.dataset), version.version)
                    self._edge(state.run, version, EdgeKind.GENERATED, index)

    def _edge(self, cause, effect, kind: str, index: int) -> None:
        if cause is effect:
            raise refuse(index, f"lineage would contain a cycle: {cause} would be its own cause")
        self.edges.append((cause, effect, kind, index))

    # --- 3. write -----------------------------------------------------------------------------

    def _write(self) -> None:
        # Rows another request may insert at the same moment go in a fixed order (by their
        # unique keys), so that two such requests wait for each other instead of deadlocking.
        self.new_datasets.sort(key=lambda d: (d.project.pk, d.name))
        self.new_code_versions.sort(key=lambda c: (c.project.pk, c.repository_url, c.commit_sha))
        self.new_runs.sort(key=lambda s: s.run_uuid)
        self.received.sort(key=lambda r: (r.run_uuid, r.event_type, r.event_time))
        Dataset.objects.bulk_create(self.new_datasets)
        DatasetVersion.objects.bulk_create(self.new_versions)
        if self.renumbered:
            for dataset in self.renumbered.values():
                dataset.updated_at = self.now
            Dataset.objects.bulk_update(
                list(self.renumbered.values()), ["last_version", "updated_at"]
            )
        CodeVersion.objects.bulk_create(self.new_code_versions)
        Run.objects.bulk_create([s.run for s in self.new_runs])
        # A parent created in this batch had no id when its children were inserted.
        adopted = [s.run for s in self.new_runs if s.parent is not None and s.parent.new]
        for state in self.new_runs:
            if state.parent is not None and state.parent.new:
                state.run.parent = state.parent.run
        if adopted:
            Run.objects.bulk_update(adopted, ["parent"])
        if self.updated_runs:
            for run in self.updated_runs.values():
                run.updated_at = self.now
            Run.objects.bulk_update(list(self.updated_runs.values()), [*RUN_MUTABLE, "updated_at"])
        self._write_graph()
        self._write_links()
        ReceivedEvent.objects.bulk_create(self.received)
        write_history([self._record_change(c) for c in self.changes], actor=self.actor)

    def _write_graph(self) -> None:
        records: list[Run | DatasetVersion | CodeVersion] = [
            *(s.run for s in self.new_runs),
            *self.new_versions,
            *self.new_code_versions,
        ]
        nodes = {
            (recording.node_kind(r), r.pk): recording.new_node(r, project=r.project)
            for r in records
        }
        Node.objects.bulk_create(list(nodes.values()))
        created = {node.pk for node in nodes.values()}
        wanted = {
            (recording.node_kind(r), r.pk)
            for cause, effect, _, _ in self.edges
            for r in (cause, effect)
        }
        missing = wanted - set(nodes)
        if missing:
            query = Q()
            for kind in {k for k, _ in missing}:
                query |= Q(kind=kind, object_id__in=[pk for k, pk in missing if k == kind])
            for node in Node.objects.filter(query):
                nodes[(node.kind, node.object_id)] = node
        planned: dict[tuple[int, int, str], tuple[Node, Node, int, Model, Model]] = {}
        for cause, effect, kind, index in self.edges:
            src = nodes[(recording.node_kind(cause), cause.pk)]
            dst = nodes[(recording.node_kind(effect), effect.pk)]
            planned.setdefault((src.pk, dst.pk, kind), (src, dst, index, cause, effect))
        # Only an edge between two nodes that existed before may exist already.
        between_old = [k for k in planned if k[0] not in created and k[1] not in created]
        if between_old:
            present = Edge.objects.filter(
                src_id__in={k[0] for k in between_old}, dst_id__in={k[1] for k in between_old}
            ).values_list("src_id", "dst_id", "kind")
            for key in present:
                planned.pop(key, None)
        if not planned:
            return
        Edge.objects.bulk_create(
            [
                Edge(
                    src=src,
                    dst=dst,
                    kind=kind,
                    src_project_id=src.project_id,
                    dst_project_id=dst.project_id,
                )
                for (_, _, kind), (src, dst, _, _, _) in sorted(planned.items())
            ]
        )
        cycle = recording.find_cycle([(key[0], key[1]) for key in planned], created)
        if cycle is not None:
            culprits = [value for key, value in planned.items() if (key[0], key[1]) in cycle]
            _, _, index, cause, effect = max(culprits, key=lambda c: c[2])
            raise refuse(
                index,
                f"lineage would contain a cycle: {cause} is already downstream of {effect}",
            )

    def _write_links(self) -> None:
        for name in ("input_datasets", "output_datasets"):
            through, source, target = _link_table(name)
            new = [
                (state.run, link)
                for state in self.states.values()
                for link in state.links[name]
                if link.through_id is None
            ]
            rows = [
                through(**{f"{source}_id": run.pk, f"{target}_id": link.key}) for run, link in new
            ]
            through._default_manager.bulk_create(rows)
            for (_, link), row in zip(new, rows, strict=True):
                link.through_id = row.pk

    # --- 4. record ----------------------------------------------------------------------------

    def _record_change(self, change: _Change) -> RecordChange:
        summary = None
        if change.summary is not None:
            event = change.summary["event"]
            received = change.record
            assert isinstance(received, ReceivedEvent)
            summary = {
                "run_uuid": str(received.run_uuid),
                "event_type": received.event_type,
                "event_time": received.event_time,
                "run_id": received.run_id,
                "payload_sha256": payload_digest(event.payload),
            }
        return RecordChange(
            record=change.record,
            kind=change.kind,
            reason=change.reason,
            values=change.values,
            before=change.before,
            m2m=_pairs(change.links),
            m2m_before=_keys(change.links_before),
            summary=summary,
        )


def _wrote(state: _RunState, dataset: tuple, number: int) -> None:
    first = state.first_written.get(dataset)
    state.first_written[dataset] = number if first is None else min(first, number)


def _run_not_available(event: ParsedEvent, where: str, run_uuid: uuid.UUID) -> IngestionError:
    """The refusal of a runId that names a run of another project: the same answer whether or
    not the poster may see that project, naming neither it nor the run's job. (That the id is
    taken cannot be hidden while refusing it; but a runId is a random UUID, so this confirms
    only an id the poster already holds.)"""
    return refuse(
        event.index,
        f"{where}: {run_uuid} cannot be used in namespace {event.namespace!r}; "
        "each run needs its own runId",
    )


def _link_table(name: str) -> tuple[type[Model], str, str]:
    """The table behind one of a run's link fields, and its run and target columns."""
    m2m = Run._meta.get_field(name)
    assert isinstance(m2m, ManyToManyField) and m2m.remote_field.through is not None
    return m2m.remote_field.through, m2m.m2m_field_name(), m2m.m2m_reverse_field_name()


def _copy(links: dict[str, list[_Link]]) -> dict[str, list[_Link]]:
    return {name: list(items) for name, items in links.items()}


def _pairs(links) -> dict[str, list[tuple[int, int]]]:
    if links is None:
        return {}
    return {name: [(link.through_id, link.key) for link in items] for name, items in links.items()}


def _keys(links) -> dict[str, list[int]]:
    if links is None:
        return {}
    return {name: [link.key for link in items] for name, items in links.items()}


def payload_digest(payload: dict) -> str:
    """SHA-256 of the payload's canonical JSON (sorted keys, no spaces, UTF-8), as the audit
    trail serializes what it hashes: what a received event's audit event vouches for."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
