"""Office scoping: an officer's queries never see another office's rows, whatever their shape.

The adversarial suite runs every query below twice on the real demo database: unscoped (to
prove the query does reach other offices) and through a ScopedRunner for one office (to prove
it no longer does). It prints "N cross-office queries, 0 rows leaked; M hostile SQL statements,
0 executed", the figures quoted in docs/security.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tamga.errors import SqlFailed, SqlRefused, TamgaError
from tamga.scope import Scope
from tests.test_sql_guard import HOSTILE
from tools.runner import try_run
from tools.scoping import ScopedRunner, scope_sql
from tools.sql import SqlRunner

OFFICE = "Tocumen International Airport"
Q = "'Tocumen International Airport'"  # the office as a SQL literal

# (name, kind, sql). kind says how a leak is counted:
#   decl    every value of column declaration_id belongs to the office
#   office  every value of column customs_office is the office
#   trader  every value of column trader_id is a trader with a declaration in the office
#   empty   the query asks only for other offices' rows: it must return nothing
#   same:<reference sql>   the result equals the reference run with an explicit office filter
QUERIES: list[tuple[str, str, str]] = [
    ("plain", "decl", "SELECT declaration_id FROM declarations"),
    ("alias", "decl", "SELECT d.declaration_id FROM declarations d"),
    ("alias-as", "office", "SELECT x.declaration_id, x.customs_office FROM declarations AS x"),
    ("upper-case", "decl", "SELECT DECLARATION_ID AS declaration_id FROM DECLARATIONS"),
    ("mixed-case", "decl", "select Declaration_Id as declaration_id from DeClArAtIoNs"),
    ("quoted", "decl", 'SELECT declaration_id FROM "Declarations"'),
    ("quoted-upper", "decl", 'SELECT declaration_id FROM "DECLARATIONS"'),
    ("schema-qualified", "decl", "SELECT declaration_id FROM main.declarations"),
    ("schema-quoted", "decl", 'SELECT declaration_id FROM "main"."declarations"'),
    ("schema-column", "decl",
     "SELECT main.declarations.declaration_id FROM main.declarations"),
    ("comments", "decl",
     "SELECT declaration_id FROM /* ; */ declarations -- WHERE customs_office = 'x'"),
    ("from-first", "decl", "FROM declarations SELECT declaration_id"),
    ("from-only", "office", "FROM declarations"),
    ("items-alone", "decl", "SELECT DISTINCT declaration_id FROM declaration_items"),
    ("items-qualified", "decl", "SELECT DISTINCT declaration_id FROM main.declaration_items"),
    ("items-join", "office",
     "SELECT i.declaration_id, d.customs_office FROM declaration_items i "
     "JOIN declarations d USING (declaration_id)"),
    ("items-join-other-office", "empty",
     "SELECT i.* FROM declaration_items i JOIN declarations d "
     f"ON d.declaration_id = i.declaration_id WHERE d.customs_office <> {Q}"),
    ("where-other-office", "empty",
     f"SELECT * FROM declarations WHERE customs_office <> {Q}"),
    ("or-true", "decl",
     f"SELECT declaration_id FROM declarations WHERE customs_office = {Q} OR 1 = 1"),
    ("like-anything", "decl",
     "SELECT declaration_id FROM declarations WHERE customs_office LIKE '%'"),
    ("in-subquery-where", "empty",
     "SELECT * FROM declaration_items WHERE declaration_id IN "
     f"(SELECT declaration_id FROM declarations WHERE customs_office <> {Q})"),
    ("subquery-from", "decl", "SELECT * FROM (SELECT * FROM declarations) AS s"),
    ("subquery-deep", "decl",
     "SELECT declaration_id FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM declarations)))"),
    ("subquery-select", f"same:SELECT count(*) FROM declarations WHERE customs_office = {Q}",
     "SELECT (SELECT count(*) FROM declarations) AS n"),
    ("scalar-subquery-other", "empty",
     "SELECT trader_id FROM traders WHERE trader_id = "
     f"(SELECT trader_id FROM declarations WHERE customs_office <> {Q} LIMIT 1)"),
    ("exists-correlated", "trader",
     "SELECT t.trader_id FROM traders t WHERE EXISTS "
     "(SELECT 1 FROM declarations d WHERE d.trader_id = t.trader_id)"),
    ("cte", "decl", "WITH x AS (SELECT * FROM declarations) SELECT declaration_id FROM x"),
    ("cte-chain", "decl",
     "WITH a AS (SELECT * FROM declaration_items), b AS (SELECT DISTINCT declaration_id FROM a) "
     "SELECT * FROM b"),
    ("cte-shadow", "decl",
     "WITH declarations AS (SELECT * FROM declarations) SELECT declaration_id FROM declarations"),
    ("cte-shadow-other-office", "empty",
     f"WITH declarations AS (SELECT * FROM main.declarations WHERE customs_office <> {Q}) "
     "SELECT * FROM declarations"),
    ("cte-shadow-items-name", "decl",
     "WITH declaration_items AS (SELECT * FROM declarations) "
     "SELECT declaration_id FROM declaration_items"),
    ("cte-shadow-nested", "decl",
     "SELECT declaration_id FROM (WITH declarations AS (SELECT * FROM declarations) "
     "SELECT * FROM declarations) q"),
    ("cte-shadow-quoted-bypass", "decl",
     'WITH "DECLARATIONS" AS (SELECT 1 AS z) SELECT declaration_id FROM main.declarations'),
    ("cte-shadow-traders", "trader",
     "WITH traders AS (SELECT trader_id FROM main.traders) SELECT trader_id FROM traders"),
    ("recursive-cte", "decl",
     "WITH RECURSIVE ids AS (SELECT declaration_id FROM declarations "
     "UNION SELECT declaration_id FROM ids WHERE false) SELECT * FROM ids"),
    ("recursive-shadow", "decl",
     "WITH RECURSIVE declarations AS (SELECT * FROM declarations) "
     "SELECT declaration_id FROM declarations"),
    ("union", "decl",
     "SELECT declaration_id FROM declarations UNION SELECT declaration_id FROM declaration_items"),
    ("union-all", "office",
     "SELECT customs_office FROM declarations UNION ALL SELECT customs_office FROM "
     "main.declarations"),
    ("intersect", "decl",
     "SELECT declaration_id FROM declaration_items INTERSECT SELECT declaration_id FROM "
     "declarations"),
    ("except", "empty",
     "SELECT declaration_id FROM declarations EXCEPT SELECT declaration_id FROM declarations "
     f"WHERE customs_office = {Q}"),
    ("window", "decl",
     "SELECT declaration_id, count(*) OVER () AS n FROM declarations"),
    ("window-partition", "office",
     "SELECT customs_office, row_number() OVER (PARTITION BY customs_office "
     "ORDER BY declaration_date) AS rn FROM declarations"),
    ("qualify", "decl",
     "SELECT declaration_id FROM declarations "
     "QUALIFY row_number() OVER (PARTITION BY customs_office ORDER BY declaration_id) <= 5"),
    ("lateral", "trader",
     "SELECT t.trader_id, l.n FROM traders t, LATERAL (SELECT count(*) AS n FROM declarations d "
     "WHERE d.trader_id = t.trader_id) l"),
    ("lateral-join-items", "decl",
     "SELECT d.declaration_id FROM declarations d JOIN LATERAL (SELECT * FROM declaration_items i "
     "WHERE i.declaration_id = d.declaration_id) x ON TRUE"),
    ("group-by-office",
     f"same:SELECT customs_office, count(*) FROM declarations WHERE customs_office = {Q} "
     "GROUP BY customs_office",
     "SELECT customs_office, count(*) FROM declarations GROUP BY customs_office"),
    ("rollup",
     f"same:SELECT customs_office, count(*) FROM declarations WHERE customs_office = {Q} "
     "GROUP BY ROLLUP (customs_office)",
     "SELECT customs_office, count(*) FROM declarations GROUP BY ROLLUP (customs_office)"),
    ("items-total",
     "same:SELECT sum(i.customs_value) FROM declaration_items i JOIN declarations d "
     f"USING (declaration_id) WHERE d.customs_office = {Q}",
     "SELECT sum(customs_value) FROM declaration_items"),
    ("items-join-total",
     "same:SELECT sum(i.customs_value) FROM declaration_items i JOIN declarations d "
     f"USING (declaration_id) WHERE d.customs_office = {Q}",
     "SELECT sum(i.customs_value) FROM declaration_items i JOIN declarations d "
     "USING (declaration_id)"),
    ("count", f"same:SELECT count(*) FROM declarations WHERE customs_office = {Q}",
     "SELECT count(*) FROM declarations"),
    ("traders", "trader", "SELECT trader_id FROM traders"),
    ("audits", "trader", "SELECT trader_id FROM audits"),
    ("audits-join-traders", "trader",
     "SELECT a.trader_id FROM audits a JOIN traders t USING (trader_id)"),
    ("self-join", "decl",
     "SELECT a.declaration_id FROM declarations a, declarations b "
     "WHERE a.declaration_id = b.declaration_id"),
    ("natural-join", "decl",
     "SELECT declaration_id FROM declarations d1 NATURAL JOIN declarations d2"),
    ("qualified-column", "office",
     "SELECT declarations.customs_office FROM declarations"),
    ("column-alias-list", "decl",
     "SELECT a AS declaration_id FROM declarations AS d(a)"),
    # Bernoulli with a seed: the default (system) sampling keeps or drops whole vectors of
    # 2,048 rows, so the officer's few thousand rows were sometimes all dropped (a flaky test)
    ("tablesample", "decl",
     "SELECT declaration_id FROM declarations TABLESAMPLE 50% (bernoulli, 7)"),
    ("values-cross-join", "decl",
     "SELECT d.declaration_id FROM (VALUES (1)) v(x) CROSS JOIN declarations d"),
    ("in-self", "decl",
     "SELECT declaration_id FROM declarations WHERE customs_office IN "
     "(SELECT customs_office FROM main.declarations)"),
    ("order-limit", "decl",
     "SELECT * FROM declarations ORDER BY 1 DESC LIMIT 100"),
    ("distinct-on", "office",
     "SELECT DISTINCT ON (customs_office) customs_office, declaration_id FROM declarations"),
    ("unnest-list", "decl",
     "SELECT unnest(list(declaration_id)) AS declaration_id FROM declarations"),
    ("string-agg", "office",
     "SELECT string_agg(DISTINCT customs_office, '|') AS customs_office FROM declarations"),
    ("pivot-statement", "decl",
     "SELECT declaration_id FROM (PIVOT declarations ON customs_office USING count(*))"),
    ("pivot-clause", "office",
     "SELECT DISTINCT customs_office FROM declarations "
     "PIVOT (count(*) FOR flow IN ('import', 'export'))"),
    ("unpivot", "office",
     "SELECT declaration_id, v AS customs_office FROM "
     "(UNPIVOT declarations ON customs_office INTO NAME k VALUE v)"),
    ("asof-join", "office",
     "SELECT DISTINCT d.customs_office FROM declarations d ASOF JOIN declarations e "
     "ON d.declaration_date >= e.declaration_date"),
    ("positional-join", "decl",
     "SELECT i.declaration_id FROM declaration_items i POSITIONAL JOIN declarations d"),
    ("columns-expression", "office",
     "SELECT DISTINCT COLUMNS('customs_office') FROM declarations"),
    ("unnest-scalar-subquery", "decl",
     "SELECT unnest((SELECT list(declaration_id) FROM declarations)) AS declaration_id"),
    ("min-office", "office",
     "SELECT min(customs_office) AS customs_office FROM declarations"),
]


@dataclass
class Truth:
    """What an officer of OFFICE may see, computed on the unscoped database."""

    declarations: set[Any]
    traders: set[Any]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base(demo_db: Path) -> Iterator[SqlRunner]:
    runner = SqlRunner(demo_db, timeout_s=60, row_cap=1_000_000)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def officer(base: SqlRunner) -> ScopedRunner:
    return ScopedRunner(base, Scope.offices_of("ana", [OFFICE]))


@pytest.fixture(scope="module")
def truth(base: SqlRunner) -> Truth:
    ids = base.run(f"SELECT declaration_id FROM declarations WHERE customs_office = {Q}")
    traders = base.run(
        f"SELECT DISTINCT trader_id FROM declarations WHERE customs_office = {Q}"
    )
    assert ids.rows and traders.rows
    return Truth({r[0] for r in ids.rows}, {r[0] for r in traders.rows})


def _column(columns: list[str], name: str) -> int:
    lowered = [c.lower() for c in columns]
    assert name in lowered, f"query must return a {name} column, got {columns}"
    return lowered.index(name)


def leaked_rows(kind: str, columns: list[str], rows: list[list[Any]], truth: Truth,
                base: SqlRunner) -> int:
    """How many rows of a result an officer of OFFICE should not have seen."""
    if kind == "empty":
        return len(rows)
    if kind == "decl":
        i = _column(columns, "declaration_id")
        return sum(1 for r in rows if r[i] not in truth.declarations)
    if kind == "office":
        i = _column(columns, "customs_office")
        return sum(1 for r in rows if r[i] is not None and r[i] != OFFICE)
    if kind == "trader":
        i = _column(columns, "trader_id")
        return sum(1 for r in rows if r[i] not in truth.traders)
    assert kind.startswith("same:")
    reference = base.run(kind[5:]).rows
    got, want = sorted(map(repr, rows)), sorted(map(repr, reference))
    return 0 if got == want else max(1, len(set(got) ^ set(want)))


def test_the_suite_is_large_and_varied() -> None:
    assert len(QUERIES) >= 70
    assert len({name for name, _, _ in QUERIES}) == len(QUERIES)


def test_cross_office_queries_leak_nothing(
    base: SqlRunner, officer: ScopedRunner, truth: Truth, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every query reaches other offices unscoped, and none of their rows once scoped."""
    leaks: dict[str, int] = {}
    failures: dict[str, str] = {}
    unscoped_leaks = 0
    for name, kind, sql in QUERIES:
        raw = base.run(sql)
        would_leak = leaked_rows(kind, raw.columns, raw.rows, truth, base)
        assert would_leak > 0, f"{name}: the query does not even try to reach other offices"
        unscoped_leaks += would_leak
        try:
            scoped = officer.run(sql)
        except TamgaError as exc:  # refusing is safe, but every shape here should run
            failures[name] = str(exc)
            continue
        leaks[name] = leaked_rows(kind, scoped.columns, scoped.rows, truth, base)
        if kind in ("decl", "office", "trader"):
            assert scoped.rows, f"{name}: the officer should still see their own rows"
    total = sum(leaks.values())
    line = (f"{len(QUERIES)} cross-office queries ({unscoped_leaks:,} rows from other offices "
            f"unscoped), {total} rows leaked")
    with capsys.disabled():
        print(f"\n[scoping] {line}")
    assert not failures, failures
    assert total == 0, {k: v for k, v in leaks.items() if v}


def test_scoped_counts_match_the_office_reference(
    base: SqlRunner, officer: ScopedRunner, truth: Truth
) -> None:
    n = officer.run("SELECT count(*) FROM declarations").rows[0][0]
    assert n == len(truth.declarations)
    items = officer.run("SELECT count(*) FROM declaration_items").rows[0][0]
    reference = base.run(
        "SELECT count(*) FROM declaration_items WHERE declaration_id IN "
        f"(SELECT declaration_id FROM declarations WHERE customs_office = {Q})"
    ).rows[0][0]
    assert items == reference and 0 < items < base.run(
        "SELECT count(*) FROM declaration_items").rows[0][0]
    traders = officer.run("SELECT count(*) FROM traders").rows[0][0]
    assert traders == len(truth.traders)


def test_several_offices_see_exactly_their_union(base: SqlRunner) -> None:
    offices = ["Balboa Seaport", "Tocumen International Airport"]
    runner = ScopedRunner(base, Scope.offices_of("bo", offices))
    got = runner.run("SELECT customs_office, count(*) FROM declarations GROUP BY 1 ORDER BY 1")
    want = base.run(
        "SELECT customs_office, count(*) FROM declarations WHERE customs_office IN "
        "('Balboa Seaport', 'Tocumen International Airport') GROUP BY 1 ORDER BY 1"
    )
    assert got.rows == want.rows and len(got.rows) == 2


def test_an_officer_without_offices_sees_nothing(base: SqlRunner) -> None:
    runner = ScopedRunner(base, Scope.offices_of("nobody", []))
    for table in ("declarations", "declaration_items", "traders", "audits"):
        assert runner.run(f"SELECT count(*) FROM {table}").rows == [[0]]
    # reference tables are not scoped
    assert runner.run("SELECT count(*) FROM countries").rows[0][0] > 0


def test_unrestricted_scope_changes_nothing(base: SqlRunner) -> None:
    sql = "SELECT count(*) FROM declarations"
    assert scope_sql(sql, Scope.everything("sam")) == sql
    runner = ScopedRunner(base, Scope.everything("sam"))
    assert runner.run(sql).rows == base.run(sql).rows


def test_office_names_are_quoted_as_literals(base: SqlRunner) -> None:
    evil = "x') OR 1=1 OR customs_office IN ('y"
    runner = ScopedRunner(base, Scope.offices_of("eve", [evil]))
    assert runner.run("SELECT count(*) FROM declarations").rows == [[0]]
    assert "'x'') OR 1=1" in runner.check("SELECT * FROM declarations")


def test_parameters_still_bind_through_the_scope(officer: ScopedRunner, truth: Truth) -> None:
    result = officer.run(
        "SELECT count(*) FROM declarations WHERE declaration_date >= $start",
        {"start": "1900-01-01"},
    )
    assert result.rows == [[len(truth.declarations)]]


def test_the_scoped_sql_is_what_runs(officer: ScopedRunner) -> None:
    result = officer.run("SELECT count(*) AS n FROM declarations d")
    assert f"customs_office IN ({Q})" in result.sql
    refused = try_run(officer, "DROP TABLE declarations")
    assert isinstance(refused, dict) and refused["error"].startswith("Refused:")


def test_time_travel_and_other_table_options_are_refused(officer: ScopedRunner) -> None:
    with pytest.raises((SqlRefused, SqlFailed)):
        officer.run("SELECT * FROM declarations AT (VERSION => 1)")


# -- hostile statements through the scoped runner ---------------------------------------------

SCOPE_HOSTILE = [
    "SELECT * FROM query_table('declarations')",
    "SELECT * FROM query('SELECT * FROM declarations')",
    "SELECT * FROM memory.main.declarations",
    "SELECT * FROM demo.main.declarations",
    "SELECT * FROM temp.main.declarations",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM pg_catalog.pg_class",
    "SELECT * FROM declarations; SELECT * FROM declarations",
    "WITH x AS (DELETE FROM declarations RETURNING *) SELECT * FROM x",
    "SET VARIABLE office = 'Colón Free Zone'",
    "SELECT current_setting('access_mode')",
    "PRAGMA table_info('declarations')",
    "SUMMARIZE declarations",
    "DESCRIBE declarations",
    "EXPLAIN SELECT * FROM declarations",
    "CREATE TEMP VIEW declarations AS SELECT * FROM main.declarations",
    "SELECT * FROM read_parquet('declarations.parquet')",
    "SELECT * FROM 'declarations.csv'",
    "SELECT * FROM declarations_2024",
]


def test_hostile_statements_execute_nothing(
    demo_db: Path, officer: ScopedRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statements = [s.replace("{out}", str(tmp_path)) for _, s in HOSTILE] + SCOPE_HOSTILE
    before = _sha256(demo_db)
    executed = []
    for sql in statements:
        try:
            officer.run(sql)
        except (SqlRefused, SqlFailed):
            continue
        executed.append(sql)
    with capsys.disabled():
        print(f"\n[scoping] {len(statements)} hostile SQL statements, {len(executed)} executed")
    assert executed == []
    assert _sha256(demo_db) == before
    assert list(tmp_path.iterdir()) == []


def test_a_scoped_runner_hands_out_no_raw_connection(officer: ScopedRunner) -> None:
    # It wraps the runner that owns the connection and offers no way to reach a cursor.
    assert not isinstance(officer, SqlRunner)
    assert not hasattr(officer, "_cursor") and not hasattr(officer, "_connection")
    assert officer.tables() and "declarations(" in officer.describe_schema()
