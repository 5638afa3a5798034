"""Query-safety limits checked before a GraphQL query runs, counted as MLflow's server counts them."""

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

MAX_DEPTH = 10
MAX_SELECTIONS = 1000


class LimitExceeded(Exception):
    """The document asks for more than the server answers; the message is MLflow's."""


def check(document: DocumentNode, *, max_root_fields: int, max_aliases: int) -> None:
    """Raises LimitExceeded for the first limit the document exceeds.

    Depth and total selections are checked while walking, so a huge document stops early; fields reached
    through fragments count where they are spread, and aliases are counted per selection set (fragments
    spread into one set add up), so splitting aliases across fragments does not get around the limit.
    """
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root_fields = most_aliases = selections = 0
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        pending = [(operation.selection_set, 1)]
        while pending:
            selection_set, depth = pending.pop()
            if depth > MAX_DEPTH:
                raise LimitExceeded(f"Query exceeds maximum depth of {MAX_DEPTH}")
            fields = _fields(selection_set, fragments)
            most_aliases = max(most_aliases, sum(1 for field in fields if field.alias))
            for field in fields:
                selections += 1
                if selections > MAX_SELECTIONS:
                    raise LimitExceeded(f"Query exceeds maximum total selections of {MAX_SELECTIONS}")
                if depth == 1:
                    root_fields += 1
                if field.selection_set:
                    pending.append((field.selection_set, depth + 1))
    for count, limit, what, variable in (
        (root_fields, max_root_fields, "root fields", "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS"),
        (most_aliases, max_aliases, "aliases", "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES"),
    ):
        if count > limit:
            raise LimitExceeded(
                f"GraphQL queries should have at most {limit} {what}, got {count} {what}. "
                f"To increase the limit, set the {variable} environment variable."
            )


def _fields(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]) -> list[FieldNode]:
    """The fields of one selection set, inline fragments and fragment spreads included.

    Each named fragment is expanded once per set: a fragment spread twice, or spreading itself, adds nothing
    more (validation rejects such cycles later; this walk must end before that).
    """
    fields, expanded = [], set()
    pending = list(selection_set.selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            fields.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in expanded:
            expanded.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)
    return fields
