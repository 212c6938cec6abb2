"""Conversations: follow-ups reuse the previous question's slots, each chat keeps its own state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant.conversation import (
    MAX_TURNS,
    Conversation,
    TurnState,
    content_words,
    looks_like_follow_up,
    merge_slots,
)
from assistant.core import Assistant
from assistant.offline import OfflineEngine
from tamga.answer import Answer
from tradedata.db import connect

JOIN = "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id"


@pytest.fixture(scope="module")
def assistant(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    engine = OfflineEngine.open(demo_db, None, cache_dir=tmp_path_factory.mktemp("cache"))
    return Assistant(db_path=demo_db, log_dir=tmp_path_factory.mktemp("logs"), offline=engine,
                     load_llm=False)


@pytest.fixture(scope="module")
def ref(demo_db: Path) -> Any:
    con = connect(demo_db, read_only=True)
    return lambda sql: [list(r) for r in con.execute(sql).fetchall()]


@pytest.fixture(scope="module")
def v(ref: Any) -> SimpleNamespace:
    from tools.traders import core_name

    latest = ref("SELECT max(declaration_date) FROM declarations")[0][0]
    names = ref("SELECT trader_id, name FROM traders")
    cores = [core_name(n) for _, n in names]
    unique = {t for (t, _), c in zip(names, cores, strict=True) if cores.count(c) == 1}
    ranked = [(t, n) for t, n in ref(
        f"SELECT d.trader_id, t.name {JOIN} JOIN traders t ON t.trader_id = d.trader_id "
        "WHERE d.flow = 'import' GROUP BY ALL ORDER BY sum(i.customs_value) DESC") if t in unique]
    origin = ref("SELECT i.origin_country, c.name FROM declaration_items i JOIN countries c ON "
                 "c.iso2 = i.origin_country GROUP BY ALL ORDER BY sum(i.customs_value) DESC")
    return SimpleNamespace(y=latest.year, ly=latest.year - 1, py=latest.year - 2,
                           t1=ranked[0][0], n1=ranked[0][1], t2=ranked[1][0], n2=ranked[1][1],
                           cc=origin[0][0], cn=origin[0][1], cc2=origin[1][0], cn2=origin[1][1])


def value(ref: Any, where: str) -> Any:
    return ref(f"SELECT round(sum(i.customs_value), 2) {JOIN} WHERE d.flow = 'import' AND "
               f"{where}")[0][0]


def first_value(answer: Answer) -> Any:
    assert answer.table is not None, answer.text
    columns = answer.table.columns
    return answer.table.rows[0][columns.index("value")]


def test_year_then_other_year_then_country_then_by_month(assistant: Assistant, ref: Any,
                                                         v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    first = assistant.ask(f"What did {v.n1} import in {v.ly}?", chat)
    assert first.intent == "trader_total"
    assert first_value(first) == value(ref, f"d.trader_id = '{v.t1}' AND year(d.declaration_date)"
                                            f" = {v.ly}")
    again = assistant.ask(f"and in {v.py}?", chat)
    assert again.intent == "trader_total"
    assert first_value(again) == value(ref, f"d.trader_id = '{v.t1}' AND "
                                            f"year(d.declaration_date) = {v.py}")
    narrowed = assistant.ask(f"only from {v.cn}", chat)
    where = (f"d.trader_id = '{v.t1}' AND year(d.declaration_date) = {v.py} AND "
             f"i.origin_country = '{v.cc}'")
    assert narrowed.intent == "trader_total"
    assert first_value(narrowed) == value(ref, where)
    monthly = assistant.ask("show it by month", chat)
    assert monthly.intent == "trader_trend" and monthly.table is not None
    expected = ref(f"SELECT strftime(d.declaration_date, '%Y-%m'), round(sum(i.customs_value), 2)"
                   f" {JOIN} WHERE d.flow = 'import' AND {where} GROUP BY 1 ORDER BY 1")
    assert [[r[0], r[2]] for r in monthly.table.rows] == expected


def test_what_about_their_duty_keeps_the_trader(assistant: Assistant, ref: Any,
                                                v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    origins = assistant.ask(f"{v.n2} imports by country of origin", chat)
    assert origins.intent == "trader_by_origin"
    duty = assistant.ask("what about their duty?", chat)
    assert duty.intent == "trader_duty" and duty.table is not None
    expected = ref(f"SELECT year(d.declaration_date), round(sum(i.duty_amount), 2) {JOIN} "
                   f"WHERE d.trader_id = '{v.t2}' AND d.flow = 'import' GROUP BY 1 ORDER BY 1")
    columns = duty.table.columns
    assert [[r[0], r[columns.index("duty")]] for r in duty.table.rows] == expected


def test_ranking_follow_ups_exports_top_n_chart_and_metric(assistant: Assistant, ref: Any,
                                                          v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    importers = assistant.ask(f"Top importers in {v.ly}", chat)
    assert importers.intent == "top_traders" and importers.table is not None
    exporters = assistant.ask("what about exporters?", chat)
    expected = ref(f"SELECT t.name, round(sum(i.customs_value), 2) {JOIN} JOIN traders t ON "
                   f"t.trader_id = d.trader_id WHERE d.flow = 'export' AND "
                   f"year(d.declaration_date) = {v.ly} GROUP BY d.trader_id, t.name "
                   "ORDER BY 2 DESC LIMIT 3")
    assert exporters.table is not None
    assert [[r[0], r[3]] for r in exporters.table.rows[:3]] == expected
    three = assistant.ask("just the top 3", chat)
    assert three.table is not None and [[r[0], r[3]] for r in three.table.rows] == expected
    chart = assistant.ask("as a chart", chat)
    assert chart.chart is not None and chart.chart["kind"] == "bar"
    assert chart.table is not None and chart.table.rows == three.table.rows
    by_duty = assistant.ask("ranked by duty", chat)
    assert by_duty.intent == "top_traders" and by_duty.table is not None
    duties = [r[by_duty.table.columns.index("duty")] for r in by_duty.table.rows]
    assert duties == sorted(duties, reverse=True) and len(duties) == 3


def test_switching_trader_keeps_the_view(assistant: Assistant, ref: Any,
                                         v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    assistant.ask(f"{v.n1}: chapters imported in {v.ly}", chat)
    other = assistant.ask(f"and for {v.n2}?", chat)
    assert other.intent == "trader_by_chapter" and other.table is not None
    expected = ref(f"SELECT left(i.hs_code, 2), round(sum(i.customs_value), 2) {JOIN} WHERE "
                   f"d.trader_id = '{v.t2}' AND d.flow = 'import' AND year(d.declaration_date) = "
                   f"{v.ly} GROUP BY 1")
    got = sorted([r[0], r[3]] for r in other.table.rows)
    assert got == sorted(expected)


def test_pronoun_takes_the_trader_of_the_previous_question(assistant: Assistant, ref: Any,
                                                           v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    assistant.ask(f"Give me a profile of {v.n1}", chat)
    answer = assistant.ask(f"What did they import from {v.cn2} in {v.ly}?", chat)
    assert answer.intent == "trader_total"
    assert first_value(answer) == value(ref, f"d.trader_id = '{v.t1}' AND i.origin_country = "
                                             f"'{v.cc2}' AND year(d.declaration_date) = {v.ly}")
    assert any(v.n1 in w for w in answer.warnings)


def test_a_new_full_question_does_not_inherit_the_trader(assistant: Assistant,
                                                         v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    assistant.ask(f"What did {v.n1} import in {v.ly}?", chat)
    national = assistant.ask(f"Which companies imported the most from {v.cn} in {v.py}?", chat)
    assert national.intent == "top_traders"
    assert v.t1 not in national.sql[0]


def test_conversations_do_not_share_state(assistant: Assistant, v: SimpleNamespace) -> None:
    a, b = assistant.new_conversation("a"), assistant.new_conversation("b")
    assistant.ask(f"What did {v.n1} import in {v.ly}?", a)
    assistant.ask(f"What did {v.n2} import in {v.ly}?", b)
    in_a = assistant.ask(f"and in {v.py}?", a)
    in_b = assistant.ask(f"and in {v.py}?", b)
    assert v.t1 in in_a.sql[0] and v.t2 not in in_a.sql[0]
    assert v.t2 in in_b.sql[0] and v.t1 not in in_b.sql[0]


def test_follow_up_without_a_previous_question_is_answered_alone(assistant: Assistant) -> None:
    answer = assistant.ask("and in 2023?", assistant.new_conversation())
    assert answer.engine == "offline"  # a new chat has nothing to build on: no crash


# -- the pieces ------------------------------------------------------------------------------------


def test_looks_like_follow_up(assistant: Assistant) -> None:
    ex = assistant.offline.extractor
    for question in ("and in 2023?", "only from China", "show it by month", "what about their "
                     "duty?", "as a chart", "top 5", "by weight"):
        slots = ex.extract(question)
        assert looks_like_follow_up(question, slots.masked, slots), question
    for question in ("Which companies imported the most coffee in 2024?",
                     "What are the main origin countries of chapter 85 imports?"):
        slots = ex.extract(question)
        assert not looks_like_follow_up(question, slots.masked, slots), question


def test_merge_slots_replaces_and_adds(assistant: Assistant) -> None:
    ex = assistant.offline.extractor
    before = ex.extract("imports from China in 2024 by month")
    after = merge_slots(before, ex.extract("and in 2023?"))
    assert after.period is not None and after.period.start.year == 2023
    assert after.country is not None and after.country.code == "CN" and after.grain == "month"
    assert before.period is not None and before.period.start.year == 2024  # not changed
    swapped = merge_slots(before, ex.extract("only from Vietnam"))
    assert [c.code for c in swapped.countries] == ["VN"]
    assert content_words(ex.extract("and in 2023 please").masked) == []


def test_conversation_record_history_reset() -> None:
    chat = Conversation(user="officer")
    assert chat.state is None and chat.history() == []
    chat.record("q1", Answer("a1", engine="offline"), TurnState("national_total", None))
    chat.record("q2", Answer("a2", engine="llm"), None)
    assert chat.state is not None and chat.state.intent_id == "national_total"
    assert chat.history() == [("q1", "a1"), ("q2", "a2")]
    assert [t["engine"] for t in chat.to_json()["turns"]] == ["offline", "llm"]
    for n in range(MAX_TURNS + 5):
        chat.record(f"q{n}", Answer("a", engine="offline"))
    assert len(chat.turns) == MAX_TURNS
    chat.reset()
    assert chat.state is None and not chat.turns


def test_a_short_question_naming_its_subject_is_not_a_follow_up(assistant: Assistant,
                                                                 v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    assistant.ask(f"What did {v.n1} import in {v.ly}?", chat)
    ranking = assistant.ask(f"Top importers in {v.py}", chat)
    assert ranking.intent == "top_traders" and v.t1 not in ranking.sql[0]


def test_the_first_one_refers_to_the_previous_table(assistant: Assistant,
                                                    v: SimpleNamespace) -> None:
    chat = assistant.new_conversation()
    ranking = assistant.ask(f"Top 5 importers in {v.ly}", chat)
    assert ranking.table is not None
    second_id = ranking.table.rows[1][ranking.table.columns.index("trader_id")]
    brief = assistant.ask("Brief me on the second one", chat)
    assert brief.intent == "trader_briefing"
    assert any(f"'{second_id}'" in sql for sql in brief.sql)


COMPARED_BY_PLAN = {"compare_periods", "trader_compare"}


@pytest.mark.slow
def test_every_suggested_follow_up_is_answered(assistant: Assistant, v: SimpleNamespace) -> None:
    """The follow-ups an answer offers work when asked next in the same chat."""
    import re

    from assistant.intents import load_intents

    fill = dict(assistant.offline._default_fill())
    fill["period"] = str(v.ly)
    for intent in load_intents():
        if intent.kind == "search" or not intent.follow_ups:
            continue
        question = next(e for e in intent.examples
                        if all(fill.get(n) for n in re.findall(r"\{(\w+)\}", e))).format(**fill)
        for suggestion in intent.follow_ups:
            chat = assistant.new_conversation()
            first = assistant.ask(question, chat)
            # comparisons are answered by a query plan (both values, change and % in one row)
            expected = "plan:compare" if intent.id in COMPARED_BY_PLAN else intent.id
            assert first.intent == expected, (question, first.intent)
            answer = assistant.ask(suggestion, chat)
            assert answer.sql and "could not run" not in answer.text, \
                (intent.id, suggestion, answer.text)
