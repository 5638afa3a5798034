"""Permission rules that routes declare; the permissions app decides them against SharingHub or GitLab."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    action: str  # "read", "create", "update" or "delete"
    resource: str  # "experiment", "experiment_name", "run", "logged_model", "registered_model", "artifact_path",
    #                "model_source", or "server" (no resource: a search, filtered by readable projects)
    field: str = ""  # the request field naming the resource


@dataclass(frozen=True)
class Rule:
    """What a route needs. Several checks must all pass; guards add MLflow-SharingHub's own constraints."""

    checks: tuple[Check, ...] = ()
    guards: tuple[str, ...] = ()  # "project_tag:<field>": that tag key may not be touched;
    #                               "suffix:<field>": a new name keeps the old name's " (<project id>)"
    public: bool = False

    def __and__(self, other: "Rule") -> "Rule":
        return Rule(self.checks + other.checks, self.guards + other.guards, self.public and other.public)

    def describe(self) -> str:
        if self.public:
            return "public"
        parts = [f"{c.action} {c.resource}" + (f"({c.field})" if c.field else "") for c in self.checks]
        return " and ".join(parts + list(self.guards))


PUBLIC = Rule(public=True)
STAFF = Rule(guards=("django-staff",))  # the Django admin: Django's own staff accounts
AUTHENTICATED = Rule()  # a valid credential, no project asked about: the UI's page, which shows no data itself


def _rule(action: str, resources: dict) -> Rule:
    if not resources:
        return Rule((Check(action, "server"),))
    return Rule(tuple(Check(action, resource, field) for resource, field in resources.items()))


def read(**resource_fields) -> Rule:
    return _rule("read", resource_fields)


def create(**resource_fields) -> Rule:
    return _rule("create", resource_fields)


def update(**resource_fields) -> Rule:
    return _rule("update", resource_fields)


def delete(**resource_fields) -> Rule:
    return _rule("delete", resource_fields)


def guard(*names: str) -> Rule:
    return Rule(guards=names)
