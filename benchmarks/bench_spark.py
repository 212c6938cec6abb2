"""Benchmark: the same guarded officer queries on DuckDB and on Spark Connect, at growing sizes.

    .venv-spark/bin/python benchmarks/bench_spark.py --db ~/.tamga/trade.duckdb \
        --sizes 1000000 3000000 10000000 --runs 3

For each size it builds a scaled copy of the demo (declarations and their items repeated with
new IDs until declaration_items holds that many rows) as a DuckDB file and as the Parquet
export Spark reads (`export_parquet`), starts a local Spark Connect server (`local[2]`, the
pyspark package's own server class) and runs the query set through the product's runner
(guard, translation, backend) on both engines. Prints build and export times, sizes, and per
query the median and p95 latency on each engine. Needs pyspark (`make spark-test` installs it
in .venv-spark) and Java 17. Figures: docs/scale.md.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.spark.server import local_spark_connect, missing_requirement  # noqa: E402
from tools.spark import SparkBackend  # noqa: E402
from tools.sql import SqlRunner  # noqa: E402
from tradedata.parquet_export import export_parquet  # noqa: E402

#: What officers and supervisors ask most, as the engines see it.
QUERIES: dict[str, str] = {
    "top importers of a year": (
        "SELECT trader_id, round(sum(customs_value), 2) AS value FROM declaration_items "
        "WHERE flow = 'import' AND year(declaration_date) = 2025 "
        "GROUP BY 1 ORDER BY value DESC LIMIT 10"),
    "value by HS chapter": (
        "SELECT hs_chapter, round(sum(customs_value), 2) AS value, count(*) AS items "
        "FROM declaration_items WHERE flow = 'import' GROUP BY 1 ORDER BY value DESC"),
    "monthly trend": (
        "SELECT strftime(declaration_date, '%Y-%m') AS month, round(sum(duty_amount), 2) "
        "FROM declaration_items WHERE flow = 'import' GROUP BY 1 ORDER BY 1"),
    "one trader's history": (
        "SELECT year(declaration_date) AS y, origin_country, round(sum(customs_value), 2) "
        "FROM declaration_items WHERE trader_id = 'T000001' GROUP BY 1, 2 ORDER BY 1, 3 DESC"),
    "red channel rate by office": (
        "SELECT customs_office, round(100.0 * count(*) FILTER (WHERE control_channel = 'red') "
        "/ count(*), 1) AS red_pct FROM declarations WHERE flow = 'import' "
        "GROUP BY 1 ORDER BY red_pct DESC"),
    "distinct sellers per chapter": (
        "SELECT hs_chapter, count(DISTINCT seller_id) AS sellers FROM declaration_items "
        "GROUP BY 1 ORDER BY sellers DESC LIMIT 10"),
    "median unit value by subheading": (
        "SELECT left(hs_code, 6) AS hs6, median(customs_value / nullif(net_mass_kg, 0)) AS per_kg "
        "FROM declaration_items WHERE flow = 'import' GROUP BY 1 ORDER BY hs6 LIMIT 20"),
    "join: value by transport mode": (
        "SELECT d.transport_mode, round(sum(i.customs_value), 2) AS value "
        "FROM declaration_items i JOIN declarations d ON d.declaration_id = i.declaration_id "
        "WHERE i.flow = 'import' GROUP BY 1 ORDER BY value DESC"),
}


def scaled_copy(source: Path, target: Path, items: int) -> tuple[int, float]:
    """A DuckDB file whose declarations (and their items) repeat until `items` item rows."""
    import duckdb

    started = time.perf_counter()
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        base = con.execute("SELECT count(*) FROM src.declaration_items").fetchone()[0]  # type: ignore[index]
        copies = max(1, -(-items // base))
        for table in ("traders", "audits", "hs_nomenclature", "countries", "dataset_info"):
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table}")
        con.execute(
            f"CREATE TABLE declarations AS SELECT * REPLACE (declaration_id || "
            f"CASE WHEN k = 0 THEN '' ELSE '-' || k END AS declaration_id) "
            f"FROM src.declarations, range({copies}) r(k)")
        con.execute(
            f"CREATE TABLE declaration_items AS SELECT * REPLACE (declaration_id || "
            f"CASE WHEN k = 0 THEN '' ELSE '-' || k END AS declaration_id) "
            f"FROM src.declaration_items, range({copies}) r(k) LIMIT {items}")
        rows = con.execute("SELECT count(*) FROM declaration_items").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    return int(rows), time.perf_counter() - started


def timed(runner: SqlRunner, sql: str, runs: int) -> list[float]:
    """Seconds of each run (the first included: officers ask once)."""
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        runner.run(sql)
        out.append(time.perf_counter() - started)
    return out


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    """Build each size, run the query set on both engines, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path("~/.tamga/trade.duckdb").expanduser())
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (default: tmp).")
    args = parser.parse_args(argv)
    reason = missing_requirement()
    if reason:
        print(f"Cannot run: {reason}")
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="tamga-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    with local_spark_connect(work) as server:
        print(f"Spark Connect (local[2], 2 GB driver) listening after {server.started_s:.1f} s")
        for size in args.sizes:
            db = work / f"trade-{size}.duckdb"
            rows, build_s = scaled_copy(args.db.expanduser(), db, size)
            export = work / f"parquet-{size}"
            shutil.rmtree(export, ignore_errors=True)
            summary = export_parquet(db, export, progress=lambda _: None)
            mb_db = db.stat().st_size / 1e6
            mb_pq = sum(p.stat().st_size for p in export.rglob("*.parquet")) / 1e6
            print(f"\n{rows:,} item rows ({summary.rows['declarations']:,} declarations): "
                  f"DuckDB file {mb_db:.0f} MB built in {build_s:.1f} s; Parquet {mb_pq:.0f} MB "
                  f"exported in {summary.seconds:.1f} s")
            duck = SqlRunner(db, timeout_s=600, row_cap=5000)
            started = time.perf_counter()
            backend = SparkBackend(server.remote, server.token, str(export))
            spark = SqlRunner(db, timeout_s=600, row_cap=5000, backend=backend)
            print(f"  Spark session and views ready in {time.perf_counter() - started:.1f} s")
            print(f"  {'query':<34} {'DuckDB p50':>10} {'p95':>7} {'Spark p50':>10} {'p95':>7}")
            all_duck, all_spark = [], []
            for name, sql in QUERIES.items():
                d, s = timed(duck, sql, args.runs), timed(spark, sql, args.runs)
                all_duck += d
                all_spark += s
                print(f"  {name:<34} {statistics.median(d):>9.2f}s {p95(d):>6.2f}s "
                      f"{statistics.median(s):>9.2f}s {p95(s):>6.2f}s")
            print(f"  {'all queries':<34} {statistics.median(all_duck):>9.2f}s "
                  f"{p95(all_duck):>6.2f}s {statistics.median(all_spark):>9.2f}s "
                  f"{p95(all_spark):>6.2f}s")
            duck.close()
            spark.close()
            db.unlink()
            shutil.rmtree(export, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
