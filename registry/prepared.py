"""Querysets compiled once per process: the hot path's reads, without compiling their SQL
again on every call.

Django turns a queryset into SQL each time it runs it. For a read with joins and annotations
that costs 0.5–3 ms of Python, more than the database takes to answer; on the transition path
(issue 4), which runs the same few reads with other ids, it was a third of the time. A
`PreparedQuery` builds its queryset once per database with stand-in values, keeps the SQL and
what Django needs to turn rows into instances (the select list, the related-object
populators, the value converters), and then runs that SQL with the real values. The queryset
stays the one description of the read; only its compilation is reused. (On PostgreSQL the
same text also lets the server reuse its plan: see DB_PREPARE_THRESHOLD in the settings.)

Only model-instance querysets whose values are integers (ids), or strings named in `strings`
(a key), used as plain parameters (equality filters, not slices, patterns or values computed
from them) can be prepared. Compiling
builds the queryset twice with different stand-in values and checks that the SQL text is the
same, that the parameters differ only where a value was passed as it is, and that every value
reached them; it refuses the queryset otherwise.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: dict  # value name -> the positions of its parameter in `params`
    model: type[Model]
    init_list: list
    cols: tuple[int, int]
    populators: list
    annotations: dict
    converters: list
    locks: bool


# Stand-in values: the queryset is compiled twice, with two sets of values, and a parameter
# is a value's slot where the two compilations differ. They fit every integer column (a
# smallint's too): Django compiles a value out of a column's range as a condition that
# matches nothing, without a parameter (an int4 primary key, e.g. auth_user's, on PostgreSQL).
_STAND_INS = (20011, 20013)


class PreparedQuery(Generic[M]):
    """`build(**values)` returns the queryset; calling the PreparedQuery with the same keyword
    values returns its instances (a list), like `list(build(**values))`."""

    def __init__(self, build: Callable[..., QuerySet], model: type[M], strings: tuple = ()):
        self.build = build
        self.model = model
        self.strings = frozenset(strings)  # the values that are strings (the others: ints)
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def get(self, **values) -> M:
        """The one instance, or the model's DoesNotExist (as `QuerySet.get`)."""
        rows = self(**values)
        model: Any = self.model  # every model class has these two exception classes
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model._meta.object_name}"
            )
        return rows[0]

    def first(self, **values) -> M | None:
        rows = self(**values)
        return rows[0] if rows else None

    def __call__(self, **values) -> list[M]:
        alias = router.db_for_read(self.model)
        compiled = self._compiled.get(alias) or self._compile(alias, sorted(values))
        params = list(compiled.params)
        for name, positions in compiled.slots.items():
            value = values[name]
            if type(value) is not (str if name in self.strings else int):
                # The SQL was compiled for one type: another could compare differently.
                raise TypeError(f"{name} must be {'a str' if name in self.strings else 'an int'}")
            for position in positions:
                params[position] = value
        connection = connections[alias]
        if compiled.locks and connection.get_autocommit():
            # What compiling checks each time for select_for_update(), checked here too.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        start, end = compiled.cols
        instances: list[M] = []
        for fetched in rows:
            row = list(fetched)
            for position, convs, expression in compiled.converters:
                value = row[position]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[position] = value
            instance = cast(M, compiled.model.from_db(alias, compiled.init_list, row[start:end]))
            for populator in compiled.populators:
                populator.populate(row, instance)
            for name, position in compiled.annotations.items():
                setattr(instance, name, row[position])
            instances.append(instance)
        return instances

    def _compile(self, alias: str, names: list[str]) -> _Compiled:
        with self._lock:
            if alias in self._compiled:
                return self._compiled[alias]
            compiled_twice = []
            for base in _STAND_INS:
                stand_ins = {
                    name: f"prepared-stand-in-{base + 10 * i}"
                    if name in self.strings
                    else base + 10 * i
                    for i, name in enumerate(names)
                }
                queryset = self.build(**stand_ins).using(alias)
                if queryset.model is not self.model:
                    raise TypeError(f"the queryset returns {queryset.model}, not {self.model}")
                compiler = queryset.query.get_compiler(using=alias)
                compiled_twice.append((stand_ins, *compiler.as_sql()))
            (first, sql, params), (second, other_sql, other_params) = compiled_twice
            if other_sql != sql or len(other_params) != len(params):
                raise ValueError("the SQL depends on the values; it cannot be prepared")
            slots: dict[str, list[int]] = {name: [] for name in names}
            for i, (a, b) in enumerate(zip(params, other_params, strict=True)):
                if a == b:
                    continue
                name = next((n for n in names if first[n] == a and second[n] == b), None)
                if name is None or type(a) is not type(first[name]):
                    raise ValueError(f"parameter {i} changed with the values but is not one")
                slots[name].append(i)
            unused = [name for name, positions in slots.items() if not positions]
            if unused:
                raise ValueError(f"{unused} did not reach the SQL as plain parameters")
            klass_info, select = compiler.klass_info, compiler.select
            fields = klass_info["select_fields"]
            converters = compiler.get_converters([s[0] for s in select[: compiler.col_count]])
            compiled = _Compiled(
                sql=sql,
                params=tuple(params),
                slots=slots,
                model=klass_info["model"],
                init_list=[f[0].target.attname for f in select[fields[0] : fields[-1] + 1]],
                cols=(fields[0], fields[-1] + 1),
                populators=get_related_populators(klass_info, select, alias),
                annotations=dict(compiler.annotation_col_map or {}),
                converters=[(pos, convs, expr) for pos, (convs, expr) in converters.items()],
                locks=queryset.query.select_for_update,
            )
            self._compiled[alias] = compiled
            return compiled
