"""Time typical audit queries through the guarded SQL runner; print p50/p95 per query.

    .venv/bin/python benchmarks/bench_sql.py --items 1000000 10000000   # builds demo DBs in a temp dir
    .venv/bin/python benchmarks/bench_sql.py --db ~/.tamga/trade.duckdb # an existing database

Each query runs once to warm up, then --runs times (warm). Parameters (the trader, the year,
the HS chapter) are picked from the data itself, so any trade database works. Not a test:
record the figures in docs/sql.md with the command that produced them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
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
    """One benchmark query: a name, the SQL, and a function choosing its parameters."""

    name: str
    sql: str
    params: Callable[[dict[str, Any]], list[Any]]


QUERIES = [
    Query(
        "trader history by month",
        """
        SELECT date_trunc('month', d.declaration_date) AS month,
               count(DISTINCT d.declaration_id) AS declarations,
               round(sum(i.customs_value), 2) AS customs_value,
               round(sum(i.duty_amount), 2) AS duty
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE d.trader_id = ? AND d.flow = 'import'
        GROUP BY 1 ORDER BY 1
        """,
        lambda p: [p["big_trader"]],
    ),
    Query(
        "top 20 importers in a year",
        """
        SELECT t.trader_id, t.name, round(sum(i.customs_value), 2) AS customs_value,
               count(DISTINCT d.declaration_id) AS declarations
        FROM declarations d
        JOIN declaration_items i USING (declaration_id)
        JOIN traders t USING (trader_id)
        WHERE d.flow = 'import' AND d.declaration_date >= make_date(?, 1, 1)
          AND d.declaration_date < make_date(? + 1, 1, 1)
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 20
        """,
        lambda p: [p["year"], p["year"]],
    ),
    Query(
        "value by HS chapter and origin",
        """
        SELECT left(i.hs_code, 2) AS chapter, i.origin_country,
               round(sum(i.customs_value), 2) AS customs_value, count(*) AS items
        FROM declaration_items i
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 100
        """,
        lambda p: [],
    ),
    Query(
        "value by chapter and origin in a year",
        """
        SELECT left(i.hs_code, 2) AS chapter, i.origin_country,
               round(sum(i.customs_value), 2) AS customs_value
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE d.declaration_date >= make_date(?, 1, 1) AND d.declaration_date < make_date(? + 1, 1, 1)
        GROUP BY ALL ORDER BY customs_value DESC LIMIT 100
        """,
        lambda p: [p["year"], p["year"]],
    ),
    Query(
        "trader unit values vs peers (HS6)",
        """
        WITH mine AS (
            SELECT i.declaration_id, i.item_no, left(i.hs_code, 6) AS hs6,
                   i.customs_value / nullif(i.net_mass_kg, 0) AS unit_value
            FROM declarations d JOIN declaration_items i USING (declaration_id)
            WHERE d.trader_id = ?
        ), peers AS (
            SELECT left(hs_code, 6) AS hs6,
                   median(customs_value / nullif(net_mass_kg, 0)) AS peer_unit_value
            FROM declaration_items
            WHERE left(hs_code, 6) IN (SELECT hs6 FROM mine)
            GROUP BY 1
        )
        SELECT m.*, p.peer_unit_value, m.unit_value / p.peer_unit_value AS ratio
        FROM mine m JOIN peers p USING (hs6)
        WHERE m.unit_value < 0.5 * p.peer_unit_value
        ORDER BY ratio LIMIT 50
        """,
        lambda p: [p["big_trader"]],
    ),
    Query(
        "origin mix of a chapter by quarter",
        """
        SELECT date_trunc('quarter', d.declaration_date) AS quarter, i.origin_country,
               round(sum(i.customs_value), 2) AS customs_value
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE i.hs_code LIKE ? || '%'
        GROUP BY ALL ORDER BY quarter, customs_value DESC
        """,
        lambda p: [p["chapter"]],
    ),
    Query(
        "trader profile",
        """
        SELECT t.name, t.sector, t.aeo_status,
               count(DISTINCT d.declaration_id) AS declarations,
               round(sum(i.customs_value), 2) AS customs_value,
               round(sum(i.duty_amount), 2) AS duty,
               round(avg(CASE WHEN d.control_channel = 'red' THEN 1 ELSE 0 END), 3) AS red_share,
               count(DISTINCT i.origin_country) AS origins,
               (SELECT count(*) FROM audits a WHERE a.trader_id = t.trader_id) AS audits
        FROM traders t
        JOIN declarations d USING (trader_id)
        JOIN declaration_items i USING (declaration_id)
        WHERE t.trader_id = ?
        GROUP BY ALL
        """,
        lambda p: [p["small_trader"]],
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
    """A large and a median trader, the latest full year, the busiest chapter, the last month."""
    traders = runner.run(
        "SELECT trader_id, count(*) AS n FROM declarations GROUP BY 1 ORDER BY n DESC, 1"
    ).rows
    big, small = traders[0][0], traders[len(traders) // 2][0]
    span = runner.run(
        "SELECT min(declaration_date), max(declaration_date) FROM declarations"
    ).rows[0]
    last_year = int(span[1][:4])
    year = last_year if span[1][5:] >= "12-01" else last_year - 1
    chapter = runner.run(
        "SELECT left(hs_code, 2) FROM declaration_items GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).rows[0][0]
    last_month = span[1][:8] + "01"
    return {"big_trader": big, "small_trader": small, "year": max(year, int(span[0][:4])),
            "chapter": chapter, "last_month": last_month}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def time_queries(runner: SqlRunner, runs: int) -> list[tuple[str, float, float, float, int]]:
    """(name, p50, p95, max, rows) per query, in milliseconds, after one warm-up run."""
    params = pick_parameters(runner)
    print(f"  parameters: {params}", flush=True)
    rows = []
    for query in QUERIES:
        args = query.params(params)
        result = runner.run(query.sql, args or None)  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            runner.run(query.sql, args or None)
            times.append((time.perf_counter() - start) * 1000)
        rows.append((query.name, percentile(times, 50), percentile(times, 95), max(times),
                     len(result.rows)))
        print(f"  {query.name:40s} p50 {rows[-1][1]:8.1f} ms  p95 {rows[-1][2]:8.1f} ms",
              flush=True)
    return rows


def concurrency(runner: SqlRunner, threads: int, per_thread: int) -> tuple[float, float, float]:
    """Wall time (s) of threads x per_thread trader-history queries: cursors, then one lock."""
    traders = [r[0] for r in runner.run(
        "SELECT trader_id FROM declarations GROUP BY 1 ORDER BY count(*) DESC LIMIT 50").rows]
    sql = QUERIES[0].sql
    serial = threading.Lock()

    def wave(locked: bool) -> tuple[float, float]:
        latencies: list[float] = []

        def work(k: int) -> None:
            for j in range(per_thread):
                start = time.perf_counter()
                if locked:
                    with serial:
                        runner.run(sql, [traders[(k * per_thread + j) % len(traders)]])
                else:
                    runner.run(sql, [traders[(k * per_thread + j) % len(traders)]])
                latencies.append((time.perf_counter() - start) * 1000)

        pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        start = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return time.perf_counter() - start, percentile(latencies, 95)

    parallel, parallel_p95 = wave(locked=False)
    locked, _ = wave(locked=True)
    return parallel, locked, parallel_p95


def bench_database(path: Path, runs: int, threads: int) -> None:
    """Run every query on one database and print a Markdown table."""
    start = time.perf_counter()
    runner = SqlRunner(path, timeout_s=120, row_cap=5000)
    opened = (time.perf_counter() - start) * 1000
    items = runner.run("SELECT count(*) FROM declaration_items").rows[0][0]
    declarations = runner.run("SELECT count(*) FROM declarations").rows[0][0]
    print(f"\n## {path.name}: {items:,} items, {declarations:,} declarations, "
          f"{path.stat().st_size / 1e6:,.0f} MB (opened in {opened:.0f} ms)", flush=True)
    rows = time_queries(runner, runs)
    print(f"\n| query ({items:,} items) | p50 ms | p95 ms | max ms | rows |")
    print("|---|---:|---:|---:|---:|")
    for name, p50, p95, worst, n in rows:
        print(f"| {name} | {p50:,.1f} | {p95:,.1f} | {worst:,.1f} | {n:,} |")
    if threads > 1:
        parallel, locked, p95 = concurrency(runner, threads, per_thread=5)
        print(f"\n{threads} threads x 5 trader histories: {parallel:.2f} s with a cursor per "
              f"call (p95 {p95:,.0f} ms), {locked:.2f} s serialised by one lock", flush=True)
    runner.close()


def main() -> None:
    """Parse arguments, build or open the databases, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", help="existing database(s)")
    parser.add_argument("--items", type=int, nargs="*", default=[1_000_000, 10_000_000],
                        help="demo sizes to build when --db is not given")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query")
    parser.add_argument("--threads", type=int, default=8, help="threads for the concurrency run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the built databases")
    args = parser.parse_args()

    if args.db:
        for path in args.db:
            bench_database(path.expanduser(), args.runs, args.threads)
        return

    from tradedata.demo import generate_demo

    workdir = Path(tempfile.mkdtemp(prefix="tamga-bench-sql-"))
    try:
        for items in args.items:
            path = workdir / f"demo_{items}.duckdb"
            start = time.perf_counter()
            generate_demo(path, items=items, seed=args.seed, progress=lambda m: None)
            print(f"built {items:,} items in {time.perf_counter() - start:,.0f} s", flush=True)
            bench_database(path, args.runs, args.threads)
            if not args.keep:
                path.unlink()
    finally:
        if args.keep:
            print(f"databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
