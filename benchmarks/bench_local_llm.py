"""Benchmark: the local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) on officer questions.

For each strategy it prints the share of questions answered correctly and the latency p50/p95
(warm process: the model is loaded and the prompt prefix cached before timing starts).

    .venv/bin/python benchmarks/bench_local_llm.py                       # default database
    .venv/bin/python benchmarks/bench_local_llm.py --rows 20000          # a fresh demo database
    .venv/bin/python benchmarks/bench_local_llm.py --strategies direct --limit 5 -v

Strategies: `agent` (langchain create_agent, tool calling through LocalChatModel), `direct`
(one SQL query from schema + verified examples + looked-up facts, errors fed back, up to 3
attempts), `direct-json` (the same, the reply constrained by a grammar to {"sql": ...}),
`direct-summary` (direct, plus the model writes the answer sentence from the result),
`direct-bare` (direct without the verified examples and looked-up facts).

A question is correct when every row of its reference query (computed now, on this database)
appears in the answer's main table: each numeric cell of the reference row is found in one
row of the answer table (within 0.5% or 0.01), or, for rows without numbers, each text cell.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Placeholders filled from the database: {trader} (the largest importer, full name),
# {trader_short} (its first two words), {audited} (the trader with most audits), {year} (the
# last full year of data), {prev_year}, {heading} (the most frequent HS heading of imports).
QUESTIONS: list[dict[str, str]] = [
    {"id": "count_declarations", "q": "How many declarations are in the database?",
     "ref": "SELECT count(*) FROM declarations"},
    {"id": "import_value_year", "q": "What was the total customs value of imports in {year}?",
     "ref": "SELECT round(sum(i.customs_value), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND year(d.declaration_date) = {year}"},
    {"id": "red_imports_year",
     "q": "How many import declarations were routed to the red channel in {year}?",
     "ref": "SELECT count(*) FROM declarations WHERE flow = 'import' AND control_channel = 'red' "
            "AND year(declaration_date) = {year}"},
    {"id": "top5_importers", "q": "Which 5 traders imported the most, by customs value?",
     "ref": "SELECT round(sum(i.customs_value), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' GROUP BY d.trader_id "
            "ORDER BY 1 DESC LIMIT 5"},
    {"id": "trader_imports_year", "q": "What did {trader} import in {year}? Total value please.",
     "ref": "SELECT round(sum(i.customs_value), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND d.trader_id = '{trader_id}' "
            "AND year(d.declaration_date) = {year}"},
    {"id": "trader_by_chapter", "q": "Break down {trader_short}'s imports by HS chapter",
     "ref": "SELECT left(i.hs_code, 2), round(sum(i.customs_value), 2) FROM declarations d "
            "JOIN declaration_items i USING (declaration_id) WHERE d.flow = 'import' "
            "AND d.trader_id = '{trader_id}' GROUP BY 1"},
    {"id": "duty_china_year", "q": "Total duty collected on imports from China in {year}",
     "ref": "SELECT round(sum(i.duty_amount), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND i.origin_country = 'CN' "
            "AND year(d.declaration_date) = {year}"},
    {"id": "top_origins", "q": "Top 5 countries of origin by import value",
     "ref": "SELECT i.origin_country, round(sum(i.customs_value), 2) FROM declarations d "
            "JOIN declaration_items i USING (declaration_id) WHERE d.flow = 'import' "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 5"},
    {"id": "aeo_count", "q": "How many traders hold an AEO certificate?",
     "ref": "SELECT count(*) FROM traders WHERE aeo_status IS NOT NULL AND aeo_status <> 'none'"},
    {"id": "office_workload", "q": "How many declarations did each customs office handle?",
     "ref": "SELECT customs_office, count(*) FROM declarations GROUP BY 1"},
    {"id": "monthly_imports", "q": "Monthly import value in {year}",
     "ref": "SELECT round(sum(i.customs_value), 2) FROM declarations d "
            "JOIN declaration_items i USING (declaration_id) WHERE d.flow = 'import' "
            "AND year(d.declaration_date) = {year} GROUP BY month(d.declaration_date)"},
    {"id": "audits_additional_duty",
     "q": "How much additional duty did audits recover in total?",
     "ref": "SELECT round(sum(additional_duty), 2) FROM audits"},
    {"id": "top_duty_payer", "q": "Which trader paid the most import duty?",
     "ref": "SELECT round(sum(i.duty_amount), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' GROUP BY d.trader_id "
            "ORDER BY 1 DESC LIMIT 1"},
    {"id": "heading_mass", "q": "What net mass of HS heading {heading} goods was imported, in kg?",
     "ref": "SELECT round(sum(i.net_mass_kg), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND i.hs_code LIKE '{heading}%'"},
    {"id": "air_declarations_year", "q": "How many declarations came by air in {year}?",
     "ref": "SELECT count(*) FROM declarations WHERE transport_mode = 'air' "
            "AND year(declaration_date) = {year}"},
    {"id": "exports_by_mode", "q": "Export value by transport mode",
     "ref": "SELECT d.transport_mode, round(sum(i.customs_value), 2) FROM declarations d "
            "JOIN declaration_items i USING (declaration_id) WHERE d.flow = 'export' "
            "GROUP BY 1"},
    {"id": "audits_of_trader", "q": "List the audits of {audited}",
     "ref": "SELECT audit_id FROM audits WHERE trader_id = '{audited_id}'"},
    {"id": "related_party_share",
     "q": "What percentage of import value in {year} was between related parties?",
     "ref": "SELECT round(100.0 * sum(i.customs_value) FILTER (WHERE i.related_party) / "
            "sum(i.customs_value), 1) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND year(d.declaration_date) = {year}"},
    {"id": "trader_top_headings",
     "q": "Top 3 HS headings {trader_short} imported in {year}, by value",
     "ref": "SELECT left(i.hs_code, 4), round(sum(i.customs_value), 2) FROM declarations d "
            "JOIN declaration_items i USING (declaration_id) WHERE d.flow = 'import' "
            "AND d.trader_id = '{trader_id}' AND year(d.declaration_date) = {year} "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 3"},
    {"id": "trader_compare_years",
     "q": "Compare {trader}'s import value in {prev_year} and {year}",
     "ref": "SELECT year(d.declaration_date), round(sum(i.customs_value), 2) FROM declarations d "
            "JOIN declaration_items i USING (declaration_id) WHERE d.flow = 'import' "
            "AND d.trader_id = '{trader_id}' AND year(d.declaration_date) IN ({prev_year}, {year}) "
            "GROUP BY 1"},
    {"id": "trader_suppliers", "q": "How many different sellers did {trader_short} buy from?",
     "ref": "SELECT count(DISTINCT i.seller_id) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND d.trader_id = '{trader_id}'"},
    {"id": "vat_latest_month", "q": "How much VAT was collected on imports in the latest month?",
     "ref": "SELECT round(sum(i.vat_amount), 2) FROM declarations d JOIN declaration_items i "
            "USING (declaration_id) WHERE d.flow = 'import' AND date_trunc('month', "
            "d.declaration_date) = (SELECT date_trunc('month', max(declaration_date)) "
            "FROM declarations)"},
]


def fill_values(runner: Any) -> dict[str, str]:
    """Values of the placeholders, read from the database."""
    top = runner.run(
        "SELECT d.trader_id, t.name FROM declarations d JOIN declaration_items i USING "
        "(declaration_id) JOIN traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import' "
        "GROUP BY 1, 2 ORDER BY sum(i.customs_value) DESC LIMIT 1").rows[0]
    audited = runner.run(
        "SELECT a.trader_id, t.name FROM audits a JOIN traders t USING (trader_id) "
        "GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1").rows[0]
    heading = runner.run(
        "SELECT left(i.hs_code, 4) FROM declarations d JOIN declaration_items i USING "
        "(declaration_id) WHERE d.flow = 'import' GROUP BY 1 ORDER BY count(*) DESC, 1 "
        "LIMIT 1").rows[0][0]
    latest = str(runner.run("SELECT max(declaration_date) FROM declarations").rows[0][0])
    year = int(latest[:4]) if latest[5:] == "12-31" else int(latest[:4]) - 1
    return {"trader_id": top[0], "trader": top[1],
            "trader_short": " ".join(top[1].replace(",", "").split()[:2]),
            "audited_id": audited[0], "audited": audited[1],
            "year": str(year), "prev_year": str(year - 1), "heading": heading}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=0.005, abs_tol=0.01)
    return str(a).strip().lower() == str(b).strip().lower()


def matches_reference(reference: list[list[Any]], table: Any) -> bool:
    """Every reference row found in the answer table (numbers if it has any, else text)."""
    if table is None:
        return False
    rows = table.rows
    for ref in reference:
        numbers = [v for v in ref if isinstance(v, int | float) and not isinstance(v, bool)]
        needed = numbers or [v for v in ref if v is not None]
        if not any(all(any(_close(v, cell) for cell in row) for v in needed) for row in rows):
            return False
    return True


@dataclass
class Outcome:
    """One question answered by one strategy."""

    qid: str
    correct: bool
    seconds: float
    status: str  # ok | wrong | no_sql | unavailable
    attempts: int
    detail: str


def make_engine(strategy: str, runner: Any, timeout_s: float) -> Any:
    """The engine for a strategy, over the (process-wide) local model."""
    from assistant.llm import (
        AgentEngine,
        DirectSqlEngine,
        default_examples,
        local_chat_model,
        local_llama,
        question_hints,
    )

    llama = local_llama()
    examples = default_examples(runner)
    if strategy == "agent":
        return AgentEngine(lambda cancelled: local_chat_model(llama, cancelled), runner,
                           name="local", timeout_s=timeout_s, examples=examples,
                           hints=question_hints(runner))
    if strategy == "direct":
        return DirectSqlEngine(llama.chat, runner, timeout_s=timeout_s, examples=examples,
                               hints=question_hints(runner))
    if strategy == "direct-json":
        return DirectSqlEngine(llama.chat_json, runner, timeout_s=timeout_s, examples=examples,
                               hints=question_hints(runner))
    if strategy == "direct-summary":
        return DirectSqlEngine(llama.chat, runner, timeout_s=timeout_s, examples=examples,
                               hints=question_hints(runner), summarise=True)
    if strategy == "direct-bare":
        return DirectSqlEngine(llama.chat, runner, timeout_s=timeout_s)
    raise SystemExit(f"unknown strategy {strategy!r}")


def run_one(engine: Any, question: str, reference: list[list[Any]], qid: str) -> Outcome:
    """Ask one question and judge the answer against the reference rows."""
    from assistant.errors import LLMUnavailable

    started = time.perf_counter()
    try:
        answer = engine.answer(question)
    except LLMUnavailable as exc:
        return Outcome(qid, False, time.perf_counter() - started, "unavailable", 0, str(exc))
    seconds = time.perf_counter() - started
    attempts = int(answer.slots.get("attempts") or len(answer.slots.get("failed_sql", [])) + 1)
    if answer.table is None:
        return Outcome(qid, False, seconds, "no_sql", attempts, answer.text[:100])
    ok = matches_reference(reference, answer.table)
    return Outcome(qid, ok, seconds, "ok" if ok else "wrong", attempts,
                   (answer.sql[-1] if answer.sql else "").replace("\n", " ")[:160])


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def main() -> None:
    """Run the benchmark and print one summary line per strategy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="trade database (default: TAMGA_HOME's)")
    parser.add_argument("--rows", type=int, help="build a fresh demo database of N items")
    parser.add_argument("--strategies", default="direct,agent")
    parser.add_argument("--limit", type=int, default=0, help="first N questions only")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per question")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    from assistant.settings import get_settings
    from tools.sql import SqlRunner

    if args.rows:
        from tradedata.demo import generate_demo

        db = Path(tempfile.mkdtemp(prefix="tamga-bench-")) / "trade.duckdb"
        generate_demo(db, items=args.rows, seed=7)
    else:
        db = args.db or get_settings().database
    if not db.exists():
        raise SystemExit(f"No database at {db}: run `tamga demo` or pass --rows N.")
    runner = SqlRunner(db, timeout_s=30)
    values = fill_values(runner)
    questions = QUESTIONS[: args.limit] if args.limit else QUESTIONS
    cases = []
    for item in questions:
        question = item["q"].format(**values)
        reference = runner.run(item["ref"].format(**values)).rows
        if not reference or all(v is None for row in reference for v in row):
            raise SystemExit(f"{item['id']}: the reference query found nothing on this database")
        cases.append((item["id"], question, reference))
    print(f"database {db} · {len(cases)} questions · placeholders {values}")

    for strategy in args.strategies.split(","):
        engine = make_engine(strategy.strip(), runner, args.timeout)
        engine.answer("How many traders are there?")  # warm: load, cache the prompt prefix
        outcomes = []
        for qid, question, reference in cases:
            outcome = run_one(engine, question, reference, qid)
            outcomes.append(outcome)
            if args.verbose:
                mark = "✓" if outcome.correct else "✗"
                print(f"  {mark} {strategy:11} {qid:24} {outcome.seconds:6.1f}s "
                      f"{outcome.status:11} attempts={outcome.attempts} {outcome.detail}")
        times = [o.seconds for o in outcomes]
        right = sum(o.correct for o in outcomes)
        counts = {s: sum(o.status == s for o in outcomes)
                  for s in ("wrong", "no_sql", "unavailable")}
        print(f"{strategy:12} correct {right}/{len(outcomes)} ({100 * right / len(outcomes):.0f}%)"
              f"  p50 {statistics.median(times):.1f}s  p95 {percentile(times, 95):.1f}s"
              f"  mean {statistics.fmean(times):.1f}s  {counts}")


if __name__ == "__main__":
    main()
