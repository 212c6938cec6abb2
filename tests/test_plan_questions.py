"""The compositional question sets are well formed and their references run: the development
set benchmarks/questions_plan.yaml and the held-out sets questions_plan_holdout.yaml,
questions_plan_holdout2.yaml, questions_plan_holdout5.yaml to questions_plan_holdout10.yaml.
Every shape covered, placeholders defined, every reference SQL accepted by the SQL guard and
returning rows on the test demo, and the sets together hold at least 150 distinct questions.
The assistant is never asked."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tools.sql import SqlRunner
from tools.sql_guard import check_sql

REPO = Path(__file__).resolve().parents[1]


@cache
def bench() -> ModuleType:
    """benchmarks/bench_plan.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_plan",
                                                  REPO / "benchmarks" / "bench_plan.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


#: Each set, with the least it must hold: phrasings in all, and phrasings of every shape.
SETS = {
    "questions_plan.yaml": (150, 3),
    "questions_plan_holdout.yaml": (40, 2),
    "questions_plan_holdout2.yaml": (100, 3),
    "questions_plan_holdout5.yaml": (60, 2),
    "questions_plan_holdout6.yaml": (60, 2),
    "questions_plan_holdout7.yaml": (46, 2),
    "questions_plan_holdout8.yaml": (60, 2),
    "questions_plan_holdout9.yaml": (60, 2),
    "questions_plan_holdout10.yaml": (60, 2),
}

#: Sets other than the development set that carry a few impossible requests of their own
#: (their exact number); the others hold none.
BAD_IN_HELD_OUT = {"questions_plan_holdout5.yaml": 3, "questions_plan_holdout6.yaml": 3,
                   "questions_plan_holdout7.yaml": 3, "questions_plan_holdout8.yaml": 3,
                   "questions_plan_holdout9.yaml": 3, "questions_plan_holdout10.yaml": 3}

#: References that are empty on the small test demo (it ends in October 2025, so "this year
#: to date" has no newcomers and no lapsed importers there); the default demo, on which the
#: sets are run, has rows for them (`bench_plan.py --validate`).
EMPTY_ON_THE_TEST_DEMO = frozenset({"h7_set_difference_importers_chapter_ly_not_ytd",
                                    "h7_first_seen_top3_new_importers_ytd",
                                    # a sum over no rows: one NULL cell
                                    "h10_first_seen_new_importers_value_ytd"})


def load(name: str) -> dict[str, Any]:
    result: dict[str, Any] = bench().load_set(REPO / "benchmarks" / name)
    return result


@pytest.fixture(scope="module", params=sorted(SETS))
def set_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def data(set_name: str) -> dict[str, Any]:
    return load(set_name)


@pytest.fixture(scope="module")
def runner(demo_db: Path) -> SqlRunner:
    return SqlRunner(demo_db, timeout_s=60)


@pytest.fixture(scope="module")
def names(runner: SqlRunner, data: dict[str, Any]) -> dict[str, SimpleNamespace]:
    """The `vars`, each run through the guarded runner: one row of named values."""
    out = {}
    for name, sql in data["vars"].items():
        result = runner.run(sql)
        assert len(result.rows) == 1, f"var {name} returned {len(result.rows)} rows"
        assert all(v is not None for v in result.rows[0]), f"var {name} has a NULL"
        out[name] = SimpleNamespace(**dict(zip(result.columns, result.rows[0], strict=True)))
    return out


def test_schema_and_coverage(data: dict[str, Any], set_name: str) -> None:
    b = bench()
    assert b.problems_in(data) == []
    least, per_shape = SETS[set_name]
    phrasings = Counter[str]()
    for q in data["questions"]:
        phrasings[q["shape"]] += len(q["phrasings"])
    assert sum(phrasings.values()) >= least
    thin = {s: phrasings[s] for s in b.SHAPES if phrasings[s] < per_shape}
    assert thin == {}, f"shapes with fewer than {per_shape} phrasings: {thin}"
    every = [p for q in data["questions"] for p in q["phrasings"]]
    assert len(every) == len(set(every)), "a phrasing appears twice"


def test_no_question_of_the_offline_set(data: dict[str, Any]) -> None:
    """The held-out set does not repeat a question of benchmarks/questions_offline.yaml."""
    offline = bench().load_set(REPO / "benchmarks" / "questions_offline.yaml")
    theirs = {q["q"].strip().lower() for q in offline["questions"]}
    ours = {p.strip().lower() for q in data["questions"] for p in q["phrasings"]}
    assert ours & theirs == set()


def test_placeholders_name_columns_of_their_vars(data: dict[str, Any],
                                                 names: dict[str, SimpleNamespace]) -> None:
    assert bench().problems_in(data, names) == []


def test_every_reference_is_guarded_sql_with_rows(data: dict[str, Any], runner: SqlRunner,
                                                  names: dict[str, SimpleNamespace]) -> None:
    empty, refused = [], []
    for q in data["questions"]:
        sql = q["ref"].format(**names)
        try:
            check_sql(sql)
        except Exception as exc:  # the guard's reason is the message
            refused.append(f"{q['id']}: {exc}")
            continue
        result = runner.run(sql)
        if not result.rows and q["id"] not in EMPTY_ON_THE_TEST_DEMO:
            empty.append(q["id"])
        elif q["check"] == "first":
            assert len(result.rows) == 1, f"{q['id']}: check first with {len(result.rows)} rows"
        assert q["id"] in EMPTY_ON_THE_TEST_DEMO or not any(
            v is None for r in result.rows for v in r), f"{q['id']}: NULL cells"
    assert refused == []
    assert empty == []


def test_bad_section(data: dict[str, Any], names: dict[str, SimpleNamespace],
                     set_name: str) -> None:
    bad = bench().bad_items(data, names)
    if set_name != "questions_plan.yaml":
        assert len(bad) == BAD_IN_HELD_OUT.get(set_name, 0), \
            "impossible requests belong to the development set (or are listed above)"
    else:
        assert len(bad) >= 10
    for item in bad:
        assert item.text.strip() and "{" not in item.text
        assert item.expect and all(w.strip() == w and w for w in item.expect)
    assert len({item.text for item in bad}) == len(bad)


def test_checks_of_the_benchmark_accept_the_reference_itself(
        data: dict[str, Any], runner: SqlRunner, names: dict[str, SimpleNamespace]) -> None:
    """An engine table equal to the reference rows passes every check (the matching rules of
    bench_assistant work on these refs, e.g. dates and rounding)."""
    b = bench()
    for q in data["questions"]:
        rows = runner.run(q["ref"].format(**names)).rows
        ok, why = b.compare(q["check"], rows, rows)
        assert ok, f"{q['id']}: {why}"


def _words(text: str) -> str:
    return " ".join(text.lower().split())


#: Questions of the first held-out set that ask what a development question asks (same
#: reference, other words); they are kept so that set's recorded figure stays comparable.
REPEATED = {"h_breakdown_value_by_incoterm", "h_transport_air_value_year"}


def test_the_three_sets_hold_150_distinct_questions() -> None:
    """Together the sets hold at least 150 distinct questions (the issue's minimum): a question
    is its reference SQL, so two ids with the same reference count once. No id or phrasing is
    shared between the sets, and the second held-out set repeats no earlier reference."""
    sets = {name: load(name) for name in SETS}
    ids: Counter[str] = Counter()
    phrasings: Counter[str] = Counter()
    refs: dict[str, list[str]] = {}
    for data in sets.values():
        for q in data["questions"]:
            ids[q["id"]] += 1
            refs.setdefault(_words(q["ref"]), []).append(q["id"])
            phrasings.update(_words(p) for p in q["phrasings"])
    assert [i for i, n in ids.items() if n > 1] == []
    assert [p for p, n in phrasings.items() if n > 1] == []
    shared = {i for same in refs.values() if len(same) > 1 for i in same[1:]}
    assert shared == REPEATED
    assert len(refs) >= 150
    assert len(sets["questions_plan_holdout2.yaml"]["questions"]) >= 40
