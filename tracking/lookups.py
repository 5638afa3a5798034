"""SQL LIKE / ILIKE with the caller's own wildcards (Django's contains/startswith escape them)."""

import re

from django.db.models import CharField, Field, Lookup, TextField


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
