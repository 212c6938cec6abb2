"""The plan draft as one line (the local model's format): grammar, parsing, the example bank and
the engine with a scripted model that records its calls, on the real demo database."""

from __future__ import annotations

import importlib.util
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from assistant.offline import OfflineEngine
from assistant.plan_examples import Example, ExampleBank, default_bank, terms
from assistant.plan_llm import (
    EXAMPLES,
    PlanDraft,
    PlanFillEngine,
    draft_line,
    line_grammar,
    parse_line,
)
from assistant.slots import clean_question
from tamga.answer import Answer
from tamga.plan import PlanError, QueryPlan


def plan_from_line(offline: OfflineEngine, line: str, question: str) -> QueryPlan:
    """The plan the local model's `line` makes for `question` (no model is called)."""
    draft = parse_line(line)
    assert draft is not None, line
    return PlanFillEngine(ScriptedChat(), offline, line=True).to_plan(draft, question)


class RecordingFallback:
    """The engine after the plan filler (the SQL writer), recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def answer(self, question: str, conversation: Any = None) -> Answer:
        self.asked.append(question)
        return Answer(text="from the fallback", engine="local")


class ScriptedChat:
    """A chat function that replies from a script and records what it was asked."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, messages: list[dict[str, str]], max_tokens: int,
                 cancelled: threading.Event, constraint: Any) -> str:
        self.calls.append({"messages": messages, "max_tokens": max_tokens,
                           "constraint": constraint})
        return self.replies.pop(0)


@pytest.fixture(scope="module")
def offline(demo_db: Path) -> OfflineEngine:
    return OfflineEngine.open(demo_db)


def test_every_worked_example_survives_the_line_format() -> None:
    for question, fields in EXAMPLES:
        draft = PlanDraft.model_validate(fields)
        line = draft_line(draft)
        back = parse_line(line)
        assert back is not None, (question, line)
        if draft.fits:
            assert back.model_dump(exclude={"period", "vs"}) == draft.model_dump(
                exclude={"period", "vs"}), (question, line)
        else:
            assert line == "none" and not back.fits


@pytest.mark.parametrize("line", [
    "top bogus by trader", "by trader top duty", "top duty by planet", "top duty n 5 by trader",
    "top duty by trader n 0", "total duty above", "", "top  ", "total duty low low",
])
def test_malformed_lines_are_refused(line: str) -> None:
    assert parse_line(line) is None


def test_a_line_reads_every_part() -> None:
    draft = parse_line("change_ranking declarations by office quarter n 7 low count")
    assert draft is not None
    assert (draft.shape, draft.measure, draft.by, draft.n, draft.low, draft.count) == (
        "change_ranking", "declarations", ["office", "quarter"], 7, True, True)
    limit = parse_line("threshold customs_value by declaration above 2500000.5")
    assert limit is not None and limit.above == 2500000.5
    assert draft_line(limit) == "threshold customs_value by declaration above 2500000.50"


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama-cpp-python (the `local` extra) is not installed")
def test_the_grammar_compiles_for_llama_cpp() -> None:
    from llama_cpp import LlamaGrammar

    assert LlamaGrammar.from_string(line_grammar(), verbose=False) is not None
    for shapes, dims in ((frozenset({"total", "breakdown"}), frozenset()),
                         (frozenset({"total", "top"}), frozenset({"office", "month"}))):
        assert LlamaGrammar.from_string(line_grammar(shapes, dims), verbose=False) is not None


def test_a_question_narrows_the_grammar_to_what_its_words_support() -> None:
    grammar = line_grammar(frozenset({"total", "breakdown", "top"}), frozenset({"office"}))
    shapes = next(r for r in grammar.splitlines() if r.startswith("shape ::="))
    assert shapes == 'shape ::= "breakdown" | "total" | "top"'
    assert 'dim ::= "office"' in grammar
    no_groups = line_grammar(frozenset({"total"}), frozenset())
    assert "dim ::=" not in no_groups and "by?" not in no_groups
    # no limit without a threshold, no row count without a ranking
    assert "above?" not in grammar and "above?" in line_grammar(frozenset({"threshold"}))
    assert "n?" in grammar and "n?" not in no_groups


def test_traders_and_declarations_are_groupings_only_when_asked_for(
        offline: OfflineEngine) -> None:
    def dims(question: str) -> set[str]:
        question = clean_question(question)
        return offline.planner.cues(question, offline.extractor.extract(question)).dimensions

    assert "trader" not in dims("AEO traders: import declaration count, last quarter")
    assert "declaration" not in dims("value of export declarations at Colón Free Zone, ytd")
    assert "trader" in dims("which importers paid the most duty in 2025?")
    assert "trader" in dims("top 5 traders by VAT")
    assert "declaration" in dims("the largest declaration of 2025")
    assert "trader" in dims("importers with more than 3 red declarations in 2025")
    assert "month" not in dims("duty last month") and "month" in dims("weakest month for duty")


def test_the_bank_returns_the_nearest_examples_last() -> None:
    bank = ExampleBank([
        Example("duty paid per month", "breakdown duty by month"),
        Example("top importers by value", "top customs_value by trader n 10"),
        Example("new importers this year", "first_seen customs_value by trader"),
    ])
    near = bank.nearest("which importers were new in 2025?", k=2)
    assert near[-1].line == "first_seen customs_value by trader"
    assert len(near) == 2
    assert bank.nearest("zebra", k=3) == []
    assert terms("Importers' duties") == ["importer", "duty"]


def test_the_shipped_bank_is_well_formed() -> None:
    bank = default_bank()
    assert len(bank.examples) >= 150
    for example in bank.examples:
        assert parse_line(example.line) is not None, example


def test_the_engine_sends_the_grammar_and_nearest_examples(offline: OfflineEngine) -> None:
    chat = ScriptedChat("top duty by origin n 3")
    bank = ExampleBank([Example("biggest origins by duty", "top duty by origin n 10"),
                        Example("declarations per month", "breakdown declarations by month")])
    engine = PlanFillEngine(chat, offline, line=True, bank=bank, nearest=1)
    latest = offline.runner.run("SELECT max(declaration_date) FROM declarations").rows[0][0]
    year = int(str(latest)[:4]) - 1
    answer = engine.answer(f"Which three origins paid the most duty in {year}?")

    call = chat.calls[0]
    grammar = call["constraint"]  # narrowed to what the question's words support
    assert '"top"' in grammar and '"origin"' in grammar and call["max_tokens"] <= 32
    assert '"first_seen"' not in grammar and '"vs_peers"' not in grammar
    assert '"seller"' not in grammar
    messages = call["messages"]
    assert messages[-3:] == [
        {"role": "user", "content": "biggest origins by duty"},
        {"role": "assistant", "content": "top duty by origin n 10"},
        {"role": "user", "content": f"Which three origins paid the most duty in {year}?"}]
    assert any(m["content"] == "top declarations by trader n 5" for m in messages)  # fixed
    expected = offline.runner.run(
        "SELECT i.origin_country, round(sum(i.duty_amount), 2) FROM declarations d "
        "JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        f"WHERE d.flow = 'import' AND year(d.declaration_date) = {year} "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 3").rows
    assert answer.intent == "plan:top" and answer.table is not None
    cols = answer.table.columns
    assert [[r[cols.index("origin")], r[cols.index("duty")]] for r in answer.table.rows] \
        == expected


def test_warm_evaluates_the_fixed_prefix_once(offline: OfflineEngine) -> None:
    chat = ScriptedChat("total customs_value")
    engine = PlanFillEngine(chat, offline, line=True)
    engine.warm()
    assert chat.calls[0]["max_tokens"] == 1
    assert chat.calls[0]["messages"][:-1] == engine.prefix()


def test_a_time_grouping_over_two_named_years_spans_both(offline: OfflineEngine) -> None:
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    draft = parse_line("breakdown customs_value by year transport_mode")
    assert draft is not None
    plan = engine.to_plan(draft, "import value per year and transport mode, 2024 and 2025")
    year_2025 = offline.extractor.extract("2025").periods[0]
    assert plan.period is not None
    assert (plan.period.start.isoformat(), plan.period.end) == ("2024-01-01", year_2025.end)
    assert plan.dimensions == ["year", "transport_mode"]


def test_one_value_of_the_grouping_is_not_kept_as_a_filter(offline: OfflineEngine) -> None:
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    question = "how often did AEO traders go red compared with non-AEO importers in 2025?"
    draft = parse_line("compare red_share by aeo_status")  # what the local model wrote
    assert draft is not None
    plan = engine.to_plan(draft, question)
    assert plan.shape == "breakdown" and plan.compare_to is None  # groups, not periods
    assert plan.dimensions == ["aeo"]  # "non-AEO": a yes/no contrast
    assert not [f for f in plan.filters if f.dimension in ("aeo", "aeo_status")]
    answer = offline.run_query(plan)
    assert answer.table is not None and len(answer.table.rows) == 2


def test_none_for_a_question_about_named_data_is_its_plain_figure(
        offline: OfflineEngine) -> None:
    """A small model calls filter-heavy questions "not about the data"; the question names a
    period and filters and no rule word, so its plain figure is answered from a plan. A rule
    question it calls "none" still goes on."""
    fallback = RecordingFallback()
    engine = PlanFillEngine(ScriptedChat("none", "none"), offline, line=True, fallback=fallback)
    answer = engine.answer("value under procedure 4000 with incoterm CIF, 2024")
    assert answer.intent == "plan:total" and fallback.asked == []
    expected = offline.runner.run(
        "SELECT round(sum(i.customs_value), 2) FROM declarations d JOIN declaration_items i "
        "ON i.declaration_id = d.declaration_id WHERE d.flow = 'import' AND d.incoterm = 'CIF' "
        "AND d.procedure_code = '4000' AND year(d.declaration_date) = 2024").rows[0][0]
    assert answer.table is not None and answer.table.rows[0][0] == expected
    rule = "Must an importer keep the invoices of its 2024 CIF entries?"
    engine.answer(rule)
    assert fallback.asked == [rule]


def test_a_line_that_does_not_parse_goes_to_the_fallback(offline: OfflineEngine) -> None:
    fallback = RecordingFallback()
    engine = PlanFillEngine(ScriptedChat("top"), offline, line=True, fallback=fallback)
    answer = engine.answer("top what?")
    assert fallback.asked == ["top what?"]
    assert any("did not hold" in w for w in answer.warnings)


def test_a_total_keeps_its_filters_when_the_model_adds_a_grouping(
        offline: OfflineEngine) -> None:
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    draft = parse_line("total vat by hs_chapter n 10")
    assert draft is not None
    plan = engine.to_plan(draft, "How much VAT was paid on chapter 87 imports in 2025?")
    assert plan.shape == "total" and plan.dimensions == []
    assert [(f.dimension, f.values) for f in plan.filters] == [("hs_chapter", ["87"])]


def test_a_comparison_of_periods_stays_one(offline: OfflineEngine) -> None:
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    draft = parse_line("compare duty by origin")
    assert draft is not None
    plan = engine.to_plan(draft, "duty by origin in 2025 compared with the previous year")
    assert plan.shape == "compare" and plan.compare_to is not None
    assert plan.compare_to.end <= plan.period.start if plan.period else False


def test_a_measure_named_in_words_wins_over_the_model(offline: OfflineEngine) -> None:
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    wrong = parse_line("top customs_value by trader n 5")  # the model ignored "VAT"
    assert wrong is not None
    plan = engine.to_plan(wrong, "top five VAT payers in 2025")
    assert plan.measures == ["vat"]
    limit = parse_line("threshold customs_value by declaration above 5000000")
    assert limit is not None  # in a threshold the words name what is counted: kept
    plan = engine.to_plan(limit, "How many import declarations above 5,000,000 in 2025?")
    assert plan.measures == ["customs_value"] and plan.dimensions == ["declaration"]


def test_a_plan_that_does_not_hold_is_corrected_once(offline: OfflineEngine) -> None:
    chat = ScriptedChat("share customs_value", "total customs_value")  # a share of what?
    engine = PlanFillEngine(chat, offline, line=True)
    answer = engine.answer("How much was imported in 2025?")
    assert len(chat.calls) == 2
    retry = chat.calls[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "share customs_value"}
    assert "cannot be answered" in retry[-1]["content"] and "share" in retry[-1]["content"]
    assert answer.intent == "plan:total" and answer.slots["line"] == "total customs_value"
    expected = offline.runner.run(
        "SELECT round(sum(i.customs_value), 2) FROM declarations d JOIN declaration_items i "
        "ON i.declaration_id = d.declaration_id WHERE d.flow = 'import' "
        "AND year(d.declaration_date) = 2025").rows[0][0]
    assert answer.table is not None and answer.table.rows[0][0] == expected


def test_two_plans_that_do_not_hold_go_to_the_fallback_with_both_reasons(
        offline: OfflineEngine) -> None:
    class Fallback:
        def answer(self, question: str, conversation: Any = None) -> Any:
            from tamga.answer import Answer

            return Answer(text="from the SQL writer", engine="local")

    chat = ScriptedChat("share customs_value", "share duty")  # a share of what, twice
    engine = PlanFillEngine(chat, offline, line=True, fallback=Fallback())
    answer = engine.answer("What share of the 2025 imports?")
    assert len(chat.calls) == 2 and answer.text == "from the SQL writer"
    warning = " ".join(answer.warnings)
    assert warning.count("share needs the part") == 2 and "; then " in warning


def test_a_shape_the_question_has_no_words_for_is_sent_back(offline: OfflineEngine) -> None:
    """A small model answers "how many declarations did X lodge" with a threshold or a list
    of newcomers; the question has no number to exceed and no word for "new"."""
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    question = "how many import decs were lodged in 2025"
    for line in ("threshold declarations by seller count above 1000000",
                 "first_seen customs_value by seller", "vs_peers customs_value"):
        draft = parse_line(line)
        assert draft is not None
        with pytest.raises(PlanError, match="no words asking for"):
            engine.to_plan(draft, question, strict=True)
        plan = engine.to_plan(draft, question)  # after the one correction: the plain reading
        assert plan.shape == "total" and plan.dimensions == [], line
    chat = ScriptedChat("first_seen declarations by seller", "total declarations")
    answer = PlanFillEngine(chat, offline, line=True).answer(question)
    assert "no words asking for newcomers" in chat.calls[1]["messages"][-1]["content"]
    expected = offline.runner.run(
        "SELECT count(DISTINCT declaration_id) FROM declarations WHERE flow = 'import' AND "
        "year(declaration_date) = 2025").rows[0][0]
    assert answer.intent == "plan:total" and answer.table is not None
    assert answer.table.rows[0][0] == expected


def test_the_question_settles_groupings_rows_direction_and_threshold(
        offline: OfflineEngine) -> None:
    plan_of = partial(plan_from_line, offline)

    # a grouping the question does not name is dropped
    plan = plan_of("breakdown duty by office month", "duty collected per office, last qtr")
    assert plan.dimensions == ["office"] and plan.period is not None
    # "top 3" and "gains" are the question's, whatever n and order the model wrote
    plan = plan_of("change_ranking declarations by office n 5 low",
                   "biggest gains in declaration count by office, Q1 2025 to Q2 2025 - top 3")
    assert (plan.n, plan.order) == (3, "desc")
    plan = plan_of("top customs_value by origin n 4 low", "the 4 smallest origins in 2025")
    assert plan.shape == "bottom"
    # the number to exceed and what it counts, as the question says them
    plan = plan_of("threshold customs_value by trader above 1000000",
                   "importers with more than 3 red declarations in 2025")
    assert plan.threshold is not None
    assert (plan.threshold.measure, plan.threshold.value) == ("declarations", 3.0)
    # "which are new" lists them; only "how many" counts
    plan = plan_of("first_seen customs_value by origin count",
                   "new origins for imports in 2025?")
    assert plan.shape == "first_seen" and not plan.count_only
    # the part of a share is not also its grouping
    plan = plan_of("share duty by hs_chapter", "chapter 02: what % of all duty in 2025?")
    assert plan.share_of is not None and plan.dimensions == []
    # a share measure is itself the share: the related party share of chapter 02
    plan = plan_of("share customs_value by origin n 10",
                   "ch. 02 imports 2025: how much (in %) was bought from related sellers?")
    assert (plan.shape, plan.measures, plan.dimensions) == ("total", ["related_party_share"], [])
    assert [f.values for f in plan.filters if f.dimension == "hs_chapter"] == [["02"]]


def test_the_question_restores_the_shape_and_groupings_it_states(
        offline: OfflineEngine) -> None:
    plan_of = partial(plan_from_line, offline)

    plan = plan_of("total duty", "duty collected per office, last qtr")
    assert (plan.shape, plan.dimensions) == ("breakdown", ["office"])
    plan = plan_of("breakdown declarations by month channel",
                   "2025 import entries by transport mode and by channel (green/yellow/red)")
    assert sorted(plan.dimensions) == ["channel", "transport_mode"]
    plan = plan_of("top declarations by office n 3 low",
                   "biggest gains in declaration count by office, Q1 2025 to Q2 2025 - top 3")
    assert (plan.shape, plan.n, plan.order) == ("change_ranking", 3, "desc")
    plan = plan_of("top declarations by trader", "Who went red over 3 times in 2025? show "
                                                 "trader and count")
    assert plan.shape == "threshold" and plan.threshold is not None
    assert (plan.threshold.measure, plan.threshold.value) == ("declarations", 3.0)
    # a number in money is not a count of declarations, whatever the model counted
    plan = plan_of("threshold declarations by office above 5000000",
                   "# of entries over 500,000 in Q2 2025")
    assert plan.threshold is not None and plan.threshold.measure == "customs_value"
    assert plan.count_only and plan.dimensions == ["declaration"]
    # a count the question has no word for is the value, as the rules read it
    plan = plan_of("top declarations by seller n 3", "list the top three sellers invoicing "
                                                      "importers in 2025")
    assert plan.measures == ["customs_value"]
    plan = plan_of("top declarations by office n 3", "the 3 busiest offices in 2025")
    assert plan.measures == ["declarations"]
    # a grouping by flow shows both flows
    plan = plan_of("breakdown declarations by channel flow",
                   "Number of declarations per control channel and flow in 2025")
    assert plan.flow == "both" and sorted(plan.dimensions) == ["channel", "flow"]
    # this year against the same part of last year
    plan = plan_of("compare duty", "duty this year vs same period last year")
    assert plan.period is not None and plan.compare_to is not None
    assert plan.period.end.replace(year=2000) == plan.compare_to.end.replace(year=2000)


# -- the model restates the question for the offline rules (assistant/restate.py) --------------

DECLINED = "origins ranked on duty paid in 2024, the blorp way"


def restating_engine(offline: OfflineEngine, chat: ScriptedChat,
                     fallback: RecordingFallback | None = None) -> PlanFillEngine:
    """The local model's plan filler with a restater, both on one scripted chat."""
    from assistant.restate import Restater

    return PlanFillEngine(chat, offline, line=True, fallback=fallback, bank=default_bank(),
                          restater=Restater(chat, offline))


def test_a_faithful_restatement_is_answered_by_the_offline_rules(
        offline: OfflineEngine) -> None:
    from assistant.restate import RESTATE_GRAMMAR

    assert not offline.plan(DECLINED).confident  # the rules alone decline the question
    chat = ScriptedChat("Which origin countries paid the most import duty in 2024?")
    answer = restating_engine(offline, chat).answer(DECLINED)
    assert len(chat.calls) == 1 and chat.calls[0]["constraint"] == RESTATE_GRAMMAR
    assert chat.calls[0]["messages"][-1]["content"] == DECLINED
    assert answer.engine == "local" and answer.sql, answer.text
    assert answer.understood is not None and answer.understood.startswith(
        'The model restated your question as "Which origin countries')
    expected = offline.runner.run(
        "SELECT i.origin_country FROM declaration_items i JOIN declarations d ON "
        "d.declaration_id = i.declaration_id WHERE d.flow = 'import' AND "
        "year(d.declaration_date) = 2024 GROUP BY 1 ORDER BY sum(i.duty_amount) DESC "
        "LIMIT 1").rows[0][0]
    assert answer.table is not None and answer.table.rows[0][0] == expected


def test_a_restatement_that_names_another_country_is_dropped(offline: OfflineEngine) -> None:
    question = "zonk: imports from China in 2024"
    chat = ScriptedChat("What was the customs value of imports from Japan in 2024?",
                        "total customs_value")
    answer = restating_engine(offline, chat).answer(question)
    assert len(chat.calls) == 2  # the restatement, then the line draft
    assert chat.calls[1]["messages"][-1]["content"] == question  # the officer's own words
    assert answer.slots["restatement_dropped"] == "it names other values than the question"
    assert answer.plan is not None and answer.plan["filters"][0]["values"] == ["CN"]
    assert answer.understood is not None and "restated" not in answer.understood


def test_after_a_restatement_the_rules_decline_the_draft_reads_the_officers_words(
        offline: OfflineEngine) -> None:
    restated = "Which origin countries paid the most import duty in 2024, blorp?"
    chat = ScriptedChat(restated, "top duty by origin")
    answer = restating_engine(offline, chat).answer(DECLINED)
    draft_messages = chat.calls[1]["messages"]
    assert draft_messages[-1]["content"] == DECLINED
    engine = restating_engine(offline, ScriptedChat())
    # the fixed prefix, three nearest examples (question and line each), the question
    assert len(draft_messages) == len(engine.prefix()) + 2 * 3 + 1
    assert answer.slots["restated"] == restated
    assert answer.slots["restatement_dropped"] == "the offline rules do not read it either"
    assert answer.plan is not None and answer.plan["shape"] == "top"


def test_a_question_the_rules_read_is_not_restated(offline: OfflineEngine) -> None:
    question = "Which origin countries paid the most import duty in 2024?"
    assert offline.plan(question).confident
    chat = ScriptedChat("top duty by origin")
    answer = restating_engine(offline, chat).answer(question)
    assert len(chat.calls) == 1 and chat.calls[0]["messages"][-1]["content"] == question
    assert "restated" not in answer.slots and answer.plan is not None


@pytest.mark.parametrize(("question", "restated", "why"), [
    ("top 5 origins by duty in 2024",
     "Which 5 origin countries paid the most import duty in 2024?", None),
    ("top five origins by duty in 2024",
     "Which 5 origin countries paid the most import duty in 2024?", None),
    ("top 5 origins by duty in 2024",
     "Which 10 origin countries paid the most import duty in 2024?", "numbers"),
    ("imports from China in 2024", "What were imports from Japan in 2024?", "other values"),
    ("imports from China in 2024", "What were imports from China in 2023?", "other values"),
    ("import value in 2024 by dispatch country",
     "What was the import value in 2024 by country?", "dispatch_country"),
    ("imports in 2024", "What were the imports of heading 300 in 2024?", "nomenclature"),
])
def test_what_a_restatement_must_keep(offline: OfflineEngine, question: str, restated: str,
                                      why: str | None) -> None:
    from assistant.restate import Restater

    said = Restater(ScriptedChat(), offline).differs(question, restated)
    assert (said is None) if why is None else (said is not None and why in said), said


def test_new_importers_by_sector_are_traders_grouped_by_sector(offline: OfflineEngine) -> None:
    """A line "first_seen ... by sector" for new importers per sector counts the traders by
    their sector, as the offline rules do, not the sectors first seen that year."""
    engine = PlanFillEngine(ScriptedChat(), offline, line=True)
    draft = parse_line("first_seen customs_value by sector count")
    assert draft is not None
    plan = engine.to_plan(draft, "how many new importers did each sector gain in 2024?")
    assert plan.shape == "first_seen" and plan.dimensions == ["trader", "sector"]
    assert plan.count_only
