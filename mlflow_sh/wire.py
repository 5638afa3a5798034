"""MLflow's wire format: request fields decoded like protobuf ParseDict, responses rendered as MLflow JSON."""

import base64
import functools
import json
import math
from dataclasses import dataclass, field

import orjson
from django.http import HttpResponse
from rest_framework.renderers import BaseRenderer

from mlflow_sh.errors import MlflowError

API_DOCS_HINT = "See the API docs for more information about request parameters."
MAX_DOUBLE = 1.7976931348623157e308


def missing_value(name: str) -> MlflowError:
    return MlflowError.invalid(f"Missing value for required parameter '{name}'. {API_DOCS_HINT}")


def invalid_value(name: str, value) -> MlflowError:
    return MlflowError.invalid(
        f"Invalid value {value} for parameter '{name}' supplied: Hint: Value was of type "
        f"'{type(value).__name__}'. {API_DOCS_HINT}"
    )


@dataclass(frozen=True)
class Field:
    """One request field. `parse` takes a JSON value; `parse_query` the strings of a query-string key."""

    required: bool = False
    default: object = None

    def parse(self, value, name: str):
        raise NotImplementedError

    def parse_query(self, values: list[str], name: str):
        return self.parse(values[0], name)  # as Flask's request.args.get()

    def is_empty(self, value) -> bool:
        return value is None or value == ""


@dataclass(frozen=True)
class Str(Field):
    def parse(self, value, name):
        if isinstance(value, str):
            return value
        raise invalid_value(name, value)


@dataclass(frozen=True)
class Int(Field):
    """int64 (or int32 with bits=32): a JSON number or a string of digits, within the type's range."""

    bits: int = 64

    def parse(self, value, name):
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                pass
        limit = 2 ** (self.bits - 1)
        if number is None or not -limit <= number < limit:
            raise invalid_value(name, value)
        return number


@dataclass(frozen=True)
class Double(Field):
    """double: a JSON number, or "NaN", "Infinity", "-Infinity"; ±inf is stored as ±max double."""

    def parse(self, value, name):
        if isinstance(value, bool):
            raise invalid_value(name, value)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise invalid_value(name, value) from None
        if not isinstance(value, int | float):
            raise invalid_value(name, value)
        value = float(value)
        if math.isinf(value):
            return math.copysign(MAX_DOUBLE, value)
        return value


@dataclass(frozen=True)
class Bool(Field):
    def parse(self, value, name):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise invalid_value(name, value)


@dataclass(frozen=True)
class Enum(Field):
    """A protobuf enum: accepted by name or number, returned as its name."""

    names: tuple[str, ...] = ()
    numbers: tuple[int, ...] = ()

    def parse(self, value, name):
        if isinstance(value, str) and value in self.names:
            return value
        number = value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            number = int(value)
        if isinstance(number, int) and not isinstance(number, bool) and number in self.numbers:
            return self.names[self.numbers.index(number)]
        raise invalid_value(name, value)


def enum(**members: int) -> Enum:
    return Enum(names=tuple(members), numbers=tuple(members.values()))


@dataclass(frozen=True)
class List(Field):
    item: Field = None

    def parse(self, value, name):
        if not isinstance(value, list):
            raise invalid_value(name, value)
        return [self.item.parse(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def parse_query(self, values, name):
        return [self.item.parse(v, name) for v in values]

    def is_empty(self, value):
        return not value


@dataclass(frozen=True)
class Obj(Field):
    """A nested message. Unknown keys are ignored, as protobuf's ParseDict(ignore_unknown_fields=True)."""

    fields: dict = field(default_factory=dict)

    def parse(self, value, name):
        if not isinstance(value, dict):
            raise invalid_value(name, value)
        return parse_fields(self.fields, value, prefix=f"{name}.")


@functools.cache
def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_fields(fields: dict, source: dict, *, prefix: str = "") -> dict:
    """A JSON object -> a dict holding every declared field (defaults for missing ones).

    Like protobuf's ParseDict, a field may be spelled snake_case or lowerCamelCase, not both.
    """
    parsed = {}
    for name, spec in fields.items():
        value = source.get(name)
        full_name = prefix + name
        camel = camel_case(name)
        if camel != name and camel in source:
            if value is not None:
                raise MlflowError.invalid(f"Request specifies both '{name}' and '{camel}'; provide only one of them.")
            value = source[camel]
        if value is None:
            value = list(spec.default) if isinstance(spec.default, list) else spec.default
        else:
            value = spec.parse(value, full_name)
        if spec.required and spec.is_empty(value):
            raise missing_value(full_name)
        parsed[name] = value
    return parsed


def parse_query(fields: dict, query) -> dict:
    """A Django QueryDict -> a dict holding every declared field; repeated keys make lists."""
    parsed = {}
    for name, spec in fields.items():
        values = query.getlist(name)
        if values:
            value = spec.parse_query(values, name)
        else:
            value = list(spec.default) if isinstance(spec.default, list) else spec.default
        if spec.required and spec.is_empty(value):
            raise missing_value(name)
        parsed[name] = value
    return parsed


def decode_json_body(raw: bytes) -> dict:
    """Request JSON, as MLflow reads it: empty means {}, a JSON string holding JSON is decoded again."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
        if isinstance(body, str):  # legacy clients double-encode
            body = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MlflowError.invalid("Malformed JSON in the request body.") from None
    if not isinstance(body, dict):
        raise MlflowError.invalid("The request body must be a JSON object.")
    return body


def check_content_type(content_type: str | None) -> None:
    if not content_type:
        raise MlflowError.invalid("Bad Request. Content-Type header is missing.")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise MlflowError.invalid("Bad Request. Content-Type must be one of ['application/json'].")


# --- responses ----------------------------------------------------------------------------------


def double(value: float, is_nan: bool = False):
    """A stored double as MLflow writes it: NaN as the string "NaN"."""
    return "NaN" if is_nan or math.isnan(value) else value


def json_response(data: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


class MlflowJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data)  # NaN never reaches here: payloads write it as "NaN", as MLflow does


def run_id_of(data: dict) -> str:
    """The run a request names: run_id, or run_uuid as legacy clients send it."""
    run_id = data.get("run_id") or data.get("run_uuid")
    if not run_id:
        raise missing_value("run_id")
    return run_id


def non_empty(**fields) -> dict:
    """Empty repeated fields are omitted, as protobuf's JSON has them."""
    return {name: value for name, value in fields.items() if value}


def with_page_token(body: dict, token: str | None) -> dict:
    if token:
        body["next_page_token"] = token
    return body


# --- page tokens --------------------------------------------------------------------------------


def page_token(offset: int) -> str:
    """MLflow's offset token: base64 of {"offset": N}, so tokens stay valid across servers."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def paged(fetch, *, max_results: int, token: str | None) -> tuple[list, str | None]:
    """A page and the next page's token: `fetch(offset, limit)` reads one row more than asked, which tells whether a
    next page exists (one LIMIT/OFFSET query)."""
    offset = offset_from_token(token)
    rows = fetch(offset, max_results + 1)
    if len(rows) > max_results:
        return rows[:max_results], page_token(offset + max_results)
    return rows, None


def offset_from_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        decoded = json.loads(base64.b64decode(token, validate=False))
    except ValueError:
        raise MlflowError.invalid("Invalid page token, could not base64-decode") from None
    offset = decoded.get("offset") if isinstance(decoded, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise MlflowError.invalid(f"Invalid page token, offset must be a non-negative integer: {offset!r}")
    return offset
