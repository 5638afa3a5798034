"""The search filter / order_by grammar of every search API: pure parsing, no database."""

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlflow_sh.errors import MlflowError
from tracking import search
from tracking.search import Comparison as C
from tracking.search import OrderBy

GRAMMARS = [search.RUNS, search.EXPERIMENTS, search.REGISTERED_MODELS, search.MODEL_VERSIONS, search.LOGGED_MODELS]
RUNS, EXPERIMENTS, REGISTERED_MODELS, MODEL_VERSIONS, LOGGED_MODELS = GRAMMARS


def rejected(call, *args) -> str:
    with pytest.raises(MlflowError) as caught:
        call(*args)
    assert (caught.value.error_code, caught.value.status) == ("INVALID_PARAMETER_VALUE", 400)
    return caught.value.message


# --- filters --------------------------------------------------------------------------------------------------------

ACCEPTED = [
    (RUNS, None, []),
    (RUNS, "", []),
    (RUNS, "   ", []),
    (RUNS, "metrics.rmse < 0.5", [C("metric", "rmse", "<", 0.5)]),
    (RUNS, "metric.acc >= -1e-3 and params.lr = '0.1'",
     [C("metric", "acc", ">=", -0.001), C("param", "lr", "=", "0.1")]),
    (RUNS, "metrics.m != 3", [C("metric", "m", "!=", 3.0)]),
    (RUNS, "parameters.p LIKE 'a%' AND parameter.q ilike \"B_\"",
     [C("param", "p", "LIKE", "a%"), C("param", "q", "ILIKE", "B_")]),
    (RUNS, "tags.mlflow.runName = 'x'", [C("tag", "mlflow.runName", "=", "x")]),
    (RUNS, "tags.`mlflow.runName` = 'x'", [C("tag", "mlflow.runName", "=", "x")]),
    (RUNS, "tag.\"my key\" = 'it''s'", [C("tag", "my key", "=", "it's")]),
    (RUNS, "tags.`a``b` = \"say \"\"hi\"\"\"", [C("tag", "a`b", "=", 'say "hi"')]),
    (RUNS, r"tags.path = 'C:\dir\'", [C("tag", "path", "=", "C:\\dir\\")]),
    (RUNS, "tags.x IS NULL AND params.y is not null",
     [C("tag", "x", "IS NULL", None), C("param", "y", "IS NOT NULL", None)]),
    (RUNS, "status = 'FINISHED'", [C("attribute", "status", "=", "FINISHED")]),
    (RUNS, "attributes.run_id IN ('a', \"b\")", [C("attribute", "run_id", "IN", ("a", "b"))]),
    (RUNS, "attr.run_id not in ('a')", [C("attribute", "run_id", "NOT IN", ("a",))]),
    (RUNS, "run.user_id = 'u'", [C("attribute", "user_id", "=", "u")]),
    (RUNS, "attributes.`run name` ILIKE '%x%'", [C("attribute", "run_name", "ILIKE", "%x%")]),
    (RUNS, "\"Run Name\" = 'x'", [C("attribute", "run_name", "=", "x")]),
    (RUNS, "created > 1700000000000 AND Created <= 1.7e12", [C("attribute", "start_time", ">", 1700000000000),
                                                             C("attribute", "start_time", "<=", 1700000000000)]),
    (RUNS, "end_time>=5", [C("attribute", "end_time", ">=", 5)]),
    (RUNS, "datasets.name IN ('train') AND dataset.context = 'eval'",
     [C("dataset", "name", "IN", ("train",)), C("dataset", "context", "=", "eval")]),
    (RUNS, "tags.`mlflow.loggedArtifacts` LIKE '%x.json%'", [C("tag", "mlflow.loggedArtifacts", "LIKE", "%x.json%")]),
    (EXPERIMENTS, "name = 'Default'", [C("attribute", "name", "=", "Default")]),
    (EXPERIMENTS, "attribute.experiment_id IN ('1', '2')", [C("attribute", "experiment_id", "IN", ("1", "2"))]),
    (EXPERIMENTS, "creation_time > 5 AND last_update_time < 1e3",
     [C("attribute", "creation_time", ">", 5), C("attribute", "last_update_time", "<", 1000)]),
    (EXPERIMENTS, "tags.team IS NOT NULL", [C("tag", "team", "IS NOT NULL", None)]),
    (REGISTERED_MODELS, "tag.`mlflow.prompt.is_prompt` != 'true'", [C("tag", "mlflow.prompt.is_prompt", "!=", "true")]),
    (REGISTERED_MODELS, "name NOT IN ('a', 'b')", [C("attribute", "name", "NOT IN", ("a", "b"))]),
    (MODEL_VERSIONS, "name = 'm' AND version_number >= 2 AND run_id IN ('r')",
     [C("attribute", "name", "=", "m"), C("attribute", "version_number", ">=", 2),
      C("attribute", "run_id", "IN", ("r",))]),
    (MODEL_VERSIONS, "source_path LIKE 's3://%'", [C("attribute", "source_path", "LIKE", "s3://%")]),
    (LOGGED_MODELS, "metrics.acc > 0.9 AND params.lr = '0.1' AND tags.t IN ('a')",
     [C("metric", "acc", ">", 0.9), C("param", "lr", "=", "0.1"), C("tag", "t", "IN", ("a",))]),
    (LOGGED_MODELS, "status IN ('READY') AND creation_time > 5 AND attributes.last_updated_time < 9",
     [C("attribute", "status", "IN", ("READY",)), C("attribute", "creation_timestamp", ">", 5),
      C("attribute", "last_updated_timestamp", "<", 9)]),
]


@pytest.mark.parametrize(("grammar", "text", "expected"), ACCEPTED)
def test_accepted_filters(grammar, text, expected):
    assert search.parse_filter(text, grammar) == expected


def test_value_types():
    [metric, start] = search.parse_filter("metrics.m = 1 AND start_time = 2", RUNS)
    assert type(metric.value) is float and type(start.value) is int


REJECTED = [
    (RUNS, "metrics.a > 1 OR metrics.b > 2", "Invalid clause(s) in filter string: 'OR'"),
    (RUNS, "(metrics.a > 1)", "Invalid clause(s) in filter string: '('"),
    (RUNS, "metrics.a > 1 AND (metrics.b > 2)", "Invalid clause(s) in filter string: '('"),
    (RUNS, "metrics.a > 1 metrics.b > 2", "Invalid clause(s) in filter string: 'metrics.b'"),
    (RUNS, "tags.a = 'x'; tags.b = 'y'", "Invalid clause(s) in filter string: ';'"),
    (RUNS, "AND tags.a = 'x'", "Invalid clause(s) in filter string: 'AND'"),
    (RUNS, "tags.a = 'x' AND", "expected a comparison after the last 'AND'"),
    (RUNS, "'tags.a' = 'x'", "Invalid clause(s) in filter string: 'tags.a'"),
    (RUNS, "foo.x = 'a'", "Invalid entity type 'foo'. Valid values are ['attribute', 'attributes', 'attr', 'run'"),
    (RUNS, "Tags.x = 'a'", "Invalid entity type 'Tags'"),
    (RUNS, "lifecycle_stage = 'active'", "Invalid attribute key 'lifecycle_stage' specified. Valid keys are '{'run_"),
    (RUNS, "datasets.foo = 'a'", "Invalid dataset key 'foo' specified. Valid keys are '{'name', 'digest', 'context'}'"),
    (RUNS, "metrics.x ~ 1", "Invalid comparator '~' not one of '{'=', '!=', '>', '>=', '<', '<='}'"),
    (RUNS, "metrics.x == 1", "Invalid comparator '=='"),
    (RUNS, "metrics.x LIKE 1", "Invalid comparator 'LIKE'"),
    (RUNS, "params.x > '1'", "Invalid comparator '>' not one of '{'=', '!=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL"),
    (RUNS, "status IS NULL", "Invalid comparator 'IS NULL'"),
    (RUNS, "start_time LIKE '1%'", "Invalid comparator 'LIKE'"),
    (RUNS, "attributes.run_name RLIKE 'x'", "Invalid comparator 'RLIKE'"),
    (RUNS, "status IN ('A')", "Only ['run_id'] attributes support comparison with a list of quoted string values."),
    (RUNS, "metrics.x = '1'", "Expected numeric value type for metric 'x'. Found '1'"),
    (RUNS, "metrics.x = nan", "Expected numeric value type for metric 'x'. Found 'nan'"),
    (RUNS, "start_time = '1'", "Expected numeric value type for attribute 'start_time'"),
    (RUNS, "start_time > 1.5", "Invalid value for numeric attribute 'start_time': '1.5'"),
    (RUNS, "start_time > 1e400", "Invalid value for numeric attribute 'start_time': '1e400'"),
    (RUNS, "end_time > 9223372036854775808", "Invalid value for numeric attribute 'end_time'"),
    (RUNS, "tags.x = abc", "Expected a quoted string value for tag 'x' (e.g. 'my-value'). Got value 'abc'"),
    (RUNS, "tags.x = 1", "Expected a quoted string value for tag 'x'"),
    (RUNS, "tags.x = `abc`", "Expected a quoted string value for tag 'x'"),
    (RUNS, "tags.x =", "Got value end of input"),
    (RUNS, "tags.x", "Expected a comparator"),
    (RUNS, "tags.x IS 'a'", "Expected a comparator"),
    (RUNS, "tags.x NOT LIKE 'a'", "Expected a comparator"),
    (RUNS, "metrics.val-loss > 1", "after 'metrics.val', found '-'"),
    (RUNS, "tags.x = 'unterminated", "Unterminated quoted string at position 9"),
    (RUNS, "tags.`x = 'a'", "Unterminated quoted string at position 5"),
    (RUNS, "run_id IN ()", "expected a non-empty list of string values, but got empty list"),
    (RUNS, "run_id IN (1, 2)", "expected string value, punctuation, or whitespace, but got different type in list: 1"),
    (RUNS, "run_id IN ('a' 'b')", "but got ill-formed list."),
    (RUNS, "run_id IN ('a',)", "but got ill-formed list."),
    (RUNS, "run_id IN 'a'", "but got ill-formed list."),
    (RUNS, "run_id = ('a')", "Expected a quoted string value for attribute 'run_id'"),
    (EXPERIMENTS, "metrics.x > 1", "Invalid entity type 'metrics'. Valid values are ['attribute', 'attributes', 'tag',"),
    (EXPERIMENTS, "metrics.x > 1", "Invalid entity type 'metrics'"),
    (EXPERIMENTS, "name IN ('a')", "Only ['experiment_id'] attributes support comparison"),
    (EXPERIMENTS, "experiment_id LIKE '1%'", "Invalid comparator 'LIKE' not one of '{'=', '!=', 'IN', 'NOT IN'}'"),
    (EXPERIMENTS, "experiment_id = 1", "Expected a quoted string value for attribute 'experiment_id'"),
    (EXPERIMENTS, "creation_time = 1.5", "Invalid value for numeric attribute 'creation_time'"),
    (REGISTERED_MODELS, "tags.x IS NULL", "Invalid comparator 'IS NULL' not one of '{'=', '!=', 'LIKE', 'ILIKE'}'"),
    (REGISTERED_MODELS, "run_id = 'x'", "Invalid attribute key 'run_id' specified. Valid keys are '{'name'}'"),
    (REGISTERED_MODELS, "timestamp > 1", "Invalid attribute key 'timestamp'"),
    (MODEL_VERSIONS, "source_path IN ('a')", "Only ['name', 'run_id'] attributes support comparison"),
    (MODEL_VERSIONS, "version_number = '2'", "Expected numeric value type for attribute 'version_number'"),
    (MODEL_VERSIONS, "creation_timestamp > 1", "Invalid attribute key 'creation_timestamp'"),
    (LOGGED_MODELS, "attribute.name = 'x'", "Invalid entity type 'attribute'. Valid values are ['attributes',"),
    (LOGGED_MODELS, "status LIKE 'R%'", "Invalid comparator 'LIKE' not one of '{'=', '!=', 'IN', 'NOT IN'}'"),
    (LOGGED_MODELS, "run_id = 'x'", "Invalid attribute key 'run_id'"),
]


@pytest.mark.parametrize(("grammar", "text", "message"), REJECTED)
def test_rejected_filters(grammar, text, message):
    assert message in rejected(search.parse_filter, text, grammar)


# --- order_by -------------------------------------------------------------------------------------------------------

ORDERS = [
    (RUNS, None, []),
    (RUNS, [], []),
    (RUNS, ["start_time DESC", "metrics.`acc` asc", "params.x", "tags.`a b` DESC"],
     [OrderBy("attribute", "start_time", False), OrderBy("metric", "acc", True), OrderBy("param", "x", True),
      OrderBy("tag", "a b", False)]),
    (RUNS, ["attributes.created", "`Run Name` desc", " run_id  ASC "],
     [OrderBy("attribute", "start_time", True), OrderBy("attribute", "run_name", False),
      OrderBy("attribute", "run_id", True)]),
    (RUNS, ["tags.mlflow.runName"], [OrderBy("tag", "mlflow.runName", True)]),
    (EXPERIMENTS, ["name", "experiment_id DESC", "creation_time", "last_update_time"],
     [OrderBy("attribute", "name", True), OrderBy("attribute", "experiment_id", False),
      OrderBy("attribute", "creation_time", True), OrderBy("attribute", "last_update_time", True)]),
    (REGISTERED_MODELS, ["timestamp DESC", "name", "creation_timestamp"],
     [OrderBy("attribute", "last_updated_timestamp", False), OrderBy("attribute", "name", True),
      OrderBy("attribute", "creation_timestamp", True)]),
    (MODEL_VERSIONS, ["last_updated_timestamp DESC", "name ASC", "version_number DESC"],
     [OrderBy("attribute", "last_updated_timestamp", False), OrderBy("attribute", "name", True),
      OrderBy("attribute", "version_number", False)]),
    (LOGGED_MODELS, ["creation_time", "metrics.acc"],
     [OrderBy("attribute", "creation_timestamp", True), OrderBy("metric", "acc", True)]),
]


@pytest.mark.parametrize(("grammar", "order_by", "expected"), ORDERS)
def test_accepted_order_by(grammar, order_by, expected):
    assert search.parse_order_by(order_by, grammar) == expected


REJECTED_ORDERS = [
    (RUNS, [""], "Invalid order_by clause ''. Could not be parsed."),
    (RUNS, ["metrics.x DESC ASC"], "Invalid order_by clause 'metrics.x DESC ASC'. Could not be parsed."),
    (RUNS, ["start_time, end_time"], "Could not be parsed."),
    (RUNS, ["'start_time'"], "Could not be parsed."),
    (RUNS, [None], "Could not be parsed."),
    (RUNS, ["metrics.x up"], "Invalid ordering key in order_by clause 'metrics.x up'."),
    (RUNS, ["foo"], "Invalid attribute key 'foo' specified. Valid keys are '{'artifact_uri'"),
    (RUNS, ["datasets.name"], "Invalid order_by entity type 'datasets'. Valid values are ['attribute'"),
    (RUNS, ["created DESC", "start_time"], "`order_by` contains duplicate fields: ['created DESC', 'start_time']"),
    (RUNS, ["metrics.m", "metric.`m` DESC"], "`order_by` contains duplicate fields"),
    (EXPERIMENTS, ["tags.x"], "Invalid order_by entity type 'tags'. Valid values are ['attribute', 'attributes']"),
    (EXPERIMENTS, ["name", "name DESC"], "`order_by` contains duplicate fields"),
    (REGISTERED_MODELS, ["timestamp", "last_updated_timestamp"], "`order_by` contains duplicate fields"),
    (REGISTERED_MODELS, ["version_number"], "Invalid attribute key 'version_number'"),
    (MODEL_VERSIONS, ["run_id"], "Invalid attribute key 'run_id'"),
    (LOGGED_MODELS, ["params.x"], "Invalid order_by entity type 'params'. Valid values are ['attributes', 'metrics']"),
]


@pytest.mark.parametrize(("grammar", "order_by", "message"), REJECTED_ORDERS)
def test_rejected_order_by(grammar, order_by, message):
    assert message in rejected(search.parse_order_by, order_by, grammar)


# --- properties -----------------------------------------------------------------------------------------------------

FRAGMENTS = ["metrics.m", "params.p", "tags.`t t`", "tag.\"x\"", "name", "run_id", "start_time", "datasets.name",
             "foo.bar", "=", "!=", ">=", "<", "~", "LIKE", "ilike", "IN", "NOT", "IS", "NULL", "AND", "and", "OR",
             "(", ")", ",", "'v'", "\"v\"", "'it''s'", "`b`", "1", "-2.5e3", "1e400", ".", "'", "\"", "`", ";"]
fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(" ".join)
any_text = st.one_of(st.text(), fragment_text, st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join))


@given(st.sampled_from(GRAMMARS), any_text)
def test_any_filter_parses_or_fails_cleanly(grammar, text):
    try:
        comparisons = search.parse_filter(text, grammar)
    except MlflowError as error:
        assert (error.error_code, error.status) == ("INVALID_PARAMETER_VALUE", 400)
        assert error.message
    else:
        assert all(isinstance(c, C) for c in comparisons)


@given(st.sampled_from(GRAMMARS), st.lists(st.one_of(any_text, st.none(), st.integers()), max_size=4))
def test_any_order_by_parses_or_fails_cleanly(grammar, order_by):
    try:
        orders = search.parse_order_by(order_by, grammar)
    except MlflowError as error:
        assert (error.error_code, error.status) == ("INVALID_PARAMETER_VALUE", 400)
    else:
        assert len(orders) == len(order_by)


def quoted(text: str, quote: str) -> str:
    return quote + text.replace(quote, quote * 2) + quote


def spellings(grammar, entity: str, key: str) -> list[str]:
    """Ways to write a canonical key: itself or an alias, bare when it is a plain word, else quoted."""
    names = [key] + ([a for a, k in grammar.key_aliases.items() if k == key] if entity == "attribute" else [])
    plain = [n for n in names if re.fullmatch(r"\w+", n) and n.upper() not in search._KEYWORDS]
    return plain + [quoted(n, q) for n in names for q in "`\""]


@st.composite
def identifiers(draw, grammar, entities, keys_for):
    """(canonical entity, canonical key, written identifier) for one of `entities`."""
    entity = draw(st.sampled_from(sorted(entities)))
    key = draw(keys_for(entity))
    prefixes = [p for p, e in grammar.entities.items() if e == entity] + ([""] if entity == "attribute" else [])
    prefix = draw(st.sampled_from(prefixes))
    written = draw(st.sampled_from(spellings(grammar, entity, key)))
    return entity, key, f"{prefix}.{written}" if prefix else written


def filter_keys(grammar):
    return lambda entity: (st.sampled_from(list(grammar.fields[entity])) if isinstance(grammar.fields[entity], dict)
                           else st.text(max_size=10))


@st.composite
def clauses(draw, grammar):
    entity, key, written = draw(identifiers(grammar, grammar.fields, filter_keys(grammar)))
    spec = grammar.fields[entity]
    spec = spec[key] if isinstance(spec, dict) else spec
    op = draw(st.sampled_from(spec.comparators))
    string = st.text(max_size=10)
    if op in search.NULL_OPS:
        value, shown = None, ""
    elif op in search.LIST_OPS:
        value = tuple(draw(st.lists(string, min_size=1, max_size=3)))
        shown = "(" + ", ".join(quoted(v, draw(st.sampled_from("'\""))) for v in value) + ")"
    elif spec.kind == search.STRING:
        value = draw(string)
        shown = quoted(value, draw(st.sampled_from("'\"")))
    elif spec.kind == search.INTEGER:
        value = draw(st.integers(-(2**63), 2**63 - 1))
        shown = str(value)
    else:
        value = draw(st.floats(allow_nan=False, allow_infinity=False))
        shown = repr(value)
    op_text = draw(st.sampled_from([op, op.lower()]))
    return C(entity, key, op, value), f"{written} {op_text} {shown}".strip()


@given(st.data())
def test_generated_filters_round_trip(data):
    grammar = data.draw(st.sampled_from(GRAMMARS))
    pairs = data.draw(st.lists(clauses(grammar), min_size=1, max_size=4))
    joiner = data.draw(st.sampled_from([" AND ", " and ", "\nAnd\t"]))
    assert search.parse_filter(joiner.join(text for _, text in pairs), grammar) == [c for c, _ in pairs]


@given(st.data())
def test_generated_order_by_round_trip(data):
    grammar = data.draw(st.sampled_from(GRAMMARS))
    keys_for = lambda entity: (st.sampled_from(sorted(grammar.order_by[entity]))  # noqa: E731
                               if grammar.order_by[entity] is not None else st.text(max_size=10))
    fields = data.draw(st.lists(identifiers(grammar, grammar.order_by, keys_for), max_size=4,
                                unique_by=lambda field: field[:2]))
    directions = data.draw(st.lists(st.sampled_from(["", " ASC", " desc", " Desc"]), min_size=len(fields),
                                    max_size=len(fields)))
    clauses_text = [written + direction for (_, _, written), direction in zip(fields, directions)]
    expected = [OrderBy(entity, key, "desc" not in direction.lower())
                for (entity, key, _), direction in zip(fields, directions)]
    assert search.parse_order_by(clauses_text, grammar) == expected


# --- the grammars themselves ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("grammar", GRAMMARS)
def test_grammar_tables_are_consistent(grammar):
    attributes = set(grammar.fields["attribute"]) | set(grammar.order_by["attribute"])
    assert set(grammar.key_aliases.values()) <= attributes
    assert set(grammar.entities.values()) == set(grammar.fields)
    assert set(grammar.order_by) <= set(grammar.fields)


def test_search_module_does_not_import_django():
    tree = ast.parse(Path(search.__file__).read_text())
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert modules and not [m for m in modules if m.split(".")[0] in ("django", "rest_framework")]
