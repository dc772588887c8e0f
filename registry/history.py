"""What every historical row carries besides django-simple-history's own fields.

The acting user's printed name is copied as text so the record survives the account, and the
request id ties together every row written by one request (NetBox's change logging).
"""

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import models
from django.dispatch import Signal, receiver
from django.utils import timezone
from simple_history.manager import HistoryManager
from simple_history.signals import pre_create_historical_record

from config.request_context import current, current_user


class OnceBuiltHistoryManager(HistoryManager):
    """simple-history's manager, whose class is built once: the `history` descriptor builds
    its manager class anew on every access (`from_queryset`), and every history row written
    goes through it; that was a tenth of a transition's time."""

    @classmethod
    @functools.cache
    def from_queryset(cls, queryset_class, class_name=None):
        return super().from_queryset(queryset_class, class_name)


class TracedHistory(models.Model):
    """Abstract base added to every historical model."""

    history_actor_name = models.CharField(max_length=300, blank=True, default="")
    history_request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        abstract = True


def tag_change(instance: Any, *, actor, reason: str) -> None:
    """Who makes the next save of `instance` and why: django-simple-history writes both on
    the history row, and the audit trail copies them."""
    instance._history_user = actor
    instance._change_reason = reason


def printed_name(user) -> str:
    """The name shown on records and signatures: full name, else the username."""
    if user is None:
        return "system"
    return (user.get_full_name() or user.get_username()).strip()


@receiver(pre_create_historical_record)
def _stamp_history(sender, instance, history_instance, **kwargs):
    if not isinstance(history_instance, TracedHistory):
        return
    user = history_instance.history_user or current_user()
    if history_instance.history_user_id is None and user is not None:
        history_instance.history_user = user
    history_instance.history_actor_name = printed_name(user)
    history_instance.history_request_id = current().request_id
    if not history_instance.history_change_reason and current().reason:
        history_instance.history_change_reason = current().reason


@dataclass
class RecordChange:
    """One creation ("+") or update ("~") of a record, written in bulk by `write_history`.

    `values` overrides the record's field values (attname → value) for this change's history
    row: a record changed several times by one action gets one row per change, each as it
    was then. For an update, `before` holds the fields it changed, with their earlier values.
    `m2m` gives, for each many-to-many field the history tracks, the (through row id, target
    id) pairs linked after the change; `m2m_before` the target ids before it. `summary`, when
    set, is what the audit event records instead of the record's fields (a raw payload is
    recorded by its digest).
    """

    record: models.Model
    kind: str
    reason: str = ""
    values: dict = field(default_factory=dict)
    before: dict = field(default_factory=dict)
    m2m: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    m2m_before: dict[str, list[int]] = field(default_factory=dict)
    summary: dict | None = None


# Sent by `write_history` with `changes` (RecordChange, in order) and `actor`: what a history row
# written one at a time announces with simple-history's post_create_historical_record.
records_written = Signal()


def write_history(changes: list[RecordChange], *, actor=None) -> None:
    """The history rows of many changes in a few inserts (one per model and tracked field).

    For actions that write many records at once (OpenLineage batches). Each row carries what
    `_stamp_history` gives a row written one at a time: the actor, their printed name, the
    request id, the reason. Dates increase by a microsecond per change, so that a record's rows
    keep their order (simple-history orders and compares them by date). Records whose model
    keeps no history get no row. Then `records_written` is sent: the audit trail appends one
    event per change, as it does for each history row written one at a time.
    """
    if not changes:
        return
    user = actor if actor is not None else current_user()
    context = current()
    start = timezone.now()
    rows: dict[type[models.Model], list[tuple[RecordChange, models.Model]]] = {}
    for index, change in enumerate(changes):
        history_model = _history_model(type(change.record))
        if history_model is None:
            continue
        values = {
            f.attname: getattr(change.record, f.attname) for f in history_model.tracked_fields
        }
        values.update(change.values)
        row = history_model(
            history_date=start + timedelta(microseconds=index),
            history_user=user,
            history_change_reason=change.reason or context.reason,
            history_type=change.kind,
            history_actor_name=printed_name(user),
            history_request_id=context.request_id,
            **values,
        )
        rows.setdefault(history_model, []).append((change, row))
    for history_model, pairs in rows.items():
        history_model._default_manager.bulk_create([row for _, row in pairs])
        for m2m_field in getattr(history_model, "_history_m2m_fields", ()):
            _write_m2m_history(history_model, m2m_field, pairs)
    records_written.send(sender=write_history, changes=changes, actor=user)


@functools.cache
def _history_model(model):
    # Cached: simple-history builds a new manager class on every access to `Model.history`.
    manager = getattr(model._meta, "simple_history_manager_attribute", None)
    return getattr(model, manager).model if manager else None


def _write_m2m_history(history_model, m2m_field, pairs) -> None:
    wanted = f"{history_model._meta.model_name}_{m2m_field.name}"
    m2m_model = next(
        rel.related_model
        for rel in history_model._meta.related_objects
        if rel.related_model._meta.model_name == wanted
    )
    source, target = m2m_field.m2m_field_name(), m2m_field.m2m_reverse_field_name()
    m2m_model.objects.bulk_create(
        [
            m2m_model(
                history=row,
                id=through_id,
                **{f"{source}_id": change.record.pk, f"{target}_id": target_id},
            )
            for change, row in pairs
            for through_id, target_id in change.m2m.get(m2m_field.name, ())
        ]
    )
