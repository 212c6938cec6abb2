"""The plan compiler: every shape against SQL written independently here, on the test demo;
every valid plan compiles to one statement the guard accepts and the scoping rewrites."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tamga.plan import (
    AUDIT_DIMENSIONS,
    AUDIT_MEASURES,
    Filter,
    PeriodSpec,
    QueryPlan,
    Threshold,
)
from tamga.scope import Scope
from tools.plan_sql import compile_plan
from tools.scoping import ScopedRunner, scope_sql
from tools.sql import SqlRunner
from tools.sql_guard import check_sql

Y24 = PeriodSpec(start=date(2024, 1, 1), end=date(2025, 1, 1), name="2024")
Y25 = PeriodSpec(start=date(2025, 1, 1), end=date(2025, 10, 1), name="2025")  # data ends Sep
IMPORTS = ("FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
           "WHERE d.flow = 'import'")
WITH_TRADERS = IMPORTS.replace("WHERE", "JOIN traders t ON t.trader_id = d.trader_id WHERE")


@pytest.fixture(scope="module")
def runner(demo_db: Path) -> SqlRunner:
    return SqlRunner(demo_db)


def rows(runner: SqlRunner, plan: QueryPlan) -> tuple[list[str], list[list[Any]]]:
    result = runner.run(compile_plan(plan))
    return result.columns, result.rows


def ref(runner: SqlRunner, sql: str) -> list[list[Any]]:
    return runner.run(sql).rows


def between(period: PeriodSpec) -> str:
    return f"d.declaration_date >= '{period.start}' AND d.declaration_date < '{period.end}'"


def test_total(runner: SqlRunner) -> None:
    plan = QueryPlan(shape="total", measures=["customs_value", "declarations", "value_per_kg"],
                     period=Y24)
    columns, got = rows(runner, plan)
    assert columns == ["customs_value", "declarations", "value_per_kg"]
    expected = ref(runner, f"SELECT round(sum(i.customs_value), 2), count(DISTINCT "
                           f"d.declaration_id), round(sum(i.customs_value) / "
                           f"sum(i.net_mass_kg), 2) {IMPORTS} AND {between(Y24)}")
    assert got == expected


def test_breakdown_top_and_bottom(runner: SqlRunner) -> None:
    by_mode = QueryPlan(shape="breakdown", dimensions=["transport_mode"], period=Y24)
    columns, got = rows(runner, by_mode)
    expected = ref(runner, f"SELECT d.transport_mode, round(sum(i.customs_value), 2) {IMPORTS} "
                           f"AND {between(Y24)} GROUP BY 1 ORDER BY 2 DESC")
    assert [r[:2] for r in got] == expected
    assert round(sum(r[2] for r in got)) == 100  # shares of the total
    top = QueryPlan(shape="top", dimensions=["trader"], measures=["duty"], n=3, period=Y24)
    columns, got = rows(runner, top)
    assert columns == ["trader", "name", "duty"]
    expected = ref(runner, f"SELECT d.trader_id, t.name, round(sum(i.duty_amount), 2) "
                           f"{WITH_TRADERS} "
                           f"AND {between(Y24)} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3")
    assert got == expected
    bottom = top.with_changes(shape="bottom")
    assert rows(runner, bottom)[1][0][2] <= got[-1][2]


def test_breakdown_over_time_is_in_time_order(runner: SqlRunner) -> None:
    plan = QueryPlan(shape="breakdown", dimensions=["month"], measures=["declarations"],
                     period=Y24)
    _, got = rows(runner, plan)
    assert [r[0] for r in got] == [f"2024-{m:02d}" for m in range(1, 13)]


def test_argmax_argmin(runner: SqlRunner) -> None:
    peak = QueryPlan(shape="argmax", dimensions=["month"], period=Y24)
    _, got = rows(runner, peak)
    expected = ref(runner, f"SELECT strftime(d.declaration_date, '%Y-%m'), "
                           f"round(sum(i.customs_value), 2) {IMPORTS} AND {between(Y24)} "
                           "GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
    assert got == expected
    largest = QueryPlan(shape="argmax", dimensions=["declaration"], period=Y24)
    _, got = rows(runner, largest)
    assert got == ref(runner, f"SELECT d.declaration_id, round(sum(i.customs_value), 2) "
                              f"{IMPORTS} AND {between(Y24)} GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
    quiet = QueryPlan(shape="argmin", dimensions=["office"], measures=["declarations"],
                      period=Y24)
    _, got = rows(runner, quiet)
    assert got == ref(runner, f"SELECT d.customs_office, count(DISTINCT d.declaration_id) "
                              f"{IMPORTS} AND {between(Y24)} GROUP BY 1 ORDER BY 2 ASC LIMIT 1")


def test_compare_and_change_ranking(runner: SqlRunner) -> None:
    h1_24 = PeriodSpec(start=date(2024, 1, 1), end=date(2024, 7, 1), name="H1 2024")
    h1_25 = PeriodSpec(start=date(2025, 1, 1), end=date(2025, 7, 1), name="H1 2025")
    plan = QueryPlan(shape="compare", period=h1_25, compare_to=h1_24)
    columns, got = rows(runner, plan)
    assert columns == ["customs_value_h1_2024", "customs_value_h1_2025", "customs_value_change",
                       "customs_value_change_pct"]
    a, b = (ref(runner, f"SELECT round(sum(i.customs_value), 2) {IMPORTS} AND {between(p)}")
            [0][0] for p in (h1_24, h1_25))
    assert got[0][:3] == [a, b, round(b - a, 2)]
    assert got[0][3] == round(100 * (b - a) / a, 1)
    ranking = QueryPlan(shape="change_ranking", dimensions=["origin"], period=h1_25,
                        compare_to=h1_24, n=5)
    columns, got = rows(runner, ranking)
    changes = [r[columns.index("customs_value_change")] for r in got]
    assert changes == sorted(changes, reverse=True) and len(got) == 5
    falls = ranking.with_changes(order="asc")
    _, lowest = rows(runner, falls)
    assert lowest[0][columns.index("customs_value_change")] <= min(changes)


def test_share(runner: SqlRunner) -> None:
    plan = QueryPlan(shape="share", period=Y24,
                     share_of=Filter(dimension="origin", values=["CN"], labels=["China"]))
    _, got = rows(runner, plan)
    part, whole = ref(runner, f"SELECT sum(i.customs_value) FILTER (WHERE i.origin_country = "
                              f"'CN'), sum(i.customs_value) {IMPORTS} AND {between(Y24)}")[0]
    assert got[0][2] == round(100 * part / whole, 1)


def test_vs_peers(runner: SqlRunner) -> None:
    trader, heading = ref(runner, f"SELECT d.trader_id, left(i.hs_code, 4) {IMPORTS} "
                                  "GROUP BY ALL ORDER BY sum(i.customs_value) DESC LIMIT 1")[0]
    plan = QueryPlan(shape="vs_peers", measures=["value_per_kg"],
                     entity=Filter(dimension="trader", values=[trader]),
                     filters=[Filter(dimension="hs_heading", values=[heading])])
    columns, got = rows(runner, plan)
    mine, peers = ref(runner, f"SELECT sum(i.customs_value) FILTER (WHERE d.trader_id = "
                              f"'{trader}') / sum(i.net_mass_kg) FILTER (WHERE d.trader_id = "
                              f"'{trader}'), sum(i.customs_value) FILTER (WHERE d.trader_id <> "
                              f"'{trader}') / sum(i.net_mass_kg) FILTER (WHERE d.trader_id <> "
                              f"'{trader}') {IMPORTS} AND left(i.hs_code, 4) = '{heading}'")[0]
    record = dict(zip(columns, got[0], strict=True))
    assert record["value_per_kg_entity"] == round(mine, 2)
    assert record["value_per_kg_peers"] == round(peers, 2)


def test_set_difference_and_first_seen(runner: SqlRunner) -> None:
    gone = QueryPlan(shape="set_difference", dimensions=["trader"], period=Y24, compare_to=Y25)
    _, got = rows(runner, gone)
    expected = {r[0] for r in ref(runner, f"SELECT d.trader_id {IMPORTS} GROUP BY 1 HAVING "
                                          f"count(*) FILTER (WHERE {between(Y24)}) > 0 AND "
                                          f"count(*) FILTER (WHERE {between(Y25)}) = 0")}
    assert {r[0] for r in got} == expected and expected
    count = gone.with_changes(count_only=True)
    assert rows(runner, count)[1] == [[len(expected)]]
    new = QueryPlan(shape="first_seen", dimensions=["trader"], period=Y25, count_only=True)
    _, got = rows(runner, new)
    assert got == ref(runner, f"SELECT count(*) FROM (SELECT d.trader_id {IMPORTS} GROUP BY 1 "
                              f"HAVING min(d.declaration_date) >= '{Y25.start}' AND "
                              f"min(d.declaration_date) < '{Y25.end}')")


def test_threshold(runner: SqlRunner) -> None:
    plan = QueryPlan(shape="threshold", dimensions=["declaration"], period=Y24,
                     threshold=Threshold(measure="customs_value", value=100_000),
                     count_only=True)
    _, got = rows(runner, plan)
    n, total = ref(runner, f"SELECT count(*), round(sum(v), 2) FROM (SELECT sum(i.customs_value)"
                           f" AS v {IMPORTS} AND {between(Y24)} GROUP BY d.declaration_id "
                           "HAVING sum(i.customs_value) > 100000)")[0]
    assert got == [[n, total]] and n > 0
    busy = QueryPlan(shape="threshold", dimensions=["trader"], measures=["declarations"],
                     period=Y24, threshold=Threshold(measure="declarations", op="ge", value=50))
    _, got = rows(runner, busy)
    assert got and all(r[-1] >= 50 for r in got)


def test_rates_shares_and_audits(runner: SqlRunner) -> None:
    plan = QueryPlan(shape="breakdown", dimensions=["aeo_status"],
                     measures=["red_share", "effective_duty_rate", "related_party_share"],
                     period=Y24)
    _, got = rows(runner, plan)
    expected = ref(runner, "SELECT t.aeo_status, round(100.0 * count(DISTINCT d.declaration_id) "
                           "FILTER (WHERE d.control_channel = 'red') / count(DISTINCT "
                           "d.declaration_id), 2), round(100.0 * sum(i.duty_amount) / "
                           "sum(i.customs_value), 2), round(100.0 * sum(i.customs_value) FILTER "
                           "(WHERE i.related_party) / sum(i.customs_value), 2) "
                           f"{WITH_TRADERS} "
                           f"AND {between(Y24)} GROUP BY 1")
    assert sorted(got) == sorted(expected)
    audits = QueryPlan(shape="breakdown", dimensions=["year"],
                       measures=["audits", "audit_recoveries"])
    _, got = rows(runner, audits)
    assert got == ref(runner, "SELECT year(opened_on), count(*), round(sum(coalesce("
                              "additional_duty, 0) + coalesce(penalty_amount, 0)), 2) FROM "
                              "audits GROUP BY 1 ORDER BY 1")


def test_filters_of_every_kind(runner: SqlRunner) -> None:
    plan = QueryPlan(shape="total", measures=["declarations"], period=Y24, flow="export",
                     filters=[Filter(dimension="transport_mode", values=["sea", "air"]),
                              Filter(dimension="channel", op="not_in", values=["red"]),
                              Filter(dimension="hs_subheading", op="prefix", values=["8"])],
                     related_party=False)
    _, got = rows(runner, plan)
    assert got == ref(runner, "SELECT count(DISTINCT d.declaration_id) FROM declarations d JOIN "
                              "declaration_items i ON i.declaration_id = d.declaration_id WHERE "
                              "d.flow = 'export' AND d.transport_mode IN ('sea', 'air') AND "
                              "d.control_channel <> 'red' AND starts_with(i.hs_code, '8') AND "
                              f"NOT i.related_party AND {between(Y24)}")


def test_user_text_never_reaches_sql_text(runner: SqlRunner) -> None:
    hostile = "x'); DROP TABLE traders; --"
    plan = QueryPlan(shape="total", filters=[Filter(dimension="office", values=[hostile])])
    sql = compile_plan(plan)
    assert "'x''); DROP TABLE traders; --'" in sql  # one quoted literal, nothing else
    assert runner.run(sql).rows == [[None]]


def test_share_of_a_rate_ranks_the_rate(runner: SqlRunner) -> None:
    """A rate's groups do not add up to a whole: 'share' by a rate ranks the groups by it."""
    plan = QueryPlan(shape="share", measures=["red_share"], dimensions=["office"], period=Y24)
    columns, got = rows(runner, plan)
    assert "share_pct" not in columns
    expected = ref(runner, f"SELECT d.customs_office, round(100.0 * count(DISTINCT "
                           f"d.declaration_id) FILTER (WHERE d.control_channel = 'red') / "
                           f"count(DISTINCT d.declaration_id), 2) AS r {IMPORTS} AND "
                           f"{between(Y24)} GROUP BY 1 ORDER BY r DESC")
    assert dict((row[0], row[-1]) for row in got) == pytest.approx(
        {row[0]: row[1] for row in expected}, abs=0.01)
    rates = [row[-1] for row in got]
    assert rates == sorted(rates, reverse=True)


def test_invoice_values_are_never_added_across_currencies(runner: SqlRunner) -> None:
    total = QueryPlan(shape="total", measures=["invoice_value"], period=Y24)
    assert (total.shape, total.dimensions) == ("breakdown", ["currency"])
    columns, got = rows(runner, total)
    value = columns.index("invoice_value")
    expected = ref(runner, f"SELECT d.currency, round(sum(i.invoice_value), 2) {IMPORTS} AND "
                           f"{between(Y24)} GROUP BY 1")
    assert sorted((r[0], r[value]) for r in got) == sorted((r[0], r[1]) for r in expected)
    assert len(got) > 1  # the test demo invoices in several currencies

    one = QueryPlan(shape="total", measures=["invoice_value"], period=Y24,
                    filters=[Filter(dimension="currency", values=["EUR"])])
    assert (one.shape, one.dimensions) == ("total", [])
    top = QueryPlan(shape="top", measures=["invoice_value"], dimensions=["trader"], period=Y24)
    assert top.dimensions == ["trader", "currency"]
    with pytest.raises(ValidationError, match="cannot be added across currencies"):
        QueryPlan(shape="vs_peers", measures=["invoice_value"], period=Y24,
                  entity=Filter(dimension="trader", values=["T000001"]))


@pytest.mark.parametrize(("changes", "message"), [
    ({"shape": "top", "dimensions": ["trader"], "n": -3}, "between 1 and"),
    ({"shape": "top", "dimensions": ["trader"], "n": 0}, "between 1 and"),
    ({"shape": "top"}, "needs something to rank"),
    ({"shape": "compare", "period": Y25}, "two periods"),
    ({"shape": "compare", "period": Y24, "compare_to": Y24}, "overlap"),
    ({"shape": "threshold", "dimensions": ["trader"]}, "limit"),
    ({"shape": "first_seen", "dimensions": ["trader"]}, "period they first appear"),
    ({"measures": ["audits", "duty"]}, "cannot be mixed"),
    ({"measures": ["audits"], "dimensions": ["origin"], "shape": "breakdown"}, "Audits cannot"),
    ({"shape": "breakdown", "dimensions": ["origin", "office"], "count_only": True},
     "one grouping at a time"),
    ({"shape": "first_seen", "dimensions": ["trader", "origin"], "period": Y25},
     "sector, region or AEO status"),
])
def test_impossible_plans_are_refused_with_a_reason(changes: dict[str, Any],
                                                    message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QueryPlan.model_validate({"shape": "total", **changes})
    with pytest.raises(ValidationError, match="ends before it starts"):
        PeriodSpec(start=date(2030, 1, 1), end=date(2029, 1, 1))


# -- every valid plan compiles to a guarded, scopable statement --------------------------------

MEASURES = ["customs_value", "duty", "declarations", "traders", "value_per_kg",
            "effective_duty_rate", "red_share", "related_party_share", "net_mass", "items",
            "value_per_declaration"]
DIMENSIONS = ["trader", "origin", "office", "transport_mode", "hs_chapter", "month", "year",
              "aeo_status", "sector", "seller", "day"]
SHAPES = ["total", "breakdown", "top", "bottom", "change_ranking", "compare", "share",
          "vs_peers", "argmax", "argmin", "set_difference", "first_seen", "threshold"]


@st.composite
def plans(draw: st.DrawFn) -> QueryPlan:
    shape = draw(st.sampled_from(SHAPES))
    audit = draw(st.booleans()) and shape in ("total", "breakdown", "top", "compare")
    measures = [draw(st.sampled_from(sorted(AUDIT_MEASURES) if audit else MEASURES))]
    dims_pool = sorted(AUDIT_DIMENSIONS & set(DIMENSIONS)) if audit else DIMENSIONS
    dims = draw(st.lists(st.sampled_from(dims_pool), max_size=2, unique=True))
    if shape in ("top", "bottom", "change_ranking", "breakdown", "argmax", "argmin") and not dims:
        dims = [dims_pool[0]]
    if shape == "first_seen" and len(dims) == 2:
        dims = ["trader", "sector"]  # newcomers grouped by what they are, nothing else
    data: dict[str, Any] = {"shape": shape, "measures": measures, "dimensions": dims,
                            "period": Y25, "flow": draw(st.sampled_from(["import", "export",
                                                                          "both"]))}
    if shape in ("compare", "change_ranking", "set_difference"):
        data["compare_to"] = Y24
    if shape == "share":
        data["share_of"] = Filter(dimension="origin", values=["CN"])
    if shape == "vs_peers":
        data["entity"] = Filter(dimension="trader", values=["T000001"])
    if shape == "threshold":
        limit = draw(st.floats(0, 1e6))
        data["threshold"] = Threshold.model_validate({"measure": measures[0], "value": limit})
    if draw(st.booleans()) and not audit:
        data["filters"] = [Filter(dimension="transport_mode", values=["sea"])]
    data["n"] = draw(st.none() | st.integers(1, 100))
    # a count of groups is of one grouping (check_plan refuses two)
    data["count_only"] = draw(st.booleans()) and not (shape == "breakdown" and len(dims) != 1)
    return QueryPlan.model_validate(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans())
def test_every_plan_compiles_to_a_guarded_scopable_select(plan: QueryPlan) -> None:
    sql = compile_plan(plan)
    checked = check_sql(sql)
    scoped = scope_sql(checked, Scope.offices_of("ana", ["Balboa Seaport"]))
    assert "Balboa Seaport" in scoped
    check_sql(scoped)


def test_plans_run_scoped(demo_db: Path) -> None:
    """A plan run through an officer's runner counts only the officer's office."""
    base = SqlRunner(demo_db)
    office = base.run("SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) "
                      "LIMIT 1").rows[0][0]
    officer = ScopedRunner(base, Scope.offices_of("ana", [office]))
    plan = QueryPlan(shape="breakdown", dimensions=["office"], measures=["declarations"])
    got = officer.run(compile_plan(plan)).rows
    assert [r[0] for r in got] == [office]
    assert got[0][1] == base.run("SELECT count(*) FROM declarations WHERE flow = 'import' AND "
                                 "customs_office = $o", {"o": office}).rows[0][0]


def test_ties_are_ordered_by_the_grouping_key(runner: SqlRunner) -> None:
    """Groups with the same figure come in the order of their key, so a ranking is the same
    on every run (an office ranking by change where two offices rose by the same number)."""
    plan = QueryPlan(shape="change_ranking", dimensions=["office"], measures=["declarations"],
                     period=Y25, compare_to=Y24, n=20)
    _, got = rows(runner, plan)
    change = [r[-2] for r in got]  # [..., declarations_change, declarations_change_pct]
    for (a, ca), (b, cb) in zip(zip([r[0] for r in got], change, strict=True),
                                zip([r[0] for r in got][1:], change[1:], strict=True),
                                strict=False):
        assert ca > cb or (ca == cb and a < b), got
    assert compile_plan(plan).rstrip().splitlines()[-2].endswith(", office"), compile_plan(plan)
