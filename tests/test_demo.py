"""The demo generator: determinism, realism checks and findable planted anomalies."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tamga.errors import TamgaError
from tests.conftest import DEMO_END_MONTH, DEMO_ITEMS, DEMO_SEED
from tradedata import demo_vocab as V
from tradedata.db import connect as db_connect
from tradedata.demo import (
    ANOMALY_TYPES,
    _parse_catalogue,
    default_end_month,
    generate_demo,
    truth_path_for,
)

DATA_TABLES = ("traders", "declarations", "declaration_items", "audits", "hs_nomenclature",
               "countries")


@pytest.fixture()
def con(demo_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = db_connect(demo_db, read_only=True)
    yield c
    c.close()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


def truth_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def table_hashes(path: Path) -> dict[str, object]:
    c = db_connect(path, read_only=True)
    try:
        return {t: c.execute(f"SELECT count(*), bit_xor(hash(x)) FROM {t} x").fetchall()[0]
                for t in DATA_TABLES}
    finally:
        c.close()


# --------------------------------------------------------------------------- determinism


def test_same_seed_and_month_give_identical_data(demo_db: Path, demo_truth: Path,
                                                 tmp_path: Path) -> None:
    again = tmp_path / "again.duckdb"
    generate_demo(again, items=DEMO_ITEMS, seed=DEMO_SEED, end_month=DEMO_END_MONTH)
    assert table_hashes(again) == table_hashes(demo_db)
    assert truth_path_for(again).read_bytes() == demo_truth.read_bytes()


def test_other_seed_gives_other_data(demo_db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    generate_demo(other, items=DEMO_ITEMS, seed=DEMO_SEED + 1, end_month=DEMO_END_MONTH)
    a, b = table_hashes(other), table_hashes(demo_db)
    assert a["hs_nomenclature"] == b["hs_nomenclature"]  # reference data does not depend on it
    for table in ("traders", "declarations", "declaration_items"):
        assert a[table] != b[table]


def test_default_end_month_is_last_month() -> None:
    assert default_end_month(date(2025, 1, 15)) == date(2024, 12, 1)
    assert default_end_month(date(2025, 11, 1)) == date(2025, 10, 1)


# --------------------------------------------------------------------------- shape and sizes


def test_counts_near_target(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM declaration_items") == DEMO_ITEMS
    assert one(con, "SELECT count(*) FROM traders") == DEMO_ITEMS // 250
    declarations = one(con, "SELECT count(*) FROM declarations")
    assert isinstance(declarations, int)
    assert DEMO_ITEMS / 3.2 < declarations < DEMO_ITEMS / 1.8
    assert one(con, "SELECT count(*) FROM audits") > 0
    # Every trader declares; every item and audit points at existing rows.
    assert one(con, "SELECT count(*) FROM traders WHERE trader_id NOT IN "
                    "(SELECT trader_id FROM declarations)") == 0
    assert one(con, "SELECT count(*) FROM declaration_items WHERE declaration_id NOT IN "
                    "(SELECT declaration_id FROM declarations)") == 0
    assert one(con, "SELECT count(*) FROM declarations WHERE declaration_id NOT IN "
                    "(SELECT declaration_id FROM declaration_items)") == 0
    assert one(con, "SELECT count(*) FROM audits WHERE trader_id NOT IN "
                    "(SELECT trader_id FROM traders)") == 0


def test_item_numbers_run_from_one(con: duckdb.DuckDBPyConnection) -> None:
    gaps = one(con, """SELECT count(*) FROM (
        SELECT declaration_id, min(item_no) lo, max(item_no) hi, count(*) n
        FROM declaration_items GROUP BY 1) WHERE lo <> 1 OR hi <> n""")
    assert gaps == 0


def test_dates_within_the_period(con: duckdb.DuckDBPyConnection) -> None:
    info = dict(con.execute("SELECT key, value FROM dataset_info").fetchall())
    assert info["date_from"] == "2022-11-01" and info["date_to"] == "2025-10-31"
    lo, hi = con.execute("SELECT min(declaration_date), max(declaration_date) "
                         "FROM declarations").fetchall()[0]
    assert date(2022, 11, 1) <= lo < date(2022, 11, 15)
    assert date(2025, 10, 15) < hi <= date(2025, 10, 31)
    # Traders declare only after registering; audits open after registration too.
    assert one(con, """SELECT count(*) FROM declarations d JOIN traders t USING (trader_id)
                       WHERE d.declaration_date < t.registered_on""") == 0
    assert one(con, """SELECT count(*) FROM audits a JOIN traders t USING (trader_id)
                       WHERE a.opened_on < t.registered_on
                          OR a.closed_on < a.opened_on OR a.opened_on > DATE '2025-10-31'""") == 0


def test_rows_are_stored_by_date_and_trader(con: duckdb.DuckDBPyConnection) -> None:
    """Declarations sorted by date, items by (trader, date): DuckDB's zone maps then skip most
    row groups for per-period and per-trader queries (see docs/sql.md)."""
    dates = [r[0] for r in con.execute("SELECT declaration_date FROM declarations").fetchall()]
    assert dates == sorted(dates)
    keys = con.execute(
        "SELECT i.trader_id, d.declaration_date FROM declaration_items i "
        "JOIN declarations d USING (declaration_id) ORDER BY i.rowid").fetchall()
    assert len(keys) == DEMO_ITEMS and keys == sorted(keys)


def test_dataset_info(con: duckdb.DuckDBPyConnection) -> None:
    info = dict(con.execute("SELECT key, value FROM dataset_info").fetchall())
    assert info["reporting_currency"] == "USD"
    assert info["source"] == "tamga-demo"
    assert info["seed"] == str(DEMO_SEED) and info["items"] == str(DEMO_ITEMS)
    assert re.match(r"\d{4}-\d{2}-\d{2}T", info["built_at"])
    assert date.fromisoformat(info["date_from"]) < date.fromisoformat(info["safeguard_from"])
    assert float(info["low_value_threshold_usd"]) == V.LOW_VALUE_THRESHOLD_USD


# --------------------------------------------------------------------------- realism


def test_control_channels_mostly_green(con: duckdb.DuckDBPyConnection) -> None:
    shares = dict(con.execute("""SELECT control_channel, count(*) / sum(count(*)) OVER ()
                                 FROM declarations GROUP BY 1""").fetchall())
    assert 0.78 < shares["green"] < 0.92
    assert 0.05 < shares["yellow"] < 0.15
    assert 0.02 < shares["red"] < 0.09


def test_mostly_imports_some_exports(con: duckdb.DuckDBPyConnection) -> None:
    share = one(con, "SELECT avg((flow = 'export')::INT) FROM declarations")
    assert isinstance(share, float) and 0.02 < share < 0.25
    # Exports of domestic produce carry the home country as origin and dispatch country.
    assert one(con, """SELECT count(*) FROM declarations d JOIN declaration_items i
                       USING (declaration_id) WHERE d.flow = 'export'
                       AND substr(i.hs_code, 1, 6) = '080390' AND i.origin_country <> 'PA'
                    """) == 0
    assert one(con, "SELECT count(*) FROM declarations WHERE flow = 'export' "
                    "AND dispatch_country <> 'PA'") == 0


def test_hs_codes_are_real_subheadings(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM declaration_items "
                    "WHERE NOT regexp_full_match(hs_code, '[0-9]{6,10}')") == 0
    assert one(con, """SELECT count(*) FROM declaration_items i
                       LEFT JOIN hs_nomenclature h ON h.code = substr(i.hs_code, 1, 6)
                       AND h.level = 6 WHERE h.code IS NULL""") == 0
    assert one(con, "SELECT count(DISTINCT substr(hs_code, 1, 6)) FROM declaration_items") > 150


def test_countries_are_valid_iso2(con: duckdb.DuckDBPyConnection) -> None:
    for table, column in (("declaration_items", "origin_country"), ("traders", "country"),
                          ("declarations", "dispatch_country")):
        bad = one(con, f"SELECT count(*) FROM {table} WHERE {column} NOT IN "
                       "(SELECT iso2 FROM countries)")
        assert bad == 0, (table, column)


def test_origins_fit_the_goods(con: duckdb.DuckDBPyConnection) -> None:
    """Items come from origins listed for their goods (phones from CN/VN/KR..., not from NZ)."""
    allowed = {r["hs6"]: set(r["origins"]) for r in _parse_catalogue()}
    rows = con.execute("""SELECT substr(hs_code, 1, 6), origin_country, count(*)
                          FROM declaration_items GROUP BY ALL""").fetchall()
    fits = total = 0
    for hs6, origin, n in rows:
        if hs6 in allowed:
            total += n
            # Diversion after the safeguard and origin switching move some steel elsewhere.
            fits += n if origin in allowed[hs6] or origin in V.SWITCH_ORIGINS else 0
    assert total > 0.8 * DEMO_ITEMS
    assert fits / total > 0.97


def test_money_columns_positive_and_consistent(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, """SELECT count(*) FROM declaration_items
                       WHERE customs_value <= 0 OR invoice_value <= 0 OR net_mass_kg <= 0
                          OR quantity <= 0 OR duty_amount < 0 OR vat_amount < 0
                          OR duty_rate_pct < 0""") == 0
    # Duty is the rate applied to the customs value for goods released for free circulation.
    assert one(con, """SELECT count(*) FROM declaration_items i JOIN declarations d
                       USING (declaration_id)
                       WHERE d.procedure_code IN ('4000', '4071')
                         AND abs(i.duty_amount - round(i.customs_value * i.duty_rate_pct / 100, 2))
                             > 0.011""") == 0
    # No duty under suspensive procedures or on exports.
    assert one(con, """SELECT count(*) FROM declaration_items i JOIN declarations d
                       USING (declaration_id)
                       WHERE (d.flow = 'export' OR d.procedure_code IN ('5100', '5300', '7100'))
                         AND (i.duty_amount <> 0 OR i.vat_amount <> 0)""") == 0
    # VAT at 0, 7 or 10 % of customs value plus duty.
    rates = {round(r[0]) for r in con.execute("""
        SELECT 100 * vat_amount / (customs_value + duty_amount) FROM declaration_items
        WHERE vat_amount > 0 AND customs_value > 100""").fetchall()}
    assert rates <= {7, 10}
    duty = one(con, "SELECT sum(duty_amount) FROM declaration_items")
    assert isinstance(duty, float) and duty > 0


def test_invoice_currency_and_incoterm_explain_customs_value(
        con: duckdb.DuckDBPyConnection) -> None:
    # USD invoices on CIF terms are worth their customs value; FOB adds freight (8 %).
    ratios = dict(con.execute("""
        SELECT d.incoterm, median(i.customs_value / i.invoice_value)
        FROM declaration_items i JOIN declarations d USING (declaration_id)
        WHERE d.currency = 'USD' AND d.flow = 'import' AND d.incoterm IN ('CIF', 'FOB', 'EXW')
        GROUP BY 1""").fetchall())
    assert ratios["CIF"] == pytest.approx(1.0, abs=0.01)
    assert ratios["FOB"] == pytest.approx(1.08, abs=0.01)
    assert ratios["EXW"] == pytest.approx(1.12, abs=0.01)
    currencies = {r[0] for r in con.execute("SELECT DISTINCT currency FROM declarations")
                  .fetchall()}
    assert {"USD", "EUR", "CNY"} <= currencies


def test_unit_values_depend_on_goods(con: duckdb.DuckDBPyConnection) -> None:
    uv = dict(con.execute("""
        SELECT substr(hs_code, 1, 6), median(customs_value / net_mass_kg)
        FROM declaration_items WHERE substr(hs_code, 1, 6) IN ('851713', '721420', '610910')
        GROUP BY 1""").fetchall())
    present = set(uv)
    assert len(present) >= 2
    if {"851713", "721420"} <= present:
        assert uv["851713"] > 30 * uv["721420"]  # phones cost far more per kg than rebar


def test_traders_look_real(con: duckdb.DuckDBPyConnection) -> None:
    names = [r[0] for r in con.execute("SELECT name FROM traders").fetchall()]
    assert len(set(names)) == len(names)
    forms = [f for f, _ in V.DOMESTIC_FORMS] + [f for _, fs in V.FOREIGN.values() for f in fs]
    with_form = [n for n in names if any(n.rstrip(")").split(" (")[0].endswith(f) for f in forms)]
    assert len(with_form) == len(names)
    assert one(con, "SELECT count(*) FROM traders WHERE tin IS NULL OR sector IS NULL") == 0
    assert one(con, "SELECT count(DISTINCT sector) FROM traders") >= 8
    domestic = one(con, "SELECT avg((country = 'PA')::INT) FROM traders")
    assert isinstance(domestic, float) and domestic > 0.8
    # A few large traders and many small ones.
    top_share = one(con, """
        WITH v AS (SELECT trader_id, count(*) n FROM declarations GROUP BY 1)
        SELECT sum(n) FILTER (WHERE r <= 0.1 * (SELECT count(*) FROM v)) / sum(n)
        FROM (SELECT n, row_number() OVER (ORDER BY n DESC) r FROM v)""")
    assert isinstance(top_share, float) and top_share > 0.4


def test_sectors_import_their_own_chapters(con: duckdb.DuckDBPyConnection) -> None:
    share = dict(con.execute("""
        SELECT t.sector, avg((substr(i.hs_code, 1, 2) IN ('72', '73', '76'))::INT)
        FROM declaration_items i JOIN traders t USING (trader_id)
        WHERE i.flow = 'import' AND t.sector IN ('Iron, steel and aluminium',
                                                 'Pharmaceuticals and medical supplies')
        GROUP BY 1""").fetchall())
    assert share["Iron, steel and aluminium"] > 0.6
    assert share.get("Pharmaceuticals and medical supplies", 0.0) < 0.05


def test_audits_have_outcomes_and_amounts(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("SELECT audit_type, outcome, additional_duty, penalty_amount, summary "
                       "FROM audits").fetchall()
    assert rows
    outcomes = {r[1] for r in rows}
    assert outcomes <= {o for o, _ in V.AUDIT_OUTCOMES} | {"In progress"}
    for _, outcome, duty, penalty, summary in rows:
        assert summary and summary.endswith(".")
        if outcome in ("No findings", "Warning issued"):
            assert duty == 0 and penalty == 0
        if outcome == "Additional duty and penalty":
            assert duty > 0 and penalty > 0


# --------------------------------------------------------------------------- planted anomalies


def test_truth_file_is_next_to_the_database_not_inside(demo_db: Path, demo_truth: Path,
                                                        con: duckdb.DuckDBPyConnection) -> None:
    assert demo_truth.parent == demo_db.parent
    assert demo_truth.name == "demo.truth.csv"
    rows = truth_rows(demo_truth)
    assert set(rows[0]) == {"anomaly_type", "trader_id", "declaration_id", "item_no", "detail"}
    assert {r["anomaly_type"] for r in rows} == set(ANOMALY_TYPES)
    columns = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns").fetchall()}
    assert not columns & {"anomaly_type", "detail", "fraud", "planted"}
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
              .fetchall()}
    assert tables == set(DATA_TABLES) | {"dataset_info"}
    values = " ".join(r[0] for r in con.execute("SELECT value FROM dataset_info").fetchall())
    assert "truth" not in values.lower()
    assert b"truth" not in demo_db.read_bytes()


def test_truth_rows_point_at_real_items(con: duckdb.DuckDBPyConnection, demo_truth: Path) -> None:
    rows = truth_rows(demo_truth)
    keys = {(r["declaration_id"], int(r["item_no"]), r["trader_id"]) for r in rows}
    found = set(con.execute("""SELECT i.declaration_id, i.item_no, d.trader_id
                               FROM declaration_items i JOIN declarations d
                               USING (declaration_id)""").fetchall())
    assert keys <= found
    traders_by_type: dict[str, set[str]] = {}
    for r in rows:
        traders_by_type.setdefault(r["anomaly_type"], set()).add(r["trader_id"])
    for kind, traders in traders_by_type.items():
        assert len(traders) >= 3, kind
    all_traders = [t for ts in traders_by_type.values() for t in ts]
    assert len(all_traders) == len(set(all_traders))  # one anomaly type per trader


def _truth_items(truth: Path, kind: str) -> set[tuple[str, int]]:
    return {(r["declaration_id"], int(r["item_no"])) for r in truth_rows(truth)
            if r["anomaly_type"] == kind}


def _truth_traders(truth: Path, kind: str) -> set[str]:
    return {r["trader_id"] for r in truth_rows(truth) if r["anomaly_type"] == kind}


def _recall_precision(found: set[Any], truth: set[Any]) -> tuple[float, float]:
    hit = len(found & truth)
    return hit / max(len(truth), 1), hit / max(len(found), 1)


def test_undervaluation_found_by_unit_value_below_peers(con: duckdb.DuckDBPyConnection,
                                                        demo_truth: Path) -> None:
    found = set(con.execute("""
        WITH i AS (SELECT i.*, substr(hs_code, 1, 6) AS hs6, customs_value / net_mass_kg AS uv
                   FROM declaration_items i JOIN declarations d USING (declaration_id)
                   WHERE d.flow = 'import'),
             m AS (SELECT hs6, median(uv) AS med FROM i GROUP BY 1)
        SELECT declaration_id, item_no FROM i JOIN m USING (hs6) WHERE uv < 0.3 * med
    """).fetchall())
    recall, precision = _recall_precision(found, _truth_items(demo_truth, "undervaluation"))
    assert recall > 0.8 and precision > 0.7


def test_misclassification_found_by_description_under_two_codes(
        con: duckdb.DuckDBPyConnection, demo_truth: Path) -> None:
    found = set(con.execute("""
        WITH i AS (SELECT i.*, substr(hs_code, 1, 6) AS hs6 FROM declaration_items i),
             per AS (SELECT goods_description, hs6, max(duty_rate_pct) AS rate
                     FROM i GROUP BY ALL),
             multi AS (SELECT goods_description, max(rate) AS top FROM per
                       GROUP BY 1 HAVING count(*) > 1)
        SELECT declaration_id, item_no FROM i JOIN per USING (goods_description, hs6)
        JOIN multi USING (goods_description) WHERE rate < top
    """).fetchall())
    recall, precision = _recall_precision(found, _truth_items(demo_truth, "misclassification"))
    assert recall > 0.9 and precision > 0.9


def test_origin_switching_found_by_cn_share_before_and_after(
        con: duckdb.DuckDBPyConnection, demo_truth: Path) -> None:
    found = {r[0] for r in con.execute("""
        WITH i AS (
            SELECT d.trader_id, origin_country,
                   d.declaration_date >= (SELECT value::DATE FROM dataset_info
                                          WHERE key = 'safeguard_from') AS after
            FROM declaration_items i JOIN declarations d USING (declaration_id)
            WHERE d.flow = 'import' AND substr(hs_code, 1, 2) IN ('72', '73', '76'))
        SELECT trader_id FROM i GROUP BY 1
        HAVING avg((origin_country = 'CN')::INT) FILTER (WHERE NOT after) > 0.8
           AND avg((origin_country = 'CN')::INT) FILTER (WHERE after) < 0.1
           AND count(*) FILTER (WHERE NOT after) >= 5 AND count(*) FILTER (WHERE after) >= 5
    """).fetchall()}
    recall, precision = _recall_precision(found, _truth_traders(demo_truth, "origin_switching"))
    assert recall > 0.6 and precision > 0.6


def test_split_consignments_found_by_clusters_under_threshold(
        con: duckdb.DuckDBPyConnection, demo_truth: Path) -> None:
    found = {(r[0], 1) for r in con.execute("""
        WITH d AS (SELECT declaration_id, trader_id, declaration_date,
                          any_value(substr(hs_code, 1, 6)) AS hs6, sum(customs_value) AS v
                   FROM declaration_items
                   WHERE flow = 'import' GROUP BY ALL HAVING v BETWEEN 850 AND 1000)
        SELECT a.declaration_id FROM d a JOIN d b
          ON a.trader_id = b.trader_id AND a.hs6 = b.hs6
         AND abs(a.declaration_date - b.declaration_date) <= 2
        GROUP BY 1 HAVING count(*) >= 4
    """).fetchall()}
    recall, precision = _recall_precision(found, _truth_items(demo_truth, "split_consignment"))
    assert recall > 0.9 and precision > 0.8


def test_related_party_pricing_found_against_unrelated_sellers(
        con: duckdb.DuckDBPyConnection, demo_truth: Path) -> None:
    found = {r[0] for r in con.execute("""
        WITH i AS (SELECT d.trader_id, i.*, substr(hs_code, 1, 6) AS hs6,
                          customs_value / net_mass_kg AS uv
                   FROM declaration_items i JOIN declarations d USING (declaration_id)
                   WHERE d.flow = 'import'),
             m AS (SELECT hs6, origin_country, median(uv) AS med FROM i
                   WHERE NOT related_party GROUP BY ALL HAVING count(*) >= 5)
        SELECT trader_id FROM i JOIN m USING (hs6, origin_country)
        WHERE related_party GROUP BY trader_id, hs6
        HAVING count(*) >= 5 AND median(uv / med) < 0.55
    """).fetchall()}
    recall, precision = _recall_precision(found,
                                          _truth_traders(demo_truth, "related_party_pricing"))
    assert recall > 0.6 and precision > 0.6


# --------------------------------------------------------------------------- the file itself


def test_replaces_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "trade.duckdb"
    path.write_bytes(b"not a database")
    messages: list[str] = []
    summary = generate_demo(path, items=2_000, seed=3, progress=messages.append,
                            end_month=date(2024, 6, 1))
    assert summary.items == 2_000 and summary.db_path == path.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trade.duckdb", "trade.truth.csv"]
    c = db_connect(path, read_only=True)
    try:
        assert one(c, "SELECT count(*) FROM declaration_items") == 2_000
        assert one(c, "SELECT max(declaration_date) FROM declarations") <= date(2024, 6, 30)
    finally:
        c.close()
    assert any("declarations" in m for m in messages)
    text = summary.describe()
    assert "2,000 items" in text and str(summary.truth_path) in text


def test_bad_size_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trade.duckdb"
    path.write_bytes(b"keep me")
    with pytest.raises(TamgaError, match="--rows"):
        generate_demo(path, items=10)
    assert path.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["trade.duckdb"]


def test_unwritable_place_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(TamgaError, match="Could not build the demo database"):
        generate_demo(blocker / "trade.duckdb", items=2_000)
    assert blocker.read_text() == "a file where a folder should be"
