"""The append-only, hash-chained audit trail (DESIGN rule 1; 21 CFR 11.10(e)).

Each event stores its canonical JSON payload and `hash = SHA-256(prev_hash + payload)`, so
changing, removing, inserting or reordering any event breaks the chain at that point.
Database triggers refuse UPDATE, DELETE and TRUNCATE on the table (governance/audit_triggers.py).
"""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One governance action or record change, never altered once written."""

    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=300)
    request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    # The project the object belongs to, for scoping who may read the event.
    project_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # The canonical JSON of everything above plus before/after and reason: what is hashed.
    payload = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["sequence"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The last event's sequence and hash: a one-row table locked to serialize appends."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.sequence}"
