"""Which questions a verified intent may take from the planner (INTENT_COVERS), and the planner
rules behind the second held-out run's wrong plans: each test asks a question in words of its
own (not the held-out phrasings) and checks the plan, and where it matters the figures, against
SQL written here."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from assistant.offline import INTENT_COVERS, OfflineEngine, asks_more, gives, intent_covers
from tamga.plan import Filter, PeriodSpec, QueryPlan

IMPORTS = ("FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
           "WHERE d.flow = 'import'")
Y2024 = "year(d.declaration_date) = 2024"
YEAR = PeriodSpec(start=date(2024, 1, 1), end=date(2025, 1, 1), name="2024")


@pytest.fixture(scope="module")
def engine(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> OfflineEngine:
    return OfflineEngine.open(demo_db, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def trader(engine: OfflineEngine) -> tuple[str, str]:
    """(trader_id, name) of the 2024 importer with the most sellers."""
    row = engine.runner.run(f"SELECT d.trader_id, max(t.name) FROM declarations d JOIN "
                            "declaration_items i ON i.declaration_id = d.declaration_id JOIN "
                            "traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import' AND "
                            f"{Y2024} GROUP BY 1 ORDER BY count(DISTINCT i.seller_id) DESC, 1 "
                            "LIMIT 1").rows[0]
    return str(row[0]), str(row[1])


def ref(engine: OfflineEngine, sql: str) -> list[list[Any]]:
    return engine.runner.run(sql).rows


def query_of(engine: OfflineEngine, question: str) -> QueryPlan:
    plan = engine.plan(question)
    assert plan.kind == "query" and plan.query is not None, (question, plan.kind, plan.intent
                                                             and plan.intent.id)
    return plan.query


def planned(engine: OfflineEngine, question: str) -> QueryPlan:
    """The planner's plan, whoever answers the question."""
    found = engine.planner.plan(question, engine.extractor.extract(question)).plan
    assert found is not None, question
    return found


# -- which plans an intent gives --------------------------------------------------------------


def plan(**fields: Any) -> QueryPlan:
    return QueryPlan.model_validate({"period": YEAR, **fields})


def test_an_intent_gives_only_its_measures_and_shapes() -> None:
    ranked_by_items = plan(shape="top", measures=["items"], dimensions=["trader"], n=10)
    assert not gives("top_traders", ranked_by_items)  # "item lines" are not its measure
    assert asks_more("top_traders", ranked_by_items)
    assert gives("top_traders", plan(shape="top", measures=["duty"], dimensions=["trader"], n=5))
    rarest = plan(shape="bottom", measures=["declarations"], dimensions=["incoterm"], n=3)
    assert not gives("by_incoterm", rarest)  # it breaks down in descending order only
    per_currency = plan(shape="breakdown", measures=["declarations"], dimensions=["currency"])
    assert asks_more("national_total", per_currency)
    assert not intent_covers("national_total", per_currency)
    yellow = plan(shape="breakdown", measures=["yellow_share"], dimensions=["transport_mode"])
    assert not gives("by_transport", yellow)
    share = plan(shape="share", measures=["duty"], share_of=Filter(dimension="trader",
                                                                    values=["T000001"]))
    assert not gives("trader_duty", share)
    assert gives("national_total", plan(shape="total", measures=["items"]))


def test_counting_and_excluded_values_are_not_the_listing_intents() -> None:
    count = plan(shape="first_seen", measures=["customs_value"], dimensions=["trader"],
                 count_only=True)
    assert not gives("new_traders", count)  # it lists newcomers; "how many" is the plan's
    uncertified = plan(shape="top", measures=["customs_value"], dimensions=["trader"], n=5,
                       filters=[Filter(dimension="aeo_status", values=["none"])])
    assert not gives("aeo_traders", uncertified)
    assert INTENT_COVERS["aeo_traders"].excludes == (("aeo_status", "none"),)


def test_filters_are_cut_to_the_slots_an_intent_takes(engine: OfflineEngine) -> None:
    """new_traders takes no goods slot: newcomers to a chapter are not its question."""
    newcomers = plan(shape="first_seen", measures=["customs_value"], dimensions=["trader"],
                     filters=[Filter(dimension="hs_chapter", values=["84"])])
    intent = engine.library.get("new_traders")
    assert gives("new_traders", newcomers)  # without the intent: the declared kinds
    assert not gives("new_traders", newcomers, intent)
    top = engine.library.get("top_traders")
    in_chapter = plan(shape="top", measures=["customs_value"], dimensions=["trader"], n=5,
                      filters=[Filter(dimension="hs_chapter", values=["84"])])
    assert intent_covers("top_traders", in_chapter, top)


# -- measures and groupings in other words ------------------------------------------------------


def test_item_lines_rank_by_items(engine: OfflineEngine) -> None:
    query = query_of(engine, "Which 5 importers declared the most item lines in 2024?")
    assert (query.shape, query.measures, query.dimensions, query.n) == (
        "top", ["items"], ["trader"], 5)
    answer = engine.execute(engine.plan("Which 5 importers declared the most item lines in "
                                        "2024?"))
    assert answer.table is not None
    expected = ref(engine, f"SELECT count(*) {IMPORTS} AND {Y2024} GROUP BY d.trader_id "
                           "ORDER BY 1 DESC LIMIT 5")
    column = answer.table.columns.index("items")
    assert [r[column] for r in answer.table.rows] == [r[0] for r in expected]


def test_invoice_currency_is_a_grouping(engine: OfflineEngine) -> None:
    query = query_of(engine, "number of 2024 import declarations by invoice currency")
    assert (query.shape, query.measures, query.dimensions) == (
        "breakdown", ["declarations"], ["currency"])
    answer = engine.execute(engine.plan("number of 2024 import declarations by invoice "
                                        "currency"))
    expected = ref(engine, f"SELECT d.currency, count(DISTINCT d.declaration_id) {IMPORTS} AND "
                           f"{Y2024} GROUP BY 1")
    assert answer.table is not None
    assert {(r[0], r[1]) for r in answer.table.rows} == {(r[0], r[1]) for r in expected}


def test_rarest_is_a_bottom_ranking_by_use(engine: OfflineEngine) -> None:
    query = query_of(engine, "the two rarest delivery terms of 2024")
    assert (query.shape, query.measures, query.dimensions, query.n) == (
        "bottom", ["declarations"], ["incoterm"], 2)


def test_a_named_value_is_kept_beside_quietest(engine: OfflineEngine,
                                               trader: tuple[str, str]) -> None:
    query = query_of(engine, f"the quietest month of 2024 for {trader[1]} by import value")
    assert (query.shape, query.measures, query.dimensions) == ("argmin", ["customs_value"],
                                                               ["month"])


def test_duty_as_a_percent_of_customs_value_is_the_rate(engine: OfflineEngine,
                                                        trader: tuple[str, str]) -> None:
    peers = query_of(engine, f"duty paid as a % of customs value in 2024: {trader[1]} against "
                             "all other traders")
    assert (peers.shape, peers.measures) == ("vs_peers", ["effective_duty_rate"])
    # a rate by group is a breakdown of the rate, not a share, and keeps the trader
    query = query_of(engine, f"duty as a percentage of value for each HS chapter {trader[1]} "
                             "imported in 2024")
    assert (query.shape, query.measures, query.dimensions) == (
        "breakdown", ["effective_duty_rate"], ["hs_chapter"])
    assert [f.values for f in query.filters if f.dimension == "trader"] == [[trader[0]]]


def test_share_of_entries_counts_declarations(engine: OfflineEngine) -> None:
    question = "What share of 2024 import entries were lodged by AEO-certified companies?"
    query = query_of(engine, question)
    assert query.shape == "share" and query.measures == ["declarations"]
    assert query.dimensions == [] and query.share_of is not None
    assert query.share_of.dimension == "aeo_status" and "none" not in query.share_of.values
    answer = engine.execute(engine.plan(question))
    (expected,), = ref(engine, "SELECT round(100.0 * count(DISTINCT d.declaration_id) FILTER "
                               "(WHERE t.aeo_status <> 'none') / count(DISTINCT "
                               "d.declaration_id), 1) FROM declarations d JOIN "
                               "declaration_items i ON i.declaration_id = d.declaration_id "
                               "JOIN traders t ON t.trader_id = d.trader_id WHERE d.flow = "
                               f"'import' AND {Y2024}")
    assert answer.table is not None and expected in answer.table.rows[0]


def test_channel_share_in_percent_words(engine: OfflineEngine) -> None:
    query = query_of(engine, "% of 2024 import entries routed yellow, by transport mode")
    assert (query.shape, query.measures, query.dimensions) == (
        "breakdown", ["yellow_share"], ["transport_mode"])
    red = query_of(engine, "% of 2024 import declarations routed red, by transport mode")
    assert red.measures == ["red_share"]


def test_currency_words_filter_on_the_currency(engine: OfflineEngine) -> None:
    query = query_of(engine, "Invoice value of euro-invoiced imports in 2024")
    assert query.shape == "total" and query.measures == ["invoice_value"]
    assert [(f.dimension, f.values) for f in query.filters] == [("currency", ["EUR"])]


def test_bought_from_related_sellers_is_a_value(engine: OfflineEngine,
                                                trader: tuple[str, str]) -> None:
    question = f"how much did {trader[1]} buy from related sellers in 2024?"
    query = query_of(engine, question)
    assert query.measures == ["customs_value"] and query.related_party is True
    (expected,), = ref(engine, f"SELECT round(sum(i.customs_value), 2) {IMPORTS} AND {Y2024} "
                               f"AND i.related_party AND d.trader_id = '{trader[0]}'")
    answer = engine.execute(engine.plan(question))
    assert answer.table is not None and answer.table.rows[0][0] == expected
    share = planned(engine, f"how much of {trader[1]}'s 2024 imports came from related "
                            "parties?")
    assert share.measures == ["related_party_share"]


# -- shapes -------------------------------------------------------------------------------------


def test_a_traders_sellers_ranked_by_growth(engine: OfflineEngine,
                                            trader: tuple[str, str]) -> None:
    query = query_of(engine, f"Which 3 of {trader[1]}'s suppliers grew the most from 2023 to "
                             "2024?")
    assert (query.shape, query.dimensions, query.n) == ("change_ranking", ["seller"], 3)
    assert [f.values for f in query.filters if f.dimension == "trader"] == [[trader[0]]]


def test_the_same_month_last_year(engine: OfflineEngine) -> None:
    query = query_of(engine, "import duty this month versus the same month last year")
    assert query.shape == "compare" and query.period is not None
    assert query.compare_to is not None
    assert query.period.start == date(2025, 10, 1)
    assert (query.compare_to.start, query.compare_to.end) == (date(2024, 10, 1),
                                                              date(2024, 11, 1))


def test_newcomers_to_a_chapter_are_traders(engine: OfflineEngine) -> None:
    question = "How many traders imported chapter 84 goods for the first time in 2024?"
    query = query_of(engine, question)
    assert (query.shape, query.dimensions, query.count_only) == ("first_seen", ["trader"], True)
    (expected,), = ref(engine, "SELECT count(*) FROM (SELECT d.trader_id FROM declarations d "
                               "JOIN declaration_items i ON i.declaration_id = "
                               "d.declaration_id WHERE d.flow = 'import' AND "
                               "left(i.hs_code, 2) = '84' GROUP BY 1 HAVING "
                               "year(min(d.declaration_date)) = 2024)")
    answer = engine.execute(engine.plan(question))
    assert answer.table is not None and answer.table.rows[0][0] == expected


def test_who_stopped_importing_a_chapter(engine: OfflineEngine) -> None:
    query = query_of(engine, "who stopped importing chapter 84 after 2023, with nothing in 2024?")
    assert (query.shape, query.dimensions) == ("set_difference", ["trader"])
    assert [(f.dimension, f.values) for f in query.filters] == [("hs_chapter", ["84"])]


@pytest.mark.parametrize("question", [
    "How many sellers that supplied importers in 2023 have not shipped anything in 2024?",
    "number of 2023 suppliers with no imports in 2024",
])
def test_not_shipped_since_is_a_set_difference(engine: OfflineEngine, question: str) -> None:
    query = query_of(engine, question)
    assert (query.shape, query.dimensions, query.count_only) == (
        "set_difference", ["seller"], True)
    assert query.period is not None and query.period.start.year == 2023
    assert query.compare_to is not None and query.compare_to.start.year == 2024


def test_a_threshold_compares_the_group_named_first(engine: OfflineEngine) -> None:
    query = query_of(engine, "number of suppliers whose 2024 sales to importers exceeded "
                             "1,000,000")
    assert (query.shape, query.dimensions, query.count_only) == ("threshold", ["seller"], True)


def test_groups_are_the_parts_of_a_filtered_whole(engine: OfflineEngine) -> None:
    question = "For chapter 84, what share of 2024 import value did each of the three largest " \
               "origins have?"
    query = query_of(engine, question)
    assert (query.shape, query.dimensions, query.n, query.share_of) == (
        "share", ["origin"], 3, None)
    assert [(f.dimension, f.values) for f in query.filters] == [("hs_chapter", ["84"])]
    answer = engine.execute(engine.plan(question))
    expected = ref(engine, f"SELECT i.origin_country, round(100.0 * sum(i.customs_value) / "
                           f"sum(sum(i.customs_value)) OVER (), 1) {IMPORTS} AND {Y2024} AND "
                           "left(i.hs_code, 2) = '84' GROUP BY 1 ORDER BY sum(i.customs_value) "
                           "DESC LIMIT 3")
    assert answer.table is not None
    assert [r[0] for r in answer.table.rows] == [r[0] for r in expected]
    assert all(r[1] in row for r, row in zip(expected, answer.table.rows, strict=True))
    owned = query_of(engine, "what share of each office's 2024 imports was chapter 84?")
    assert owned.share_of is not None and owned.share_of.values == ["84"]


def test_a_figure_about_a_code_is_not_the_hs_look_up(engine: OfflineEngine) -> None:
    query = query_of(engine, "What percentage of 2024 import value was HS chapter 84?")
    assert query.shape == "share" and query.share_of is not None
    assert query.share_of.values == ["84"]
    rate = query_of(engine, "related-party share for HS chapter 84 in 2024")
    assert rate.measures == ["related_party_share"]
    assert engine.plan("What does chapter 84 cover?").intent.id == "hs_lookup"  # type: ignore[union-attr]


def test_which_five_is_a_count_of_rows(engine: OfflineEngine) -> None:
    query = query_of(engine, "among traders who started importing in 2024, which five imported "
                             "the most that year?")
    assert (query.shape, query.dimensions, query.n) == ("first_seen", ["trader"], 5)


def test_companies_from_a_region_are_a_filter(engine: OfflineEngine) -> None:
    offices = " ".join(r[0] for r in ref(engine, "SELECT DISTINCT customs_office FROM "
                                                 "declarations"))
    region = next(r for r in engine.planner.values()["region"] if r not in offices)
    query = planned(engine, f"2024 imports by companies from the {region} region")
    assert query.dimensions == [] and query.shape == "total"
    assert [(f.dimension, f.values) for f in query.filters] == [("region", [region])]


def test_countries_goods_were_shipped_from_are_dispatch_countries(
        engine: OfflineEngine) -> None:
    query = query_of(engine, "From which three countries were goods shipped to us the most in "
                             "2024, by value?")
    assert (query.shape, query.dimensions, query.n) == ("top", ["dispatch_country"], 3)
    assert planned(engine, "top 3 origin countries of goods shipped in 2024").dimensions == [
        "origin"]


def test_least_used_names_the_grouping(engine: OfflineEngine) -> None:
    query = query_of(engine, "the least used customs procedures in 2024")
    assert (query.shape, query.measures, query.dimensions) == (
        "bottom", ["declarations"], ["procedure"])


def test_first_export_is_first_seen(engine: OfflineEngine) -> None:
    query = query_of(engine, "How many exporters made their first export in 2024?")
    assert (query.shape, query.flow, query.count_only) == ("first_seen", "export", True)


@pytest.mark.parametrize("question", [
    "number of origins that supplied nothing in 2024 but did in 2023",
    "which origins supplied goods in 2023 but not in 2024?",
])
def test_the_negated_period_is_the_absent_one(engine: OfflineEngine, question: str) -> None:
    query = query_of(engine, question)
    assert query.shape == "set_difference" and query.dimensions == ["origin"]
    assert query.period is not None and query.period.start.year == 2023
    assert query.compare_to is not None and query.compare_to.start.year == 2024


def test_the_n_months_of_a_year_are_groups(engine: OfflineEngine) -> None:
    query = query_of(engine, "the 3 months of 2024 with the most import duty")
    assert (query.shape, query.measures, query.dimensions, query.n) == (
        "top", ["duty"], ["month"], 3)
    assert planned(engine, "import value in the last 3 months").dimensions == []


def test_sellers_new_to_a_trader(engine: OfflineEngine, trader: tuple[str, str]) -> None:
    query = query_of(engine, f"suppliers new to {trader[1]} in 2024")
    assert (query.shape, query.dimensions) == ("first_seen", ["seller"])
    assert [f.values for f in query.filters if f.dimension == "trader"] == [[trader[0]]]


def test_a_filter_on_a_grouping_keeps_its_row_and_others_are_dropped(
        engine: OfflineEngine) -> None:
    channels = engine.library.get("trader_channels")
    red = plan(shape="total", measures=["declarations"],
               filters=[Filter(dimension="trader", values=["T000001"]),
                        Filter(dimension="channel", values=["red"])])
    assert gives("trader_channels", red, channels)  # its red row answers
    workload = engine.library.get("office_workload")
    rail = plan(shape="breakdown", measures=["declarations"], dimensions=["office"],
                filters=[Filter(dimension="transport_mode", values=["rail"])])
    assert not gives("office_workload", rail, workload)
    assert not intent_covers("office_workload", rail, workload)


def test_a_code_word_after_country_is_a_code(engine: OfflineEngine) -> None:
    """'CO' is an everyday word (Co.) unless a country is named right before it."""
    codes = [c.code for c in engine.extractor.extract(
        "transport mode split for dispatch country CO in 2024").countries]
    if "CO" in engine.extractor.facts.countries:
        assert codes == ["CO"]
    assert engine.extractor.extract("Acme CO imports in 2024").countries == []


def test_traders_of_a_sector_are_a_filter(engine: OfflineEngine) -> None:
    sector = engine.planner.values()["sector"][0]
    query = planned(engine, f"2024 imports by traders in {sector}")
    assert query.dimensions == [] and query.shape == "total"
    assert ("sector", [sector]) in [(f.dimension, f.values) for f in query.filters]
    assert planned(engine, f"import value by trader in the {sector} sector, 2024").dimensions \
        == ["trader"]


def test_paid_after_audits_is_recoveries(engine: OfflineEngine) -> None:
    query = query_of(engine, "which traders paid the most after audits in 2024?")
    assert (query.shape, query.measures, query.dimensions) == (
        "top", ["audit_recoveries"], ["trader"])


def test_an_average_per_entity_is_not_a_breakdown(engine: OfflineEngine) -> None:
    """The plan language has a mean value per declaration (sum over count, since session 12),
    but no mean per importer: no plan lists every declaration or every importer for it."""
    assert planned(engine, "average value per declaration in 2024").measures == [
        "value_per_declaration"]
    question = "average value per importer in 2024"
    found = engine.planner.plan(question, engine.extractor.extract(question))
    assert found.plan is None and found.problem is not None and "average" in found.problem
    assert engine.plan(question).kind != "query"
    assert planned(engine, "average value per kg of 2024 imports").measures == ["value_per_kg"]


def test_the_related_party_ranking_keeps_its_questions(engine: OfflineEngine) -> None:
    """An intent whose SQL keeps related-party purchases gives plans that ask for them."""
    ranked = plan(shape="top", measures=["customs_value"], dimensions=["trader"], n=10,
                  related_party=True)
    assert intent_covers("related_party_traders", ranked)
    assert not gives("top_traders", ranked)
    kept = engine.plan("Which importers buy most from related parties?").intent
    assert kept is not None and kept.id == "related_party_traders"
    assert planned(engine, "Who imports from affiliated sellers?").dimensions == ["trader"]


def test_a_value_named_beside_declarations_is_kept(engine: OfflineEngine) -> None:
    office = ref(engine, "SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) "
                         "DESC LIMIT 1")[0][0]
    query = planned(engine, f"What share of 2024 import value came from declarations lodged at "
                            f"{office}?")
    assert query.shape == "share" and query.measures == ["customs_value"]
    entries = planned(engine, f"What share of 2024 import entries were lodged at {office}?")
    assert entries.measures == ["declarations"]


def test_which_declarations_below_peers_is_a_listing(engine: OfflineEngine,
                                                     trader: tuple[str, str]) -> None:
    """The README's question lists the trader's declarations priced below peers (the verified
    intent), not one unit value against the peers."""
    kept = engine.plan(f"Which of {trader[1]}'s declarations have unit values far below "
                       "peers?").intent
    assert kept is not None and kept.id == "trader_low_unit_values"
    query = query_of(engine, f"{trader[1]}'s unit value per kg against other importers in 2024")
    assert query.shape == "vs_peers"
