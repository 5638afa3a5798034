"""SQL helpers: LIKE / ILIKE with the caller's own wildcards (Django's contains/startswith escape them), `<>`,
long id lists as one parameter, and children rows folded into one JSON column of their parent's query."""

import re

import orjson

from django.db.models import Aggregate, CharField, F, Field, ForeignObject, Func, Lookup, Subquery, TextField


def like_to_regex(pattern: str) -> str:
    """A LIKE pattern as an anchored regular expression: % is any run, _ any one character."""
    parts = (".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return "(?s)^" + "".join(parts) + "$"


class Like(Lookup):
    """Case-sensitive LIKE, as MLflow has it on every database."""

    lookup_name = "like"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):
        # SQLite's LIKE ignores case; Django registers a REGEXP function on every SQLite connection.
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} REGEXP %s", [*lhs_params, like_to_regex(self.rhs)]


class ILike(Lookup):
    lookup_name = "ilike"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} REGEXP %s", [*lhs_params, "(?i)" + like_to_regex(self.rhs)]


for field_class in (CharField, TextField):
    field_class.register_lookup(Like)
    field_class.register_lookup(ILike)


class NotEqual(Lookup):
    """SQL <>: NULLs never match, as in MLflow's queries (Django's exclude() would let them through)."""

    lookup_name = "ne"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} <> {rhs}", [*lhs_params, *rhs_params]


Field.register_lookup(NotEqual)


class Values:
    """Values for the `any` lookup, which Django then leaves whole (it walks a list or tuple item by item)."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = list(items)

    def __iter__(self):
        return iter(self.items)


class AnyOf(Lookup):
    """`col IN (...)` for long id lists: one array parameter on PostgreSQL instead of one per id."""

    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [str(v) for v in self.rhs]
        if any("," in v for v in values):
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        # Ids as one comma-joined text: quoting thousands of array elements one by one costs more.
        column_type = self.lhs.output_field.db_type(connection)
        return f"{lhs} = ANY(string_to_array(%s, ',')::{column_type}[])", [*lhs_params, ",".join(values)]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            return "0 = 1", []
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # related fields keep lookups of their own


class JsonTuple(Func):
    """The given columns of one row as a compact JSON array."""

    function = "JSON_BUILD_ARRAY"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="JSON_ARRAY", **extra)


class JsonAgg(Aggregate):
    """The JSON values of a group as one JSON text, NULL for no rows (order: the reader sorts)."""

    function = "JSON_AGG"
    template = "%(function)s(%(expressions)s)::text"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="JSON_GROUP_ARRAY", template="%(function)s(%(expressions)s)",
                              **extra)


def json_children(text: str | None) -> list:
    """The rows of a json_rows() column, in the order of their first column (SQL aggregates keep none)."""
    return sorted(orjson.loads(text)) if text else []


def json_rows(queryset, group: str, *columns: str) -> Subquery:
    """The rows of a correlated queryset as one JSON text `[[column, ...], ...]` (NULL when none): the children of
    an object become one column of the object's own query instead of a query of their own. `group` is the
    column that ties them to the outer row (the queryset filters it on an OuterRef)."""
    rows = queryset.order_by().values(group).annotate(rows=JsonAgg(JsonTuple(*(F(column) for column in columns))))
    return Subquery(rows.values("rows"), output_field=TextField())
