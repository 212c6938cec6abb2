"""Benchmark of document verification on the demo documents: discrepancies, fields, speed.

    .venv/bin/python benchmarks/bench_verify.py                       # 500,000 items, seed 7
    .venv/bin/python benchmarks/bench_verify.py --items 20000 --clean 40 --per-kind 4
    .venv/bin/python benchmarks/bench_verify.py --db ~/.tamga/trade.duckdb

Builds a demo database in a temporary folder (deleted afterwards) unless --db is given, writes
its demo documents (tradedata/demo_documents.py: clean ones and planted discrepancies), then
reads, extracts and verifies every document without a declaration ID (the declaration is
found by trader, date and goods), and prints:

- per planted kind: documents, documents matched to a right declaration, planted
  discrepancies found (recall), other discrepancies reported;
- over the clean documents: the share reported without any discrepancy, and the precision
  of all discrepancies reported (those that are planted, or follow from a planted one);
- field extraction accuracy per field against what was printed on each document;
- speed per format: read + extract, verify, and documents per second end to end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADER_FIELDS = ("document_number", "document_date", "seller", "buyer", "buyer_tin",
                 "currency", "incoterm", "relationship", "total_value")
LINE_FIELDS = ("description", "hs_code", "quantity", "unit", "net_mass_kg", "value", "origin")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 0.0015
    return str(a) == str(b)


def _split(text: str) -> set[str]:
    return {x for x in text.split(";") if x}


def _field_accuracy(doc: Any, printed: dict[str, Any], tally: dict[str, list[int]]) -> None:
    """Count right / total per field for one document."""
    for key in HEADER_FIELDS:
        if key in printed:
            got = doc.value(key)
            got = got.isoformat() if hasattr(got, "isoformat") else got
            tally.setdefault(key, [0, 0])
            tally[key][0] += _same(got, printed[key])
            tally[key][1] += 1
    lines = printed["lines"]
    for n, want in enumerate(lines):
        line = doc.lines[n] if n < len(doc.lines) else None
        for key in LINE_FIELDS:
            if key == "value" and printed["document_type"] != "invoice":
                continue
            if key in ("hs_code", "origin") and printed["document_type"] == "packing_list":
                continue
            name = f"line.{key}"
            tally.setdefault(name, [0, 0])
            tally[name][0] += line is not None and _same(line.get(key), want[key])
            tally[name][1] += 1


def main() -> None:
    """Parse arguments, build the demo and its documents, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--clean", type=int, default=60, help="documents without discrepancy")
    ap.add_argument("--per-kind", type=int, default=8, help="documents per planted kind")
    ap.add_argument("--db", type=Path, help="use this demo database instead of building one")
    args = ap.parse_args()

    from tools.documents import extract, read_path
    from tools.sql import SqlRunner
    from tools.traders import load_trader_index
    from tools.verify import References, verify_document
    from tradedata.demo import generate_demo
    from tradedata.demo_documents import generate_demo_documents

    print(f"load average at start: {_load()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-", dir="/tmp"))
    try:
        if args.db:
            db = args.db.expanduser()
        else:
            db = tmp / "demo.duckdb"
            t0 = time.perf_counter()
            generate_demo(db, items=args.items, seed=args.seed, end_month=date(2025, 10, 1))
            print(f"generated {args.items:,} items (seed {args.seed}) in "
                  f"{time.perf_counter() - t0:.1f} s")
        folder = tmp / "documents"
        summary = generate_demo_documents(db, folder, seed=args.seed, clean=args.clean,
                                          per_kind=args.per_kind)
        print(summary.describe())
        with (folder / "truth.csv").open(encoding="utf-8", newline="") as fh:
            truth = list(csv.DictReader(fh))
        printed = json.loads((folder / "fields.json").read_text(encoding="utf-8"))

        runner = SqlRunner(db, timeout_s=120)
        t0 = time.perf_counter()
        traders = load_trader_index(runner)
        refs = References(runner)
        refs.uplift("FOB")
        setup = time.perf_counter() - t0
        print(f"set-up (trader index, freight factors): {setup * 1000:,.0f} ms, once per "
              "database and scope")

        per_kind: dict[str, dict[str, int]] = {}
        timing: dict[str, dict[str, list[float]]] = {}
        tally: dict[str, list[int]] = {}
        reported = true_pos = clean_docs = clean_ok = 0
        failures: list[str] = []
        for row in truth:
            path = folder / row["document"]
            t0 = time.perf_counter()
            doc = extract(read_path(path))
            t1 = time.perf_counter()
            try:
                report = verify_document(doc, runner, traders=traders, references=refs)
            except Exception as exc:  # reported in the figures, not fatal
                failures.append(f"{row['document']}: {exc}")
                continue
            t2 = time.perf_counter()
            times = timing.setdefault(row["format"], {"read": [], "verify": []})
            times["read"].append(t1 - t0)
            times["verify"].append(t2 - t1)
            _field_accuracy(doc, printed[row["document"]], tally)
            found = {d.field for d in report.discrepancies}
            need, may = _split(row["fields"]), _split(row["also"])
            kind = row["planted"] or "clean"
            k = per_kind.setdefault(kind, {"docs": 0, "matched": 0, "planted": 0, "found": 0,
                                           "other": 0})
            k["docs"] += 1
            k["matched"] += report.declaration_id in _split(row["accepted"])
            k["planted"] += len(need)
            k["found"] += len(need & found)
            k["other"] += len(found - need - may)
            if found - need - may:
                failures.append(f"{row['document']} ({kind}): also reported "
                                f"{sorted(found - need - may)}")
            if need - found:
                failures.append(f"{row['document']} ({kind}): missed {sorted(need - found)}")
            reported += len(report.discrepancies)
            true_pos += sum(1 for d in report.discrepancies if d.field in need | may)
            if kind == "clean":
                clean_docs += 1
                clean_ok += not report.discrepancies

        print(f"\n{'planted':14} {'docs':>5} {'matched':>8} {'planted':>8} {'found':>6} "
              f"{'recall':>7} {'other':>6}")
        for kind, k in sorted(per_kind.items()):
            recall = f"{k['found'] / k['planted']:.3f}" if k["planted"] else "-"
            print(f"{kind:14} {k['docs']:5} {k['matched']:8} {k['planted']:8} {k['found']:6} "
                  f"{recall:>7} {k['other']:6}")
        total = sum(k["docs"] for k in per_kind.values())
        matched = sum(k["matched"] for k in per_kind.values())
        n_planted = sum(k["planted"] for k in per_kind.values())
        n_found = sum(k["found"] for k in per_kind.values())
        print(f"\nplanted discrepancies found: {n_found}/{n_planted} "
              f"(recall {n_found / max(n_planted, 1):.3f})")
        print(f"clean documents without any discrepancy: {clean_ok}/{clean_docs} "
              f"({clean_ok / max(clean_docs, 1):.3f})")
        print(f"precision of all discrepancies reported: {true_pos}/{reported} "
              f"({true_pos / max(reported, 1):.3f})")
        print(f"documents matched to a right declaration (no ID given): {matched}/{total}")

        print(f"\n{'field':22} {'right':>6} {'total':>6} {'accuracy':>9}")
        for name, (right, n) in tally.items():
            print(f"{name:22} {right:6} {n:6} {right / n:9.3f}")

        print(f"\n{'format':7} {'docs':>5} {'read+extract ms':>16} {'verify ms':>10} "
              f"{'docs/s':>7}")
        for fmt, t in sorted(timing.items()):
            n = len(t["read"])
            read = statistics.mean(t["read"]) * 1000
            verify = statistics.mean(t["verify"]) * 1000
            rate = n / (sum(t["read"]) + sum(t["verify"]))
            print(f"{fmt:7} {n:5} {read:16.1f} {verify:10.1f} {rate:7.2f}")
        for line in failures:
            print(f"  {line}")
        print(f"\nload average at end: {_load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
