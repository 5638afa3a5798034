"""Bulk writes as one statement per table: column arrays through unnest() on PostgreSQL, executemany elsewhere.

Model instances and one placeholder per value cost more than the database's own work at 1000 rows.
"""

from functools import lru_cache

from django.db import connection

INCOMING = "incoming"  # the alias of the unnested rows: a WHERE or a join names their columns through it


def unnest_rows(model, columns: tuple[str, ...], rows: list[tuple]) -> tuple[str, list]:
    """PostgreSQL: (SQL, params) of `unnest(...) AS incoming(columns)`, the rows (tuples in `columns` order) as a
    table, one array parameter per column."""
    return _unnest_rows_sql(model, columns, _binding()), [list(values) for values in zip(*rows)]


def unnest_insert(model, columns: tuple[str, ...], rows: list[tuple], *, on_conflict: str,
                  where: str = "") -> tuple[str, list]:
    """PostgreSQL: (SQL, params) of one INSERT of rows (tuples in `columns` order) from column arrays, with an
    optional WHERE on the rows (named `incoming.<column>`) and the `on_conflict` clause."""
    sql = _unnest_insert_sql(model, columns, on_conflict, where, _binding())
    return sql, [list(values) for values in zip(*rows)]


def _binding() -> bool:
    return bool(connection.settings_dict["OPTIONS"].get("server_side_binding"))


@lru_cache(maxsize=64)  # a handful of statements, written on every batch: their text is built once
def _unnest_rows_sql(model, columns: tuple[str, ...], binding: bool) -> str:
    quote = connection.ops.quote_name
    fields = {field.column: field for field in model._meta.concrete_fields}
    # %b: binary arrays, so no element is quoted and escaped in Python (server-side binding only)
    marker = "%b" if binding else "%s"
    # varchar, not varchar(n): a cast would silently cut a long value the column must refuse
    arrays = ", ".join(f"{marker}::{fields[column].db_type(connection).split('(')[0]}[]" for column in columns)
    return f"unnest({arrays}) AS {INCOMING}({', '.join(quote(column) for column in columns)})"


@lru_cache(maxsize=64)
def _unnest_insert_sql(model, columns: tuple[str, ...], on_conflict: str, where: str, binding: bool) -> str:
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    rows = _unnest_rows_sql(model, columns, binding)
    return f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM {rows} {where} {on_conflict}"


def insert_rows(model, columns: tuple[str, ...], rows: list[tuple], *, on_conflict: str) -> None:
    """INSERT rows (tuples in `columns` order) into the model's table, followed by `on_conflict`."""
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(*unnest_insert(model, columns, rows, on_conflict=on_conflict))
        else:
            quote = connection.ops.quote_name
            table = quote(model._meta.db_table)
            names = ", ".join(quote(column) for column in columns)
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders}) {on_conflict}", rows)
