"""Queries of the hot reads, built by the ORM once per process (or once per search shape) and then only executed.

Building a query with correlated subqueries costs the ORM milliseconds of Python on every call, several times what
the database needs to run it. A PreparedQuery builds its queryset once, with marker values in the places of the
caller's values, compiles it, and remembers where the markers landed in the parameters; each call then binds its
own values there and executes the same SQL text. A PreparedSearch does the same per shape of a search: what is
compared and how, and the order; the compared values, tag keys and readable projects are bound.
"""

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from itertools import count

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from mlflow_sh.wire import paged

_markers = count(1)


def _marker(kind: type):
    """A value no caller sends, of the type the ORM expects there, so that it passes through unchanged."""
    number = next(_markers)
    if kind is str:
        return f"\x00prepared-{number}\x00"
    if kind in (int, float):
        return kind(-(2**31) + number)  # within every integer column's range
    raise TypeError(f"no marker for {kind.__name__} values")


def _slots(params, markers: dict) -> list[tuple[int, object]]:
    """(index in params, name) of each parameter that is one of `markers` (marker: name)."""
    return [(index, markers[param]) for index, param in enumerate(params)
            if isinstance(param, (str, int, float)) and param in markers]


def _compiled(queryset: QuerySet) -> tuple[str, list, list[str]]:
    """SQL, parameters and column names of a values() queryset, the names in the order Django's ValuesIterable
    reads them (psycopg builds a Column object per column on every cursor.description)."""
    query = queryset.query
    sql, params = query.sql_with_params()
    return sql, list(params), [*query.extra_select, *query.values_select, *query.annotation_select]


def _dict_rows(sql: str, params, names: list[str]) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(names, row)) for row in cursor.fetchall()]


class PreparedQuery:
    """`build(**markers)` returns a values() queryset; `rows(**values)` runs it with the caller's values."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type):
        self._build = build
        self._kinds = kinds
        self._compiled: dict[str, tuple[str, list, list[str], list[tuple[int, str]]]] = {}  # per database vendor

    def _compile(self) -> tuple[str, list, list[str], list[tuple[int, str]]]:
        markers = {name: _marker(kind) for name, kind in self._kinds.items()}
        sql, params, names = _compiled(self._build(**markers))
        slots = _slots(params, {marker: name for name, marker in markers.items()})
        if {name for _, name in slots} != set(markers):  # a value the ORM transformed would be bound nowhere
            raise ValueError(f"a prepared query must use each of {sorted(markers)} as a plain parameter")
        return sql, params, names, slots

    def rows(self, **values) -> list[dict]:
        compiled = self._compiled.get(connection.vendor)
        if compiled is None:
            compiled = self._compiled[connection.vendor] = self._compile()
        sql, params, names, slots = compiled
        params = list(params)
        for index, name in slots:
            params[index] = values[name]
        return _dict_rows(sql, params, names)


_EMPTY = object()  # a shape that matches nothing whatever its values (an empty list of readable projects)
_UNPREPARABLE = object()  # a shape whose values the ORM transforms (LIKE on SQLite): built on every call


class PreparedSearch:
    """The pages of one search, its SQL compiled once per shape.

    `build(projects, clauses)` returns the ordered values() queryset of the search for those readable projects
    (None: all) and filter clauses (search.Comparison); it must depend on nothing else but what the caller gives as
    `shape` (the order, the view, ...). A clause's entity, attribute key, operator and the types of its value are
    its shape; the values, the keys of `keyed` entities (tags: a key is one more value) and the projects are bound.
    """

    def __init__(self, *, keyed: frozenset[str] = frozenset({"tag"}), size: int = 512):
        self._keyed = keyed
        self._size = size
        self._compiled: OrderedDict[Hashable, object] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()  # gthread workers share it

    def page(self, *, shape: Hashable, build: Callable[[list | None, list], QuerySet], projects: list[str] | None,
             clauses: list, max_results: int, token: str | None) -> tuple[list[dict], str | None]:
        return paged(lambda offset, limit: self._rows(shape, build, projects, clauses, limit=limit, offset=offset),
                     max_results=max_results, token=token)

    def _rows(self, shape, build, projects, clauses, *, limit: int, offset: int) -> list[dict]:
        values = [*(projects or ())]
        for clause in clauses:
            if clause.entity in self._keyed:
                values.append(clause.key)
            values.extend(clause.value if isinstance(clause.value, tuple) else () if clause.value is None else [clause.value])
        full_shape = (connection.vendor, shape, None if projects is None else len(projects),
                      tuple(self._clause_shape(clause) for clause in clauses))
        with self._lock:
            compiled = self._compiled.get(full_shape)
            if compiled is not None:
                self._compiled.move_to_end(full_shape)
        if compiled is None:
            compiled = self._compile(build, projects, clauses, values)
            with self._lock:
                self._compiled[full_shape] = compiled
                if len(self._compiled) > self._size:
                    self._compiled.popitem(last=False)
        if compiled is _EMPTY:
            return []
        if compiled is _UNPREPARABLE:
            try:
                sql, params, names = _compiled(build(projects, clauses))
            except EmptyResultSet:
                return []
        else:
            sql, params, names, slots = compiled
            params = list(params)
            for index, position in slots:
                params[index] = values[position]
        return _dict_rows(f"{sql} LIMIT %s OFFSET %s", [*params, limit, offset], names)

    def _clause_shape(self, clause) -> tuple:
        value = clause.value
        kinds = tuple(type(v) for v in value) if isinstance(value, tuple) else type(value)
        return clause.entity, None if clause.entity in self._keyed else clause.key, clause.op, kinds

    def _compile(self, build, projects, clauses, values: list):
        """(SQL, params, names, slots: (index in params, position in values)), or _EMPTY or _UNPREPARABLE."""
        try:
            markers = [_marker(type(value)) for value in values]
        except TypeError:
            return _UNPREPARABLE
        bound = iter(markers)
        marked_projects = None if projects is None else [next(bound) for _ in projects]
        marked_clauses = []
        for clause in clauses:
            key = next(bound) if clause.entity in self._keyed else clause.key
            value = clause.value
            if isinstance(value, tuple):
                value = tuple(next(bound) for _ in value)
            elif value is not None:
                value = next(bound)
            marked_clauses.append(dataclasses.replace(clause, key=key, value=value))
        try:
            sql, params, names = _compiled(build(marked_projects, marked_clauses))
        except EmptyResultSet:
            return _EMPTY
        slots = _slots(params, {marker: position for position, marker in enumerate(markers)})
        if len({position for _, position in slots}) != len(markers):
            return _UNPREPARABLE
        return sql, params, names, slots
