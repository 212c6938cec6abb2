"""Benchmark of the label-free indicators against the planted demo anomalies, and their speed.

    .venv/bin/python benchmarks/bench_indicators.py                 # 500,000 items, seed 7
    .venv/bin/python benchmarks/bench_indicators.py --items 20000 --seed 3
    .venv/bin/python benchmarks/bench_indicators.py --items 1000000 --speed-only

Generates a demo database in a temporary folder (deleted afterwards), runs every indicator
over all the data, and prints: per indicator precision and recall against the truth of its
planted type; precision and recall of the pooled ranking at fixed review budgets (top 200
lines, top 1 % of import lines); trader-level hits among the top 15 audit candidates;
scoring throughput (import declarations per second); and briefing generation times.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    """Parse arguments, build the demo, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", type=Path, help="use this demo database instead of generating one")
    ap.add_argument("--speed-only", action="store_true", help="skip the accuracy figures")
    args = ap.parse_args()

    from tools.briefing import period_briefing, trader_briefing
    from tools.indicators import FUNCTIONS, PLANTED_TYPE, Flag, analysis_runner
    from tools.runner import reporting_currency
    from tools.trader_risk import audit_candidates, parse_period, score_from_flags
    from tradedata.demo import generate_demo, truth_path_for

    tmp = None
    if args.db:
        db = args.db
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-ind-", dir="/tmp"))
        db = tmp / "demo.duckdb"
        t0 = time.perf_counter()
        generate_demo(db, items=args.items, seed=args.seed, end_month=date(2025, 10, 1))
        print(f"generated {args.items:,} items (seed {args.seed}) in "
              f"{time.perf_counter() - t0:.1f} s")
    try:
        runner = analysis_runner(db, timeout_s=1800)
        n_decl, n_lines = runner.run(
            "SELECT count(DISTINCT d.declaration_id), count(*) FROM declarations d "
            "JOIN declaration_items i ON i.declaration_id = d.declaration_id "
            "WHERE d.flow = 'import'").rows[0]
        flags: list[Flag] = []
        print(f"\n{'indicator':18} {'flags':>7} {'seconds':>8}  precision  recall (own type)")
        truth: dict[tuple[str, int], str] = {}
        if not args.speed_only:
            with truth_path_for(db).open(encoding="utf-8") as fh:
                truth = {(r["declaration_id"], int(r["item_no"])): r["anomaly_type"]
                         for r in csv.DictReader(fh)}
        total = 0.0
        for name, fn in FUNCTIONS.items():
            t0 = time.perf_counter()
            got = fn(runner, None, None, None)
            dt = time.perf_counter() - t0
            total += dt
            flags += got
            line = f"{name:18} {len(got):7,} {dt:8.2f}"
            kind = PLANTED_TYPE.get(name)
            if truth and kind:
                keys = {(f.declaration_id, f.item_no) for f in got}
                planted = {k for k, v in truth.items() if v == kind}
                hit = len(keys & planted)
                line += f"  {hit / max(1, len(keys)):9.3f}  {hit / max(1, len(planted)):.3f}"
            print(line)
        print(f"all indicators: {total:.1f} s for {n_decl:,} import declarations "
              f"({n_lines:,} lines): {n_decl / total:,.0f} declarations/s, "
              f"{n_lines / total:,.0f} lines/s")

        if truth:
            # pooled ranking of line flags: strongest per line first
            best: dict[tuple[str, int], float] = {}
            for f in flags:
                if f.declaration_id is not None and f.item_no is not None:
                    k = (f.declaration_id, f.item_no)
                    best[k] = max(best.get(k, 0.0), f.strength)
            ranked = sorted(best, key=lambda k: -best[k])
            budget: int
            for label, budget in (("top 200 lines", 200),
                                  ("top 1% of lines", max(1, n_lines // 100))):
                chosen = ranked[:budget]
                hit = sum(1 for k in chosen if k in truth)
                print(f"{label:16} (budget {budget:,}): precision {hit / max(1, len(chosen)):.3f}, "
                      f"recall {hit / len(truth):.3f} of {len(truth):,} planted lines")
            traders = {r[1] for r in _truth_traders(truth_path_for(db))}
            by_trader: dict[str, list[Flag]] = {}
            for f in flags:
                by_trader.setdefault(f.trader_id, []).append(f)
            currency = reporting_currency(runner)
            scores = sorted((score_from_flags(t, t, fl, currency) for t, fl in by_trader.items()),
                            key=lambda s: -s.expected_revenue)
            for n_top in (len(traders), 2 * len(traders)):
                top = [s.trader_id for s in scores[:n_top]]
                print(f"traders: {sum(t in traders for t in top)} of the top {n_top} audit "
                      f"candidates are planted ({len(traders)} planted traders)")

        period = parse_period("2025-Q3")
        t0 = time.perf_counter()
        cands = audit_candidates(runner, period, None, 20)
        print(f"\naudit_candidates(2025-Q3, n=20): {time.perf_counter() - t0:.1f} s")
        trader = cands[0].trader_id if cands else flags[0].trader_id
        t0 = time.perf_counter()
        b = trader_briefing(runner, trader, parse_period("2025"), None)
        md_t = time.perf_counter() - t0
        t0 = time.perf_counter()
        b.pdf()
        pdf_t = time.perf_counter() - t0
        print(f"trader briefing {trader} (2025): build {md_t:.1f} s, PDF render {pdf_t:.2f} s")
        t0 = time.perf_counter()
        pb = period_briefing(runner, parse_period("2025-10"))  # type: ignore[arg-type]
        pb_t = time.perf_counter() - t0
        t0 = time.perf_counter()
        pb.pdf()
        print(f"period briefing 2025-10: build {pb_t:.1f} s, PDF render "
              f"{time.perf_counter() - t0:.2f} s")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _truth_traders(path: Path) -> set[tuple[str, str]]:
    with path.open(encoding="utf-8") as f:
        return {(r["anomaly_type"], r["trader_id"]) for r in csv.DictReader(f)}


if __name__ == "__main__":
    main()
