"""Benchmark the assistant on benchmarks/questions_offline.yaml: accuracy, refusals, latency.

    .venv/bin/python benchmarks/bench_assistant.py                 # default demo database
    .venv/bin/python benchmarks/bench_assistant.py --db /tmp/demo.duckdb --engine offline auto
    .venv/bin/python benchmarks/bench_assistant.py --verbose       # show every miss
    TAMGA_LOCAL_MODEL=1 .venv/bin/python benchmarks/bench_assistant.py --engine llm auto --limit 10

`--engine llm` and `auto` use the model the settings configure (TAMGA_LLM_BASE_URL, or
TAMGA_LOCAL_MODEL=1 for the packaged local model); without one they answer offline, and the
"answered by" line shows it. `--limit N` asks N single questions spread evenly over the set
(the follow-ups, write requests and out-of-scope questions are then skipped), for the slow
LLM engines. `--routing` needs no model: it prints how `auto` would route each set (a
verified intent answers, or the question goes to the LLM when one is configured).

`--plan` runs the compositional question sets instead (benchmarks/bench_plan.py, once per
set: the development set and the two held-out sets) and prints accuracy per shape and per
engine; `--plan FILE ...` runs only those files:

    .venv/bin/python benchmarks/bench_assistant.py --plan --engine offline
    .venv/bin/python benchmarks/bench_assistant.py --plan benchmarks/questions_plan_holdout2.yaml

For every question the reference SQL is run on the same database at evaluation time and its
rows are compared with the main table of the answer (see the header of the question file for
the check modes). Latency is measured in one warm process (the first question of the run
loads the model and the look-ups; it is asked twice and only the second time counts).
Prints one block of figures per engine; --json prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.core import Assistant  # noqa: E402
from tamga.answer import Answer  # noqa: E402
from tamga.settings import get_settings  # noqa: E402
from tradedata.db import connect  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "questions_offline.yaml"


# -- comparing an answer table with reference rows ------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def same(cell: Any, ref: Any) -> bool:
    """A table cell equals a reference value (numbers within rounding, text case-insensitive)."""
    if ref is None:
        return cell is None
    if cell is None:
        return False
    a, b = _number(cell), _number(ref)
    if a is not None and b is not None:
        return math.isclose(a, b, abs_tol=0.051, rel_tol=1e-6)
    if isinstance(ref, date | datetime):
        ref = ref.isoformat()
    return str(cell).strip().lower() == str(ref).strip().lower()


def row_matches(ref_row: list[Any], row: list[Any]) -> bool:
    """Every reference value equals a distinct cell of the row."""
    used: set[int] = set()
    for value in ref_row:
        for k, cell in enumerate(row):
            if k not in used and same(cell, value):
                used.add(k)
                break
        else:
            return False
    return True


def compare(check: str, ref: list[list[Any]], rows: list[list[Any]]) -> tuple[bool, str]:
    """Apply a check mode (first, top, set, subset); (passed, why not)."""
    if check == "first":
        if not rows:
            return False, "no rows"
        return row_matches(ref[0], rows[0]), f"first row {rows[0]} vs {ref[0]}"
    if check == "top":
        if len(rows) < len(ref):
            return False, f"{len(rows)} rows, expected at least {len(ref)}"
        for k, ref_row in enumerate(ref):
            if not row_matches(ref_row, rows[k]):
                return False, f"row {k + 1}: {rows[k]} vs {ref_row}"
        return True, ""
    if check == "values":
        cells = [cell for row in rows for cell in row]
        free = list(range(len(cells)))
        for value in (v for ref_row in ref for v in ref_row):
            hit = next((k for k in free if same(cells[k], value)), None)
            if hit is None:
                return False, f"{value!r} is not in the table"
            free.remove(hit)
        return True, ""
    if check in ("set", "subset"):
        if check == "set" and len(rows) != len(ref):
            return False, f"{len(rows)} rows, expected {len(ref)}"
        free = list(range(len(rows)))
        for ref_row in ref:
            hit = next((k for k in free if row_matches(ref_row, rows[k])), None)
            if hit is None:
                return False, f"no row matches {ref_row}"
            free.remove(hit)
        return True, ""
    raise ValueError(f"unknown check {check!r}")


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Result:
    """One question's outcome."""

    question: str
    ok: bool
    why: str = ""
    ms: float = 0.0
    intent: str | None = None
    engine: str = ""
    fell_back: bool = False  # the LLM was asked for but the offline engine answered


@dataclass
class Figures:
    """What one engine scored."""

    engine: str
    single: list[Result] = field(default_factory=list)
    follow: list[Result] = field(default_factory=list)
    refuse: list[Result] = field(default_factory=list)
    scope: list[Result] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures as plain data."""
        def share(rs: list[Result]) -> float:
            return round(sum(r.ok for r in rs) / len(rs), 3) if rs else 0.0

        in_scope = self.single + self.follow
        times = sorted(r.ms for r in [*in_scope, *self.refuse, *self.scope])
        q = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
        return {
            "engine": self.engine,
            "in_scope_questions": len(self.single),
            "in_scope_correct": share(self.single),
            "follow_up_turns": len(self.follow),
            "follow_up_correct": share(self.follow),
            "all_in_scope_correct": share(in_scope),
            "write_requests": len(self.refuse),
            "write_refused": share(self.refuse),
            "out_of_scope": len(self.scope),
            "out_of_scope_honest": share(self.scope),
            "latency_ms_p50": round(statistics.median(times), 1) if times else 0.0,
            "latency_ms_p95": round(q[94], 1) if times else 0.0,
            "latency_ms_max": round(times[-1], 1) if times else 0.0,
            "answered_by": dict(Counter(r.engine for r in [*in_scope, *self.refuse,
                                                            *self.scope])),
            "llm_fell_back": sum(r.fell_back for r in [*in_scope, *self.refuse, *self.scope]),
        }


def load_vars(con: Any, spec: dict[str, str]) -> dict[str, SimpleNamespace]:
    """Run each `vars` query; its single row becomes a namespace of column values."""
    out = {}
    for name, sql in spec.items():
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        row = cur.fetchone()
        if row is None:
            raise SystemExit(f"var {name}: the query returned no row")
        values = {c: (v.isoformat() if isinstance(v, date | datetime) else v)
                  for c, v in zip(cols, row, strict=True)}
        out[name] = SimpleNamespace(**values)
    return out


def ref_rows(con: Any, sql: str, names: dict[str, SimpleNamespace]) -> list[list[Any]]:
    """The reference SQL's rows (values of `vars` filled in)."""
    return [list(r) for r in con.execute(sql.format(**names)).fetchall()]


def main_rows(answer: Answer) -> list[list[Any]]:
    """The answer's main table rows (empty when there is none)."""
    return [list(r) for r in answer.table.rows] if answer.table else []


def timed(assistant: Assistant, question: str, conversation: Any, engine: str
          ) -> tuple[Answer, float]:
    """Ask and time one question."""
    started = time.perf_counter()
    answer = assistant.ask(question, conversation, user="bench", engine=engine)
    return answer, (time.perf_counter() - started) * 1000


_FALLBACK = ("The language model is unavailable", "The LLM engine is not available")


def fell_back(answer: Answer) -> bool:
    """The answer says the LLM engine could not answer and the offline engine did."""
    return any(w.startswith(_FALLBACK) for w in answer.warnings)


def spread(items: list[Any], limit: int) -> list[Any]:
    """`limit` items spread evenly over `items` (all of them when limit is 0 or too big)."""
    if not limit or limit >= len(items):
        return items
    return [items[k * len(items) // limit] for k in range(limit)]


def run(assistant: Assistant, engine: str, data: dict[str, Any], con: Any,
        names: dict[str, SimpleNamespace], verbose: bool, limit: int = 0) -> Figures:
    """Ask every question of the set with one engine (`limit`: N single questions only)."""
    figures = Figures(engine)
    warm_q = data["questions"][0]["q"].format(**names)
    assistant.ask(warm_q, None, user="bench", engine=engine)  # load everything once

    def report(kind: str, r: Result) -> None:
        if verbose and (not r.ok or limit):
            mark = "ok" if r.ok else "MISS"
            print(f"  {mark} [{kind}] {r.question!r} -> {r.intent} ({r.engine}"
                  f"{', fell back' if r.fell_back else ''}, {r.ms:,.0f} ms): {r.why}",
                  flush=True)

    for item in spread(data["questions"], limit):
        question = item["q"].format(**names)
        ref = ref_rows(con, item["ref"], names)
        answer, ms = timed(assistant, question, None, engine)
        ok, why = compare(item["check"], ref, main_rows(answer))
        r = Result(question, ok, why, ms, answer.intent, answer.engine, fell_back(answer))
        figures.single.append(r)
        report("single", r)
    if limit:
        return figures
    for seq in data.get("followups", []):
        conversation = assistant.new_conversation(user="bench")
        for turn in seq["turns"]:
            question = turn["q"].format(**names)
            ref = ref_rows(con, turn["ref"], names)
            answer, ms = timed(assistant, question, conversation, engine)
            ok, why = compare(turn["check"], ref, main_rows(answer))
            if ok and turn.get("chart") and not answer.chart:
                ok, why = False, "no chart"
            r = Result(question, ok, why, ms, answer.intent, answer.engine, fell_back(answer))
            figures.follow.append(r)
            report("follow-up", r)
    for text in data.get("refuse", []):
        question = text.format(**names)
        answer, ms = timed(assistant, question, None, engine)
        ok = answer.engine == "refused" and not answer.sql
        r = Result(question, ok, "" if ok else f"engine {answer.engine}", ms, answer.intent,
                   answer.engine)
        figures.refuse.append(r)
        report("refuse", r)
    for text in data.get("out_of_scope", []):
        question = text.format(**names)
        answer, ms = timed(assistant, question, None, engine)
        ok = not answer.sql and answer.table is None
        r = Result(question, ok, "" if ok else f"answered with {answer.intent}", ms,
                   answer.intent, answer.engine)
        figures.scope.append(r)
        report("out of scope", r)
    return figures


def routing(assistant: Assistant, data: dict[str, Any],
            names: dict[str, SimpleNamespace], verbose: bool) -> dict[str, dict[str, int]]:
    """How `auto` routes the single questions, write requests and out-of-scope questions:
    per set, how many the offline engine keeps (confident plan) and how many go to the LLM."""
    from assistant.core import NEVER_TO_LLM

    sets = {"single": [item["q"] for item in data["questions"]],
            "refuse": list(data.get("refuse", [])),
            "out_of_scope": list(data.get("out_of_scope", []))}
    out: dict[str, dict[str, int]] = {}
    for name, texts in sets.items():
        counts: Counter[str] = Counter()
        for text in texts:
            question = text.format(**names)
            plan = assistant.offline.plan(question, None)
            to_llm = plan.kind not in NEVER_TO_LLM and not plan.confident
            counts["llm" if to_llm else "offline"] += 1
            if verbose and to_llm:
                print(f"  to LLM [{name}] {question!r} ({plan.kind}, {plan.score:.2f})")
        out[name] = dict(counts)
    return out


#: The compositional question sets, development set first.
PLAN_SETS = ("questions_plan.yaml", "questions_plan_holdout.yaml", "questions_plan_holdout2.yaml")


def run_plan_sets(args: argparse.Namespace) -> int:
    """`--plan`: bench_plan.py on each compositional set, with this run's options."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_plan

    files = args.plan or [ROOT / "benchmarks" / name for name in PLAN_SETS]
    status = 0
    for path in files:
        if not args.json:
            print(f"== {path}", flush=True)
        argv = ["--questions", str(path), "--engine", *args.engine]
        argv += ["--db", str(args.db)] if args.db else []
        argv += ["--index", str(args.index)] if args.index else []
        argv += ["--limit", str(args.limit)] if args.limit else []
        argv += [flag for flag, on in (("--verbose", args.verbose), ("--json", args.json)) if on]
        status = max(status, bench_plan.main(argv))
    return status


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=None, help="trade database (default: settings)")
    parser.add_argument("--index", type=Path, default=None, help="regulations index folder")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--engine", nargs="+", default=["offline"],
                        choices=["offline", "auto", "llm"])
    parser.add_argument("--limit", type=int, default=0,
                        help="N single questions spread over the set; skip the other sets")
    parser.add_argument("--routing", action="store_true",
                        help="only show how `auto` would route each question (no model)")
    parser.add_argument("--verbose", action="store_true",
                        help="print every miss (every question with --limit)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--plan", type=Path, nargs="*", default=None, metavar="FILE",
                        help="run the compositional sets (all three, or these files) with "
                             "benchmarks/bench_plan.py: accuracy per shape and per engine")
    args = parser.parse_args(argv)
    if args.plan is not None:
        return run_plan_sets(args)
    settings = get_settings()
    db = (args.db or settings.database).expanduser()
    data = yaml.safe_load(args.questions.read_text(encoding="utf-8"))
    con = connect(db, read_only=True)
    names = load_vars(con, data["vars"])
    results = []
    with tempfile.TemporaryDirectory() as logs:
        assistant = Assistant(settings, db_path=db, index_dir=args.index, log_dir=Path(logs))
        if args.routing:
            for name, counts in routing(assistant, data, names, args.verbose).items():
                print(f"{name}: offline {counts.get('offline', 0)}, to the LLM "
                      f"{counts.get('llm', 0)}")
            return 0
        for engine in args.engine:
            figures = run(assistant, engine, data, con, names, args.verbose, args.limit)
            results.append({**figures.summary(), "load_average": round(os.getloadavg()[0], 2)})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for s in results:
        print(f"engine {s['engine']} on {db}")
        print(f"  in-scope questions answered correctly: {s['in_scope_correct']:.1%} "
              f"of {s['in_scope_questions']}")
        if not args.limit:
            print(f"  follow-up turns answered correctly:    {s['follow_up_correct']:.1%} "
                  f"of {s['follow_up_turns']}")
            print(f"  write requests refused:                {s['write_refused']:.1%} "
                  f"of {s['write_requests']}")
            print(f"  out-of-scope answered honestly:        {s['out_of_scope_honest']:.1%} "
                  f"of {s['out_of_scope']}")
        print(f"  latency (warm): p50 {s['latency_ms_p50']:,.0f} ms, "
              f"p95 {s['latency_ms_p95']:,.0f} ms, max {s['latency_ms_max']:,.0f} ms")
        mix = ", ".join(f"{k} {v}" for k, v in sorted(s["answered_by"].items()))
        print(f"  answered by: {mix}; LLM fell back to offline: {s['llm_fell_back']}; "
              f"load average {s['load_average']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
