"""Bulk writes as one statement per table: column arrays through unnest() on PostgreSQL, executemany elsewhere.

Model instances and one placeholder per value cost more than the database's own work at 1000 rows.
"""

from functools import lru_cache

from django.db import connection


def unnest_insert(model, columns: tuple[str, ...], rows: list[tuple], *, on_conflict: str,
                  where: str = "") -> tuple[str, list]:
    """PostgreSQL: (SQL, params) of one INSERT of rows (tuples in `columns` order) from column arrays, with an
    optional WHERE on the rows and the `on_conflict` clause."""
    binding = bool(connection.settings_dict["OPTIONS"].get("server_side_binding"))
    return _unnest_insert_sql(model, columns, on_conflict, where, binding), [list(values) for values in zip(*rows)]


@lru_cache(maxsize=64)  # a handful of statements, written on every batch: their text is built once
def _unnest_insert_sql(model, columns: tuple[str, ...], on_conflict: str, where: str, binding: bool) -> str:
    quote = connection.ops.quote_name
    fields = {field.column: field for field in model._meta.concrete_fields}
    # %b: binary arrays, so no element is quoted and escaped in Python (server-side binding only)
    marker = "%b" if binding else "%s"
    # varchar, not varchar(n): a cast would silently cut a long value the column must refuse
    arrays = ", ".join(f"{marker}::{fields[column].db_type(connection).split('(')[0]}[]" for column in columns)
    names = ", ".join(quote(column) for column in columns)
    return f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT * FROM unnest({arrays}) {where} {on_conflict}"


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
