"""Queries of the hot single-object reads, built by the ORM once per process and then only executed.

Building a query with correlated subqueries costs the ORM milliseconds of Python on every call, several times what
the database needs to run it. A PreparedQuery builds its queryset once, with marker values in the places of the
caller's values, compiles it, and remembers where the markers landed in the parameters; each call then binds its
own values there and executes the same SQL text.
"""

from collections.abc import Callable
from itertools import count

from django.db import connection
from django.db.models import QuerySet

_markers = count(1)


def _marker(kind: type):
    """A value no caller sends, of the type the ORM expects there, so that it passes through unchanged."""
    number = next(_markers)
    return f"\x00prepared-{number}\x00" if kind is str else -(2**31) + number  # within every integer column's range


class PreparedQuery:
    """`build(**markers)` returns a values() queryset; `rows(**values)` runs it with the caller's values."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type):
        self._build = build
        self._kinds = kinds
        self._compiled: dict[str, tuple[str, list, list[tuple[int, str]]]] = {}  # per database vendor

    def _compile(self) -> tuple[str, list, list[tuple[int, str]]]:
        markers = {name: _marker(kind) for name, kind in self._kinds.items()}
        sql, params = self._build(**markers).query.sql_with_params()
        slots = [(index, name) for index, param in enumerate(params)
                 for name, marker in markers.items() if param == marker]
        if {name for _, name in slots} != set(markers):  # a value the ORM transformed would be bound nowhere
            raise ValueError(f"a prepared query must use each of {sorted(markers)} as a plain parameter")
        return sql, list(params), slots

    def rows(self, **values) -> list[dict]:
        compiled = self._compiled.get(connection.vendor)
        if compiled is None:
            compiled = self._compiled[connection.vendor] = self._compile()
        sql, params, slots = compiled
        params = list(params)
        for index, name in slots:
            params[index] = values[name]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column[0] for column in cursor.description]  # a tuple on SQLite, a Column on psycopg
            return [dict(zip(names, row)) for row in cursor.fetchall()]
