"""Benchmark the assistant on the compositional question set benchmarks/questions_plan.yaml.

    .venv/bin/python benchmarks/bench_plan.py --validate            # refs only, fails loudly
    .venv/bin/python benchmarks/bench_plan.py                       # offline engine, default demo
    .venv/bin/python benchmarks/bench_plan.py --db /tmp/demo.duckdb --engine offline auto --verbose
    .venv/bin/python benchmarks/bench_plan.py --json --limit 30
    .venv/bin/python benchmarks/bench_plan.py --questions benchmarks/questions_plan_holdout2.yaml
    TAMGA_LOCAL_MODEL=1 .venv/bin/python benchmarks/bench_plan.py --engine llm --declined

Nine sets share this format: questions_plan.yaml (development), questions_plan_holdout.yaml
and questions_plan_holdout2.yaml to questions_plan_holdout8.yaml (held out when written; see the
header of each file and docs/assistant.md). Every
phrasing is one question; its reference SQL is run on the same database at evaluation time
and compared with the answer's main table with the matching rules of
benchmarks/bench_assistant.py (imported from there, not copied). Prints accuracy per shape
and per engine, overall accuracy, the `bad` section's result (a clear message, no SQL, no
table) and warm latency p50/p95.

`--limit N` asks N phrasings spread evenly over the set (and skips `bad`). `--declined` first
runs the offline engine over the set, then asks the chosen engines only the phrasings the
offline engine got wrong (to measure the LLM where it is needed). `--validate` runs only the
reference SQL and exits non-zero if any reference fails, returns no rows, or uses an
undefined placeholder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_assistant import (  # noqa: E402
    compare,
    fell_back,
    load_vars,
    main_rows,
    ref_rows,
    spread,
    timed,
)

from tamga.answer import Answer  # noqa: E402

QUESTIONS = ROOT / "benchmarks" / "questions_plan.yaml"

#: The shape tags of the set, in report order (every one must be used).
SHAPES = (
    "total", "breakdown", "breakdown2", "top", "bottom", "rank_change", "compare", "share",
    "peers", "argmax", "argmin", "set_difference", "first_seen", "threshold", "distinct_count",
    "unit_value", "duty_rate", "channel_share", "related_share", "audits", "aeo", "transport",
    "filter",
)
CHECKS = ("first", "top", "set", "subset")
_PLACEHOLDER = re.compile(r"\{(\w+)\.(\w+)\}")


# -- the set --------------------------------------------------------------------------------------


@dataclass
class Case:
    """One phrasing of one question, with its values filled in."""

    qid: str
    shape: str
    text: str
    check: str
    ref_sql: str


@dataclass
class Bad:
    """One contradictory or impossible request and the words an honest reply may use."""

    text: str
    expect: list[str]


def load_set(path: Path = QUESTIONS) -> dict[str, Any]:
    """The question file as plain data."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def placeholders(text: str) -> set[tuple[str, str]]:
    """The {name.column} placeholders used in `text`."""
    return set(_PLACEHOLDER.findall(text))


def problems_in(data: dict[str, Any], names: dict[str, SimpleNamespace] | None = None
                ) -> list[str]:
    """Schema problems of the set (ids, shapes, checks, phrasings, placeholders, `bad`).

    With `names` (the evaluated vars) every placeholder must name a column of its var;
    without, it must name a defined var."""
    out: list[str] = []
    defined = set(data.get("vars", {}))
    seen: set[str] = set()

    def check_text(where: str, text: str) -> None:
        for var, col in placeholders(text):
            if var not in defined:
                out.append(f"{where}: undefined var {{{var}.{col}}}")
            elif names is not None and not hasattr(names[var], col):
                out.append(f"{where}: var {var} has no column {col!r}")

    for k, q in enumerate(data.get("questions", [])):
        qid = q.get("id") or f"#{k}"
        if not q.get("id"):
            out.append(f"question {k}: no id")
        if qid in seen:
            out.append(f"{qid}: duplicate id")
        seen.add(qid)
        if q.get("shape") not in SHAPES:
            out.append(f"{qid}: unknown shape {q.get('shape')!r}")
        if q.get("check") not in CHECKS:
            out.append(f"{qid}: unknown check {q.get('check')!r}")
        phrasings = q.get("phrasings")
        if not isinstance(phrasings, list) or not phrasings or not all(
                isinstance(p, str) and p.strip() for p in phrasings):
            out.append(f"{qid}: phrasings must be a non-empty list of text")
            phrasings = []
        if len(set(phrasings)) != len(phrasings):
            out.append(f"{qid}: repeated phrasing")
        if not isinstance(q.get("ref"), str) or not q["ref"].strip():
            out.append(f"{qid}: no ref")
        for p in phrasings:
            check_text(qid, p)
        check_text(f"{qid} ref", q.get("ref") or "")
    for k, item in enumerate(data.get("bad", [])):
        if not isinstance(item, dict) or not isinstance(item.get("q"), str):
            out.append(f"bad {k}: needs a q")
            continue
        expect = item.get("expect")
        if not isinstance(expect, list) or not expect or not all(
                isinstance(w, str) and w.strip() for w in expect):
            out.append(f"bad {k}: expect must be a non-empty list of keywords")
        check_text(f"bad {k}", item["q"])
    used = Counter(q.get("shape") for q in data.get("questions", []))
    out.extend(f"shape {s} is not used" for s in SHAPES if not used[s])
    return out


def cases(data: dict[str, Any], names: dict[str, SimpleNamespace]) -> list[Case]:
    """Every phrasing of every question, values filled in."""
    return [Case(q["id"], q["shape"], p.format(**names), q["check"], q["ref"].format(**names))
            for q in data["questions"] for p in q["phrasings"]]


def bad_items(data: dict[str, Any], names: dict[str, SimpleNamespace]) -> list[Bad]:
    """The `bad` section, values filled in."""
    return [Bad(item["q"].format(**names), [w.lower() for w in item["expect"]])
            for item in data.get("bad", [])]


def shape_counts(data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per shape: (questions, phrasings)."""
    qs: Counter[str] = Counter()
    ps: Counter[str] = Counter()
    for q in data["questions"]:
        qs[q["shape"]] += 1
        ps[q["shape"]] += len(q["phrasings"])
    return {s: (qs[s], ps[s]) for s in SHAPES}


# -- --validate -----------------------------------------------------------------------------------


def validate(con: Any, data: dict[str, Any], names: dict[str, SimpleNamespace]
             ) -> tuple[list[str], list[tuple[str, int]]]:
    """Run every reference; (problems, [(question id, rows)])."""
    from tools.sql_guard import check_sql

    out = problems_in(data, names)
    rows: list[tuple[str, int]] = []
    for q in data["questions"]:
        sql = q["ref"].format(**names)
        try:
            check_sql(sql)
            got = ref_rows(con, q["ref"], names)
        except Exception as exc:  # every failure is reported, not raised
            out.append(f"{q['id']}: ref failed: {exc}")
            continue
        rows.append((q["id"], len(got)))
        if not got:
            out.append(f"{q['id']}: ref returned no rows")
        elif any(v is None for r in got for v in r):
            out.append(f"{q['id']}: ref has NULL cells (a key or a ratio with no data)")
        elif any(_is_number(v) and v != v for r in got for v in r):
            out.append(f"{q['id']}: ref has NaN cells (a ratio with a zero denominator)")
        elif any(_is_number(v) for r in got for v in r) and all(
                v == 0 for r in got for v in r if _is_number(v)):
            out.append(f"{q['id']}: every number of the ref is 0 (a trivial reference)")
        elif q["check"] == "first" and len(got) != 1:
            out.append(f"{q['id']}: check first needs one ref row, got {len(got)}")
    return out, rows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# -- the run --------------------------------------------------------------------------------------


@dataclass
class PlanResult:
    """One phrasing's outcome."""

    qid: str
    shape: str
    question: str
    ok: bool
    why: str = ""
    ms: float = 0.0
    engine: str = ""
    intent: str | None = None
    from_plan: bool = False
    fell_back: bool = False
    sql: list[str] = field(default_factory=list)
    ref: list[list[Any]] = field(default_factory=list)
    understood: str = ""  # the plan read back, and the model's draft where one was written


@dataclass
class PlanFigures:
    """What one engine scored."""

    engine: str
    results: list[PlanResult] = field(default_factory=list)
    bad: list[PlanResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures as plain data."""
        per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.results:
            per[r.shape][0] += r.ok
            per[r.shape][1] += 1
        times = sorted(r.ms for r in [*self.results, *self.bad])
        q = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
        ok = sum(r.ok for r in self.results)
        return {
            "engine": self.engine,
            "phrasings": len(self.results),
            "correct": ok,
            "accuracy": round(ok / len(self.results), 3) if self.results else 0.0,
            "questions_all_phrasings_correct": _questions_all_ok(self.results),
            "per_shape": {s: {"correct": per[s][0], "asked": per[s][1],
                              "accuracy": round(per[s][0] / per[s][1], 3)}
                          for s in SHAPES if per[s][1]},
            "bad": len(self.bad),
            "bad_handled": sum(r.ok for r in self.bad),
            "latency_ms_p50": round(statistics.median(times), 1) if times else 0.0,
            "latency_ms_p95": round(q[94], 1) if times else 0.0,
            "latency_ms_max": round(times[-1], 1) if times else 0.0,
            "answered_by": dict(Counter(r.engine for r in self.results)),
            "from_plan": sum(r.from_plan for r in self.results),
            "from_intent": sum(bool(r.intent) and not r.from_plan for r in self.results),
            "llm_fell_back": sum(r.fell_back for r in [*self.results, *self.bad]),
        }


def _questions_all_ok(results: list[PlanResult]) -> str:
    by_q: dict[str, bool] = {}
    for r in results:
        by_q[r.qid] = by_q.get(r.qid, True) and r.ok
    return f"{sum(by_q.values())}/{len(by_q)}"


def _say(r: PlanResult, verbose: bool, every: bool) -> None:
    if not verbose or (r.ok and not every):
        return
    mark = "ok" if r.ok else "MISS"
    how = "plan" if r.from_plan else (r.intent or "-")
    print(f"  {mark} [{r.shape}/{r.qid}] {r.question!r} -> {how} ({r.engine}"
          f"{', fell back' if r.fell_back else ''}, {r.ms:,.0f} ms): {r.why}", flush=True)
    if not r.ok:
        if r.understood:
            print(f"      {r.understood}", flush=True)
        for sql in r.sql:
            print("      engine SQL: " + " ".join(sql.split()), flush=True)
        if not r.sql:
            print("      engine SQL: (none)", flush=True)
        shown = r.ref[:5]
        print(f"      reference rows ({len(r.ref)}): {shown}"
              f"{' ...' if len(r.ref) > 5 else ''}", flush=True)


def ask_case(assistant: Any, engine: str, case: Case, ref: list[list[Any]]) -> PlanResult:
    """Ask one phrasing and compare its main table with the reference rows."""
    answer, ms = timed(assistant, case.text, None, engine)
    ok, why = compare(case.check, ref, main_rows(answer))
    draft = (answer.slots or {}).get("line") if isinstance(answer.slots, dict) else None
    understood = " ".join(filter(None, [f"draft: {draft};" if draft else "",
                                        answer.understood or ""]))
    return PlanResult(case.qid, case.shape, case.text, ok, "" if ok else why, ms, answer.engine,
                      answer.intent, answer.plan is not None, fell_back(answer),
                      list(answer.sql), ref, understood)


def bad_handled(answer: Answer, expect: list[str]) -> tuple[bool, str]:
    """A contradictory request got a clear message with an expected keyword, no SQL, no table."""
    if answer.sql:
        return False, "ran SQL"
    if answer.table is not None:
        return False, "returned a table"
    said = " ".join([answer.text, *answer.warnings]).lower()
    if not any(w in said for w in expect):
        return False, f"message lacks {expect}: {answer.text[:120]!r}"
    return True, ""


def run(assistant: Any, engine: str, todo: list[Case], bad: list[Bad], con: Any,
        names: dict[str, SimpleNamespace], verbose: bool, every: bool = False) -> PlanFigures:
    """Ask every case (and every bad request) with one engine."""
    figures = PlanFigures(engine)
    if todo:
        assistant.warm()  # as the app does at start: the local model's prompts evaluated once
        assistant.ask(todo[0].text, None, user="bench", engine=engine)  # load everything once
    refs: dict[str, list[list[Any]]] = {}
    for case in todo:
        if case.qid not in refs:
            refs[case.qid] = [list(r) for r in con.execute(case.ref_sql).fetchall()]
        r = ask_case(assistant, engine, case, refs[case.qid])
        figures.results.append(r)
        _say(r, verbose, every)
    for item in bad:
        answer, ms = timed(assistant, item.text, None, engine)
        ok, why = bad_handled(answer, item.expect)
        r = PlanResult("bad", "bad", item.text, ok, why, ms, answer.engine, answer.intent,
                       answer.plan is not None, fell_back(answer), list(answer.sql))
        figures.bad.append(r)
        _say(r, verbose, every)
    return figures


def print_figures(s: dict[str, Any], db: Path, declined: bool) -> None:
    """One engine's block of figures."""
    scope = " (only the phrasings the offline engine got wrong)" if declined else ""
    print(f"engine {s['engine']} on {db}{scope}")
    print(f"  {'shape':<16} correct")
    for shape, v in s["per_shape"].items():
        print(f"  {shape:<16} {v['correct']:>3}/{v['asked']:<3} {v['accuracy']:.0%}")
    if s["phrasings"]:
        print(f"  overall: {s['accuracy']:.1%} ({s['correct']}/{s['phrasings']} phrasings); "
              f"questions with every phrasing right: {s['questions_all_phrasings_correct']}")
    if s["bad"]:
        print(f"  bad requests answered with a clear message and no SQL: "
              f"{s['bad_handled']}/{s['bad']}")
    print(f"  latency (warm): p50 {s['latency_ms_p50']:,.0f} ms, "
          f"p95 {s['latency_ms_p95']:,.0f} ms, max {s['latency_ms_max']:,.0f} ms")
    mix = ", ".join(f"{k} {v}" for k, v in sorted(s["answered_by"].items()))
    print(f"  answered by: {mix}; from a plan {s['from_plan']}, from an intent "
          f"{s['from_intent']}; LLM fell back to offline: {s['llm_fell_back']}; "
          f"load average {s['load_average']}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    from tamga.settings import get_settings
    from tradedata.db import connect

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=None, help="trade database (default: settings)")
    parser.add_argument("--index", type=Path, default=None, help="regulations index folder")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--engine", nargs="+", default=["offline"],
                        choices=["offline", "auto", "llm"])
    parser.add_argument("--limit", type=int, default=0,
                        help="N phrasings spread over the set; skip the bad requests")
    parser.add_argument("--declined", action="store_true",
                        help="ask only the phrasings the offline engine gets wrong")
    parser.add_argument("--validate", action="store_true",
                        help="only run the reference SQL; fail on errors or empty results")
    parser.add_argument("--verbose", action="store_true",
                        help="print every miss with the engine's SQL and the reference rows")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    settings = get_settings()
    db = (args.db or settings.database).expanduser()
    data = load_set(args.questions)
    con = connect(db, read_only=True)
    names = load_vars(con, data["vars"])

    if args.validate:
        started = time.perf_counter()
        problems, rows = validate(con, data, names)
        counts = shape_counts(data)
        if args.json:
            print(json.dumps({"db": str(db), "problems": problems, "rows": dict(rows),
                              "shapes": counts}, indent=2))
        else:
            n_rows = [n for _, n in rows]
            print(f"{len(data['questions'])} questions, "
                  f"{sum(p for _, p in counts.values())} phrasings, "
                  f"{len(data.get('bad', []))} bad requests, {len(SHAPES)} shapes on {db}")
            for shape, (nq, np_) in counts.items():
                print(f"  {shape:<16} {nq:>2} questions {np_:>3} phrasings")
            if n_rows:
                print(f"reference rows per question: min {min(n_rows)}, "
                      f"median {statistics.median(n_rows):g}, max {max(n_rows)}; "
                      f"{time.perf_counter() - started:.1f} s")
            for p in problems:
                print(f"PROBLEM {p}")
            print("valid" if not problems else f"INVALID: {len(problems)} problems")
        return 1 if problems else 0

    from assistant.core import Assistant

    todo = cases(data, names)
    bad = bad_items(data, names)
    if args.limit:
        todo, bad = spread(todo, args.limit), []
    results = []
    with tempfile.TemporaryDirectory() as logs:
        assistant = Assistant(settings, db_path=db, index_dir=args.index, log_dir=Path(logs))
        if args.declined:
            first = run(assistant, "offline", todo, [], con, names, False)
            wrong = {r.question for r in first.results if not r.ok}
            todo, bad = [c for c in todo if c.text in wrong], []
            if not args.json:
                print(f"offline engine: {len(wrong)} of {len(first.results)} phrasings wrong; "
                      "asking only those")
        for engine in args.engine:
            figures = run(assistant, engine, todo, bad, con, names, args.verbose,
                          every=bool(args.limit))
            results.append({**figures.summary(), "load_average": round(os.getloadavg()[0], 2)})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for s in results:
        print_figures(s, db, args.declined)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
