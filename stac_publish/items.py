"""The STAC item of a model version (MLM extension): built from the registry, the run and the MLmodel file."""


class NotPublishable(Exception):
    """The version cannot become a valid item (e.g. no mlm:tasks): held, with the reason shown to people."""


def build_item(model_version_id: int, item_id: str) -> dict | None:
    raise NotPublishable("the item builder is not written yet")


def record_problem(model_version_id: int | None, reason: str) -> None:
    """The reason a version is held, as a tag on it, so its owners see it in MLflow."""
