"""The real local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) end to end on the demo database.

Skipped only when the optional `local` extra (llama-cpp-python and the 22 model parts) is not
installed; `make test` installs it, so CI runs these tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from assistant import local_model

pytestmark = pytest.mark.slow

if not local_model.llama_cpp_installed() or not local_model.parts_installed():
    pytest.skip("the local model extra is not installed (make local-llm)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def model_file() -> Path:
    return local_model.assemble_model()


def test_assembled_model_is_the_official_file(model_file: Path) -> None:
    assert model_file.stat().st_size == local_model.MODEL_SIZE
    assert local_model.verify_model(model_file)
    assert local_model.status()["verified"] is True


def test_local_model_answers_from_the_sql_it_ran(demo_db: Path, model_file: Path) -> None:
    from assistant.llm import DirectSqlEngine, build_engine
    from assistant.offline import OfflineEngine
    from assistant.plan_llm import PlanFillEngine
    from tamga.settings import Settings

    offline = OfflineEngine.open(demo_db)
    runner = offline.runner
    settings = Settings(local_model=True, llm_base_url=None, llm_timeout_s=600,
                        home=model_file.parent.parent)
    first = build_engine(offline, settings)
    assert isinstance(first, PlanFillEngine) and first.name == "local"
    engine = first.fallback  # the raw-SQL strategy, for what a plan cannot express
    assert isinstance(engine, DirectSqlEngine) and engine.name == "local"

    answer = engine.answer("How many declarations were routed to the red channel?")

    reference = runner.run(
        "SELECT count(*) FROM declarations WHERE control_channel = 'red'").rows[0][0]
    assert answer.engine == "local"
    assert answer.sql, answer.text  # the model's SQL ran through the guarded runner
    assert answer.table is not None
    cells = [c for row in answer.table.rows for c in row if isinstance(c, int | float)]
    assert any(math.isclose(c, reference) for c in cells), (answer.sql, answer.table.rows)
    assert f"{reference:,}" in answer.text
    assert answer.warnings == []
    assert answer.timings["llm_ms"] > 0


def test_local_model_fills_a_plan_under_its_grammar(demo_db: Path, model_file: Path) -> None:
    """The local model writes a plan draft (constrained by the grammar made from its JSON
    schema); code compiles and runs it. The figure is checked against independent SQL."""
    from assistant.llm import build_engine
    from assistant.offline import OfflineEngine
    from assistant.plan_llm import PlanFillEngine
    from tamga.settings import Settings

    offline = OfflineEngine.open(demo_db)
    settings = Settings(local_model=True, llm_base_url=None, llm_timeout_s=600,
                        home=model_file.parent.parent)
    engine = build_engine(offline, settings)
    assert isinstance(engine, PlanFillEngine)
    latest = offline.runner.run("SELECT max(declaration_date) FROM declarations").rows[0][0]
    year = int(str(latest)[:4]) - 1
    question = f"What was the total duty paid on imports in {year}?"
    engine.restater = None  # this test is about the draft; the restatement has its own
    draft = engine.draft(question)
    assert draft is not None and draft.fits
    answer = engine.answer(question)
    reference = offline.runner.run(
        "SELECT round(sum(i.duty_amount), 2) FROM declarations d JOIN declaration_items i "
        f"ON i.declaration_id = d.declaration_id WHERE d.flow = 'import' AND "
        f"year(d.declaration_date) = {year}").rows[0][0]
    assert answer.engine == "local" and answer.intent == "plan:total", answer.text
    assert answer.table is not None
    cells = [c for row in answer.table.rows for c in row if isinstance(c, int | float)]
    assert any(math.isclose(c, reference, rel_tol=1e-9) for c in cells), answer.table.rows


def test_local_model_writes_plan_lines(demo_db: Path, model_file: Path) -> None:
    """The real model under the line grammar, with the shipped example bank: each reply is a
    well-formed line, and plain questions get the shape, measure and grouping they ask for."""
    from assistant.llm import build_engine
    from assistant.offline import OfflineEngine
    from assistant.plan_llm import PlanFillEngine, draft_line
    from tamga.settings import Settings

    offline = OfflineEngine.open(demo_db)
    settings = Settings(local_model=True, llm_base_url=None, llm_timeout_s=600,
                        home=model_file.parent.parent)
    engine = build_engine(offline, settings)
    assert isinstance(engine, PlanFillEngine) and engine.line
    asked = {
        "top 5 importers by duty paid in 2025": ("top", "duty", ["trader"]),
        "declarations per month in 2025": ("breakdown", "declarations", ["month"]),
        "When must an importer keep its records?": None,
    }
    for question, expected in asked.items():
        draft = engine.draft(question)
        assert draft is not None, question
        if expected is None:
            assert not draft.fits, draft_line(draft)
        else:
            assert (draft.shape, draft.measure, draft.by) == expected, draft_line(draft)


def test_local_model_restates_a_question_for_the_offline_rules(demo_db: Path,
                                                               model_file: Path) -> None:
    """The real model's plain restatement keeps the question's numbers, period and grouping,
    and the offline rules answer it (assistant/restate.py)."""
    from assistant.llm import build_engine
    from assistant.offline import OfflineEngine
    from assistant.plan_llm import PlanFillEngine
    from tamga.settings import Settings

    offline = OfflineEngine.open(demo_db)
    settings = Settings(local_model=True, llm_base_url=None, llm_timeout_s=600,
                        home=model_file.parent.parent)
    engine = build_engine(offline, settings)
    assert isinstance(engine, PlanFillEngine) and engine.restater is not None
    question = "2024 duty: which origin countries did we fork out the most on? give me five"
    assert not offline.plan(question).confident  # the rules alone decline it
    answer = engine.answer(question)
    restated = answer.slots.get("restated")
    assert restated and engine.restater.differs(question, restated) is None, answer.slots
    assert answer.engine == "local" and answer.understood is not None
    assert answer.understood.startswith("The model restated your question as")
    expected = offline.runner.run(
        "SELECT i.origin_country FROM declaration_items i JOIN declarations d ON "
        "d.declaration_id = i.declaration_id WHERE d.flow = 'import' AND "
        "year(d.declaration_date) = 2024 GROUP BY 1 ORDER BY sum(i.duty_amount) DESC "
        "LIMIT 5").rows
    assert answer.table is not None
    assert [r[0] for r in answer.table.rows[:5]] == [r[0] for r in expected]


def test_local_model_writes_the_questions_a_passage_answers(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tamga ingest --questions` with the real model: questions stored, embedded, searched."""
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from retrieval import questions as questions_module
    from retrieval.search import Searcher
    from tamga.settings import get_settings

    monkeypatch.setattr(questions_module, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv("TAMGA_HOME", str(model_file.parent.parent))
    get_settings.cache_clear()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "records.md").write_text(
        "# Keeping documents\n\n## Retention\n\nAn importer retains the invoices, contracts "
        "and transport documents of each entry for five years from the date of entry.\n")
    index = tmp_path / "index"
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["ingest", str(corpus), "--index", str(index),
                                     "--questions", "--limit", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Wrote questions for 1 passage." in result.stdout
    row = json.loads((index / questions_module.LOCAL_FILE).read_text().splitlines()[0])
    assert row["model"] == local_model.MODEL_FILE and row["source"] == "records.md"
    assert 1 <= len(row["questions"]) <= 5
    assert all(len(q) > 10 for q in row["questions"]), row
    searcher = Searcher(index, warm=False)
    assert searcher.questions is not None and searcher.questions.with_questions == 1
    assert searcher.search(row["questions"][0], k=1)[0].source == "records.md"
