"""Exported PDF documents: what was exported, for whom, and the hash of the file kept.

A stored document is evidence handed to a regulator, so it is never overwritten: its storage
name carries the export id and the file's SHA-256, and a finished export row never changes.
"""

from django.conf import settings
from django.db import models

from governance.choices import ExportKind, ExportStatus
from registry.access import ProjectScopedQuerySet


class ExportImmutable(Exception):
    """A finished export (or its file) was about to be changed or deleted."""


class DocumentExport(models.Model):
    """One PDF document generated from the registry, with the record it was made from."""

    PROJECT_PATH = "project"

    kind = models.CharField(max_length=16, choices=ExportKind.choices)
    # What the document is about: {"model_version": id}, {"project": key, "since", "until"}
    # or {"fairness_audit": id}.
    subject = models.JSONField()
    project = models.ForeignKey(
        "registry.Project", on_delete=models.PROTECT, related_name="document_exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="document_exports"
    )
    # The requester's printed name when they asked: it is printed on every page.
    requested_by_name = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    file = models.FileField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    # SHA-256 of the canonical JSON record attached inside the PDF.
    record_sha256 = models.CharField(max_length=64, blank=True)
    # The audit chain head printed on the document (anchoring the chain outside the database).
    chain_head_sequence = models.BigIntegerField(null=True, blank=True)
    chain_head_hash = models.CharField(max_length=64, blank=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.document_id} ({self.get_kind_display()}, {self.status})"

    def save(self, *args, **kwargs):
        # A delivered document and its hash are evidence: once done, the row never changes.
        if self.pk is not None and not self._state.adding:
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True)
            if stored.first() == ExportStatus.DONE:
                raise ExportImmutable(f"{self.document_id} is finished and cannot change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_done:
            raise ExportImmutable(f"{self.document_id} is finished and cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def document_id(self) -> str:
        """The identifier printed on every page of the document."""
        return f"SG-EXP-{self.pk:06d}" if self.pk else "SG-EXP-(unsaved)"

    @property
    def is_done(self) -> bool:
        return self.status == ExportStatus.DONE
