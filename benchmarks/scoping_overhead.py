"""Cost of office scoping: the sqlglot rewrite, and query time scoped vs unscoped.

    .venv/bin/python benchmarks/scoping_overhead.py [--db PATH] [--rows 100000] [--office NAME]

Without --db it builds a demo database of --rows items in a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

QUERIES = {
    "count items": "SELECT count(*) FROM declaration_items",
    "top traders by value": (
        "SELECT t.name, sum(i.customs_value) AS value FROM declaration_items i "
        "JOIN declarations d USING (declaration_id) JOIN traders t ON t.trader_id = d.trader_id "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
    ),
    "monthly trend": (
        "SELECT date_trunc('month', declaration_date) AS m, count(*) FROM declarations "
        "GROUP BY 1 ORDER BY 1"
    ),
}


def _p50(fn: object, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print the rewrite time and p50 query times, scoped and unscoped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--office", default="Balboa Seaport")
    args = parser.parse_args()

    from tamga.scope import Scope
    from tools.scoping import ScopedRunner, scope_sql
    from tools.sql import SqlRunner

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            from tradedata.demo import generate_demo

            db = Path(tmp) / "demo.duckdb"
            generate_demo(db, items=args.rows, seed=7)
        base = SqlRunner(db, timeout_s=60)
        scope = Scope.offices_of("bench", [args.office])
        scoped = ScopedRunner(base, scope)
        items = base.run("SELECT count(*) FROM declaration_items").rows[0][0]
        print(f"database: {items:,} items; office {args.office!r}")
        for name, sql in QUERIES.items():
            rewrite = _p50(lambda sql=sql: scope_sql(sql, scope), 50)
            plain = _p50(lambda sql=sql: base.run(sql), 10)
            limited = _p50(lambda sql=sql: scoped.run(sql), 10)
            print(f"{name:22} rewrite p50 {rewrite:5.2f} ms | unscoped p50 {plain:6.1f} ms | "
                  f"scoped p50 {limited:6.1f} ms")
        base.close()


if __name__ == "__main__":
    main()
