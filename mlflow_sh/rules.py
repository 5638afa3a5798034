"""Permission rules that routes declare; the permissions app decides them (open mode: everything allowed)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """What a route needs: an action on the resource named by a request field (or nothing, if public)."""

    action: str  # "public", "read", "create", "update", "delete"
    resource: str = ""  # "experiment", "run", "server", ...
    field: str = ""  # the request field naming the resource

    def describe(self) -> str:
        if self.action == "public":
            return "public"
        return f"{self.action} {self.resource}" + (f" ({self.field})" if self.field else "")


PUBLIC = Rule("public")


def _rule(action: str, kwargs: dict) -> Rule:
    if len(kwargs) > 1:
        raise TypeError("a rule names one resource")
    (resource, field_name), = kwargs.items() if kwargs else (("server", ""),)
    return Rule(action, resource, field_name)


def read(**resource_field) -> Rule:
    return _rule("read", resource_field)


def create(**resource_field) -> Rule:
    return _rule("create", resource_field)


def update(**resource_field) -> Rule:
    return _rule("update", resource_field)


def delete(**resource_field) -> Rule:
    return _rule("delete", resource_field)
