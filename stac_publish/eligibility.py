"""Which versions are published, and under which item id (one query for any number of versions)."""

import re

from django.conf import settings
from django.db.models import Exists, OuterRef

from registry.models import DELETED_STAGE, ModelVersion, RegisteredModelTag
from registry.selectors import PROMPT_TAG

SUFFIX = re.compile(r"\s+\((\d+)\)$")


def model_slug(name: str) -> str:
    """The model name without " (<project id>)", lower case, [a-z0-9-] only."""
    bare = SUFFIX.sub("", name)
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", bare.lower())).strip("-") or "model"


def item_id(name: str, version: int) -> str | None:
    """The version's item id, or None when the name carries no project id (then it is not published)."""
    match = SUFFIX.search(name)
    if match is None:
        return None
    return settings.STAC_PUBLISH_ITEM_ID_TEMPLATE.format(project_id=match.group(1), model_slug=model_slug(name),
                                                         version=version)


def publishable_item_ids(version_pks) -> dict[int, str]:
    """Item id per version that is READY, not deleted, not a prompt, and whose model belongs to a project."""
    is_prompt = RegisteredModelTag.objects.filter(registered_model=OuterRef("registered_model"), key=PROMPT_TAG,
                                                  value__iexact="true")
    rows = (
        ModelVersion.objects.filter(pk__in=list(version_pks), status="READY", registered_model__project__isnull=False)
        .exclude(current_stage=DELETED_STAGE).exclude(Exists(is_prompt))
        .values_list("pk", "registered_model__name", "version")
    )
    ids = {pk: item_id(name, version) for pk, name, version in rows}
    return {pk: value for pk, value in ids.items() if value}
