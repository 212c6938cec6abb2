"""Tool intents of the offline engine: audit selection, risk scores and briefings.

Real demo database, real embeddings, the real risk tools; an officer's answers are checked
against the same tools run on a copy of the database that holds only the officer's office.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant.core import Assistant
from assistant.intents import TOOL_NAMES, IntentLibraryError, load_intents, parse_library
from assistant.offline import OfflineEngine
from assistant.tool_intents import TOOLS
from tamga.answer import Answer
from tamga.settings import get_settings
from tamga.sqltext import bind_known
from tools.access import UserStore
from tools.indicators import analysis_runner
from tools.sql import SqlRunner
from tools.trader_risk import audit_candidates, parse_period, trader_score
from tradedata.db import connect


@pytest.fixture(scope="module")
def engine(demo_db: Path, guidance_index: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> OfflineEngine:
    return OfflineEngine.open(demo_db, guidance_index, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def ref(demo_db: Path) -> Any:
    con = connect(demo_db, read_only=True)

    def run(sql: str, params: list[Any] | None = None) -> list[list[Any]]:
        return [list(r) for r in con.execute(sql, params or []).fetchall()]

    return run


@pytest.fixture(scope="module")
def v(ref: Any, demo_db: Path) -> SimpleNamespace:
    latest = ref("SELECT max(declaration_date) FROM declarations")[0][0]
    office = ref("SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) DESC, 1 "
                 "LIMIT 1")[0][0]
    other = ref("SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) DESC, 1 "
                "LIMIT 1 OFFSET 1")[0][0]
    runner = analysis_runner(demo_db)
    top = audit_candidates(runner, parse_period(str(latest.year - 1)), None, 1)[0]
    return SimpleNamespace(latest=latest, ly=latest.year - 1, office=office, other=other,
                           flagged_id=top.trader_id, flagged=top.name)


def _column(answer: Answer, name: str) -> list[Any]:
    assert answer.table is not None, answer.text
    k = answer.table.columns.index(name)
    return [row[k] for row in answer.table.rows]


def _fields(answer: Answer) -> dict[str, Any]:
    assert answer.table is not None and answer.table.columns == ["field", "value"], answer.text
    return {str(f): val for f, val in answer.table.rows}


# -- the library -------------------------------------------------------------------------------


def test_tool_intents_are_in_the_library_and_registry() -> None:
    library = load_intents()
    tools = {i.id: i.tool for i in library if i.kind == "tool"}
    assert tools == {"audit_selection": "audit_candidates", "trader_risk_score": "trader_score",
                     "trader_briefing": "trader_briefing", "period_briefing": "period_briefing"}
    assert set(TOOLS) == TOOL_NAMES


@pytest.mark.parametrize("extra, message", [
    ("  tool: drop_everything\n", "tool must be one of"),
    ("  tool: audit_candidates\n  sql: SELECT 1\n", "no SQL of its own"),
])
def test_a_bad_tool_intent_is_refused(extra: str, message: str) -> None:
    text = ("- id: x\n  title: X\n  description: X\n  scope: national\n  kind: tool\n"
            "  examples: [a, b, c, d, e]\n" + extra)
    with pytest.raises(IntentLibraryError, match=message):
        parse_library(text)


def test_bind_known_writes_literals() -> None:
    sql = "SELECT 1 WHERE a = $t AND b >= $start AND list_contains($ids, c) AND d = $missing"
    from datetime import date

    out = bind_known(sql, {"t": "O'Neil", "start": date(2024, 1, 1), "ids": ["A", "B"]})
    assert out == ("SELECT 1 WHERE a = 'O''Neil' AND b >= DATE '2024-01-01' AND "
                   "list_contains(['A', 'B'], c) AND d = $missing")


# -- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("question, intent", [
    ("Who should we audit next quarter?", "audit_selection"),
    ("Who should we audit at {office}?", "audit_selection"),
    ("Which traders are most worth auditing in {ly}?", "audit_selection"),
    ("Brief me on {flagged}", "trader_briefing"),
    ("Prepare a briefing on {flagged} for {ly}", "trader_briefing"),
    ("Brief me on October {ly}", "period_briefing"),
    ("supervisor briefing for last month", "period_briefing"),
    ("What is the risk score of {flagged}?", "trader_risk_score"),
    ("Which declarations of {flagged} look undervalued?", "trader_low_unit_values"),
    ("What came out of our audits so far?", "audit_outcomes"),
    ("Who is {flagged}?", "trader_profile"),
])
def test_questions_reach_the_tool_intents(engine: OfflineEngine, v: SimpleNamespace,
                                          question: str, intent: str) -> None:
    plan = engine.plan(question.format(**vars(v)))
    assert plan.kind == "intent" and plan.intent is not None, plan.kind
    assert plan.intent.id == intent
    assert plan.confident


# -- audit selection ---------------------------------------------------------------------------


def test_audit_selection_matches_the_tool_and_shows_its_sql(engine: OfflineEngine,
                                                            v: SimpleNamespace,
                                                            demo_db: Path) -> None:
    answer = engine.answer(f"Who should we audit at {v.office} in {v.ly}? top 5")
    assert answer.intent == "audit_selection"
    want = audit_candidates(analysis_runner(demo_db), parse_period(str(v.ly)), v.office, 5)
    assert want, "the demo data flags somebody at the busiest office"
    assert _column(answer, "trader_id") == [c.trader_id for c in want]
    assert _column(answer, "expected_revenue") == pytest.approx(
        [c.expected_revenue for c in want], abs=0.01)
    first = want[0]
    assert first.name in answer.text and f"{first.expected_revenue:,.0f}" in answer.text
    assert get_currency(demo_db) in answer.text and v.office in answer.text
    assert answer.chart is None or answer.chart["y"] == "expected_revenue"
    assert answer.suggestions and answer.sql
    # Every statement shown runs as shown (parameters written in).
    runner = SqlRunner(demo_db, timeout_s=60, row_cap=1_000_000)
    for sql in answer.sql:
        assert "$" not in sql.replace("'$", ""), sql
        runner.run(sql)


def get_currency(db: Path) -> str:
    with connect(db, read_only=True) as con:
        row = con.execute("SELECT value FROM dataset_info WHERE key = 'reporting_currency'"
                          ).fetchone()
    return str(row[0]) if row else "USD"


def test_next_quarter_ranks_on_the_last_twelve_months(engine: OfflineEngine,
                                                      v: SimpleNamespace) -> None:
    answer = engine.answer("Who should we audit next quarter?")
    assert answer.intent == "audit_selection" and answer.table is not None
    assert "last 12 months" in answer.text
    assert len(answer.table.rows) <= 10
    assert _column(answer, "rank") == list(range(1, len(answer.table.rows) + 1))


def test_audit_selection_follow_ups(engine: OfflineEngine, v: SimpleNamespace,
                                    demo_db: Path) -> None:
    from assistant.conversation import Conversation

    chat = Conversation(user="t")

    def ask(q: str) -> Answer:
        plan = engine.plan(q, chat)
        answer = engine.execute(plan)
        chat.record(q, answer, engine.state_of(plan))
        return answer

    runner = analysis_runner(demo_db)
    period = parse_period(str(v.ly))
    ask(f"Who should we audit in {v.ly}?")
    other = ask(f"and for {v.other}?")
    assert other.intent == "audit_selection"
    assert _column(other, "trader_id") == [c.trader_id for c in
                                           audit_candidates(runner, period, v.other, 10)]
    fewer = ask("only the top 3")
    assert _column(fewer, "trader_id") == [c.trader_id for c in
                                           audit_candidates(runner, period, v.other, 3)]
    brief = ask("Brief me on the first one")
    assert brief.intent == "trader_briefing"
    assert _fields(brief)["trader_id"] == _column(fewer, "trader_id")[0]


# -- an officer sees only the officer's office -------------------------------------------------


@pytest.fixture()
def officer(demo_db: Path, v: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Assistant]:
    monkeypatch.setenv("TAMGA_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    store = UserStore.from_settings(get_settings())
    store.add("ana", "a long enough password", "officer", [v.office])
    store.add("sam", "another long password", "supervisor")
    yield Assistant(db_path=demo_db, index_dir=tmp_path / "no-index", log_dir=tmp_path / "logs",
                    load_llm=False)
    get_settings.cache_clear()


def _office_only_copy(demo_db: Path, office: str, target: Path) -> Path:
    """A copy of the database with the declarations of one office only (and their traders)."""
    shutil.copy(demo_db, target)
    with connect(target) as con:
        con.execute("DELETE FROM declaration_items WHERE declaration_id IN (SELECT "
                    "declaration_id FROM declarations WHERE customs_office <> ?)", [office])
        con.execute("DELETE FROM declarations WHERE customs_office <> ?", [office])
        con.execute("DELETE FROM audits WHERE trader_id NOT IN "
                    "(SELECT trader_id FROM declarations)")
        con.execute("DELETE FROM traders WHERE trader_id NOT IN "
                    "(SELECT trader_id FROM declarations)")
        con.execute("CHECKPOINT")
    return target


def test_officer_audit_selection_sees_only_their_office(officer: Assistant, demo_db: Path,
                                                        v: SimpleNamespace,
                                                        tmp_path: Path) -> None:
    question = f"Who should we audit in {v.ly}?"
    scoped = officer.ask(question, user="ana", engine="offline")
    assert scoped.intent == "audit_selection" and scoped.table is not None, scoped.text
    # Computed on that office only: the same as the tool on a database holding nothing else.
    alone = analysis_runner(_office_only_copy(demo_db, v.office, tmp_path / "office.duckdb"))
    want = audit_candidates(alone, parse_period(str(v.ly)), None, 10)
    assert want
    assert _column(scoped, "trader_id") == [c.trader_id for c in want]
    assert _column(scoped, "duty_at_stake") == pytest.approx([c.duty_at_stake for c in want],
                                                             abs=0.01)
    with connect(demo_db, read_only=True) as con:
        at_office = {r[0] for r in con.execute(
            "SELECT DISTINCT trader_id FROM declarations WHERE customs_office = ?",
            [v.office]).fetchall()}
    assert set(_column(scoped, "trader_id")) <= at_office
    assert all(v.office in sql for sql in scoped.sql if "declarations" in sql)
    assert any("Scope" in w for w in scoped.warnings)

    national = officer.ask(question, user="sam", engine="offline")
    everywhere = audit_candidates(analysis_runner(demo_db), parse_period(str(v.ly)), None, 10)
    assert _column(national, "trader_id") == [c.trader_id for c in everywhere]
    assert _column(national, "duty_at_stake") != _column(scoped, "duty_at_stake")


def test_officer_cannot_brief_on_a_trader_of_another_office(officer: Assistant, ref: Any,
                                                            v: SimpleNamespace) -> None:
    outside = ref("SELECT t.name FROM traders t WHERE NOT EXISTS (SELECT 1 FROM declarations d "
                  "WHERE d.trader_id = t.trader_id AND d.customs_office = ?) AND EXISTS (SELECT 1 "
                  "FROM declarations d WHERE d.trader_id = t.trader_id) AND (SELECT count(*) "
                  "FROM traders u WHERE u.name = t.name) = 1 ORDER BY t.trader_id LIMIT 1",
                  [v.office])
    assert outside, "some trader never declares at the busiest office"
    answer = officer.ask(f"Brief me on {outside[0][0]}", user="ana", engine="offline")
    # The officer's look-ups do not know the trader: nothing runs, nothing about it is shown.
    assert answer.table is None and not answer.sql, answer.text
    assert answer.intent != "trader_briefing"


# -- risk score and briefings ------------------------------------------------------------------


def test_risk_score_of_a_trader(engine: OfflineEngine, v: SimpleNamespace, demo_db: Path) -> None:
    answer = engine.answer(f"What is the risk score of {v.flagged} in {v.ly}?")
    assert answer.intent == "trader_risk_score"
    want = trader_score(analysis_runner(demo_db), v.flagged_id, parse_period(str(v.ly)))
    fields = _fields(answer)
    assert fields["score"] == pytest.approx(want.score, abs=0.001)
    assert fields["duty_at_stake"] == pytest.approx(want.duty_at_stake, abs=0.01)
    assert f"{want.score:.2f}" in answer.text and want.reasons[0] in answer.text
    assert [r[1] for r in answer.tables[1].rows] == want.reasons


def test_trader_briefing_with_cited_rules(engine: OfflineEngine, v: SimpleNamespace,
                                          ref: Any) -> None:
    answer = engine.answer(f"Prepare a briefing on {v.flagged} for {v.ly}")
    assert answer.intent == "trader_briefing"
    assert "# Audit briefing:" in answer.text and "## Suggested audit focus" in answer.text
    fields = _fields(answer)
    declarations, value = ref(
        "SELECT count(DISTINCT d.declaration_id), round(sum(i.customs_value), 2) FROM "
        "declarations d JOIN declaration_items i USING (declaration_id) WHERE d.trader_id = ? "
        "AND d.flow = 'import' AND year(d.declaration_date) = ?", [v.flagged_id, v.ly])[0]
    assert fields["import_declarations"] == declarations
    assert fields["customs_value"] == pytest.approx(value, abs=0.01)
    assert fields["audits"] == ref("SELECT count(*) FROM audits WHERE trader_id = ?",
                                   [v.flagged_id])[0][0]
    assert f"{declarations:,} import declarations" in answer.text
    assert answer.citations, "a flagged trader's briefing cites the rules for its flags"
    for citation in answer.citations:
        assert citation.locator in answer.text and citation.source in answer.text
    assert answer.sql and any(f"'{v.flagged_id}'" in s for s in answer.sql)


def test_period_briefing(engine: OfflineEngine, v: SimpleNamespace, ref: Any) -> None:
    month = v.latest.replace(day=1)
    answer = engine.answer(f"Brief me on {month:%B %Y}")
    assert answer.intent == "period_briefing"
    assert f"# Period briefing: {month:%Y-%m}" in answer.text
    declarations = ref("SELECT count(*) FROM declarations WHERE flow = 'import' AND "
                       "strftime(declaration_date, '%Y-%m') = ?", [f"{month:%Y-%m}"])[0][0]
    assert answer.table is not None and answer.table.rows[0][:2] == [
        "import declarations", f"{declarations:,}"]
    assert f"{declarations:,} import declarations" in answer.text
    assert answer.sql


def test_period_briefing_needs_a_month_quarter_or_year(engine: OfflineEngine,
                                                       v: SimpleNamespace) -> None:
    answer = engine.answer(f"Supervisor briefing for the first half of {v.ly}")
    assert answer.intent == "period_briefing"
    assert not answer.sql and "month, quarter or year" in answer.text


def test_unknown_trader_briefing_says_so(engine: OfflineEngine) -> None:
    answer = engine.answer("Brief me on Zyxwvut Holdings Ltd")
    assert not answer.sql and answer.table is None
    assert "No trader named" in answer.text
