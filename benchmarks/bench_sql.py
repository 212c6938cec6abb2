"""Time typical audit queries through the guarded SQL runner; print p50/p95 per query.

    .venv/bin/python benchmarks/bench_sql.py --items 1000000 10000000  # builds demo DBs (temp dir)
    .venv/bin/python benchmarks/bench_sql.py --db ~/.tamga/trade.duckdb  # an existing database

Each query runs once to warm up, then --runs times (warm). Parameters (the traders, the year,
the HS chapter) are picked from the data itself, so any trade database works.

The questions read declaration_items alone, through the columns it carries from its
declaration (trader_id, declaration_date, flow) and hs_chapter. --joined-runs also times the
same questions written with a join to declarations (the way they had to be written before);
--layouts times copies with another sort order or with the ART indexes schema.sql dropped.
Not a test: record the figures in docs/sql.md with the command that produced them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.sql import SqlRunner  # noqa: E402


@dataclass
class Query:
    """One benchmark question: SQL reading the denormalised items, and the same with a join."""

    name: str
    sql: str
    params: Callable[[dict[str, Any]], list[Any]]
    joined: str | None = None  # the same question joining declarations (the old way)


YEAR = "make_date(?, 1, 1) AND {col} < make_date(? + 1, 1, 1)"

QUERIES = [
    Query(
        "trader history by month",
        """
        SELECT date_trunc('month', declaration_date) AS month,
               count(DISTINCT declaration_id) AS declarations,
               round(sum(customs_value), 2) AS customs_value,
               round(sum(duty_amount), 2) AS duty
        FROM declaration_items
        WHERE trader_id = ? AND flow = 'import'
        GROUP BY 1 ORDER BY 1
        """,
        lambda p: [p["big_trader"]],
        """
        SELECT date_trunc('month', d.declaration_date) AS month,
               count(DISTINCT d.declaration_id) AS declarations,
               round(sum(i.customs_value), 2) AS customs_value,
               round(sum(i.duty_amount), 2) AS duty
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE d.trader_id = ? AND d.flow = 'import'
        GROUP BY 1 ORDER BY 1
        """,
    ),
    Query(
        "trader imports in a year by HS chapter",
        f"""
        SELECT i.hs_chapter, h.description, count(*) AS items,
               round(sum(i.customs_value), 2) AS customs_value
        FROM declaration_items i LEFT JOIN hs_nomenclature h ON h.code = i.hs_chapter
        WHERE i.trader_id = ? AND i.flow = 'import'
          AND i.declaration_date >= {YEAR.format(col="i.declaration_date")}
        GROUP BY ALL ORDER BY customs_value DESC
        """,
        lambda p: [p["median_trader"], p["year"], p["year"]],
        f"""
        SELECT left(i.hs_code, 2) AS chapter, h.description, count(*) AS items,
               round(sum(i.customs_value), 2) AS customs_value
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        LEFT JOIN hs_nomenclature h ON h.code = left(i.hs_code, 2)
        WHERE d.trader_id = ? AND d.flow = 'import'
          AND d.declaration_date >= {YEAR.format(col="d.declaration_date")}
        GROUP BY ALL ORDER BY customs_value DESC
        """,
    ),
    Query(
        "top 20 importers in a year",
        f"""
        SELECT t.trader_id, t.name, round(sum(i.customs_value), 2) AS customs_value,
               count(*) AS items
        FROM declaration_items i JOIN traders t USING (trader_id)
        WHERE i.flow = 'import' AND i.declaration_date >= {YEAR.format(col="i.declaration_date")}
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 20
        """,
        lambda p: [p["year"], p["year"]],
        f"""
        SELECT t.trader_id, t.name, round(sum(i.customs_value), 2) AS customs_value,
               count(*) AS items
        FROM declarations d
        JOIN declaration_items i USING (declaration_id)
        JOIN traders t ON t.trader_id = d.trader_id
        WHERE d.flow = 'import' AND d.declaration_date >= {YEAR.format(col="d.declaration_date")}
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 20
        """,
    ),
    Query(
        "value by HS chapter and origin",
        """
        SELECT hs_chapter, origin_country,
               round(sum(customs_value), 2) AS customs_value, count(*) AS items
        FROM declaration_items
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 100
        """,
        lambda p: [],
    ),
    Query(
        "same, chapter as left(hs_code, 2)",
        """
        SELECT left(hs_code, 2) AS chapter, origin_country,
               round(sum(customs_value), 2) AS customs_value, count(*) AS items
        FROM declaration_items
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 100
        """,
        lambda p: [],
    ),
    Query(
        "value by chapter and origin in a year",
        f"""
        SELECT hs_chapter, origin_country, round(sum(customs_value), 2) AS customs_value
        FROM declaration_items
        WHERE flow = 'import' AND declaration_date >= {YEAR.format(col="declaration_date")}
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 100
        """,
        lambda p: [p["year"], p["year"]],
        f"""
        SELECT left(i.hs_code, 2) AS chapter, i.origin_country,
               round(sum(i.customs_value), 2) AS customs_value
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE d.flow = 'import' AND d.declaration_date >= {YEAR.format(col="d.declaration_date")}
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 100
        """,
    ),
    Query(
        "trader unit values vs HS6 peers in a year",
        f"""
        WITH mine AS (
            SELECT declaration_id, item_no, left(hs_code, 6) AS hs6,
                   customs_value / nullif(net_mass_kg, 0) AS unit_value
            FROM declaration_items
            WHERE trader_id = ? AND flow = 'import'
              AND declaration_date >= {YEAR.format(col="declaration_date")}
        ), peers AS (
            SELECT left(hs_code, 6) AS hs6,
                   median(customs_value / nullif(net_mass_kg, 0)) AS peer_unit_value
            FROM declaration_items
            WHERE flow = 'import' AND declaration_date >= {YEAR.format(col="declaration_date")}
              AND hs_chapter IN (SELECT DISTINCT left(hs6, 2) FROM mine)
              AND left(hs_code, 6) IN (SELECT hs6 FROM mine)
            GROUP BY 1
        )
        SELECT m.*, p.peer_unit_value, m.unit_value / p.peer_unit_value AS ratio
        FROM mine m JOIN peers p USING (hs6)
        WHERE m.unit_value < 0.5 * p.peer_unit_value
        ORDER BY ratio LIMIT 50
        """,
        lambda p: [p["big_trader"], p["year"], p["year"], p["year"], p["year"]],
        f"""
        WITH mine AS (
            SELECT i.declaration_id, i.item_no, left(i.hs_code, 6) AS hs6,
                   i.customs_value / nullif(i.net_mass_kg, 0) AS unit_value
            FROM declarations d JOIN declaration_items i USING (declaration_id)
            WHERE d.trader_id = ? AND d.flow = 'import'
              AND d.declaration_date >= {YEAR.format(col="d.declaration_date")}
        ), peers AS (
            SELECT left(i.hs_code, 6) AS hs6,
                   median(i.customs_value / nullif(i.net_mass_kg, 0)) AS peer_unit_value
            FROM declarations d JOIN declaration_items i USING (declaration_id)
            WHERE d.flow = 'import'
              AND d.declaration_date >= {YEAR.format(col="d.declaration_date")}
              AND left(i.hs_code, 6) IN (SELECT hs6 FROM mine)
            GROUP BY 1
        )
        SELECT m.*, p.peer_unit_value, m.unit_value / p.peer_unit_value AS ratio
        FROM mine m JOIN peers p USING (hs6)
        WHERE m.unit_value < 0.5 * p.peer_unit_value
        ORDER BY ratio LIMIT 50
        """,
    ),
    Query(
        "origin mix of a chapter by quarter",
        """
        SELECT date_trunc('quarter', declaration_date) AS quarter, origin_country,
               round(sum(customs_value), 2) AS customs_value
        FROM declaration_items
        WHERE hs_chapter = ? AND flow = 'import'
        GROUP BY ALL ORDER BY quarter, customs_value DESC
        """,
        lambda p: [p["chapter"]],
        """
        SELECT date_trunc('quarter', d.declaration_date) AS quarter, i.origin_country,
               round(sum(i.customs_value), 2) AS customs_value
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE i.hs_code LIKE ? || '%' AND d.flow = 'import'
        GROUP BY ALL ORDER BY quarter, customs_value DESC
        """,
    ),
    Query(
        "trader profile",
        """
        SELECT t.name, t.sector, t.aeo_status,
               count(DISTINCT i.declaration_id) AS declarations,
               round(sum(i.customs_value), 2) AS customs_value,
               round(sum(i.duty_amount), 2) AS duty,
               count(DISTINCT i.origin_country) AS origins,
               min(i.declaration_date) AS first_seen, max(i.declaration_date) AS last_seen,
               (SELECT count(*) FROM audits a WHERE a.trader_id = t.trader_id) AS audits
        FROM traders t JOIN declaration_items i USING (trader_id)
        WHERE t.trader_id = ?
        GROUP BY ALL
        """,
        lambda p: [p["median_trader"]],
        """
        SELECT t.name, t.sector, t.aeo_status,
               count(DISTINCT d.declaration_id) AS declarations,
               round(sum(i.customs_value), 2) AS customs_value,
               round(sum(i.duty_amount), 2) AS duty,
               count(DISTINCT i.origin_country) AS origins,
               min(d.declaration_date) AS first_seen, max(d.declaration_date) AS last_seen,
               (SELECT count(*) FROM audits a WHERE a.trader_id = t.trader_id) AS audits
        FROM traders t
        JOIN declarations d ON d.trader_id = t.trader_id
        JOIN declaration_items i USING (declaration_id)
        WHERE t.trader_id = ?
        GROUP BY ALL
        """,
    ),
    Query(
        "red-channel share by office, last month",
        """
        SELECT customs_office, count(*) AS declarations,
               round(avg(CASE WHEN control_channel = 'red' THEN 1 ELSE 0 END), 3) AS red_share
        FROM declarations
        WHERE declaration_date >= ? GROUP BY 1 ORDER BY red_share DESC
        """,
        lambda p: [p["last_month"]],
    ),
]


def pick_parameters(runner: SqlRunner) -> dict[str, Any]:
    """The busiest and the median trader, the latest full year, the busiest chapter."""
    traders = runner.run(
        "SELECT trader_id, count(*) AS n FROM declarations GROUP BY 1 ORDER BY n DESC, 1"
    ).rows
    span = runner.run(
        "SELECT min(declaration_date), max(declaration_date) FROM declarations"
    ).rows[0]
    last_year = int(span[1][:4])
    year = last_year if span[1][5:] >= "12-01" else last_year - 1
    chapter = runner.run(
        "SELECT left(hs_code, 2) FROM declaration_items GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).rows[0][0]
    return {
        "big_trader": traders[0][0],
        "median_trader": traders[len(traders) // 2][0],
        "year": max(year, int(span[0][:4])),
        "chapter": chapter,
        "last_month": span[1][:8] + "01",
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


Row = tuple[str, float, float, float, int]

# Layouts timed besides the database as built (see --layouts): how each copy is made.
LAYOUTS = {
    "date-first": "items re-sorted by (declaration_date, trader_id) instead of "
                  "(trader_id, declaration_date)",
    "old-indexes": "as built plus the ART indexes dropped from schema.sql "
                   "(idx_items_hs, idx_declarations_date)",
}


def time_queries(runner: SqlRunner, params: dict[str, Any], runs: int,
                 joined: bool = False) -> list[Row]:
    """(name, p50, p95, max, rows) per query, in milliseconds, after one warm-up run.

    With `joined`, time the join form of the questions that have one (the old way)."""
    rows: list[Row] = []
    for query in QUERIES:
        sql = query.joined if joined else query.sql
        if sql is None:
            continue
        args = query.params(params) or None
        result = runner.run(sql, args)  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            runner.run(sql, args)
            times.append((time.perf_counter() - start) * 1000)
        rows.append((query.name, percentile(times, 50), percentile(times, 95), max(times),
                     len(result.rows)))
        print(f"  {query.name:42s} p50 {rows[-1][1]:8.1f} ms  p95 {rows[-1][2]:8.1f} ms",
              flush=True)
    return rows


def build_layout(source: Path, target: Path, layout: str) -> float:
    """Make the `layout` variant of `source` at `target` (see LAYOUTS); return seconds taken."""
    import duckdb

    from tradedata.db import create_schema

    start = time.perf_counter()
    if layout == "old-indexes":
        shutil.copyfile(source, target)
        start = time.perf_counter()  # time only the index builds
        con = duckdb.connect(str(target))
        try:
            con.execute("CREATE INDEX idx_items_hs ON declaration_items (hs_code)")
            con.execute("CREATE INDEX idx_declarations_date ON declarations (declaration_date)")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return time.perf_counter() - start
    con = duckdb.connect(str(target))
    try:
        create_schema(con)
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        for table in ("traders", "declarations", "audits", "hs_nomenclature", "countries",
                      "dataset_info"):
            con.execute(f"INSERT INTO {table} FROM src.{table}")
        con.execute("""
            INSERT INTO declaration_items FROM src.declaration_items
            ORDER BY declaration_date, trader_id, declaration_id, item_no
        """)
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - start


def print_table(title: str, rows: list[Row]) -> None:
    """A Markdown table of the figures."""
    print(f"\n| {title} | p50 ms | p95 ms | max ms | rows |")
    print("|---|---:|---:|---:|---:|")
    for name, p50, p95, worst, n in rows:
        print(f"| {name} | {p50:,.1f} | {p95:,.1f} | {worst:,.1f} | {n:,} |")
    print(flush=True)


def load() -> str:
    """The load averages, as text."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_database(path: Path, runs: int, joined_runs: int, layouts: list[str]) -> None:
    """Run every query on one database (and on its layout variants); print Markdown tables."""
    start = time.perf_counter()
    runner = SqlRunner(path, timeout_s=300, row_cap=5000)
    opened = (time.perf_counter() - start) * 1000
    items = runner.run("SELECT count(*) FROM declaration_items").rows[0][0]
    declarations = runner.run("SELECT count(*) FROM declarations").rows[0][0]
    print(f"\n## {path.name}: {items:,} items, {declarations:,} declarations, "
          f"{path.stat().st_size / 1e6:,.0f} MB (opened in {opened:.0f} ms; "
          f"load average {load()} on {os.cpu_count()} cores)", flush=True)
    params = pick_parameters(runner)
    print(f"  parameters: {params}", flush=True)
    rows = time_queries(runner, params, runs)
    print_table(f"as built, {items:,} items (load {load()})", rows)
    if joined_runs:
        rows = time_queries(runner, params, joined_runs, joined=True)
        print_table(f"join forms, {items:,} items, {joined_runs} runs (load {load()})", rows)
    runner.close()
    for layout in layouts:
        scratch = path.with_name(f"{path.stem}-{layout}.duckdb")
        try:
            took = build_layout(path, scratch, layout)
            print(f"\n{layout}: {LAYOUTS[layout]}; built in {took:,.1f} s, "
                  f"{scratch.stat().st_size / 1e6:,.0f} MB", flush=True)
            with SqlRunner(scratch, timeout_s=300, row_cap=5000) as copy:
                rows = time_queries(copy, params, runs)
            print_table(f"{layout}, {items:,} items (load {load()})", rows)
        finally:
            scratch.unlink(missing_ok=True)
            Path(str(scratch) + ".wal").unlink(missing_ok=True)


def main() -> None:
    """Parse arguments, build or open the databases, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", help="existing database(s)")
    parser.add_argument("--items", type=int, nargs="*", default=[1_000_000, 10_000_000],
                        help="demo sizes to build when --db is not given")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query")
    parser.add_argument("--joined-runs", type=int, default=0,
                        help="also time the join forms of the questions, this many runs each")
    parser.add_argument("--layouts", nargs="*", default=[], choices=sorted(LAYOUTS),
                        help="also time these variants of each database (copies, deleted after)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the built databases")
    args = parser.parse_args()

    if args.db:
        for path in args.db:
            bench_database(path.expanduser(), args.runs, args.joined_runs, args.layouts)
        return

    from tradedata.demo import generate_demo

    workdir = Path(tempfile.mkdtemp(prefix="tamga-bench-sql-"))
    try:
        for items in args.items:
            path = workdir / f"demo_{items}.duckdb"
            start = time.perf_counter()
            generate_demo(path, items=items, seed=args.seed)
            print(f"built {items:,} items in {time.perf_counter() - start:,.0f} s "
                  f"(load {load()})", flush=True)
            bench_database(path, args.runs, args.joined_runs, args.layouts)
            if not args.keep:
                path.unlink()
    finally:
        if args.keep:
            print(f"databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
