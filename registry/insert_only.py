"""Records that are inserted once and never changed or deleted.

Electronic signatures (governance) and the provenance graph's nodes and edges (lineage) are
such records. Their querysets refuse the bulk writes that would change or delete rows
(`update`, `bulk_update`, an upserting `bulk_create`, `delete`), their instances refuse a second
save and a delete, and `Meta.base_manager_name = "objects"` gives related lookups the same
guarded queryset. Database triggers refuse what goes around the ORM
(registry/db_triggers.py `refusing_changes`); these checks give the clearer message first.
"""

from django.db import models


class InsertOnlyWrites:
    """A queryset mixin: rows are inserted, never updated or deleted (the model's
    `refused(what)` is raised). Mixed into another queryset class before it."""

    model: type[models.Model]

    def update(self, **kwargs):
        raise self.model.refused("edited")

    def bulk_update(self, objs, fields, batch_size=None):
        raise self.model.refused("edited")

    def bulk_create(self, objs, *args, update_conflicts=False, **kwargs):
        # Inserting new rows is fine; an upsert would rewrite the row it conflicts with.
        if update_conflicts:
            raise self.model.refused("edited")
        return super().bulk_create(objs, *args, **kwargs)

    def delete(self):
        raise self.model.refused("deleted")

    update.alters_data = True  # type: ignore[attr-defined]
    bulk_update.alters_data = True  # type: ignore[attr-defined]
    bulk_create.alters_data = True  # type: ignore[attr-defined]
    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]


class InsertOnlyQuerySet(InsertOnlyWrites, models.QuerySet):
    """A plain queryset of insert-only rows."""


class InsertOnlyModel(models.Model):
    """An instance saved once (always an INSERT), never saved again or deleted."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise self.refused("edited")
        # Only ever an INSERT: given the id of a stored row, Django would try an UPDATE first.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise self.refused("deleted")

    @classmethod
    def refused(cls, what: str) -> Exception:
        """The error a change of this model's rows raises ('edited' or 'deleted')."""
        raise NotImplementedError
