"""The guarded SQL runner: hostile statements are refused and touch nothing; real queries work."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import tools.sql
from tamga.errors import DatabaseMissing, SqlFailed, SqlRefused, SqlTimeout, TamgaError
from tools.runner import try_run
from tools.sql import QueryResult, SqlRunner, check_sql, to_jsonable
from tradedata.db import connect, create_schema

# --- a small real trade database ------------------------------------------------------------

TRADERS = [
    ("T001", "Orion Textiles LLC", "600100200300", "KZ", "Almaty", "textiles", "AEO-C",
     "2015-03-01"),
    ("T002", "Steppe Steel JSC", "600100200301", "KZ", "Karaganda", "metals", "none",
     "2011-07-15"),
    ("T003", "Altai Foods", "600100200302", "KZ", "East Kazakhstan", "food", "none",
     "2019-11-20"),
]
# (declaration_id, date, trader_id, office, channel)
DECLARATIONS = [
    ("D001", "2023-02-10", "T001", "ALA01", "green"),
    ("D002", "2023-02-25", "T001", "ALA01", "yellow"),
    ("D003", "2023-07-03", "T002", "KAR01", "green"),
    ("D004", "2024-01-15", "T001", "ALA02", "green"),
    ("D005", "2024-03-09", "T002", "KAR01", "red"),
    ("D006", "2024-03-30", "T003", "UST01", "green"),
    ("D007", "2024-11-02", "T003", "UST01", "green"),
]
# (declaration_id, item_no, hs_code, origin, related_party, net_mass_kg, customs_value, duty_rate)
ITEMS = [
    ("D001", 1, "6109100000", "CN", False, 1200.0, 18000.0, 12.0),
    ("D001", 2, "6203420000", "TR", False, 800.0, 22000.0, 12.0),
    ("D002", 1, "6109100000", "CN", True, 900.0, 4500.0, 12.0),
    ("D003", 1, "7208510000", "RU", False, 50000.0, 41000.0, 5.0),
    ("D004", 1, "6109100000", "BD", False, 1500.0, 21000.0, 12.0),
    ("D005", 1, "7208510000", "CN", False, 42000.0, 30000.0, 15.0),
    ("D005", 2, "7216330000", "CN", False, 8000.0, 9000.0, 15.0),
    ("D006", 1, "0805100000", "EG", False, 20000.0, 12000.0, 5.0),
    ("D007", 1, "0805100000", "TR", False, 18000.0, 11500.0, 5.0),
]
COUNTRIES = [("CN", "CHN", "China", "Asia"), ("TR", "TUR", "Türkiye", "Asia"),
             ("RU", "RUS", "Russian Federation", "Europe"), ("BD", "BGD", "Bangladesh", "Asia"),
             ("EG", "EGY", "Egypt", "Africa"), ("KZ", "KAZ", "Kazakhstan", "Asia")]
HS = [("61", 2, "Articles of apparel, knitted", None, "XI"),
      ("62", 2, "Articles of apparel, not knitted", None, "XI"),
      ("72", 2, "Iron and steel", None, "XV"),
      ("08", 2, "Edible fruit and nuts", None, "II")]


def build_trade_db(path: Path) -> Path:
    """Create a small trade database with the real schema and a few rows."""
    con = connect(path)
    try:
        create_schema(con)
        con.executemany("INSERT INTO traders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", TRADERS)
        con.executemany(
            "INSERT INTO declarations VALUES (?, ?, 'import', ?, 'B01', ?, '4000', 'road', "
            "'CN', 'FCA', 'USD', ?)",
            DECLARATIONS,
        )
        # The last four columns are copies of the declaration's (and left(hs_code, 2)).
        con.executemany(
            "INSERT INTO declaration_items SELECT ?, ?, ?, 'goods', ?, 'S1', ?, NULL, ?, NULL, "
            "'pcs', ?, ?, ?, ?, ?, d.trader_id, d.declaration_date, d.flow, left(?, 2) "
            "FROM declarations d WHERE d.declaration_id = ?",
            [(d, n, hs, o, rp, kg, cv, cv, rate, cv * rate / 100, cv * 0.12, hs, d)
             for d, n, hs, o, rp, kg, cv, rate in ITEMS],
        )
        con.executemany("INSERT INTO countries VALUES (?, ?, ?, ?)", COUNTRIES)
        con.executemany("INSERT INTO hs_nomenclature VALUES (?, ?, ?, ?, ?)", HS)
        con.execute("INSERT INTO audits VALUES ('A1', 'T002', '2024-05-01', '2024-08-01', "
                    "'post-clearance', 'additional duty', 3500.0, 700.0, 'Steel undervalued')")
        con.execute("INSERT INTO dataset_info VALUES ('reporting_currency', 'USD'), "
                    "('source', 'test'), ('built_at', '2025-01-01')")
        # Something the runner must never expose: a table outside the trade data model.
        con.execute("CREATE TABLE fraud_labels (declaration_id VARCHAR, fraud BOOLEAN)")
        con.execute("INSERT INTO fraud_labels VALUES ('D005', true)")
    finally:
        con.close()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A database folder and an 'outside' folder holding a canary file nobody may read."""
    db_dir = tmp_path_factory.mktemp("db")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "canary.csv").write_text("secret\ncanary-7f3a\n", encoding="utf-8")
    return {"db": build_trade_db(db_dir / "trade.duckdb"), "outside": outside}


@pytest.fixture(scope="module")
def runner(world: dict[str, Path]) -> Iterator[SqlRunner]:
    r = SqlRunner(world["db"], timeout_s=5, row_cap=1000)
    yield r
    r.close()


# --- hostile statements ---------------------------------------------------------------------

HOSTILE: list[tuple[str, str]] = [
    # writes and DDL
    ("insert", "INSERT INTO traders VALUES ('X', 'Evil', NULL, NULL, NULL, NULL, NULL, NULL)"),
    ("update", "UPDATE declaration_items SET customs_value = 0"),
    ("delete", "DELETE FROM audits"),
    ("merge", "MERGE INTO traders t USING traders s ON t.trader_id = s.trader_id "
              "WHEN MATCHED THEN DELETE"),
    ("drop", "DROP TABLE traders"),
    ("create-table", "CREATE TABLE evil AS SELECT 1"),
    ("create-temp", "CREATE TEMP TABLE evil AS SELECT * FROM traders"),
    ("create-macro", "CREATE MACRO evil(x) AS x"),
    ("create-view", "CREATE VIEW v AS SELECT 1"),
    ("create-secret", "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')"),
    ("alter", "ALTER TABLE traders ADD COLUMN x INTEGER"),
    ("truncate", "TRUNCATE traders"),
    ("select-into", "SELECT * INTO evil FROM traders"),
    ("cte-insert", "WITH x AS (INSERT INTO traders VALUES ('X','E',NULL,NULL,NULL,NULL,NULL,NULL)"
                   " RETURNING *) SELECT * FROM x"),
    ("cte-delete", "WITH x AS (DELETE FROM audits RETURNING *) SELECT count(*) FROM x"),
    ("paren-insert", "(INSERT INTO traders SELECT * FROM traders)"),
    # several statements, comment tricks
    ("two-statements", "SELECT 1; DROP TABLE traders"),
    ("three-statements", "SELECT 1;DELETE FROM audits;"),
    ("line-comment-split", "SELECT 1 -- harmless\n; DROP TABLE traders"),
    ("block-comment-split", "SELECT 1 /* ; */ ; ATTACH '{out}/evil.db'"),
    ("comment-first", "/* just a comment */ DROP TABLE traders"),
    ("commented-select", "-- SELECT\nDROP TABLE traders"),
    # files, export, attach
    ("copy-to", "COPY traders TO '{out}/traders.csv'"),
    ("copy-query", "COPY (SELECT * FROM traders) TO '{out}/t.parquet' (FORMAT parquet)"),
    ("copy-from", "COPY traders FROM '{out}/canary.csv'"),
    ("export", "EXPORT DATABASE '{out}/dump'"),
    ("import", "IMPORT DATABASE '{out}/dump'"),
    ("attach", "ATTACH '{out}/evil.db' AS evil"),
    ("attach-memory", "ATTACH ':memory:' AS m"),
    ("detach", "DETACH trade"),
    ("read-csv", "SELECT * FROM read_csv('{out}/canary.csv')"),
    ("read-csv-auto", "SELECT * FROM read_csv_auto('/etc/passwd')"),
    ("string-path", "SELECT * FROM '{out}/canary.csv'"),
    ("from-first-path", "FROM '/etc/passwd'"),
    ("quoted-path", 'SELECT * FROM "{out}/canary.csv"'),
    ("dotted-file", "SELECT * FROM canary.csv"),
    ("read-text", "SELECT * FROM read_text('/etc/passwd')"),
    ("read-blob", "SELECT * FROM read_blob('/etc/hostname')"),
    ("read-parquet-glob", "SELECT * FROM read_parquet('{out}/*.parquet')"),
    ("read-json", "SELECT * FROM read_json('{out}/x.json')"),
    ("parquet-scan", "SELECT * FROM parquet_scan('x.parquet')"),
    ("glob", "SELECT * FROM glob('*')"),
    ("sniff-csv", "SELECT * FROM sniff_csv('/etc/passwd')"),
    ("file-in-subquery", "SELECT * FROM traders WHERE name IN "
                         "(SELECT content FROM read_text('/etc/passwd'))"),
    ("file-in-exists", "SELECT 1 WHERE EXISTS (FROM glob('{out}/*'))"),
    ("lateral-file", "SELECT * FROM traders, LATERAL read_csv('/etc/passwd')"),
    ("union-file", "SELECT name FROM traders UNION ALL "
                   "SELECT secret FROM read_csv('{out}/canary.csv')"),
    ("join-file", "SELECT * FROM traders t JOIN read_csv('{out}/canary.csv') c ON true"),
    ("cte-file", "WITH c AS (SELECT * FROM read_csv('{out}/canary.csv')) SELECT * FROM c"),
    ("https-path", "SELECT * FROM 'https://example.com/data.csv'"),
    ("s3-path", "SELECT * FROM read_csv('s3://bucket/x.csv')"),
    ("scalar-read-text", "SELECT read_text('/etc/passwd')"),
    # extensions, settings, engine state
    ("install", "INSTALL httpfs"),
    ("force-install", "FORCE INSTALL httpfs"),
    ("load", "LOAD httpfs"),
    ("set-external", "SET enable_external_access = true"),
    ("set-unlock", "SET lock_configuration = false"),
    ("set-variable", "SET VARIABLE x = 1"),
    ("reset", "RESET enable_external_access"),
    ("pragma", "PRAGMA enable_profiling"),
    ("pragma-db-list", "PRAGMA database_list"),
    ("call", "CALL pragma_version()"),
    ("checkpoint", "CHECKPOINT"),
    ("vacuum", "VACUUM"),
    ("use", "USE memory"),
    ("begin", "BEGIN TRANSACTION"),
    ("prepare", "PREPARE p AS SELECT 1"),
    ("explain-analyze", "EXPLAIN ANALYZE SELECT 1"),
    ("describe", "DESCRIBE traders"),
    ("show", "SHOW TABLES"),
    ("summarize", "SUMMARIZE traders"),
    ("current-setting", "SELECT current_setting('home_directory')"),
    ("getenv", "SELECT getenv('HOME')"),
    ("duckdb-settings", "SELECT * FROM duckdb_settings()"),
    ("duckdb-extensions", "SELECT * FROM duckdb_extensions()"),
    ("duckdb-view", "SELECT * FROM duckdb_tables"),
    ("pragma-view", "SELECT * FROM pragma_database_list"),
    ("query-fn", "SELECT * FROM query('DROP TABLE traders')"),
    ("query-table-fn", "SELECT * FROM query_table('fraud_labels')"),
    ("serialized-sql", "SELECT * FROM json_execute_serialized_sql('x')"),
    ("nextval", "SELECT nextval('seq')"),
    ("sleep", "SELECT sleep_ms(100000)"),
    ("information-schema", "SELECT * FROM information_schema.tables"),
    ("other-catalog", "SELECT * FROM system.main.duckdb_settings"),
    ("temp-schema", "SELECT * FROM temp.main.x"),
    ("hidden-table", "SELECT * FROM fraud_labels"),
    ("hidden-table-join", "SELECT d.* FROM declarations d JOIN fraud_labels f USING "
                          "(declaration_id)"),
    ("cte-out-of-scope", 'SELECT * FROM (WITH "{out}/canary.csv" AS (SELECT 1) SELECT 1), '
                         '"{out}/canary.csv"'),
    ("placeholder-table", "SELECT * FROM ?"),
    # case and unicode tricks
    ("upper-func", "select * from READ_CSV('/etc/passwd')"),
    ("mixed-case", "sElEcT * FrOm ReAd_TeXt('/etc/passwd')"),
    ("lower-drop", "drop table traders"),
    ("quoted-func", "SELECT * FROM \"read_csv\"('{out}/canary.csv')"),
    ("zero-width", "SELECT 1\u200b; DROP TABLE traders"),
    ("zero-width-keyword", "DR\u200bOP TABLE traders"),
    ("fullwidth-semicolon", "SELECT 1\uff1b DROP TABLE traders"),
    ("fullwidth-select", "\uff33\uff25\uff2c\uff25\uff23\uff34 * FROM traders"),
    ("cyrillic-table", "SELECT * FROM tr\u0430ders"),
    ("bidi-override", "SELECT 1 \u202e; ELBAT PORD"),
    ("nul-byte", "SELECT 1\x00; DROP TABLE traders"),
    ("empty", "   "),
    ("only-comment", "-- nothing here"),
]


def test_there_are_many_kinds_of_hostile_statements() -> None:
    assert len(HOSTILE) >= 30
    assert len({name for name, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("sql", [s for _, s in HOSTILE], ids=[n for n, _ in HOSTILE])
def test_hostile_statement_is_refused_and_touches_nothing(
    sql: str, world: dict[str, Path], runner: SqlRunner
) -> None:
    db, outside = world["db"], world["outside"]
    statement = sql.replace("{out}", str(outside))
    before_hash, before_db_dir, before_outside = sha256(db), listing(db.parent), listing(outside)
    with pytest.raises(SqlRefused) as refused:
        runner.run(statement)
    message = str(refused.value)
    assert message.startswith("Refused:") and len(message) > 20
    answer = try_run(runner, statement)
    assert isinstance(answer, dict) and answer["error"] == message
    assert sha256(db) == before_hash
    assert listing(db.parent) == before_db_dir
    assert listing(outside) == before_outside
    assert (outside / "canary.csv").read_text(encoding="utf-8") == "secret\ncanary-7f3a\n"


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DROP TABLE traders", "DROP statements are not allowed"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("SELECT * FROM read_csv('x.csv')", "read_csv"),
        ("SELECT * FROM '/etc/passwd'", "not a table of the trade database"),
        ("SELECT * FROM fraud_labels", "Tables: audits, countries"),
        ("WITH x AS (DELETE FROM audits RETURNING *) SELECT 1", "DELETE is not allowed anywhere"),
        ("SELECT * INTO t FROM traders", "SELECT ... INTO"),
        ("SELECT getenv('HOME')", "getenv()"),
        ("SELECT 1\u200b", "U+200B (ZERO WIDTH SPACE)"),
        ("selec 1", "must start with SELECT"),
    ],
)
def test_refusals_explain_why(sql: str, words: str, runner: SqlRunner) -> None:
    with pytest.raises(SqlRefused, match=None) as refused:
        runner.run(sql)
    assert words in str(refused.value)


def test_syntax_errors_fail_with_the_parsers_hint(runner: SqlRunner) -> None:
    with pytest.raises(SqlFailed) as failed:
        runner.run("SELECT name FROM traders WHERE")
    assert "Syntax error" in str(failed.value) and "line 1" in str(failed.value)
    answer = try_run(runner, "SELECT 'unclosed FROM traders")
    assert isinstance(answer, dict) and "unclosed quote" in answer["error"]


# --- the connection is a second lock on the door -------------------------------------------

FILE_TOUCHING = [
    "COPY traders TO '{out}/traders.csv'",
    "COPY (SELECT 1) TO '{out}/one.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{out}/dump'",
    "ATTACH '{out}/evil.db' AS evil",
    "SELECT * FROM read_csv('{out}/canary.csv')",
    "SELECT * FROM '{out}/canary.csv'",
    "SELECT * FROM read_text('{out}/canary.csv')",
    "SELECT * FROM glob('{out}/*')",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "CREATE TABLE evil AS SELECT 1",
    "INSERT INTO traders VALUES ('X', 'Evil', NULL, NULL, NULL, NULL, NULL, NULL)",
]


@pytest.mark.parametrize("sql", FILE_TOUCHING)
def test_connection_refuses_files_even_without_the_guard(
    sql: str, world: dict[str, Path], runner: SqlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, outside = world["db"], world["outside"]
    monkeypatch.setattr(tools.sql, "check_sql", lambda statement, tables=None: statement)
    statement = sql.replace("{out}", str(outside))
    before_hash, before_outside = sha256(db), listing(outside)
    with pytest.raises(TamgaError) as error:
        runner.run(statement)
    assert "canary-7f3a" not in str(error.value)
    assert sha256(db) == before_hash
    assert listing(outside) == before_outside


def test_low_level_connection_is_locked_down(world: dict[str, Path], runner: SqlRunner) -> None:
    outside = world["outside"]
    cursor = runner.backend._connection().cursor()  # type: ignore[attr-defined]
    try:
        with pytest.raises(duckdb.PermissionException):
            cursor.execute(f"SELECT * FROM read_csv('{outside}/canary.csv')").fetchall()
        with pytest.raises(duckdb.PermissionException):
            cursor.execute(f"COPY (SELECT 42) TO '{outside}/leak.csv'")
        with pytest.raises(duckdb.Error, match="locked"):
            cursor.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="locked"):
            cursor.execute("RESET lock_configuration")
        settings = cursor.execute(
            "SELECT current_setting('enable_external_access'), "
            "current_setting('lock_configuration'), current_setting('access_mode')"
        ).fetchone()
        assert settings == (False, True, "read_only")
    finally:
        cursor.close()
    assert listing(outside) == {"canary.csv"}


def test_python_variables_are_not_queryable(
    runner: SqlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    canary_frame = pd.DataFrame({"secret": ["canary-7f3a"]})
    assert len(canary_frame) == 1
    monkeypatch.setattr(tools.sql, "check_sql", lambda statement, tables=None: statement)
    with pytest.raises(SqlFailed) as failed:
        runner.run("SELECT * FROM canary_frame")
    assert "canary-7f3a" not in str(failed.value)


# --- real queries -----------------------------------------------------------------------------


def _total_by_trader_month() -> dict[tuple[str, str], float]:
    decl = {d: (date[:7], trader) for d, date, trader, _, _ in DECLARATIONS}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for d, _, _, _, _, _, cv, _ in ITEMS:
        month, trader = decl[d]
        totals[(trader, month)] += cv
    return totals


def test_select_with_join_and_aggregate(runner: SqlRunner) -> None:
    result = runner.run(
        "SELECT d.trader_id, strftime(d.declaration_date, '%Y-%m') AS month, "
        "sum(i.customs_value) AS value FROM declarations d "
        "JOIN declaration_items i USING (declaration_id) GROUP BY ALL ORDER BY ALL"
    )
    assert result.columns == ["trader_id", "month", "value"]
    assert {(t, m): v for t, m, v in result.rows} == _total_by_trader_month()
    assert result.truncated is False and result.elapsed_ms > 0
    assert result.sql.startswith("SELECT")


def test_with_window_function_and_parameters(runner: SqlRunner) -> None:
    sql = (
        "WITH per_trader AS (SELECT d.trader_id, sum(i.customs_value) AS value "
        "FROM declarations d JOIN declaration_items i USING (declaration_id) "
        "WHERE d.declaration_date >= ? GROUP BY 1) "
        "SELECT trader_id, value, rank() OVER (ORDER BY value DESC) AS rnk FROM per_trader "
        "ORDER BY rnk"
    )
    result = runner.run(sql, ["2024-01-01"])
    expected: dict[str, float] = defaultdict(float)
    decl = {d: (date, trader) for d, date, trader, _, _ in DECLARATIONS}
    for d, _, _, _, _, _, cv, _ in ITEMS:
        if decl[d][0] >= "2024-01-01":
            expected[decl[d][1]] += cv
    ranked = sorted(expected.items(), key=lambda kv: -kv[1])
    assert [[t, v, n] for n, (t, v) in enumerate(ranked, 1)] == result.rows

    named = runner.run(
        "SELECT name FROM traders WHERE trader_id = $tid AND country = $country",
        {"tid": "T002", "country": "KZ"},
    )
    assert named.rows == [["Steppe Steel JSC"]]


def test_json_friendly_values(runner: SqlRunner) -> None:
    result = runner.run(
        "SELECT registered_on, 1.25::DECIMAL(10, 2) AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, "
        "'nan'::DOUBLE AS n, [1, 2] AS l, {'a': DATE '2024-01-01'} AS s, true AS b "
        "FROM traders WHERE trader_id = 'T001'"
    )
    assert result.rows == [
        ["2015-03-01", 1.25, "2024-01-02T03:04:05", None, [1, 2], {"a": "2024-01-01"}, True]
    ]
    assert result.to_json() == {
        "columns": ["registered_on", "d", "ts", "n", "l", "s", "b"],
        "rows": result.rows,
        "truncated": False,
        "elapsed_ms": round(result.elapsed_ms, 1),
    }
    frame = result.to_dataframe()
    assert list(frame.columns) == result.columns and len(frame) == 1
    assert to_jsonable(dt.date(2024, 5, 1)) == "2024-05-01"


# Valid DuckDB queries an analyst or an LLM writes: sqlglot's rewrite must run and give the same
# answer as the original text run directly.
EQUIVALENT = [
    "FROM traders SELECT name ORDER BY name",
    "FROM declarations",
    "SELECT * EXCLUDE (tin) FROM traders ORDER BY trader_id",
    "SELECT COLUMNS('.*_id') FROM declarations ORDER BY 1",
    "SELECT trader_id, count(*) FILTER (WHERE control_channel <> 'green') AS flagged "
    "FROM declarations GROUP BY ALL ORDER BY ALL",
    "SELECT hs_code[1:2] AS chapter, origin_country, round(sum(customs_value), 2) AS v "
    "FROM declaration_items GROUP BY ALL ORDER BY v DESC",
    "SELECT date_trunc('month', declaration_date) AS m, count(*) FROM declarations "
    "GROUP BY 1 ORDER BY 1",
    "SELECT year(declaration_date) AS y, quarter(declaration_date) AS q, count(*) "
    "FROM declarations GROUP BY ALL ORDER BY ALL",
    "SELECT declaration_id, customs_value / nullif(net_mass_kg, 0) AS unit_value, "
    "median(customs_value / nullif(net_mass_kg, 0)) OVER (PARTITION BY hs_code) AS peer "
    "FROM declaration_items ORDER BY 1, 2",
    "SELECT * FROM declaration_items QUALIFY row_number() OVER "
    "(PARTITION BY hs_code ORDER BY customs_value DESC) = 1 ORDER BY hs_code",
    "SELECT trader_id, lag(declaration_date) OVER (PARTITION BY trader_id "
    "ORDER BY declaration_date) AS prev FROM declarations ORDER BY trader_id, declaration_date",
    "SELECT string_agg(name, ', ' ORDER BY name) FROM traders",
    "SELECT list(DISTINCT origin_country ORDER BY origin_country) FROM declaration_items",
    "SELECT quantile_cont(customs_value, 0.9), approx_count_distinct(hs_code) "
    "FROM declaration_items",
    "SELECT arg_max(trader_id, declaration_date) FROM declarations",
    "SELECT name FROM traders WHERE name ILIKE '%steel%' OR regexp_matches(name, '^Alt')",
    "SELECT CASE WHEN duty_rate_pct >= 12 THEN 'high' ELSE 'low' END AS band, count(*) "
    "FROM declaration_items GROUP BY 1 ORDER BY 1",
    "SELECT m.month::DATE AS month, coalesce(count(d.declaration_id), 0) AS n FROM "
    "range(DATE '2024-01-01', DATE '2024-05-01', INTERVAL 1 MONTH) m(month) "
    "LEFT JOIN declarations d ON date_trunc('month', d.declaration_date) = m.month "
    "GROUP BY 1 ORDER BY 1",
    "SELECT * FROM generate_series(1, 3) g(x)",
    "SELECT unnest([1, 2, 3]) AS x",
    "SELECT * FROM (VALUES ('a', 1), ('b', 2)) v(k, n)",
    "SELECT trader_id FROM declarations WHERE declaration_date < DATE '2024-01-01' "
    "INTERSECT SELECT trader_id FROM declarations WHERE declaration_date >= '2024-01-01' "
    "ORDER BY 1",
    "SELECT trader_id FROM traders EXCEPT SELECT trader_id FROM audits ORDER BY 1",
    "(SELECT 1 AS x) UNION ALL (SELECT 2) ORDER BY x",
    "VALUES (1, 'a'), (2, 'b')",
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) "
    "SELECT sum(x) FROM n",
    "SELECT t.name, a.outcome, a.additional_duty + a.penalty_amount AS total FROM audits a "
    "JOIN traders t USING (trader_id)",
    "SELECT declaration_date - INTERVAL 30 DAY, date_diff('day', DATE '2023-01-01', "
    "declaration_date), last_day(declaration_date) FROM declarations ORDER BY 1",
    "SELECT c.region, sum(i.customs_value) FROM declaration_items i JOIN countries c "
    "ON c.iso2 = i.origin_country GROUP BY ROLLUP (c.region) ORDER BY 1 NULLS LAST",
    "SELECT * FROM main.traders ORDER BY trader_id LIMIT 2 OFFSET 1",
    "SELECT h.description, i.hs_code FROM declaration_items i JOIN hs_nomenclature h "
    "ON h.code = left(i.hs_code, 2) ORDER BY 2, 1",
    "SELECT 'Текстиль 株式会社' AS name, value FROM dataset_info WHERE key = "
    "'reporting_currency'",
    "SELECT d.declaration_id, i.item_no FROM declarations d JOIN declaration_items i "
    "ON i.declaration_id = d.declaration_id AND i.item_no = 1 AND d.flow = 'import' "
    "ORDER BY 1, 2",
    "SELECT count(*) FROM declarations d JOIN declaration_items i "
    "ON i.declaration_id = d.declaration_id AND starts_with(i.hs_code, '85')",
]


@pytest.fixture(scope="module")
def plain_copy(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the test database for plain DuckDB (one process opens a file one way only)."""
    copy = tmp_path_factory.mktemp("plain") / "copy.duckdb"
    copy.write_bytes(world["db"].read_bytes())
    return copy


@pytest.mark.parametrize("sql", EQUIVALENT)
def test_valid_queries_run_unchanged(sql: str, plain_copy: Path, runner: SqlRunner) -> None:
    result = runner.run(sql)
    con = duckdb.connect(str(plain_copy), read_only=True)
    try:
        direct = con.execute(sql).fetchall()
    finally:
        con.close()
    assert result.rows == [[to_jsonable(v) for v in row] for row in direct]
    assert check_sql(sql) == result.sql


# --- limits, concurrency, errors --------------------------------------------------------------


def test_row_cap_truncates(world: dict[str, Path]) -> None:
    with SqlRunner(world["db"], row_cap=10) as capped:
        cut = capped.run("SELECT * FROM range(1000000)")
        assert cut.truncated is True and cut.rows == [[n] for n in range(10)]
        exact = capped.run("SELECT * FROM range(10)")
        assert exact.truncated is False and len(exact.rows) == 10


@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM range(100000000) a, range(100000000) b",
    ],
    ids=["recursive-cte", "cross-join"],
)
def test_runaway_query_is_stopped(sql: str, world: dict[str, Path]) -> None:
    before = sha256(world["db"])
    with SqlRunner(world["db"], timeout_s=1.0) as quick:
        start = time.perf_counter()
        with pytest.raises(SqlTimeout) as stopped:
            quick.run(sql)
        took = time.perf_counter() - start
        assert 0.9 < took < 3.0
        assert "1 s limit" in str(stopped.value)
        assert quick.run("SELECT count(*) FROM traders").rows == [[len(TRADERS)]]
    assert sha256(world["db"]) == before


def test_concurrent_queries_share_one_runner(world: dict[str, Path]) -> None:
    errors: list[BaseException] = []
    results: dict[int, Any] = {}
    with SqlRunner(world["db"], timeout_s=1.0) as shared:

        def ask(n: int) -> None:
            try:
                if n % 5 == 0:
                    with pytest.raises(SqlTimeout):
                        shared.run("SELECT count(*) FROM range(100000000) a, range(100000000) b")
                    results[n] = "timeout"
                else:
                    results[n] = shared.run(
                        "SELECT count(*) FROM declaration_items WHERE item_no <= ?", [n % 3]
                    ).rows
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert not errors
    for n in range(20):
        if n % 5 == 0:
            assert results[n] == "timeout"
        else:
            assert results[n] == [[sum(1 for item in ITEMS if item[1] <= n % 3)]]


def test_engine_errors_come_back_readable(runner: SqlRunner) -> None:
    answer = try_run(runner, "SELECT nme FROM traders")
    assert isinstance(answer, dict)
    assert "nme" in answer["error"] and "name" in answer["error"]
    with pytest.raises(SqlFailed):
        runner.run("SELECT name FROM traders WHERE trader_id = ?")  # parameter missing


def test_missing_database_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "trade.duckdb"
    with pytest.raises(DatabaseMissing) as error:
        SqlRunner(missing)
    assert str(missing) in str(error.value) and "tamga demo" in str(error.value)
    assert not missing.parent.exists()


def test_schema_description_lists_only_trade_tables(runner: SqlRunner) -> None:
    assert runner.tables() == [
        "traders", "declarations", "declaration_items", "audits", "hs_nomenclature",
        "countries", "dataset_info",
    ]
    schema = runner.describe_schema()
    lines = schema.splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("traders(trader_id VARCHAR PK, name VARCHAR NOT NULL")
    assert "declaration_items(declaration_id VARCHAR PK, item_no INTEGER PK" in schema
    assert "customs_value DOUBLE NOT NULL" in schema
    assert "fraud_labels" not in schema


def test_result_type(runner: SqlRunner) -> None:
    result = runner.run("SELECT 1 AS one")
    assert isinstance(result, QueryResult)
    assert result.to_json()["columns"] == ["one"]
