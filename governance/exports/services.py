"""Export actions: request a document, generate it (the task's work), verify a stored file.

A request creates a queued `DocumentExport` and hands its id to a Celery task. Generating
is idempotent: a finished export is never generated again, and a stored file is never
replaced; the file's name carries the export id and its SHA-256. Each finished export writes
an audit event with the file's hash, and becomes a node of the lineage graph downstream of the
record it documents, in the same transaction.
"""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from governance import audit_chain
from governance.choices import AuditAction, ExportKind, ExportStatus
from governance.errors import Conflict, NotAllowed
from governance.exports import documents, pdf
from governance.exports.subjects import Subject
from governance.models import DocumentExport
from lineage import recording
from lineage.choices import EdgeKind, NodeKind
from registry.access import has_project_right
from registry.choices import ProjectRight
from registry.history import printed_name
from registry.models import ModelVersion

logger = logging.getLogger(__name__)

recording.register_node_kind("governance.documentexport", NodeKind.EXPORT)

ADD_PERMISSION = "governance.add_documentexport"


def storage_name(export: DocumentExport, sha256: str) -> str:
    """Where a finished document is kept: never reused, since it names the id and hash."""
    return f"exports/{export.project.key}/{export.document_id}-{sha256}.pdf"


def request_export(subject: Subject, *, actor) -> DocumentExport:
    """Queue a new document about `subject` (already resolved among what `actor` may see)."""
    if not actor.has_perm(ADD_PERMISSION):
        raise NotAllowed("your role does not allow you to export documents")
    if not has_project_right(actor, subject.project, ProjectRight.EXPORT):
        raise NotAllowed(
            f"you need the 'export' right on project {subject.project.key} to export documents"
        )
    with transaction.atomic():
        export = DocumentExport.objects.create(
            kind=subject.kind,
            subject=subject.value,
            project=subject.project,
            requested_by=actor,
            requested_by_name=printed_name(actor),
        )
        transaction.on_commit(lambda: _enqueue(export, actor))
    return export


def _enqueue(export: DocumentExport, actor) -> None:
    from config.request_context import current
    from governance.exports.tasks import render_export

    render_export.delay(export.pk, actor_id=actor.pk, request_id=current().request_id)


def _set_progress(export_id: int, progress: int, **fields) -> None:
    # A plain UPDATE, committed at once, so a status request sees the task advance.
    DocumentExport.objects.filter(pk=export_id).exclude(status=ExportStatus.DONE).update(
        progress=progress, **fields
    )


def build(export: DocumentExport, *, generated_at=None) -> tuple[dict, str]:
    """The record and the HTML of an export's document (no file is written)."""
    kind = documents.KINDS[export.kind]
    meta = documents.DocumentMeta(
        document_id=export.document_id,
        kind=export.kind,
        generated_at=generated_at or timezone.now(),
        generated_by=export.requested_by_name,
    )
    record = kind.record(export.subject, meta, head=documents.chain_head())
    return record, render_record(kind.template, record, kind.context(record))


def render_record(template: str, record: dict, context: dict) -> str:
    """A record's HTML, with the running header and footer of every page."""
    doc = record["document"]
    return pdf.render_html(
        template,
        {
            **context,
            "record": record,
            "record_sha256": hashlib.sha256(pdf.record_bytes(record)).hexdigest(),
            "header": f"{doc['id']} · {doc['title']}",
            "footer": f"Generated at {_utc_text(doc['generated_at'])} by {doc['generated_by']}",
        },
    )


def _utc_text(iso: str) -> str:
    from governance.exports.pdf_filters import utc

    return utc(iso)


def generate_export(export_id: int, progress: Callable[[int], None] | None = None) -> str:
    """Render and store one export's document; does nothing if it is already done.
    Returns the export's final status (a failure is recorded on the row, not raised).

    Run twice (a retried or duplicated task) it never writes a second file: the row is
    locked when the result is stored, and a run that finds it done discards its render.
    """
    with transaction.atomic():
        export = DocumentExport.objects.select_for_update().get(pk=export_id)
        if export.is_done:
            return export.status
        DocumentExport.objects.filter(pk=export_id).update(
            status=ExportStatus.RUNNING, progress=5, started_at=timezone.now(), error=""
        )
    report = progress or (lambda value: _set_progress(export_id, value))
    try:
        export = DocumentExport.objects.select_related("project").get(pk=export_id)
        record, html = build(export)
        report(40)
        rendered = pdf.write_pdf(
            html,
            record,
            generated_at=datetime.fromisoformat(record["document"]["generated_at"]),
            title=record["document"]["title"],
        )
        report(85)
        _store(export_id, record, rendered)
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        _set_progress(
            export_id, 0, status=ExportStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    return DocumentExport.objects.values_list("status", flat=True).get(pk=export_id)


def _store(export_id: int, record: dict, rendered: pdf.RenderedPdf) -> None:
    sha256 = hashlib.sha256(rendered.data).hexdigest()
    with transaction.atomic():
        export = (
            DocumentExport.objects.select_for_update().select_related("project").get(pk=export_id)
        )
        if export.is_done:
            return
        name = storage_name(export, sha256)
        if default_storage.exists(name):
            raise Conflict(f"{name} already exists; a stored document is never overwritten")
        saved = default_storage.save(name, ContentFile(rendered.data))
        try:
            if saved != name:
                raise Conflict(f"{name} appeared while saving; a document is never overwritten")
            head = record["document"]["audit_chain_head"]
            export.file.name = saved
            export.sha256 = sha256
            export.size = len(rendered.data)
            export.pages = rendered.pages
            export.record_sha256 = hashlib.sha256(pdf.record_bytes(record)).hexdigest()
            export.chain_head_sequence = head["sequence"]
            export.chain_head_hash = head["hash"]
            export.status, export.progress = ExportStatus.DONE, 100
            export.completed_at = timezone.now()
            export.save()
            _record_lineage(export)
            audit_chain.record(
                AuditAction.EXPORT_CREATED,
                target=export,
                actor=export.requested_by,
                after={
                    "document_id": export.document_id,
                    "kind": export.kind,
                    "subject": export.subject,
                    "file": saved,
                    "sha256": sha256,
                    "size": export.size,
                    "pages": export.pages,
                    "record_sha256": export.record_sha256,
                    "chain_head": head,
                },
                reason=f"{export.get_kind_display()} exported",
            )
        except BaseException:
            # Nothing half-written: the row rolls back, so the file goes too.
            default_storage.delete(saved)
            raise


def _record_lineage(export: DocumentExport) -> None:
    """The finished document's lineage node, derived from the record it documents: a dossier
    from its model version, a fairness report from its fairness audit. (An audit-trail report
    documents a project's trail, which is no node of the graph: it gets its node alone.)"""
    label = f"{export.document_id} {export.get_kind_display()}"
    recording.add_node(export, project=export.project, label=label)
    documented = _documented_record(export)
    if documented is not None:
        recording.link(documented, export, EdgeKind.DERIVED)


def _documented_record(export: DocumentExport):
    if export.kind == ExportKind.DOSSIER:
        return ModelVersion.objects.get(pk=export.subject["model_version"])
    if export.kind == ExportKind.FAIRNESS:
        audit_model = documents.fairness_audit_model()
        assert audit_model is not None  # a fairness report is only accepted when it exists
        return audit_model.objects.get(pk=export.subject["fairness_audit"])
    return None


@dataclass(frozen=True)
class FileCheck:
    """Whether a stored document still has the hash recorded when it was made."""

    export: int
    document_id: str
    matches: bool
    sha256_recorded: str
    sha256_actual: str | None
    size_recorded: int | None
    size_actual: int | None
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def verify_export(export: DocumentExport) -> FileCheck:
    """Re-hash the stored file and compare it with the export's recorded SHA-256."""
    if not export.is_done:
        raise Conflict(
            f"{export.document_id} is {export.status}; only a finished export has a file"
        )
    base: dict[str, Any] = {
        "export": export.pk,
        "document_id": export.document_id,
        "sha256_recorded": export.sha256,
        "size_recorded": export.size,
    }
    if not export.file.name or not default_storage.exists(export.file.name):
        return FileCheck(
            **base,
            matches=False,
            sha256_actual=None,
            size_actual=None,
            detail="the stored file is missing",
        )
    digest, size = hashlib.sha256(), 0
    with default_storage.open(export.file.name, "rb") as stored:
        for chunk in iter(lambda: stored.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    actual = digest.hexdigest()
    matches = actual == export.sha256 and size == export.size
    detail = (
        "the stored file matches its recorded SHA-256"
        if matches
        else "the stored file does NOT match its recorded SHA-256: it was altered or replaced"
    )
    return FileCheck(**base, matches=matches, sha256_actual=actual, size_actual=size, detail=detail)
