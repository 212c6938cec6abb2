"""Benchmark: the local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) on officer questions.

For each strategy it prints the share of questions answered correctly and the latency p50/p95
(warm process: the model is loaded and the prompt prefix cached before timing starts).

    .venv/bin/python benchmarks/bench_local_llm.py                       # default database
    .venv/bin/python benchmarks/bench_local_llm.py --rows 20000          # a fresh demo database
    .venv/bin/python benchmarks/bench_local_llm.py --strategies direct --limit 5 -v
    .venv/bin/python benchmarks/bench_local_llm.py --strategies direct-json,agent-http --sample 8

Strategies: `agent` (langchain create_agent, tool calling through LocalChatModel), `direct`
(one SQL query from schema + verified examples + looked-up facts, errors fed back, up to 3
attempts), `direct-json` (the same, the reply constrained by a grammar to {"sql": ...}),
`direct-summary` (direct, plus the model writes the answer sentence from the result),
`direct-bare` (direct without the verified examples and looked-up facts), `agent-http` (the
endpoint path: `build_engine(which="endpoint")`, i.e. the agent through ChatOpenAI and the real
`openai` client, talking over HTTP to the local model served on 127.0.0.1 by a small
OpenAI-compatible server in this script; no reply is started as a tool call, as with a real
endpoint).

A question is correct when every row of its reference query (computed now, on this database)
appears in the answer's main table: each numeric cell of the reference row is found in one
row of the answer table (within 0.5% or 0.01), or, for rows without numbers, each text cell.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def _template_message(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat message as the GGUF chat template expects it (arguments as objects)."""
    out = {"role": message["role"], "content": message.get("content") or ""}
    if isinstance(out["content"], list):  # content parts
        out["content"] = "".join(str(p.get("text", "")) for p in out["content"])
    calls = []
    for call in message.get("tool_calls") or []:
        function = dict(call["function"])
        with contextlib.suppress(json.JSONDecodeError):
            function["arguments"] = json.loads(function.get("arguments") or "{}")
        calls.append({"type": "function", "function": function})
    if calls:
        out["tool_calls"] = calls
    return out


def completion_body(reply: str, model: str) -> dict[str, Any]:
    """A chat.completion for a model reply; Qwen's <tool_call> JSON becomes `tool_calls`
    (a call that is not valid JSON is passed on raw, as a server would)."""
    calls = []
    for n, match in enumerate(_TOOL_CALL.finditer(reply)):
        raw = match.group(1).strip()
        try:
            data, _ = json.JSONDecoder().raw_decode(raw)
            name, args = str(data["name"]), data.get("arguments", {})
            arguments = args if isinstance(args, str) else json.dumps(args)
        except (ValueError, KeyError, TypeError):
            name, arguments = "", raw
        calls.append({"id": f"call_{n}", "type": "function",
                      "function": {"name": name, "arguments": arguments}})
    message: dict[str, Any] = {"role": "assistant",
                               "content": _TOOL_CALL.sub("", reply).strip() or None}
    if calls:
        message["tool_calls"] = calls
    return {"id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


class LocalOpenAIServer(ThreadingHTTPServer):
    """POST /v1/chat/completions on 127.0.0.1, answered by the local model (no streaming).

    Stands in for `python -m llama_cpp.server`, whose extra packages (fastapi, sse_starlette,
    starlette_context) are not installed here; prompts use the GGUF's own chat template.
    """

    daemon_threads = True

    def __init__(self, llama: Any) -> None:
        super().__init__(("127.0.0.1", 0), _LocalHandler)
        self.llama = llama
        self.calls = 0

    @property
    def base_url(self) -> str:
        """The base URL to give an OpenAI client."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _LocalHandler(BaseHTTPRequestHandler):
    server: LocalOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        prompt = self.server.llama.render([_template_message(m) for m in request["messages"]],
                                          request.get("tools"))
        reply = self.server.llama.complete(
            prompt, int(request.get("max_tokens") or request.get("max_completion_tokens") or 400))
        self.server.calls += 1
        raw = json.dumps(completion_body(reply, str(request.get("model")))).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (time limit)
            pass


def serve_local(llama: Any) -> LocalOpenAIServer:
    """Start the local model's OpenAI-compatible server in a daemon thread."""
    server = LocalOpenAIServer(llama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_engine(strategy: str, offline: Any, timeout_s: float) -> Any:
    """The engine for a strategy, over the (process-wide) local model and the data context of
    `offline` (the offline engine whose slot look-ups and verified SQL the engines share)."""
    from assistant.llm import AgentEngine, DirectSqlEngine, local_chat_model, local_llama
    from assistant.prompts import IntentExamples, hints_for

    llama = local_llama()
    context = offline.context
    examples = IntentExamples(offline)

    def hints(question: str) -> list[str]:
        return hints_for(question, context)

    if strategy == "agent":
        return AgentEngine(lambda cancelled: local_chat_model(llama, cancelled), context,
                           name="local", timeout_s=timeout_s, examples=examples, hints=hints)
    if strategy == "direct":
        return DirectSqlEngine(llama.chat, context, timeout_s=timeout_s, examples=examples,
                               hints=hints)
    if strategy == "direct-json":
        return DirectSqlEngine(llama.chat_json, context, timeout_s=timeout_s, examples=examples,
                               hints=hints)
    if strategy == "direct-summary":
        return DirectSqlEngine(llama.chat, context, timeout_s=timeout_s, examples=examples,
                               hints=hints, summarise=True)
    if strategy == "direct-bare":
        return DirectSqlEngine(llama.chat, context, timeout_s=timeout_s)
    if strategy == "agent-http":
        from assistant.llm import build_engine
        from tamga.settings import Settings

        server = serve_local(llama)
        settings = Settings(llm_base_url=server.base_url, llm_api_key="none",
                            llm_model="qwen2.5-coder-1.5b-instruct-q4_k_m",
                            llm_timeout_s=max(timeout_s, 900.0), local_model=False)
        # The HTTP client's limit allows the warm-up; the engine's limit per question is
        # set back to `timeout_s` after it (main()), and it covers the whole question.
        print(f"agent-http: local model served at {server.base_url}", flush=True)
        return build_engine(offline, settings, which="endpoint")
    raise SystemExit(f"unknown strategy {strategy!r}")


def run_one(engine: Any, question: str, reference: list[list[Any]], qid: str) -> Outcome:
    """Ask one question and judge the answer against the reference rows."""
    from tamga.errors import LLMUnavailable

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
    sql = (answer.sql[-1] if answer.sql else "").replace("\n", " ")
    # a wrong answer shows its whole query and first rows, to tell the failure mode apart
    detail = sql[:160] if ok else f"{sql}  -> {answer.table.rows[:3]} (expected {reference[:3]})"
    return Outcome(qid, ok, seconds, "ok" if ok else "wrong", attempts, detail)


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
    parser.add_argument("--sample", type=int, default=0,
                        help="N questions spread evenly over the set (question k*22//N)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per question")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    from assistant.context import DataContext
    from assistant.intents import load_intents
    from assistant.offline import OfflineEngine
    from tamga.errors import LLMUnavailable
    from tamga.settings import get_settings

    if args.rows:
        from tradedata.demo import generate_demo

        db = Path(tempfile.mkdtemp(prefix="tamga-bench-")) / "trade.duckdb"
        generate_demo(db, items=args.rows, seed=7)
    else:
        db = args.db or get_settings().database
    if not db.exists():
        raise SystemExit(f"No database at {db}: run `tamga demo` or pass --rows N.")
    library = load_intents()
    context = DataContext.open(db, timeout_s=30)
    context.vocabulary = frozenset(library.vocabulary())
    offline = OfflineEngine(context, library=library)
    runner = context.runner
    values = fill_values(runner)
    questions = QUESTIONS[: args.limit] if args.limit else QUESTIONS
    if 0 < args.sample < len(questions):
        questions = [questions[k * len(questions) // args.sample] for k in range(args.sample)]
    cases = []
    for item in questions:
        question = item["q"].format(**values)
        reference = runner.run(item["ref"].format(**values)).rows
        if not reference or all(v is None for row in reference for v in row):
            raise SystemExit(f"{item['id']}: the reference query found nothing on this database")
        cases.append((item["id"], question, reference))
    print(f"database {db} · {len(cases)} questions · placeholders {values}")

    for strategy in args.strategies.split(","):
        engine = make_engine(strategy.strip(), offline, args.timeout)
        # Warm up (load the model, evaluate and cache the long fixed prompt prefix) with a
        # generous time limit: on a busy machine this first call alone can take minutes.
        limit, engine.timeout_s = engine.timeout_s, max(engine.timeout_s, 900.0)
        try:
            engine.answer("How many traders are there?")
        except LLMUnavailable as exc:
            print(f"{strategy}: warm-up question failed: {exc}", flush=True)
        engine.timeout_s = limit
        outcomes = []
        loads = [os.getloadavg()[0]]  # 1-minute load average, sampled around every question
        for qid, question, reference in cases:
            outcome = run_one(engine, question, reference, qid)
            outcomes.append(outcome)
            loads.append(os.getloadavg()[0])
            if args.verbose:
                mark = "✓" if outcome.correct else "✗"
                print(f"  {mark} {strategy:11} {qid:24} {outcome.seconds:6.1f}s "
                      f"{outcome.status:11} attempts={outcome.attempts} load={loads[-1]:.1f} "
                      f"{outcome.detail}", flush=True)
        times = [o.seconds for o in outcomes]
        right = sum(o.correct for o in outcomes)
        counts = {s: sum(o.status == s for o in outcomes)
                  for s in ("wrong", "no_sql", "unavailable")}
        print(f"{strategy:12} correct {right}/{len(outcomes)} ({100 * right / len(outcomes):.0f}%)"
              f"  p50 {statistics.median(times):.1f}s  p95 {percentile(times, 95):.1f}s"
              f"  mean {statistics.fmean(times):.1f}s  {counts}"
              f"  load {min(loads):.1f}-{max(loads):.1f} (mean {statistics.fmean(loads):.1f})",
              flush=True)


if __name__ == "__main__":
    main()
