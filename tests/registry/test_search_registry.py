"""search_registered_models and search_model_versions: filters, order_by, defaults, limits, pagination, prompt
exclusion and query counts (spec §4 rows for both searches and the prompt note, §3.2 limits, §3.3 pagination).
Rows are seeded with the ORM (controlled timestamps, fast bulk seeds); every answer is read through the API."""

import pytest

from registry.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag

RM = "/api/2.0/mlflow/registered-models"
MV = "/api/2.0/mlflow/model-versions"
PROMPT = "mlflow.prompt.is_prompt"
CLIENT_FILTER = f"tag.`{PROMPT}` != 'true'"  # what the 3.x client sends for search_registered_models()


# --- seeding ------------------------------------------------------------------------------------------


def seed_model(name, *, created=1000, updated=None, description=None, tags=None, versions=()):
    """One registered model; versions are dicts (stage, updated, run_id, source, tags, deleted)."""
    model = RegisteredModel.objects.create(name=name, creation_timestamp=created,
                                           last_updated_timestamp=updated or created, description=description)
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(registered_model=model, key=k, value=v) for k, v in (tags or {}).items()])
    for number, spec in enumerate(versions, start=1):
        version = ModelVersion.objects.create(
            registered_model=model, version=number, creation_timestamp=spec.get("created", created + number),
            last_updated_timestamp=spec.get("updated", created + number), current_stage=spec.get("stage", "None"),
            source=spec.get("source", f"s3://bucket/{name}/{number}"),
            storage_location=spec.get("source", f"s3://bucket/{name}/{number}"), run_id=spec.get("run_id"),
        )
        ModelVersionTag.objects.bulk_create(
            [ModelVersionTag(model_version=version, key=k, value=v) for k, v in spec.get("tags", {}).items()])
    return model


def bulk_seed(count, *, prefix="m", versions_each=0, stages=("None", "Staging", "Production")):
    """`count` models (with tags, and versions in different stages with tags and aliases), in a few queries."""
    models = RegisteredModel.objects.bulk_create([
        RegisteredModel(name=f"{prefix}{i:04d}", creation_timestamp=1000 + i, last_updated_timestamp=2000 + i,
                        description=f"model {i}")
        for i in range(count)
    ])
    RegisteredModelTag.objects.bulk_create([
        RegisteredModelTag(registered_model=m, key=k, value=f"{k}-{m.pk}") for m in models for k in ("team", "domain")
    ])
    versions = ModelVersion.objects.bulk_create([
        ModelVersion(registered_model=m, version=n, creation_timestamp=3000 + n, last_updated_timestamp=3000 + n,
                     current_stage=stages[(n - 1) % len(stages)], source=f"s3://b/{m.name}/{n}",
                     storage_location=f"s3://b/{m.name}/{n}", run_id=f"{n:032x}")
        for m in models for n in range(1, versions_each + 1)
    ])
    ModelVersionTag.objects.bulk_create(
        [ModelVersionTag(model_version=v, key="k", value=str(v.version)) for v in versions])
    if versions_each:
        RegisteredModelAlias.objects.bulk_create([
            RegisteredModelAlias(registered_model=m, alias=alias, version=number)
            for m in models for alias, number in (("champion", 1), ("challenger", versions_each))
        ])
    return models


def search_models(api, status=200, method="GET", **body):
    return api.call("SearchRegisteredModels", method, f"{RM}/search", body, status=status)


def model_names(api, **body):
    return [m["name"] for m in search_models(api, **body).get("registered_models", [])]


def search_versions(api, status=200, method="GET", **body):
    return api.call("SearchModelVersions", method, f"{MV}/search", body, status=status)


def version_ids(api, **body):
    return [(v["name"], v["version"]) for v in search_versions(api, **body).get("model_versions", [])]


def fails(api, path, body, method="GET"):
    response = api.request(method, path, body)
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", response.json()
    return response.json()["message"]


# --- registered models: filters -----------------------------------------------------------------------


@pytest.fixture
def named(db):
    seed_model("alpha", tags={"team": "a", "mlflow.domain": "eo"})
    seed_model("beta", tags={"team": "b"})
    seed_model("gamma")
    seed_model("delta1", tags={"team": "b", "mlflow.domain": "sar"})
    seed_model("delta2", tags={"team": "ab"})
    seed_model("Epsilon")


@pytest.mark.parametrize("filter_string, expected", [
    ("", {"alpha", "beta", "gamma", "delta1", "delta2", "Epsilon"}),
    ("name = 'alpha'", {"alpha"}),
    ("name='alpha'", {"alpha"}),
    ('name = "alpha"', {"alpha"}),
    ("attribute.name = 'beta'", {"beta"}),
    ("name != 'alpha'", {"beta", "gamma", "delta1", "delta2", "Epsilon"}),
    ("name LIKE 'delta%'", {"delta1", "delta2"}),
    ("name LIKE '%a'", {"alpha", "beta", "gamma"}),
    ("name LIKE 'epsilon'", set()),
    ("name ILIKE 'epsilon'", {"Epsilon"}),
    ("name ILIKE 'DELTA_'", {"delta1", "delta2"}),
    ("name IN ('alpha', 'gamma', 'nope')", {"alpha", "gamma"}),
    ("name NOT IN ('alpha', 'gamma')", {"beta", "delta1", "delta2", "Epsilon"}),
    ("tags.team = 'b'", {"beta", "delta1"}),
    ("tag.team = 'b'", {"beta", "delta1"}),
    ("tags.team != 'b'", {"alpha", "delta2"}),  # a tag comparison needs the tag
    ("tags.team LIKE '%b'", {"beta", "delta1", "delta2"}),
    ("tags.team ILIKE 'A%'", {"alpha", "delta2"}),
    ("tags.`mlflow.domain` = 'eo'", {"alpha"}),
    ("tags.\"mlflow.domain\" != 'eo'", {"delta1"}),
    ("name LIKE 'delta%' AND tags.team = 'b'", {"delta1"}),
    ("name LIKE '%a%' and tags.team != 'a'", {"beta", "delta1", "delta2"}),
])
def test_registered_model_filters(api, named, filter_string, expected):
    assert set(model_names(api, filter=filter_string)) == expected


@pytest.mark.parametrize("filter_string", [
    "name = 'a' OR name = 'b'",
    "creation_timestamp > 0",  # only name is filterable
    "tags.team IS NULL",
    "name > 'a'",
    "params.x = 'a'",
    "name = alpha",
    "name IN 'alpha'",
])
def test_invalid_registered_model_filters(api, named, filter_string):
    fails(api, f"{RM}/search", {"filter": filter_string})


# --- registered models: order_by ---------------------------------------------------------------------


@pytest.fixture
def timed(db):
    seed_model("a", created=3000, updated=5000)
    seed_model("b", created=1000, updated=8000)
    seed_model("c", created=4000, updated=6000)
    seed_model("d", created=2000, updated=7000)
    seed_model("e", created=4000, updated=5000)  # ties with a (updated) and c (created): name ASC breaks them


@pytest.mark.parametrize("order_by, expected", [
    ([], "abcde"),
    (["name"], "abcde"),
    (["name ASC"], "abcde"),
    (["name DESC"], "edcba"),
    (["creation_timestamp ASC"], "bdace"),
    (["creation_timestamp DESC"], "ceadb"),
    (["last_updated_timestamp ASC"], "aecdb"),
    (["last_updated_timestamp DESC"], "bdcae"),
    (["timestamp ASC"], "aecdb"),
    (["timestamp DESC"], "bdcae"),
    (["creation_timestamp DESC", "name DESC"], "ecadb"),
])
def test_registered_model_order_by(api, timed, order_by, expected):
    assert "".join(model_names(api, order_by=order_by)) == expected
    assert "".join(model_names(api, method="POST", order_by=order_by)) == expected


@pytest.mark.parametrize("order_by", [["bogus"], ["name SIDEWAYS"], ["tags.team"], ["version_number"],
                                      ["name", "name DESC"], ["timestamp DESC", "last_updated_timestamp ASC"]])
def test_invalid_registered_model_order_by(api, timed, order_by):
    fails(api, f"{RM}/search", {"order_by": order_by})


# --- registered models: max_results and pagination ------------------------------------------------------


def test_registered_model_max_results_default_and_limit(api):
    bulk_seed(101)
    first = search_models(api)
    assert len(first["registered_models"]) == 100
    assert "next_page_token" in first
    rest = search_models(api, page_token=first["next_page_token"])
    assert [m["name"] for m in rest["registered_models"]] == ["m0100"]
    assert "next_page_token" not in rest
    assert len(search_models(api, max_results=1000)["registered_models"]) == 101
    for bad in (1001, 0, -1):
        fails(api, f"{RM}/search", {"max_results": bad})


def test_registered_model_pagination_round_trip(api):
    bulk_seed(25)
    seen, token, pages = [], None, 0
    while True:
        body = {"max_results": 7, "filter": "name LIKE 'm%'", **({"page_token": token} if token else {})}
        page = search_models(api, method="POST", **body)
        seen += [m["name"] for m in page["registered_models"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == 4
    assert seen == [f"m{i:04d}" for i in range(25)]  # every model once, in order


def test_exactly_full_last_page_has_no_token(api):
    bulk_seed(6)
    first = search_models(api, max_results=3)
    assert "next_page_token" in first
    second = search_models(api, max_results=3, page_token=first["next_page_token"])
    assert len(second["registered_models"]) == 3 and "next_page_token" not in second


def test_bad_page_token(api):
    bulk_seed(2)
    fails(api, f"{RM}/search", {"page_token": "not a token"})
    fails(api, f"{MV}/search", {"page_token": "not a token"})


def test_empty_search_is_an_empty_object(api):
    assert search_models(api) == {}
    assert search_versions(api) == {}


def test_search_result_shape(api):
    model = seed_model("shaped", description="d", tags={"k": "v"},
                       versions=[{"stage": "Production", "run_id": "r" * 32}, {"stage": "None"}])
    RegisteredModelAlias.objects.create(registered_model=model, alias="champion", version=1)
    found = search_models(api)["registered_models"]
    assert len(found) == 1
    entity = found[0]
    assert list(entity) == ["name", "creation_timestamp", "last_updated_timestamp", "description", "latest_versions",
                            "tags", "aliases"]
    assert sorted((v["version"], v["current_stage"]) for v in entity["latest_versions"]) == [
        ("1", "Production"), ("2", "None")]
    assert all("aliases" not in v and v["description"] == "" and v["run_link"] == "" for v in entity["latest_versions"])
    assert entity["aliases"] == [{"alias": "champion", "version": "1"}]
    versions = search_versions(api)["model_versions"]
    assert all("aliases" not in v for v in versions)  # aliases only on single-version reads
    assert api.call("GetRegisteredModel", "GET", f"{RM}/get", {"name": "shaped"})["registered_model"] == entity


# --- prompts --------------------------------------------------------------------------------------------


@pytest.fixture
def prompts(db):
    seed_model("prompt-a", tags={PROMPT: "true"}, versions=[{"tags": {PROMPT: "true"}, "source": "prompt-template"}])
    seed_model("prompt-b", tags={PROMPT: "true", "team": "x"},
               versions=[{"tags": {PROMPT: "true"}, "source": "prompt-template"}])
    seed_model("model-a", tags={"team": "x"}, versions=[{}])
    seed_model("model-b", tags={PROMPT: "false"}, versions=[{}])
    seed_model("model-c")


def test_prompts_are_hidden_by_default(api, prompts):
    assert model_names(api) == ["model-a", "model-b", "model-c"]
    assert model_names(api, filter=CLIENT_FILTER) == ["model-a", "model-b", "model-c"]  # untagged ones stay
    assert model_names(api, filter=f"tags.`{PROMPT}` != 'true' AND tags.team = 'x'") == ["model-a"]
    assert model_names(api, filter="name LIKE 'prompt%'") == []


def test_prompts_are_shown_when_asked_for(api, prompts):
    assert model_names(api, filter=f"tags.`{PROMPT}` = 'true'") == ["prompt-a", "prompt-b"]
    assert model_names(api, filter=f"tags.`{PROMPT}` != 'false'") == ["prompt-a", "prompt-b"]  # as the reference
    assert model_names(api, filter=f"tags.`{PROMPT}` = 'false'") == ["model-a", "model-b", "model-c"]
    assert model_names(api, filter=f"tags.`{PROMPT}` = 'true' AND tags.team = 'x'") == ["prompt-b"]
    assert model_names(api, filter=f"name = 'prompt-a' AND tag.`{PROMPT}` = 'true'") == ["prompt-a"]


def test_prompt_versions_are_hidden_from_version_search(api, prompts):
    assert sorted(name for name, _ in version_ids(api)) == ["model-a", "model-b"]
    assert version_ids(api, filter="name = 'prompt-a'") == []
    assert sorted(name for name, _ in version_ids(api, filter=f"tags.`{PROMPT}` = 'true'")) == ["prompt-a", "prompt-b"]


# --- model versions -----------------------------------------------------------------------------------

R1, R2, R3 = "1" * 32, "2" * 32, "3" * 32


@pytest.fixture
def versioned(db):
    """ma: v1 (R1, updated 100), v2 (R1, 300), v3 (R2, 300); mb: v1 (R2, 300), v2 (R3, 200)."""
    seed_model("ma", versions=[
        {"run_id": R1, "updated": 100, "created": 10, "tags": {"k": "v", "stage": "dev"}},
        {"run_id": R1, "updated": 300, "created": 20, "tags": {"k": "w"}},
        {"run_id": R2, "updated": 300, "created": 30, "source": "mlflow-artifacts:/1/x/artifacts/model"},
    ])
    seed_model("mb", versions=[
        {"run_id": R2, "updated": 300, "created": 40, "tags": {"k": "v"}},
        {"run_id": R3, "updated": 200, "created": 50, "stage": "Production"},
    ])


@pytest.mark.parametrize("filter_string, expected", [
    ("", {"ma1", "ma2", "ma3", "mb1", "mb2"}),
    ("name = 'ma'", {"ma1", "ma2", "ma3"}),
    ("name != 'ma'", {"mb1", "mb2"}),
    ("name LIKE 'm%'", {"ma1", "ma2", "ma3", "mb1", "mb2"}),
    ("name ILIKE 'MB'", {"mb1", "mb2"}),
    ("name IN ('mb', 'zz')", {"mb1", "mb2"}),
    ("name NOT IN ('mb')", {"ma1", "ma2", "ma3"}),
    (f"run_id = '{R1}'", {"ma1", "ma2"}),
    (f"run_id != '{R1}'", {"ma3", "mb1", "mb2"}),
    (f"run_id IN ('{R1}', '{R3}')", {"ma1", "ma2", "mb2"}),
    (f"run_id NOT IN ('{R1}', '{R3}')", {"ma3", "mb1"}),
    ("source_path = 's3://bucket/ma/1'", {"ma1"}),
    ("source_path LIKE 's3://bucket/mb/%'", {"mb1", "mb2"}),
    ("source_path LIKE 'mlflow-artifacts:%'", {"ma3"}),
    ("version_number = 2", {"ma2", "mb2"}),
    ("version_number != 2", {"ma1", "ma3", "mb1"}),
    ("version_number > 1", {"ma2", "ma3", "mb2"}),
    ("version_number >= 3", {"ma3"}),
    ("version_number < 2", {"ma1", "mb1"}),
    ("version_number <= 2", {"ma1", "ma2", "mb1", "mb2"}),
    ("tags.k = 'v'", {"ma1", "mb1"}),
    ("tag.k != 'v'", {"ma2"}),
    ("tags.k LIKE '%'", {"ma1", "ma2", "mb1"}),
    ("tags.stage = 'dev'", {"ma1"}),
    ("name = 'ma' AND version_number > 1", {"ma2", "ma3"}),
    (f"name = 'mb' AND run_id = '{R2}' AND tags.k = 'v'", {"mb1"}),
])
def test_model_version_filters(api, versioned, filter_string, expected):
    assert {f"{name}{version}" for name, version in version_ids(api, filter=filter_string)} == expected


@pytest.mark.parametrize("filter_string", [
    "name = 'a' OR name = 'b'",
    "version_number > 'abc'",
    "bogus = 'x'",
    "tags.k IS NULL",
])
def test_invalid_model_version_filters(api, versioned, filter_string):
    fails(api, f"{MV}/search", {"filter": filter_string})


@pytest.mark.parametrize("order_by, expected", [
    # default: last_updated_timestamp DESC, then name ASC, version DESC
    ([], ["ma3", "ma2", "mb1", "mb2", "ma1"]),
    (["name ASC"], ["ma3", "ma2", "ma1", "mb2", "mb1"]),
    (["name DESC"], ["mb2", "mb1", "ma3", "ma2", "ma1"]),
    (["version_number ASC"], ["ma1", "mb1", "ma2", "mb2", "ma3"]),
    (["version_number DESC"], ["ma3", "ma2", "mb2", "ma1", "mb1"]),
    (["creation_timestamp DESC"], ["mb2", "mb1", "ma3", "ma2", "ma1"]),
    (["creation_timestamp ASC"], ["ma1", "ma2", "ma3", "mb1", "mb2"]),
    (["last_updated_timestamp ASC"], ["ma1", "mb2", "ma3", "ma2", "mb1"]),
    (["last_updated_timestamp DESC", "version_number ASC"], ["mb1", "ma2", "ma3", "mb2", "ma1"]),
])
def test_model_version_order_by(api, versioned, order_by, expected):
    assert [f"{n}{v}" for n, v in version_ids(api, order_by=order_by)] == expected
    assert [f"{n}{v}" for n, v in version_ids(api, method="POST", order_by=order_by)] == expected


@pytest.mark.parametrize("order_by", [["bogus"], ["run_id"], ["name UP"], ["name ASC", "name DESC"],
                                      ["version_number", "version_number DESC"]])
def test_invalid_model_version_order_by(api, versioned, order_by):
    fails(api, f"{MV}/search", {"order_by": order_by})


def test_deleted_versions_are_hidden(api, versioned):
    api.call("DeleteModelVersion", "DELETE", f"{MV}/delete", {"name": "ma", "version": "2"})
    assert [f"{n}{v}" for n, v in version_ids(api)] == ["ma3", "mb1", "mb2", "ma1"]
    assert version_ids(api, filter="version_number = 2") == [("mb", "2")]
    assert version_ids(api, filter=f"run_id = '{R1}'") == [("ma", "1")]
    assert "ma2" not in {f"{n}{v}" for n, v in version_ids(api, filter="source_path LIKE '%'")}


def test_model_version_max_results(api, versioned):
    page = search_versions(api, max_results=2)
    assert len(page["model_versions"]) == 2 and "next_page_token" in page
    assert len(search_versions(api, max_results=200_000)["model_versions"]) == 5
    for bad in (200_001, 0):
        fails(api, f"{MV}/search", {"max_results": bad})


def test_model_version_pagination_round_trip(api):
    bulk_seed(8, versions_each=3)  # 24 versions
    expected = [(v["name"], v["version"]) for v in search_versions(api)["model_versions"]]
    assert len(expected) == 24
    seen, token = [], None
    while True:
        page = search_versions(api, max_results=5, **({"page_token": token} if token else {}))
        seen += [(v["name"], v["version"]) for v in page["model_versions"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == expected
    assert len(set(seen)) == 24


# --- query counts -------------------------------------------------------------------------------------


def test_registered_model_page_costs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    bulk_seed(100, versions_each=3)
    with django_assert_max_num_queries(10) as big:
        page = search_models(api)
    assert len(page["registered_models"]) == 100
    entity = page["registered_models"][0]
    assert len(entity["latest_versions"]) == 3 and len(entity["tags"]) == 2 and len(entity["aliases"]) == 2
    with django_assert_max_num_queries(10) as small:
        page = search_models(api, max_results=5, filter="tags.team LIKE 'team-%'")
    assert len(page["registered_models"]) == 5
    assert len(small.captured_queries) == len(big.captured_queries)  # the count does not grow with the page


def test_model_version_search_costs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    bulk_seed(100, versions_each=5)
    with django_assert_max_num_queries(6):
        found = search_versions(api)
    assert len(found["model_versions"]) == 500
    assert all(v["tags"] == [{"key": "k", "value": v["version"]}] for v in found["model_versions"])


def test_single_reads_cost_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    """Counts include the request's SAVEPOINT and RELEASE; they do not grow with versions, tags or aliases."""
    bulk_seed(3, versions_each=12)
    with django_assert_max_num_queries(9):
        api.call("GetRegisteredModel", "GET", f"{RM}/get", {"name": "m0001"})
    with django_assert_max_num_queries(6):
        api.call("GetModelVersion", "GET", f"{MV}/get", {"name": "m0001", "version": "3"})
    with django_assert_max_num_queries(7):
        api.call("GetLatestVersions", "POST", f"{RM}/get-latest-versions", {"name": "m0001"})
    with django_assert_max_num_queries(8):
        api.call("GetModelVersionByAlias", "GET", f"{RM}/alias", {"name": "m0001", "alias": "champion"})
