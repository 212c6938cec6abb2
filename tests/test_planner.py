"""The offline planner: officers' compositional questions become plans whose answers match SQL
written here; impossible requests get a clear message; verified intents keep the questions
they answer; `tamga ask --json` carries the plan and the sentence that reads it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.offline import OfflineEngine
from tamga.answer import Answer

IMPORTS = ("FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
           "WHERE d.flow = 'import'")


@pytest.fixture(scope="module")
def engine(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> OfflineEngine:
    return OfflineEngine.open(demo_db, cache_dir=tmp_path_factory.mktemp("cache"))


def ref(engine: OfflineEngine, sql: str) -> list[list[Any]]:
    return engine.runner.run(sql).rows


def column(answer: Answer, name: str) -> list[Any]:
    assert answer.table is not None, answer.text
    return [r[answer.table.columns.index(name)] for r in answer.table.rows]


def test_growth_ranking_this_year(engine: OfflineEngine) -> None:
    answer = engine.answer("Which traders had the biggest increase in duty paid this year?")
    assert answer.intent == "plan:change_ranking", answer.text
    assert answer.plan is not None and answer.plan["measures"] == ["duty"]
    period, before = answer.plan["period"], answer.plan["compare_to"]
    assert period["start"][:4] == "2025" and before["start"][:4] == "2024"
    assert period["end"][5:] == before["end"][5:]  # like for like: the same span of each year
    got = column(answer, "duty_change")
    expected = ref(engine, f"SELECT round(sum(i.duty_amount) FILTER (WHERE d.declaration_date "
                           f">= '{period['start']}' AND d.declaration_date < '{period['end']}') - "
                           f"sum(i.duty_amount) FILTER (WHERE d.declaration_date >= "
                           f"'{before['start']}' AND d.declaration_date < '{before['end']}'), 2) "
                           f"AS c {IMPORTS} GROUP BY d.trader_id ORDER BY c DESC NULLS LAST "
                           "LIMIT 10")
    assert got == [r[0] for r in expected]
    assert answer.understood is not None and answer.understood.startswith("I understood: the 10")


def test_quarter_against_the_previous_quarter(engine: OfflineEngine) -> None:
    answer = engine.answer("Give me a summary of imports last quarter compared to the "
                           "previous quarter")
    assert answer.intent == "plan:compare", answer.text
    assert answer.plan is not None
    assert answer.plan["period"]["name"] == "Q3 2025"
    assert answer.plan["compare_to"]["name"] == "Q2 2025"
    (a, b), = ref(engine, f"SELECT round(sum(i.customs_value) FILTER (WHERE quarter("
                          "d.declaration_date) = 2), 2), round(sum(i.customs_value) FILTER "
                          f"(WHERE quarter(d.declaration_date) = 3), 2) {IMPORTS} AND "
                          "year(d.declaration_date) = 2025")
    assert answer.table is not None and answer.table.rows[0][:2] == [a, b]
    assert f"{b:,.0f}" in answer.text


@pytest.mark.parametrize(("question", "shape", "sql"), [
    ("What share of imports in 2024 came from China?", "share",
     "SELECT round(100.0 * sum(i.customs_value) FILTER (WHERE i.origin_country = 'CN') / "
     f"sum(i.customs_value), 1) {IMPORTS} AND year(d.declaration_date) = 2024"),
    ("Which month had the highest import value in 2024?", "argmax",
     "SELECT strftime(d.declaration_date, '%Y-%m') {IMPORTS} AND year(d.declaration_date) = 2024 "
     "GROUP BY 1 ORDER BY sum(i.customs_value) DESC LIMIT 1".replace("{IMPORTS}", IMPORTS)),
    ("How many declarations came by air in 2024?", "total",
     f"SELECT count(DISTINCT d.declaration_id) {IMPORTS} AND d.transport_mode = 'air' AND "
     "year(d.declaration_date) = 2024"),
    ("How many declarations above USD 100,000 were there in 2024?", "threshold",
     f"SELECT count(*) FROM (SELECT d.declaration_id {IMPORTS} AND year(d.declaration_date) = "
     "2024 GROUP BY 1 HAVING sum(i.customs_value) > 100000)"),
    ("How many distinct traders declared at each office in 2024?", "breakdown",
     f"SELECT count(DISTINCT d.trader_id) {IMPORTS} AND year(d.declaration_date) = 2024 "
     "GROUP BY d.customs_office ORDER BY 1 DESC LIMIT 1"),
    ("Effective duty rate by HS chapter in 2024", "breakdown",
     f"SELECT round(100.0 * sum(i.duty_amount) / sum(i.customs_value), 2) {IMPORTS} AND "
     "year(d.declaration_date) = 2024 GROUP BY left(i.hs_code, 2) ORDER BY 1 DESC LIMIT 1"),
    ("Compare the red channel rate of AEO and non-AEO traders in 2024", "breakdown",
     "SELECT round(100.0 * count(DISTINCT d.declaration_id) FILTER (WHERE d.control_channel = "
     "'red') / count(DISTINCT d.declaration_id), 2) FROM declarations d JOIN declaration_items i "
     "ON i.declaration_id = d.declaration_id JOIN traders t ON t.trader_id = d.trader_id WHERE "
     "d.flow = 'import' AND year(d.declaration_date) = 2024 GROUP BY t.aeo_status ORDER BY 1 "
     "DESC LIMIT 1"),
    ("The 3 incoterms used least in 2024", "bottom",
     f"SELECT count(DISTINCT d.declaration_id) {IMPORTS} AND year(d.declaration_date) = 2024 "
     "GROUP BY d.incoterm ORDER BY 1 ASC LIMIT 1"),
    ("How many audits opened in 2024 ended in each outcome?", "breakdown",
     "SELECT count(*) FROM audits WHERE year(opened_on) = 2024 GROUP BY outcome ORDER BY 1 DESC "
     "LIMIT 1"),
    ("How many rail import declarations did each office handle in 2024?", "breakdown",
     f"SELECT count(DISTINCT d.declaration_id) {IMPORTS} AND d.transport_mode = 'rail' AND "
     "year(d.declaration_date) = 2024 GROUP BY d.customs_office ORDER BY 1 DESC LIMIT 1"),
    ("Did we open more audits in 2024 than in 2023?", "compare",
     "SELECT count(*) FILTER (WHERE year(opened_on) = 2024) - count(*) FILTER (WHERE "
     "year(opened_on) = 2023) FROM audits"),
])
def test_compositional_questions(engine: OfflineEngine, question: str, shape: str,
                                 sql: str) -> None:
    answer = engine.answer(question)
    assert answer.intent == f"plan:{shape}", (answer.intent, answer.text)
    expected = ref(engine, sql)[0][0]
    assert answer.table is not None
    cells = [c for c in answer.table.rows[0] if c is not None]
    assert any(c == expected for c in cells), (cells, expected)
    assert answer.sql and answer.understood


def test_set_difference_and_new_traders(engine: OfflineEngine) -> None:
    answer = engine.answer("Which traders imported in 2023 but not in 2024?")
    assert answer.intent == "plan:set_difference", answer.text
    expected = {r[0] for r in ref(engine, f"SELECT d.trader_id {IMPORTS} GROUP BY 1 HAVING "
                                          "count(*) FILTER (WHERE year(d.declaration_date) = "
                                          "2023) > 0 AND count(*) FILTER (WHERE "
                                          "year(d.declaration_date) = 2024) = 0")}
    assert set(column(answer, "trader")) == expected


def test_fall_the_most_ranks_the_largest_drops_first(engine: OfflineEngine) -> None:
    answer = engine.answer("Which 3 origin countries saw import duty fall the most between "
                           "2023 and 2024?")
    assert answer.intent == "plan:change_ranking", (answer.intent, answer.text)
    expected = ref(engine, "SELECT i.origin_country, coalesce(sum(i.duty_amount) FILTER (WHERE "
                           "year(d.declaration_date) = 2024), 0) - coalesce(sum(i.duty_amount) "
                           "FILTER (WHERE year(d.declaration_date) = 2023), 0) AS c "
                           f"{IMPORTS} GROUP BY 1 ORDER BY c ASC LIMIT 3")
    assert column(answer, "duty_change") == pytest.approx([r[1] for r in expected], abs=0.01)
    assert all(change < 0 for change in column(answer, "duty_change"))


@pytest.mark.parametrize("question", [
    "5 offices with the highest red-or-yellow share in 2024",
    "top five offices by inspection rate (red + yellow) in 2024",
])
def test_red_or_yellow_is_the_checked_share(engine: OfflineEngine, question: str) -> None:
    answer = engine.answer(question)  # a "share" by a rate ranks by the rate, as "top" does
    assert answer.intent in ("plan:top", "plan:share"), (answer.intent, answer.text)
    assert answer.plan is not None and answer.plan["measures"] == ["checked_share"]
    expected = ref(engine, "SELECT d.customs_office, round(100.0 * count(DISTINCT "
                           "d.declaration_id) FILTER (WHERE d.control_channel IN ('red', "
                           f"'yellow')) / count(DISTINCT d.declaration_id), 2) {IMPORTS} AND "
                           "year(d.declaration_date) = 2024 GROUP BY 1 ORDER BY 2 DESC LIMIT 5")
    assert column(answer, "checked_share") == [r[1] for r in expected]


def test_without_aeo_lists_the_uncertified(engine: OfflineEngine) -> None:
    """The negation is kept: 'without AEO status' lists uncertified traders, not AEO holders."""
    answer = engine.answer("The five largest importers without AEO status in 2024")
    assert answer.intent == "plan:top", (answer.intent, answer.text)
    expected = ref(engine, "SELECT d.trader_id FROM declarations d JOIN declaration_items i ON "
                           "i.declaration_id = d.declaration_id JOIN traders t ON t.trader_id = "
                           "d.trader_id WHERE d.flow = 'import' AND t.aeo_status = 'none' AND "
                           "year(d.declaration_date) = 2024 GROUP BY 1 ORDER BY "
                           "sum(i.customs_value) DESC LIMIT 5")
    assert column(answer, "trader") == [r[0] for r in expected]
    assert engine.answer("Which AEO traders import the most in 2024?").intent == "aeo_traders"


@pytest.mark.parametrize(("question", "words"), [
    ("Top 10 importers in 2030", "ends on"),
    ("Top -3 importers in 2024", "between 1 and 100"),
    ("Top 0 traders by duty in 2024", "between 1 and 100"),
])
def test_impossible_requests_get_a_clear_message(engine: OfflineEngine, question: str,
                                                 words: str) -> None:
    answer = engine.answer(question)
    assert not answer.sql and words in answer.text, answer.text


def test_verified_intents_keep_their_questions(engine: OfflineEngine) -> None:
    for question, intent in (("Top importers in 2024", "top_traders"),
                             ("Split imports by transport mode in 2024", "by_transport"),
                             ("Monthly import value over the last 12 months", "national_trend")):
        answer = engine.answer(question)
        assert answer.intent == intent, (question, answer.intent)
        assert answer.plan is None


def test_follow_up_changes_the_plan(engine: OfflineEngine) -> None:
    from assistant.conversation import Conversation

    chat = Conversation()
    first = engine.plan("What share of imports in 2024 came from China?", chat)
    chat.record(first.question, engine.execute(first), engine.state_of(first))
    second = engine.plan("and in 2023?", chat)
    assert second.kind == "query" and second.query is not None
    assert second.query.period is not None and second.query.period.start.year == 2023
    assert second.query.share_of is not None and second.query.share_of.values == ["CN"]


def test_ask_json_carries_the_plan(demo_db: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tamga")), "ask",
         "What share of imports in 2024 came from China?", "--json", "--db", str(demo_db),
         "--index", str(tmp_path / "no-index")],
        capture_output=True, text=True, timeout=300,
        env={"TAMGA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert data["plan"]["shape"] == "share" and data["plan"]["share_of"]["values"] == ["CN"]
    assert data["understood"].startswith("I understood: the share originating in China")
    assert data["intent"] == "plan:share" and data["sql"]


def rows_of(answer: Answer, *names: str) -> set[tuple[Any, ...]]:
    assert answer.table is not None, answer.text
    at = [answer.table.columns.index(n) for n in names]
    return {tuple(r[k] for k in at) for r in answer.table.rows}


@pytest.mark.parametrize("question", [
    "2024 import entries by transport mode and by channel (green/yellow/red)",
    "cross-tab of 2024 declarations: mode of transport x control channel, counts",
])
def test_cross_tab_of_two_dimensions(engine: OfflineEngine, question: str) -> None:
    """Naming the channels or writing "x" between two dimensions asks for both groupings, not
    the transport view alone."""
    answer = engine.answer(question)
    assert answer.intent == "plan:breakdown", (answer.intent, answer.text)
    expected = ref(engine, "SELECT d.transport_mode, d.control_channel, count(DISTINCT "
                           f"d.declaration_id) {IMPORTS} AND year(d.declaration_date) = 2024 "
                           "GROUP BY 1, 2")
    assert rows_of(answer, "transport_mode", "channel", "declarations") == \
        {tuple(r) for r in expected}


@pytest.mark.parametrize("question", [
    "how many import decs were invoiced in CNY in 2024?",
    "count of 2024 import declarations with invoice currency CNY",
])
def test_any_invoice_currency_of_the_data_is_a_filter(engine: OfflineEngine,
                                                      question: str) -> None:
    answer = engine.answer(question)
    assert answer.intent == "plan:total", (answer.intent, answer.text)
    expected = ref(engine, f"SELECT count(DISTINCT d.declaration_id) {IMPORTS} AND "
                           "d.currency = 'CNY' AND year(d.declaration_date) = 2024")[0][0]
    assert column(answer, "declarations") == [expected]
    assert answer.understood is not None and "CNY" in answer.understood


@pytest.mark.parametrize("question", [
    "importers with more than 3 red declarations in 2024",
    "Who went red over 3 times in 2024? show trader and count",
])
def test_threshold_on_a_count_of_red_declarations(engine: OfflineEngine, question: str) -> None:
    answer = engine.answer(question)
    assert answer.intent == "plan:threshold", (answer.intent, answer.text)
    expected = ref(engine, f"SELECT d.trader_id, count(DISTINCT d.declaration_id) {IMPORTS} AND "
                           "d.control_channel = 'red' AND year(d.declaration_date) = 2024 "
                           "GROUP BY 1 HAVING count(DISTINCT d.declaration_id) > 3")
    assert expected, "the demo should have traders above the threshold"
    assert rows_of(answer, "trader", "declarations") == {tuple(r) for r in expected}


def test_this_year_against_this_point_last_year(engine: OfflineEngine) -> None:
    answer = engine.answer("Are we collecting more import duty this year than by this point "
                           "last year?")
    assert answer.intent == "plan:compare", (answer.intent, answer.text)
    assert answer.plan is not None
    period, before = answer.plan["period"], answer.plan["compare_to"]
    assert period["start"][5:] == before["start"][5:] == "01-01"
    assert period["end"][5:] == before["end"][5:]  # like for like
    assert int(period["start"][:4]) == int(before["start"][:4]) + 1


def test_a_slice_of_duty_is_a_share(engine: OfflineEngine) -> None:
    answer = engine.answer("How big a slice of 2024 import duty did chapter 02 account for?")
    assert answer.intent == "plan:share", (answer.intent, answer.text)
    expected = ref(engine, "SELECT round(100.0 * sum(i.duty_amount) FILTER (WHERE "
                           f"i.hs_code LIKE '02%') / sum(i.duty_amount), 1) {IMPORTS} AND "
                           "year(d.declaration_date) = 2024")[0][0]
    assert column(answer, "share_pct") == [expected]


def test_a_time_grouping_over_two_named_years_spans_both(engine: OfflineEngine) -> None:
    answer = engine.answer("Customs value of imports per year and per mode of transport, 2023 "
                           "and 2024")
    assert answer.intent == "plan:breakdown", (answer.intent, answer.text)
    assert {r[0] for r in rows_of(answer, "year")} == {2023, 2024}


def test_a_possessive_names_the_grouping(engine: OfflineEngine) -> None:
    answer = engine.answer("break 2024 import VAT down by the importers' sector")
    assert answer.plan is not None and answer.plan["dimensions"] == ["sector"], answer.text


def test_new_in_a_year_counts_first_seen_sellers(engine: OfflineEngine) -> None:
    answer = engine.answer("count of foreign suppliers new in 2024")
    assert answer.intent == "plan:first_seen", (answer.intent, answer.text)
    expected = ref(engine, "SELECT count(*) FROM (SELECT i.seller_id FROM declarations d JOIN "
                           "declaration_items i ON i.declaration_id = d.declaration_id WHERE "
                           "d.flow = 'import' GROUP BY 1 HAVING year(min(d.declaration_date)) "
                           "= 2024)")[0][0]
    assert column(answer, "sellers") == [expected]



@pytest.mark.parametrize(("question", "sql"), [
    ("# of EXW import decls in 2024",
     f"SELECT count(DISTINCT d.declaration_id) {IMPORTS} AND d.incoterm = 'EXW' AND "
     "year(d.declaration_date) = 2024"),
    ("Ex-works import declarations lodged during 2024 - how many?",
     f"SELECT count(DISTINCT d.declaration_id) {IMPORTS} AND d.incoterm = 'EXW' AND "
     "year(d.declaration_date) = 2024"),
    ("CPC 4000 import value, 2024",
     f"SELECT round(sum(i.customs_value), 2) {IMPORTS} AND d.procedure_code = '4000' AND "
     "year(d.declaration_date) = 2024"),
    ("number of separate sellers on chapter 84 imports in 2024",
     f"SELECT count(DISTINCT i.seller_id) {IMPORTS} AND i.hs_code LIKE '84%' AND "
     "year(d.declaration_date) = 2024"),
    ("yellow % of 2024 imports",
     "SELECT round(100.0 * count(DISTINCT d.declaration_id) FILTER (WHERE d.control_channel = "
     f"'yellow') / count(DISTINCT d.declaration_id), 2) {IMPORTS} AND "
     "year(d.declaration_date) = 2024"),
    ("2024 imports from China: related-party % of customs value",
     "SELECT round(100.0 * sum(i.customs_value) FILTER (WHERE i.related_party) / "
     f"sum(i.customs_value), 2) {IMPORTS} AND i.origin_country = 'CN' AND "
     "year(d.declaration_date) = 2024"),
])
def test_officers_words_for_filters_and_measures(engine: OfflineEngine, question: str,
                                                 sql: str) -> None:
    answer = engine.answer(question)
    assert answer.table is not None, answer.text
    expected = ref(engine, sql)[0][0]
    cells = [c for row in answer.table.rows[:1] for c in row]
    assert expected in cells, (answer.intent, answer.understood, cells, expected)


def test_delivery_terms_listed_as_examples_are_the_grouping(engine: OfflineEngine) -> None:
    answer = engine.answer("How was 2024 import VAT split across the delivery terms (FOB, CIF, "
                           "EXW and so on)?")
    assert answer.plan is not None and answer.plan["dimensions"] == ["incoterm"], answer.text
    assert not [f for f in answer.plan["filters"] if f["dimension"] == "incoterm"]
    expected = ref(engine, f"SELECT count(DISTINCT d.incoterm) {IMPORTS} AND "
                           "year(d.declaration_date) = 2024")[0][0]
    assert answer.table is not None and len(answer.table.rows) == expected


def test_reds_are_red_declarations(engine: OfflineEngine) -> None:
    answer = engine.answer("reds, 2023 v 2024")
    assert answer.intent == "plan:compare", (answer.intent, answer.text)
    expected = ref(engine, "SELECT count(DISTINCT d.declaration_id) FILTER (WHERE "
                           "year(d.declaration_date) = 2024) FROM declarations d WHERE "
                           "d.flow = 'import' AND d.control_channel = 'red'")[0][0]
    assert answer.table is not None and expected in answer.table.rows[0]


def test_the_foot_of_the_table_is_the_bottom(engine: OfflineEngine) -> None:
    answer = engine.answer("Give me the three offices at the foot of the table for import "
                           "value in 2024.")
    assert answer.plan is not None and answer.plan["shape"] == "bottom", answer.text
    assert answer.plan["n"] == 3


def test_a_day_range_that_ends_before_it_starts_is_refused(engine: OfflineEngine) -> None:
    answer = engine.answer("duty take by office from 15 September 2024 through 2 March 2024")
    assert "ends before it starts" in answer.text and not answer.sql


def test_a_sector_named_with_goods_words_is_not_also_a_goods_filter(
        engine: OfflineEngine) -> None:
    """"the Motor vehicles and parts sector" names whose imports, not motor vehicles (HS 87)."""
    answer = engine.answer("How much import duty did traders in the Motor vehicles and parts "
                           "sector pay in 2024?")
    assert answer.plan is not None, answer.text
    assert [f["dimension"] for f in answer.plan["filters"]] == ["sector"]
    expected = ref(engine, "SELECT round(sum(i.duty_amount), 2) FROM declarations d JOIN "
                           "declaration_items i ON i.declaration_id = d.declaration_id JOIN "
                           "traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import' AND "
                           "t.sector = 'Motor vehicles and parts' AND "
                           "year(d.declaration_date) = 2024")[0][0]
    assert column(answer, "duty") == [expected]


# -- officers' words read in session 11 (the seventh set's misses, rephrased) --------------------

def test_a_preference_code_is_a_filter_not_an_hs_code(engine: OfflineEngine) -> None:
    answer = engine.answer("How much customs value came from Mexico under preference code 300 "
                           "in 2024?")
    assert answer.plan is not None, answer.text
    assert {f["dimension"]: f["values"] for f in answer.plan["filters"]} == {
        "origin": ["MX"], "preference": ["300"]}
    expected = ref(engine, f"SELECT round(sum(i.customs_value), 2) {IMPORTS} AND "
                           "i.origin_country = 'MX' AND i.preference_code = '300' AND "
                           "year(d.declaration_date) = 2024")[0][0]
    assert column(answer, "customs_value") == [expected]


def test_a_grouping_named_before_a_colon(engine: OfflineEngine) -> None:
    answer = engine.answer("dispatch ctry: biggest drop in # of decls, 2024 v 2023 (4)")
    assert answer.plan is not None, answer.text
    assert answer.plan["shape"] == "change_ranking" and answer.plan["n"] == 4
    assert answer.plan["dimensions"] == ["dispatch_country"]
    assert answer.plan["measures"] == ["declarations"]


def test_listed_values_of_the_grouping_are_examples(engine: OfflineEngine) -> None:
    answer = engine.answer("2024 import value split by invoicing ccy (USD, EUR, CNY...)")
    assert answer.plan is not None and answer.plan["dimensions"] == ["currency"], answer.text
    assert not [f for f in answer.plan["filters"] if f["dimension"] == "currency"]
    expected = ref(engine, f"SELECT count(DISTINCT d.currency) {IMPORTS} AND "
                           "year(d.declaration_date) = 2024")[0][0]
    assert answer.table is not None and len(answer.table.rows) == expected


def test_of_all_offices_which_one_is_a_single_office(engine: OfflineEngine) -> None:
    answer = engine.answer("Of all our offices, which one processed the smallest number of "
                           "export declarations in 2024?")
    assert answer.plan is not None, (answer.intent, answer.text)
    assert answer.plan["dimensions"] == ["office"] and answer.plan["n"] == 1
    expected = ref(engine, "SELECT customs_office FROM declarations WHERE flow = 'export' AND "
                           "year(declaration_date) = 2024 GROUP BY 1 ORDER BY count(*), 1 "
                           "LIMIT 1")[0][0]
    assert column(answer, "office") == [expected]


def test_a_red_share_of_a_procedures_declarations(engine: OfflineEngine) -> None:
    answer = engine.answer("What share of the import declarations lodged under procedure 4000 "
                           "in 2024 were sent to the red channel?")
    assert answer.plan is not None and answer.plan["measures"] == ["red_share"], answer.text
    expected = ref(engine, "SELECT round(100.0 * count(*) FILTER (WHERE control_channel = "
                           "'red') / count(*), 1) FROM declarations WHERE flow = 'import' AND "
                           "procedure_code = '4000' AND year(declaration_date) = 2024")[0][0]
    assert answer.table is not None, answer.text
    assert expected in answer.table.rows[0], answer.text


def test_how_many_distinct_after_the_traders(engine: OfflineEngine) -> None:
    answer = engine.answer("DDP importers in 2024 - how many distinct?")
    expected = ref(engine, f"SELECT count(DISTINCT d.trader_id) {IMPORTS} AND "
                           "d.incoterm = 'DDP' AND year(d.declaration_date) = 2024")[0][0]
    assert answer.table is not None and answer.table.rows[0][0] == expected, answer.text


def test_dispatch_countries_that_dropped_off(engine: OfflineEngine) -> None:
    answer = engine.answer("dispatch countries of 2023 imports that dropped off in 2024")
    assert answer.plan is not None and answer.plan["shape"] == "set_difference", answer.text
    assert answer.plan["dimensions"] == ["dispatch_country"]
    expected = ref(engine, f"SELECT d.dispatch_country {IMPORTS} GROUP BY 1 HAVING "
                           "count(*) FILTER (WHERE year(d.declaration_date) = 2023) > 0 AND "
                           "count(*) FILTER (WHERE year(d.declaration_date) = 2024) = 0")
    assert sorted(column(answer, "dispatch_country")) == sorted(r[0] for r in expected)


def test_first_ever_import_is_first_seen(engine: OfflineEngine) -> None:
    answer = engine.answer("How many traders made their first-ever import in 2024?")
    assert answer.plan is not None and answer.plan["shape"] == "first_seen", answer.text
    expected = ref(engine, "SELECT count(*) FROM (SELECT trader_id FROM declarations WHERE "
                           "flow = 'import' GROUP BY 1 HAVING "
                           "year(min(declaration_date)) = 2024)")[0][0]
    assert answer.table is not None and answer.table.rows[0][0] == expected


@pytest.mark.parametrize(("question", "measure"), [
    ("HS 640399 value/pair by origin, 2024", "value_per_unit"),
    ("duty % of value by sector, 2024", "effective_duty_rate"),
])
def test_measures_in_officers_shorthand(engine: OfflineEngine, question: str,
                                        measure: str) -> None:
    answer = engine.answer(question)
    assert answer.plan is not None and answer.plan["measures"] == [measure], answer.text


def test_regions_traders_are_grouped_by_region(engine: OfflineEngine) -> None:
    answer = engine.answer("Which three regions' traders yielded the most in recoveries from "
                           "audits opened in 2024?")
    assert answer.plan is not None and answer.plan["dimensions"] == ["region"], answer.text
    assert answer.plan["n"] == 3


def test_exporters_holding_aeo_status_are_the_part(engine: OfflineEngine) -> None:
    answer = engine.answer("Of the exports declared in 2024, what percentage of the value was "
                           "lodged by exporters holding AEO status?")
    assert answer.plan is not None and answer.plan["shape"] == "share", answer.text
    assert answer.plan["share_of"]["dimension"] == "aeo_status" and not answer.plan["dimensions"]
    assert answer.understood is not None and "with any AEO status" in answer.understood


@pytest.mark.parametrize(("question", "words"), [
    ("red decls at Balboa Seaport in month 14 of 2024", "no month 14"),
    ("origins w/ a related-party share above 140% in 2024", "cannot be more than 100%"),
    ("decls lodged at Balboa Seaport on 30 Feb 2024", "30 February 2024 is not a valid date"),
    ("value cleared at Balboa Seaport on the 32nd of October 2024", "no day 32"),
    ("top 5 importers by value between 1 Sep 2024 and 1 Mar 2024", "ends before it starts"),
    ("origins w/ an effective duty rate under -10% in 2024", "cannot be below 0%"),
])
def test_more_impossible_requests_are_refused(engine: OfflineEngine, question: str,
                                              words: str) -> None:
    answer = engine.answer(question)
    assert not answer.sql and words in answer.text, answer.text


def test_how_many_different_groups_is_a_count(engine: OfflineEngine) -> None:
    """'How many different subheadings': one figure, the number of groups (not the groups)."""
    expected = ref(engine, f"SELECT count(DISTINCT left(i.hs_code, 6)) {IMPORTS} AND "
                           "i.origin_country = 'MX' AND year(d.declaration_date) = 2024")[0][0]
    for question in ("How many different HS subheadings did we import from Mexico in 2024?",
                     "# distinct 6-digit HS codes, Mexico origin, 2024"):
        answer = engine.answer(question)
        assert answer.plan is not None and answer.plan["count_only"], answer.text
        assert answer.plan["dimensions"] == ["hs_subheading"]
        assert answer.table is not None and answer.table.rows == [[expected]], answer.text
        assert answer.text.startswith(f"{expected:,} different HS subheadings"), answer.text
    listed = engine.answer("list the distinct HS6 codes imported from Mexico in 2024")
    assert listed.plan is None or not listed.plan.get("count_only"), listed.text


def test_penalties_alone_are_not_the_recoveries(engine: OfflineEngine) -> None:
    answer = engine.answer("How much in penalties did each type of audit opened in 2024 produce?")
    assert answer.plan is not None and answer.plan["measures"][0] == "audit_penalties", \
        answer.text
    expected = ref(engine, "SELECT audit_type, round(sum(coalesce(penalty_amount, 0)), 2) FROM "
                           "audits WHERE year(opened_on) = 2024 GROUP BY 1")
    got = dict(zip(column(answer, "audit_type"), column(answer, "audit_penalties"), strict=True))
    assert got == {r[0]: r[1] for r in expected}
    for question in ("2024 audits: extra duty and penalties collected per type of audit",
                     "2024 audits: which 3 traders paid back the most (duty + penalty)?"):
        both = engine.answer(question)
        assert both.plan is not None and both.plan["measures"] == ["audit_recoveries"], \
            both.text


@pytest.mark.parametrize(("question", "shape", "measure", "dims"), [
    ("HS 8704 $/kg last qtr", "total", "value_per_kg", []),
    ("eff. duty rate per CPC, 2024", "breakdown", "effective_duty_rate", ["procedure"]),
    ("decl count: CPC x channel, 2024", "breakdown", "declarations", ["procedure", "channel"]),
    ("2024 customs value per control lane (G/Y/R)", "breakdown", "customs_value", ["channel"]),
    ("lowest-VAT office, last qtr", "argmin", "vat", ["office"]),
    ("duty/value % per office, 2024", None, "effective_duty_rate", ["office"]),
    ("export value by office & month, last qtr", "breakdown", "customs_value",
     ["office", "month"]),
    ("rail import decls / month, 2024", "breakdown", "declarations", ["month"]),
    ("yellow rate by office 2024 (% of decls)", None, "yellow_share", ["office"]),
])
def test_fourth_round_shorthand(engine: OfflineEngine, question: str, shape: str | None,
                                measure: str, dims: list[str]) -> None:
    """Shorthand from the eighth and ninth sets: $/kg, CPC, G/Y/R, "&", "/ month", a year
    right after a grouping, a measure between a superlative and its grouping."""
    answer = engine.answer(question)
    assert answer.plan is not None, answer.text
    assert answer.plan["measures"][0] == measure and answer.plan["dimensions"] == dims, \
        answer.plan
    assert shape is None or answer.plan["shape"] == shape, answer.plan


@pytest.mark.parametrize(("question", "shape", "dims", "n"), [
    ("dispatch ctries losing the most decls 2023->2024, 4 worst", "change_ranking",
     ["dispatch_country"], 4),
    ("2024: month w/ the lowest red-channel decl count", "argmin", ["month"], 1),
    ("Which dispatch countries sent us imports by air in 2023 but have sent none by air in "
     "2024?", "set_difference", ["dispatch_country"], None),
    ("air freight: dispatch ctries active 2023, nothing in 2024", "set_difference",
     ["dispatch_country"], None),
    ("ch 22: duty as % of value per pref code, 2024", "breakdown", ["preference"], None),
    ("Compare the effective duty rate paid by AEO-certified importers with that of importers "
     "without AEO status in 2024.", "breakdown", ["aeo"], None),
])
def test_tenth_set_shapes(engine: OfflineEngine, question: str, shape: str, dims: list[str],
                          n: int | None) -> None:
    """Words from the tenth set: "losing the most", "2024->2025", ", 4 worst", a grouping after
    a colon with a superlative, "but have sent none", ", nothing in", "pref code", AEO holders
    compared "with that of" those without."""
    answer = engine.answer(question)
    assert answer.plan is not None, answer.text
    assert (answer.plan["shape"], answer.plan["dimensions"]) == (shape, dims), answer.plan
    assert n is None or answer.plan["n"] == n, answer.plan
    if shape == "change_ranking":
        assert answer.plan["order"] == "asc"  # the biggest falls first


def test_without_aeo_compared_over_time_stays_a_filter(engine: OfflineEngine) -> None:
    answer = engine.answer("compare imports of traders without AEO status in 2024 with 2023")
    assert answer.plan is not None and answer.plan["shape"] == "compare", answer.text
    assert answer.plan["filters"][0]["dimension"] == "aeo_status" and not answer.plan["dimensions"]


def test_busiest_day_is_a_day_grouping(engine: OfflineEngine) -> None:
    """'busiest day': the declaration date as a grouping, checked against SQL written here."""
    expected = ref(engine, f"SELECT d.declaration_date, count(DISTINCT d.declaration_id) AS n "
                           f"{IMPORTS} AND d.declaration_date >= '2024-10-01' AND "
                           "d.declaration_date < '2024-11-01' GROUP BY 1 ORDER BY n DESC, 1 "
                           "LIMIT 1")[0]
    for question in ("busiest day in October 2024 for import decls?",
                     "On which day in October 2024 did we receive the most import "
                     "declarations, and how many?"):
        answer = engine.answer(question)
        assert answer.plan is not None and answer.plan["dimensions"] == ["day"], answer.text
        assert answer.plan["shape"] == "argmax", answer.plan
        assert column(answer, "declarations") == [expected[1]], answer.text
        assert str(column(answer, "day")[0]) == str(expected[0]), answer.text
    daily = engine.answer("import declarations per day in October 2024")
    assert daily.plan is not None and daily.plan["dimensions"] == ["day"], daily.text
    days = ref(engine, f"SELECT count(DISTINCT d.declaration_date) {IMPORTS} AND "
                       "d.declaration_date >= '2024-10-01' AND d.declaration_date < '2024-11-01'")
    assert daily.table is not None and len(daily.table.rows) == days[0][0]
    assert f"{days[0][0]} days" in daily.text, daily.text


def test_average_declaration_value_against_peers(engine: OfflineEngine) -> None:
    """'on average larger declarations than the other importers': value per declaration,
    pooled over the peers (sum of value / number of declarations)."""
    with_names = IMPORTS.replace("WHERE", "JOIN traders t ON t.trader_id = d.trader_id WHERE")
    trader = ref(engine, f"SELECT t.name, d.trader_id {with_names} AND "
                         "year(d.declaration_date) = 2024 GROUP BY 1, 2 ORDER BY count(*) DESC "
                         "LIMIT 1")[0]
    name, trader_id = trader
    expected = ref(engine, "SELECT round(sum(i.customs_value) FILTER (WHERE d.trader_id = "
                           f"'{trader_id}') / count(DISTINCT d.declaration_id) FILTER (WHERE "
                           f"d.trader_id = '{trader_id}'), 2), round(sum(i.customs_value) FILTER "
                           f"(WHERE d.trader_id <> '{trader_id}') / count(DISTINCT "
                           f"d.declaration_id) FILTER (WHERE d.trader_id <> '{trader_id}'), 2) "
                           f"{IMPORTS} AND year(d.declaration_date) = 2024")[0]
    for question in (f"In 2024, are {name}'s import declarations on average larger in customs "
                     "value than those of the other importers?",
                     f"{name} avg value per decl vs everyone else, 2024"):
        answer = engine.answer(question)
        assert answer.plan is not None, answer.text
        assert answer.plan["shape"] == "vs_peers", answer.plan
        assert answer.plan["measures"] == ["value_per_declaration"], answer.plan
        assert column(answer, "value_per_declaration_entity") == [expected[0]], answer.text
        assert column(answer, "value_per_declaration_peers") == [expected[1]], answer.text


def test_new_importers_counted_per_sector(engine: OfflineEngine) -> None:
    """'How many new importers did each sector gain': the traders whose first import falls in
    the year, counted by their sector (not the sectors first seen that year)."""
    expected = ref(engine, "WITH f AS (SELECT d.trader_id, min(d.declaration_date) AS first "
                           "FROM declarations d WHERE d.flow = 'import' GROUP BY 1) "
                           "SELECT t.sector, count(*) FROM f JOIN traders t ON t.trader_id = "
                           "f.trader_id WHERE year(f.first) = 2024 GROUP BY 1")
    for question in ("How many new importers did each sector gain in 2024?",
                     "sector split of 2024's new importers (no. of traders)"):
        answer = engine.answer(question)
        assert answer.plan is not None, answer.text
        assert answer.plan["dimensions"] == ["trader", "sector"], answer.plan
        got = dict(zip(column(answer, "sector"), column(answer, "traders"), strict=True))
        assert got == {r[0]: r[1] for r in expected}, answer.text
        total = sum(r[1] for r in expected)
        assert answer.text.startswith(f"{total:,} new traders"), answer.text
        assert not answer.warnings, answer.warnings  # "gain" is understood


def test_an_empty_newcomer_or_threshold_answer_says_what_was_asked(engine: OfflineEngine) -> None:
    """No group passes: the answer says none fits the reading, not that there were no
    imports (there were)."""
    answer = engine.answer("importers with more than 1,000,000,000,000 in duty in 2024")
    assert answer.plan is not None and answer.plan["shape"] == "threshold", answer.text
    assert answer.table is None or not answer.table.rows
    assert answer.text.startswith("None: I found no traders that fit"), answer.text
    assert "no imports" not in answer.text


def test_the_day_an_office_did_the_most(engine: OfflineEngine) -> None:
    """'On which day of Q3 2024 did <office> handle the most ...': a peak, not a list of days."""
    office = ref(engine, "SELECT customs_office FROM declarations GROUP BY 1 "
                         "ORDER BY count(*) DESC LIMIT 1")[0][0]
    expected = ref(engine, f"SELECT d.declaration_date, count(DISTINCT d.declaration_id) AS n "
                           f"{IMPORTS} AND d.customs_office = '{office}' AND d.declaration_date "
                           ">= '2024-07-01' AND d.declaration_date < '2024-10-01' GROUP BY 1 "
                           "ORDER BY n DESC, 1 LIMIT 1")[0]
    answer = engine.answer(f"On which day of Q3 2024 did {office} handle the most import "
                           "declarations?")
    assert answer.plan is not None and answer.plan["shape"] == "argmax", answer.text
    assert answer.plan["dimensions"] == ["day"], answer.plan
    assert str(column(answer, "day")[0]) == str(expected[0]), answer.text
    assert column(answer, "declarations") == [expected[1]], answer.text


def test_one_kind_of_aeo_certificate_is_a_filter_on_it(engine: OfflineEngine) -> None:
    """'AEO-F holders' are the traders with that certificate, not every AEO trader."""
    kinds = [r[0] for r in ref(engine, "SELECT DISTINCT aeo_status FROM traders "
                                       "WHERE aeo_status LIKE 'AEO-%' ORDER BY 1")]
    kind = kinds[-1]
    with_traders = IMPORTS.replace("WHERE", "JOIN traders t ON t.trader_id = d.trader_id WHERE")
    expected = ref(engine, f"SELECT round(sum(i.vat_amount), 2) {with_traders} AND "
                           f"t.aeo_status = '{kind}' AND year(d.declaration_date) = 2024")[0][0]
    for question in (f"VAT paid by {kind} holders in 2024",
                     f"How much import VAT did traders holding an {kind} certificate pay in "
                     "2024?"):
        answer = engine.answer(question)
        assert answer.plan is not None, answer.text
        assert [f["values"] for f in answer.plan["filters"]] == [[kind]], answer.plan
        assert answer.plan["shape"] == "total" and answer.plan["dimensions"] == [], answer.plan
        assert column(answer, "vat") == [expected], answer.text


def test_a_code_word_before_origin_is_a_country(engine: OfflineEngine) -> None:
    """'IT origin' is Italy; IT is also a word, so a bare 'IT' is not taken as a code."""
    from assistant.slots import clean_question

    def codes(question: str) -> list[str]:
        slots = engine.extractor.extract(clean_question(question))
        return [c.code for c in slots.countries]

    assert codes("value of IT origin imports in 2024") == ["IT"]
    assert codes("HS4 of DE-origin goods imported in 2024") == ["DE"]
    assert codes("Is IT able to export the 2024 imports?") == []


def test_audits_in_progress_are_a_filter(engine: OfflineEngine) -> None:
    """'audits still in progress, by type': the open audits, grouped by type."""
    expected = {r[0]: r[1] for r in ref(engine, "SELECT audit_type, count(*) FROM audits "
                                                "WHERE outcome = 'In progress' GROUP BY 1")}
    for question in ("How many audits are still in progress, by type of audit?",
                     "audits w/ outcome in progress, count per audit type"):
        answer = engine.answer(question)
        assert answer.plan is not None and answer.plan["dimensions"] == ["audit_type"], \
            answer.text
        assert answer.table is not None
        assert {r[0]: r[1] for r in answer.table.rows} == expected, answer.text
        assert "with outcome In progress" in answer.text and " of with " not in answer.text


def test_which_and_how_many_each_is_a_list(engine: OfflineEngine) -> None:
    """'Which importers ... more than N ..., and how many did each lodge?' lists them with
    their counts; 'How many importers ...' counts them."""
    expected = ref(engine, f"SELECT d.trader_id, count(DISTINCT d.declaration_id) AS n {IMPORTS} "
                           "AND year(d.declaration_date) = 2024 GROUP BY 1 HAVING n > 40 "
                           "ORDER BY n DESC, 1")
    assert expected
    listed = engine.answer("Which importers lodged more than 40 import declarations in 2024, "
                           "and how many did each lodge?")
    assert listed.plan is not None and listed.plan["shape"] == "threshold", listed.text
    assert listed.table is not None and len(listed.table.rows) == len(expected), listed.text
    assert sorted(column(listed, "declarations")) == sorted(r[1] for r in expected)
    counted = engine.answer("How many importers lodged more than 40 import declarations in 2024?")
    assert counted.plan is not None and counted.plan.get("count_only"), counted.text
    assert column(counted, "traders") == [len(expected)], counted.text


def test_share_that_came_by_a_mode_takes_the_mode_as_the_part(engine: OfflineEngine) -> None:
    """'What share of our imports from X came by sea?' is the sea share of X's imports, not X's
    share of sea imports (which 'what share of sea imports came from X' asks)."""
    country = ref(engine, f"SELECT i.origin_country {IMPORTS} GROUP BY 1 ORDER BY count(*) DESC "
                          "LIMIT 1")[0][0]
    name = ref(engine, f"SELECT name FROM countries WHERE iso2 = '{country}'")[0][0]
    base = f"{IMPORTS} AND year(d.declaration_date) = 2024"
    of_country = ref(engine, "SELECT round(100.0 * sum(i.customs_value) FILTER (WHERE "
                             f"d.transport_mode = 'sea') / sum(i.customs_value), 1) {base} AND "
                             f"i.origin_country = '{country}'")[0][0]
    of_sea = ref(engine, "SELECT round(100.0 * sum(i.customs_value) FILTER (WHERE "
                         f"i.origin_country = '{country}') / sum(i.customs_value), 1) {base} "
                         "AND d.transport_mode = 'sea'")[0][0]
    assert of_country != of_sea
    by_sea = engine.answer(f"What share of our 2024 imports from {name} came by sea?")
    assert column(by_sea, "share_pct") == [of_country], by_sea.text
    from_country = engine.answer(f"What share of sea imports came from {name} in 2024?")
    assert column(from_country, "share_pct") == [of_sea], from_country.text
