"""PreparedSearch: a search's SQL compiled once per shape, each call binding its own values, tag keys and projects."""

import pytest
from django.db.models import OuterRef

from mlflow_sh.prepared import PreparedSearch
from tracking.models import Experiment, ExperimentTag
from tracking.search import Comparison
from tracking.selectors import keyed_q, value_q

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiments():
    for name, project, tags in (("alpha", "p1", {"team": "red"}), ("beta", "p1", {"team": "blue", "tier": "1"}),
                                ("gamma", "p2", {"tier": "1"})):
        experiment = Experiment.objects.create(name=name, project=project, artifact_location=f"/tmp/{name}",
                                               creation_time=1, last_update_time=1)
        ExperimentTag.objects.bulk_create([ExperimentTag(experiment=experiment, key=k, value=v) for k, v in tags.items()])


class Counted:
    """A search's build, counting how often the ORM was asked to build it."""

    def __init__(self, name_lookup: str = "exact"):
        self.builds = 0
        self.name_lookup = name_lookup

    def __call__(self, projects, clauses):
        self.builds += 1
        query = Experiment.objects.exclude(pk=0)  # not the Default experiment of the data migration
        if projects is not None:
            query = query.filter(project__in=projects)
        for clause in clauses:
            if clause.entity == "tag":
                query = query.filter(keyed_q(ExperimentTag.objects.filter(experiment=OuterRef("pk")),
                                             clause.key, clause.op, clause.value))
            elif self.name_lookup == "exact":
                query = query.filter(value_q(clause.key, clause.op, clause.value))
            else:
                query = query.filter(**{f"{clause.key}__{self.name_lookup}": clause.value})
        return query.order_by("name").values("name")


def names(search, build, *, projects=None, clauses=(), max_results=10, token=None):
    rows, next_token = search.page(shape="test", build=build, projects=projects, clauses=list(clauses),
                                   max_results=max_results, token=token)
    return [row["name"] for row in rows], next_token


def tag(key, op, value):
    return Comparison("tag", key, op, value)


def test_one_build_per_shape_whatever_the_values_and_tag_keys(experiments, django_assert_num_queries):
    search, build = PreparedSearch(), Counted()
    assert names(search, build, clauses=[Comparison("attribute", "name", "=", "alpha")]) == (["alpha"], None)
    with django_assert_num_queries(1):
        assert names(search, build, clauses=[Comparison("attribute", "name", "=", "gamma")]) == (["gamma"], None)
    assert names(search, build, clauses=[tag("team", "=", "blue")]) == (["beta"], None)
    assert names(search, build, clauses=[tag("tier", "=", "1")]) == (["beta", "gamma"], None)  # another key, bound
    assert names(search, build, clauses=[tag("tier", "IN", ("1", "2"))]) == (["beta", "gamma"], None)
    assert names(search, build, clauses=[tag("team", "IN", ("red", "blue"))]) == (["alpha", "beta"], None)
    assert names(search, build, clauses=[tag("team", "IS NULL", None)]) == (["gamma"], None)
    assert build.builds == 4  # name =, tag =, tag IN of two, tag IS NULL


def test_the_readable_projects_are_bound_and_none_readable_costs_no_query(experiments, django_assert_num_queries):
    search, build = PreparedSearch(), Counted()
    assert names(search, build, projects=["p1"]) == (["alpha", "beta"], None)
    assert names(search, build, projects=["p2"]) == (["gamma"], None)
    assert names(search, build, projects=["p2", "p1"]) == (["alpha", "beta", "gamma"], None)
    assert names(search, build, projects=None) == (["alpha", "beta", "gamma"], None)
    with django_assert_num_queries(0):
        assert names(search, build, projects=[]) == ([], None)
        assert names(search, build, projects=[]) == ([], None)
    assert build.builds == 4  # one, two, all, none readable


def test_pages_follow_the_token(experiments):
    search, build = PreparedSearch(), Counted()
    first, token = names(search, build, max_results=2)
    second, last = names(search, build, max_results=2, token=token)
    assert (first, second, last) == (["alpha", "beta"], ["gamma"], None)
    assert build.builds == 1


def test_a_value_the_orm_transforms_is_built_on_every_call_and_still_right(experiments):
    search, build = PreparedSearch(), Counted(name_lookup="contains")  # the ORM wraps the value in %...%
    assert names(search, build, clauses=[Comparison("attribute", "name", "=", "amm")]) == (["gamma"], None)
    assert names(search, build, clauses=[Comparison("attribute", "name", "=", "et")]) == (["beta"], None)
    assert build.builds == 3  # the markers did not come through: the compile's build, then one per call


def test_the_least_recently_used_shape_leaves_a_full_cache(experiments):
    search, build = PreparedSearch(size=2), Counted()
    shapes = [[], [tag("team", "=", "red")], [tag("team", "!=", "red")]]
    for clauses in (shapes[0], shapes[1], shapes[0], shapes[2], shapes[0], shapes[1]):
        names(search, build, clauses=clauses)
    assert build.builds == 4  # shapes[1] was evicted by shapes[2], shapes[0] kept by its use


def test_column_names_are_known_without_asking_the_cursor(experiments):
    # Rows are read by the names Django's values() gives its columns (extra, fields, annotations), not from
    # cursor.description: for each query the hot reads use, the two agree.
    from django.db import connection
    from django.db.models import Value

    from mlflow_sh.prepared import _compiled
    from registry import payloads
    from registry.models import ModelVersion, RegisteredModel

    querysets = [
        Experiment.objects.values("name").annotate(tagged=Value(1)).extra(select={"one": "1"}),
        payloads.model_rows(RegisteredModel.objects.all()),
        payloads.version_rows(ModelVersion.objects.all()),
    ]
    for queryset in querysets:
        sql, params, names = _compiled(queryset)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            assert names == [column[0] for column in cursor.description]
