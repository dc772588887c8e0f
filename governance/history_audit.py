"""Every history row of a governed record also becomes an audit event (DESIGN rule 1).

django-simple-history writes who, when and why for each create/update/delete; this hook copies
that change — with the fields before and after — into the hash-chained audit trail.
"""

from django.db.models.fields.files import FieldFile
from django.dispatch import receiver
from simple_history.signals import post_create_historical_record

from governance import audit_chain
from governance.choices import AuditAction
from registry.history import records_written

GOVERNED_APPS = {"registry", "lineage", "governance", "auth"}
_ACTIONS = {
    "+": AuditAction.RECORD_CREATED,
    "~": AuditAction.RECORD_UPDATED,
    "-": AuditAction.RECORD_DELETED,
}
_SKIP = {"updated_at", "created_at", "password", "last_login"}


def _values(instance) -> dict:
    values = {}
    for f in instance._meta.concrete_fields:
        if f.attname in _SKIP:
            continue
        value = f.value_from_object(instance)
        values[f.attname] = value.name if isinstance(value, FieldFile) else value
    return values


def _copied(value):
    """A copy of a field value deep enough for JSON content (dicts and lists, which a caller
    may change in place); other values are immutable and shared."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


def remember_values(instance) -> None:
    """Snapshot a record just read under its row lock, so that the audit event of its next
    save diffs against the snapshot instead of reading the previous history row. Only for a
    record locked until the end of the transaction: nothing else can change it meanwhile."""
    instance._history_previous = _copied(_values(instance))


@receiver(post_create_historical_record)
def audit_history_row(sender, instance, history_instance, **kwargs):
    if instance._meta.app_label not in GOVERNED_APPS:
        return
    kind = history_instance.history_type
    after = _values(instance) if kind != "-" else {}
    before = {}
    if kind == "~":
        # The values the record had: those a caller holding its row lock snapshotted (see
        # remember_values), else the previous history row.
        old = getattr(instance, "_history_previous", None)
        if old is None:
            previous = history_instance.prev_record
            old = _values(previous.instance) if previous is not None else None
        if old is not None:
            changed = {k for k in after if old.get(k) != after.get(k)}
            before = {k: old.get(k) for k in changed}
            after_all, after = after, {k: after[k] for k in changed}
            if hasattr(instance, "_history_previous"):
                instance._history_previous = _copied(after_all)
    elif kind == "-":
        before = _values(instance)
    audit_chain.record(
        _ACTIONS[kind],
        target=instance,
        actor=history_instance.history_user,
        before=before,
        after=after,
        reason=history_instance.history_change_reason or "",
    )


@receiver(records_written, dispatch_uid="audit_records_written")
def audit_records_written(sender, changes, actor, **kwargs):
    """The events of history rows written in bulk (registry.history.write_history), appended
    together: the same events as `audit_history_row` appends for rows written one at a time,
    and, for updates, the links a many-to-many change added (one at a time, a link change is
    an update with no field changed)."""
    entries = []
    for change in changes:
        instance = change.record
        if instance._meta.app_label not in GOVERNED_APPS:
            continue
        if change.summary is not None:
            before, after = {}, dict(change.summary)
        elif change.kind == "+":
            values = {**_values(instance), **change.values}
            before = {}
            after = {k: v for k, v in values.items() if k not in _SKIP}
            after.update({name: sorted(t for _, t in links) for name, links in change.m2m.items()})
        else:
            values = {**_values(instance), **change.values}
            before = {k: v for k, v in change.before.items() if k not in _SKIP}
            after = {k: values.get(k) for k in before}
            for name, earlier in change.m2m_before.items():
                now = sorted(t for _, t in change.m2m.get(name, ()))
                if now != sorted(earlier):
                    before[name], after[name] = sorted(earlier), now
        entries.append(
            audit_chain.Entry(
                action=_ACTIONS[change.kind],
                object_type=instance._meta.label_lower,
                object_id=str(instance.pk),
                project_id=audit_chain.project_id_of(instance),
                before=before,
                after=after,
                reason=change.reason,
            )
        )
    audit_chain.record_many(entries, actor=actor)
