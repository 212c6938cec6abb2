"""`tamga ask` as a scripted user runs it: the whole process, start to exit, for one question.

    .venv/bin/python benchmarks/bench_cli.py [--runs 10] [--db PATH] [--index DIR] [QUESTION...]

Each run is a fresh `tamga ask QUESTION --json` process (nothing warm is reused). Prints the
median and p95 wall time per question, which encoder runtime the environment has, and the
load average, because the figures depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.embedding import onnx_path

QUESTIONS = ["Top 10 importers in 2025"]


def main() -> None:
    """Run the questions and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions", nargs="*", default=QUESTIONS)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--index", type=Path)
    args = parser.parse_args()
    tamga = str(Path(sys.executable).with_name("tamga"))
    extra = [*(["--db", str(args.db)] if args.db else []),
             *(["--index", str(args.index)] if args.index else [])]
    one, five, _ = os.getloadavg()
    runtime = "onnx" if onnx_path().exists() else "torch (no exported ONNX encoder)"
    print(f"encoder runtime: {runtime}; load average {one:.2f} {five:.2f} at start")
    for question in args.questions:
        times = []
        engine = ""
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run([tamga, "ask", question, "--json", *extra],
                                  capture_output=True, text=True, timeout=300)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                print(f"FAILED {question!r}: {done.stderr[-500:]}")
                break
            engine = json.loads(done.stdout)["engine"]
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1)]
        print(f"{question!r} ({engine}): median {statistics.median(times):.2f} s, "
              f"p95 {p95:.2f} s, min {ordered[0]:.2f} s over {len(times)} processes")
    one, five, _ = os.getloadavg()
    print(f"load average {one:.2f} {five:.2f} at the end")


if __name__ == "__main__":
    main()
