"""The one parser for MLflow search `filter` strings and `order_by` clauses, configured per search API."""

import re
from dataclasses import dataclass

from mlflow_sh.errors import MlflowError

# What a key's value must be written as: a quoted string, an integer (attributes) or any number (metrics).
STRING, INTEGER, FLOAT = "string", "integer", "float"

NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
LIST_OPS = ("IN", "NOT IN")
NULL_OPS = ("IS NULL", "IS NOT NULL")


@dataclass(frozen=True)
class Comparison:
    entity: str  # "attribute", "metric", "param", "tag" or "dataset"
    key: str  # canonical attribute key, or the metric/param/tag/dataset-field name
    op: str  # upper case, one of NUMERIC_OPS, STRING_OPS, LIST_OPS, NULL_OPS
    value: object  # str, int (numeric attributes), float (metrics), tuple[str, ...] (IN lists) or None (IS NULL)


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # STRING, INTEGER or FLOAT
    comparators: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Grammar:
    """What one search API accepts."""

    entities: dict[str, str]  # prefix as written ("params") -> canonical entity ("param")
    fields: dict[str, dict[str, FieldSpec] | FieldSpec]  # entity -> its fixed keys, or one spec for any key
    key_aliases: dict[str, str]  # another spelling of an attribute key -> canonical key
    order_by: dict[str, frozenset[str] | None]  # sortable entity -> canonical keys (None: any key)


def _entities(**prefixes: str) -> dict[str, str]:
    return {prefix: entity for entity, spelled in prefixes.items() for prefix in spelled.split()}


def _same(keys: str, spec: FieldSpec) -> dict[str, FieldSpec]:
    return dict.fromkeys(keys.split(), spec)


_STRING_KEY = FieldSpec(STRING, STRING_OPS)
_LISTABLE_STRING_KEY = FieldSpec(STRING, STRING_OPS + LIST_OPS)
_INTEGER_KEY = FieldSpec(INTEGER, NUMERIC_OPS)
_METRIC = FieldSpec(FLOAT, NUMERIC_OPS)
_NULLABLE_STRING_KEY = FieldSpec(STRING, STRING_OPS + NULL_OPS)

RUNS = Grammar(
    entities=_entities(attribute="attribute attributes attr run", metric="metric metrics",
                       param="param params parameter parameters", tag="tag tags", dataset="dataset datasets"),
    fields={
        "attribute": {"run_id": _LISTABLE_STRING_KEY, **_same("run_name status user_id artifact_uri", _STRING_KEY),
                      **_same("start_time end_time", _INTEGER_KEY)},
        "metric": _METRIC,
        "param": _NULLABLE_STRING_KEY,
        "tag": _NULLABLE_STRING_KEY,
        "dataset": _same("name digest context", _LISTABLE_STRING_KEY),
    },
    key_aliases={"created": "start_time", "Created": "start_time",
                 "run name": "run_name", "Run name": "run_name", "Run Name": "run_name"},
    order_by={
        "attribute": frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"}),
        "metric": None, "param": None, "tag": None,
    },
)
EXPERIMENTS = Grammar(
    entities=_entities(attribute="attribute attributes", tag="tag tags"),  # the spec's "attribute(s)"
    fields={
        "attribute": {"name": _STRING_KEY, "experiment_id": FieldSpec(STRING, ("=", "!=") + LIST_OPS),
                      **_same("creation_time last_update_time", _INTEGER_KEY)},
        "tag": _NULLABLE_STRING_KEY,
    },
    key_aliases={},
    order_by={"attribute": frozenset({"name", "experiment_id", "creation_time", "last_update_time"})},
)
REGISTERED_MODELS = Grammar(
    entities=_entities(attribute="attribute", tag="tag tags"),
    fields={"attribute": {"name": _LISTABLE_STRING_KEY}, "tag": _STRING_KEY},
    key_aliases={"timestamp": "last_updated_timestamp"},
    order_by={"attribute": frozenset({"name", "last_updated_timestamp", "creation_timestamp"})},
)
MODEL_VERSIONS = Grammar(
    entities=_entities(attribute="attribute", tag="tag tags"),
    fields={
        "attribute": {**_same("name run_id", _LISTABLE_STRING_KEY), "source_path": _STRING_KEY,
                      "version_number": _INTEGER_KEY},
        "tag": _STRING_KEY,
    },
    key_aliases={},
    order_by={"attribute": frozenset({"name", "version_number", "creation_timestamp", "last_updated_timestamp"})},
)
LOGGED_MODELS = Grammar(
    entities=_entities(attribute="attributes", metric="metrics", param="params", tag="tags"),
    fields={
        "attribute": {**_same("name model_id model_type source_run_id", _LISTABLE_STRING_KEY),
                      "status": FieldSpec(STRING, ("=", "!=") + LIST_OPS),
                      **_same("creation_timestamp last_updated_timestamp", _INTEGER_KEY)},
        "metric": _METRIC,
        "param": _LISTABLE_STRING_KEY,
        "tag": _LISTABLE_STRING_KEY,
    },
    key_aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
    order_by={"attribute": frozenset({"name", "model_id", "model_type", "status", "source_run_id",
                                      "creation_timestamp", "last_updated_timestamp"}), "metric": None},
)

# --- tokens ---------------------------------------------------------------------------------------------------------

_PART = r'\w+|"(?:[^"]|"")*"|`(?:[^`]|``)*`'  # a name part: bare, "double-quoted" or `back-quoted`
_NAME_PART = re.compile(_PART)
_TOKEN = re.compile(
    rf"""(?P<space>\s+)
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![\w.]))
    | (?P<name>(?:{_PART})(?:\.(?:{_PART}))*)
    | (?P<operator>[<>=!~]+)
    | (?P<punctuation>[(),])
    | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)  # inside quotes, the quote character is written twice; a backslash is an ordinary character
_COMPARATOR_WORDS = {"LIKE", "ILIKE", "RLIKE", "IN"}  # RLIKE is parsed only to be rejected by name
_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "ILIKE", "RLIKE"}
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class _Token:
    kind: str  # "string", "number", "name", "operator", "(", ")", ",", "other" or "end"
    text: str

    def word(self) -> str | None:
        """The upper-cased text of a bare word (a keyword candidate)."""
        return self.text.upper() if self.kind == "name" and re.fullmatch(r"\w+", self.text) else None

    def string(self) -> str | None:
        """The value of a quoted string: 'single' or "double" quoted."""
        if self.kind == "string" or (self.kind == "name" and _NAME_PART.fullmatch(self.text) and self.text[0] == '"'):
            return _unquote(self.text)
        return None

    def shown(self) -> str:
        if self.kind == "end":
            return "end of input"
        return self.text if self.string() is not None else f"'{self.text}'"


def _unquote(part: str) -> str:
    quote = part[0]
    return part[1:-1].replace(quote * 2, quote) if quote in "'\"`" else part


class _Tokens:
    def __init__(self, text: str):
        self.items: list[_Token] = []
        for match in _TOKEN.finditer(text):
            kind, value = match.lastgroup, match.group()
            if kind == "other" and value in "'\"`":
                raise MlflowError.invalid(f"Unterminated quoted string at position {match.start()} in '{text}'")
            if kind == "punctuation":
                kind = value
            if kind != "space":
                self.items.append(_Token(kind, value))
        self.position = 0

    def peek(self) -> _Token:
        return self.items[self.position] if self.position < len(self.items) else _Token("end", "")

    def next(self) -> _Token:
        token = self.peek()
        self.position += 1
        return token


# --- filter ---------------------------------------------------------------------------------------------------------


def parse_filter(filter_string: str | None, grammar: Grammar) -> list[Comparison]:
    """`<clause> AND <clause> ...`; every malformed filter raises an INVALID_PARAMETER_VALUE MlflowError."""
    if not filter_string or filter_string.isspace():
        return []
    tokens = _Tokens(filter_string)
    comparisons = [_clause(tokens, grammar, filter_string)]
    while tokens.peek().kind != "end":
        if tokens.peek().word() != "AND":
            raise MlflowError.invalid(f"Invalid clause(s) in filter string: {tokens.peek().shown()}")
        tokens.next()
        comparisons.append(_clause(tokens, grammar, filter_string))
    return comparisons


def _clause(tokens: _Tokens, grammar: Grammar, filter_string: str) -> Comparison:
    first = tokens.next()
    if first.kind == "end":
        raise MlflowError.invalid(f"Invalid filter '{filter_string}': expected a comparison after the last 'AND'")
    if first.kind != "name" or first.word() in _KEYWORDS:
        raise MlflowError.invalid(f"Invalid clause(s) in filter string: {first.shown()}")
    prefix, written_key = _split_name(first.text)
    entity = "attribute" if prefix is None else grammar.entities.get(prefix)
    if entity is None:
        raise MlflowError.invalid(f"Invalid entity type '{prefix}'. Valid values are {list(grammar.entities)}")
    key = grammar.key_aliases.get(written_key, written_key) if entity == "attribute" else written_key
    spec = grammar.fields[entity]
    if isinstance(spec, dict):
        if key not in spec:
            raise _invalid_key(grammar, entity, written_key, spec)
        spec = spec[key]
    op = _comparator(tokens, first.text)
    _check_comparator(grammar, entity, spec, op)
    return Comparison(entity, key, op, _value(tokens, entity, key, spec, op))


def _split_name(text: str) -> tuple[str | None, str]:
    """`[entity.]key`, split at the first dot; each part may be `back-quoted` or "double-quoted"."""
    parts = [_unquote(part) for part in _NAME_PART.findall(text)]
    return (None, parts[0]) if len(parts) == 1 else (parts[0], ".".join(parts[1:]))


def _invalid_key(grammar: Grammar, entity: str, written_key: str, valid_keys) -> MlflowError:
    aliases = [alias for alias, key in grammar.key_aliases.items() if key in valid_keys and entity == "attribute"]
    valid = _shown_set([*valid_keys, *aliases])
    return MlflowError.invalid(f"Invalid {entity} key '{written_key}' specified. Valid keys are '{valid}'")


def _shown_set(items) -> str:
    return "{" + ", ".join(f"'{item}'" for item in items) + "}"


def _comparator(tokens: _Tokens, identifier: str) -> str:
    token = tokens.next()
    word = token.word()
    if token.kind == "operator":
        return token.text
    if word in _COMPARATOR_WORDS:
        return word
    if word == "NOT" and tokens.peek().word() == "IN":
        tokens.next()
        return "NOT IN"
    if word == "IS":
        negated = tokens.peek().word() == "NOT"
        if negated:
            tokens.next()
        if tokens.next().word() == "NULL":
            return "IS NOT NULL" if negated else "IS NULL"
    raise MlflowError.invalid(
        f"Invalid comparison clause. Expected a comparator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN, IS NULL, "
        f"IS NOT NULL) after '{identifier}', found {token.shown()}"
    )


def _check_comparator(grammar: Grammar, entity: str, spec: FieldSpec, op: str) -> None:
    if op in spec.comparators:
        return
    if op in LIST_OPS and entity == "attribute":
        listable = sorted(key for key, other in grammar.fields["attribute"].items() if op in other.comparators)
        if listable:
            raise MlflowError.invalid(
                f"Only {listable} attributes support comparison with a list of quoted string values."
            )
    raise MlflowError.invalid(f"Invalid comparator '{op}' not one of '{_shown_set(spec.comparators)}'")


def _value(tokens: _Tokens, entity: str, key: str, spec: FieldSpec, op: str) -> object:
    if op in NULL_OPS:
        return None
    if op in LIST_OPS:
        return _string_list(tokens)
    token = tokens.next()
    if spec.kind == STRING:
        value = token.string()
        if value is None:
            raise MlflowError.invalid(
                f"Expected a quoted string value for {entity} '{key}' (e.g. 'my-value'). Got value {token.shown()}"
            )
        return value
    if token.kind != "number":
        raise MlflowError.invalid(f"Expected numeric value type for {entity} '{key}'. Found {token.shown()}")
    if spec.kind == FLOAT:
        return float(token.text)
    return _integer(token.text, key)


def _integer(text: str, key: str) -> int:
    """An integer attribute value: integral (1e3 is 1000) and within a signed 64-bit column."""
    try:
        value = int(text) if re.fullmatch(r"[-+]?[0-9]+", text) else float(text)
        if value == int(value) and int(value) in _INT64:
            return int(value)
    except (ValueError, OverflowError):  # more digits than int() accepts, or an infinite float
        pass
    raise MlflowError.invalid(f"Invalid value for numeric attribute '{key}': '{text}'")


def _string_list(tokens: _Tokens) -> tuple[str, ...]:
    ill_formed = MlflowError.invalid(
        "While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list."
    )
    if tokens.next().kind != "(":
        raise ill_formed
    if tokens.peek().kind == ")":
        raise MlflowError.invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but got empty list"
        )
    values = []
    while True:
        token = tokens.next()
        value = token.string()
        if value is None:
            if token.kind in ("(", ")", ",", "end"):
                raise ill_formed
            raise MlflowError.invalid(
                "While parsing a list in the query, expected string value, punctuation, or whitespace, "
                f"but got different type in list: {token.text}"
            )
        values.append(value)
        separator = tokens.next()
        if separator.kind == ")":
            return tuple(values)
        if separator.kind != ",":
            raise ill_formed


# --- order_by -------------------------------------------------------------------------------------------------------


def parse_order_by(order_by: list[str] | None, grammar: Grammar) -> list[OrderBy]:
    """Each clause is `<identifier> [ASC|DESC]` (ascending by default); a field may appear only once."""
    parsed: list[OrderBy] = []
    for clause in order_by or []:
        item = _order_by_clause(clause, grammar)
        if any((item.entity, item.key) == (seen.entity, seen.key) for seen in parsed):
            raise MlflowError.invalid(f"`order_by` contains duplicate fields: {order_by}")
        parsed.append(item)
    return parsed


def _order_by_clause(clause: str, grammar: Grammar) -> OrderBy:
    unparsable = MlflowError.invalid(f"Invalid order_by clause '{clause}'. Could not be parsed.")
    if not isinstance(clause, str):
        raise unparsable
    tokens = _Tokens(clause)
    name, direction, rest = tokens.next(), tokens.next(), tokens.next()
    if name.kind != "name" or rest.kind != "end":
        raise unparsable
    if direction.kind != "end" and direction.word() not in ("ASC", "DESC"):
        raise MlflowError.invalid(f"Invalid ordering key in order_by clause '{clause}'.")
    prefix, written_key = _split_name(name.text)
    entity = "attribute" if prefix is None else grammar.entities.get(prefix)
    if entity not in grammar.order_by:
        sortable = [written for written, sortable_entity in grammar.entities.items()
                    if sortable_entity in grammar.order_by]
        raise MlflowError.invalid(f"Invalid order_by entity type '{prefix}'. Valid values are {sortable}")
    key = grammar.key_aliases.get(written_key, written_key) if entity == "attribute" else written_key
    keys = grammar.order_by[entity]
    if keys is not None and key not in keys:
        raise _invalid_key(grammar, entity, written_key, sorted(keys))
    return OrderBy(entity, key, direction.word() != "DESC")
