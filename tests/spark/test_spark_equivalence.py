"""The same questions give the same answers on DuckDB and on Spark (issue 15).

Two corpora, each run on the demo database (DuckDB) and on its Parquet export served by a
local Spark Connect server, results compared after normalising row order and float noise:

- the reference SQL of the project's question sets (officers' questions, written by hand:
  benchmarks/questions_offline.yaml and the three query-plan sets);
- the assistant itself (offline engine: verified intents and query plans) asked the
  questions of benchmarks/questions_offline.yaml, once on each backend;
- every verified intent of the library, run with slots from its own first phrasing.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.context import DataContexts
from assistant.core import Assistant
from assistant.intents import load_intents
from assistant.offline import OfflineEngine, Plan
from assistant.slots import clean_question
from tamga.errors import TamgaError
from tamga.scope import Scope
from tamga.settings import Settings
from tests.test_plan_questions import bench
from tools.sql import SqlRunner
from tradedata import db

REPO = Path(__file__).resolve().parents[2]
SETS = ["questions_offline.yaml", "questions_plan.yaml", "questions_plan_holdout.yaml",
        "questions_plan_holdout2.yaml"]


def _reference_queries(demo_db: Path) -> list[tuple[str, str]]:
    """(id, SQL) of every distinct reference query of the question sets."""
    seen: dict[str, str] = {}
    con = db.connect(demo_db, read_only=True)
    try:
        for name in SETS:
            data = yaml.safe_load((REPO / "benchmarks" / name).read_text(encoding="utf-8"))
            names = bench().load_vars(con, data.get("vars", {}))
            for k, q in enumerate(data["questions"]):
                sql = q["ref"].format(**names)
                seen.setdefault(sql, f"{name}:{q.get('id', k)}")
    finally:
        con.close()
    return [(qid, sql) for sql, qid in seen.items()]


_PREPARED_AT = re.compile(r"Prepared \d{4}-\d\d-\d\d \d\d:\d\d UTC")


def _stamped(text: str) -> str:
    """The answer text without the time a briefing was prepared at."""
    return _PREPARED_AT.sub("Prepared <time>", text)


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if len(text) == 19 and text.endswith("T00:00:00"):
        return text[:10]  # DuckDB's date - interval is a midnight timestamp, Spark's a date
    return text


def _key(row: list[Any]) -> tuple[str, ...]:
    return tuple(f"{v:.4f}" if isinstance(v, float) else repr(v) for v in row)


def same_rows(left: list[list[Any]], right: list[list[Any]]) -> str | None:
    """None when the two results hold the same rows (any order, floats to 1e-9), else why."""
    if len(left) != len(right):
        return f"{len(left)} rows vs {len(right)}"
    a = sorted(([_norm(v) for v in row] for row in left), key=_key)
    b = sorted(([_norm(v) for v in row] for row in right), key=_key)
    for ra, rb in zip(a, b, strict=True):
        if len(ra) != len(rb):
            return f"{len(ra)} columns vs {len(rb)}"
        for va, vb in zip(ra, rb, strict=True):
            if isinstance(va, float) and isinstance(vb, float):
                # sums of floats differ in the last bits between engines; a sum that lands on a
                # half cent can then round to neighbouring cents
                if not math.isclose(va, vb, rel_tol=1e-9, abs_tol=0.0101):
                    return f"{va!r} vs {vb!r} in {ra} / {rb}"
            elif va != vb:
                return f"{va!r} vs {vb!r} in {ra} / {rb}"
    return None


def test_the_query_corpus_gives_the_same_results(
    demo_db: Path, duck_runner: SqlRunner, spark_runner: SqlRunner,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queries = _reference_queries(demo_db)
    assert len(queries) >= 60
    different, refused, spark_ms = {}, {}, []
    for qid, sql in queries:
        want = duck_runner.run(sql)
        try:
            got = spark_runner.run(sql)
        except TamgaError as exc:
            refused[qid] = str(exc)
            continue
        spark_ms.append(got.elapsed_ms)
        why = same_rows(want.rows, got.rows)
        if why:
            different[qid] = why
    spark_ms.sort()
    with capsys.disabled():
        same = len(queries) - len(different) - len(refused)
        print(f"\n[spark] {len(queries)} reference queries: {same} same, {len(different)} "
              f"different, {len(refused)} refused; Spark p50 "
              f"{spark_ms[len(spark_ms) // 2]:.0f} ms")
    assert not different, different
    assert not refused, refused


@pytest.fixture(scope="module")
def assistants(demo_db: Path, spark_settings: Settings) -> Iterator[tuple[Assistant, Assistant]]:
    duck = Assistant(Settings(home=spark_settings.home), db_path=demo_db, engine="offline")
    spark = Assistant(spark_settings, db_path=demo_db, engine="offline")
    yield duck, spark
    # end the Spark sessions while the server still runs (the client says goodbye on exit)
    spark.contexts.close()
    duck.contexts.close()


def _questions(demo_db: Path) -> list[str]:
    data = yaml.safe_load((REPO / "benchmarks" / "questions_offline.yaml").read_text("utf-8"))
    con = db.connect(demo_db, read_only=True)
    try:
        names = bench().load_vars(con, data["vars"])
    finally:
        con.close()
    return [q["q"].format(**names) for q in data["questions"]]


def test_the_assistant_answers_the_same_on_both_backends(
    demo_db: Path, assistants: tuple[Assistant, Assistant], capsys: pytest.CaptureFixture[str]
) -> None:
    duck, spark = assistants
    questions = _questions(demo_db)
    assert len(questions) >= 60
    different: dict[str, str] = {}
    answered = 0
    spark_s: list[float] = []
    for question in questions:
        want = duck.ask(question, user="spark-test")
        started = time.perf_counter()
        got = spark.ask(question, user="spark-test")
        spark_s.append(time.perf_counter() - started)
        if want.sql != got.sql:
            different[question] = f"SQL differs: {want.sql} / {got.sql}"
            continue
        if (want.table is None) != (got.table is None):
            different[question] = "only one answer has a table"
            continue
        if want.table is not None and got.table is not None:
            why = same_rows(want.table.rows, got.table.rows)
            if why:
                different[question] = why
                continue
            answered += 1
        if _stamped(want.text) != _stamped(got.text):
            diff = difflib.unified_diff(want.text.splitlines(), got.text.splitlines(), lineterm="")
            different[question] = "text differs:\n" + "\n".join(list(diff)[2:12])
    spark_s.sort()
    with capsys.disabled():
        print(f"\n[spark] assistant: {len(questions)} questions, {answered} with a table, "
              f"{len(different)} different; Spark answer p50 {spark_s[len(spark_s) // 2]:.1f} s,"
              f" p95 {spark_s[int(len(spark_s) * 0.95)]:.1f} s")
    assert answered >= 60
    assert not different, different


def _engine(contexts: DataContexts) -> OfflineEngine:
    library = load_intents()
    context = contexts.get(Scope.everything())
    context.vocabulary = frozenset(library.vocabulary())
    return OfflineEngine(context, library=library)


def test_every_verified_intent_answers_the_same_on_both_backends(
    demo_db: Path, spark_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each SQL intent of the library, run with slots read from its own first phrasing (as
    tests/test_offline_engine.py does on DuckDB), on each backend."""
    duck_contexts = DataContexts(demo_db, Settings(home=spark_settings.home))
    spark_contexts = DataContexts(demo_db, spark_settings)
    duck, spark = _engine(duck_contexts), _engine(spark_contexts)
    con = db.connect(demo_db, read_only=True)
    try:
        values = _intent_values(con)
    finally:
        con.close()
    different: dict[str, str] = {}
    ran = 0
    for intent in load_intents():
        if intent.kind == "search":
            continue
        question = intent.examples[0].format(**values)
        answers = []
        for engine in (duck, spark):
            slots = engine.extractor.extract(clean_question(question))
            if "hs" in intent.required and slots.hs is None:
                slots = engine.extractor.extract(f"HS {values['chapter']}")
            answers.append(engine.execute(Plan("intent", question, intent=intent, slots=slots)))
        want, got = answers
        assert want.sql and "could not run" not in want.text, (intent.id, want.text)
        ran += 1
        if want.sql != got.sql:
            different[intent.id] = f"SQL differs: {got.text[:200]}"
        elif want.table is not None and got.table is not None and \
                (why := same_rows(want.table.rows, got.table.rows)):
            different[intent.id] = why
        elif _stamped(want.text) != _stamped(got.text):
            different[intent.id] = f"text differs: {got.text[:200]}"
    spark_contexts.close()
    duck_contexts.close()
    with capsys.disabled():
        print(f"\n[spark] {ran} verified intents run on both backends: "
              f"{ran - len(different)} same, {len(different)} different")
    assert ran >= 40
    assert not different, different


def _intent_values(con: Any) -> dict[str, str]:
    """Slot values for the intents' example phrasings, read from the data."""
    trader = con.execute(
        "SELECT t.name FROM declaration_items i JOIN traders t USING (trader_id) "
        "WHERE i.flow = 'import' GROUP BY t.trader_id, t.name "
        "ORDER BY sum(i.customs_value) DESC LIMIT 1").fetchone()[0]
    latest = con.execute("SELECT max(declaration_date) FROM declarations").fetchone()[0]
    chapter = con.execute("SELECT hs_chapter FROM declaration_items GROUP BY 1 "
                          "ORDER BY sum(customs_value) DESC LIMIT 1").fetchone()[0]
    country = con.execute(
        "SELECT c.name FROM declaration_items i JOIN countries c ON c.iso2 = i.origin_country "
        "GROUP BY 1 ORDER BY sum(i.customs_value) DESC LIMIT 1").fetchone()[0]
    office = con.execute("SELECT customs_office FROM declarations ORDER BY declaration_id "
                         "LIMIT 1").fetchone()[0]
    declaration = con.execute("SELECT declaration_id FROM declarations ORDER BY 1 "
                              "LIMIT 1").fetchone()[0]
    return {"trader": trader, "period": str(latest.year - 1), "country": country,
            "hs": f"chapter {chapter}", "goods": f"chapter {chapter}", "office": office,
            "n": "5", "declaration": declaration, "chapter": chapter}
