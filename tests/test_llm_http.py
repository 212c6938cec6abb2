"""The LLM engine over real HTTP: the `openai` client inside ChatOpenAI talks to a tiny
OpenAI-compatible server started here on 127.0.0.1, which replies from a script (tool calls,
answers, a slow reply, an HTTP 500, garbage) and records every request it receives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from assistant.llm import AgentEngine, build_engine
from assistant.offline import OfflineEngine
from assistant.plan_llm import PlanFillEngine
from tamga.errors import LLMUnavailable
from tamga.settings import Settings
from tools.runner import Runner


def completion(content: str | None = None, calls: list[tuple[str, Any]] | None = None
               ) -> dict[str, Any]:
    """A chat.completion body; `calls` are (tool name, arguments object or raw string)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{n}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str)
                          else json.dumps(args)}}
            for n, (name, args) in enumerate(calls)
        ]
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "tiny",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def serving() -> Iterator[ScriptedServer]:
    """A ScriptedServer answering in a daemon thread until the generator is closed (fixtures)."""
    srv = ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(json.loads(body))
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        step = self.server.script.pop(0) if self.server.script else {"status": 404}
        time.sleep(step.get("sleep", 0))
        status = step.get("status", 200)
        raw = bytes(step["raw"]) if "raw" in step else json.dumps(step.get("json", {})).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    yield from serving()


@pytest.fixture(scope="module")
def offline(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> OfflineEngine:
    """The offline engine (no regulations index) whose data context the LLM engines use."""
    return OfflineEngine.open(demo_db, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def runner(offline: OfflineEngine) -> Runner:
    return offline.runner


def engine_for(url: str, offline: OfflineEngine, timeout_s: float = 10.0) -> AgentEngine:
    settings = Settings(llm_base_url=url, llm_api_key="sk-test", llm_model="tiny",
                        llm_timeout_s=timeout_s, home=Path("/nonexistent"))
    first = build_engine(offline, settings)
    assert isinstance(first, PlanFillEngine)  # the plan first; the agent for the rest
    engine = first.fallback
    assert isinstance(engine, AgentEngine)
    engine.examples = None  # keep these tests on the HTTP path (examples are tested elsewhere)
    return engine


SQL = ("SELECT count(*) AS n FROM declarations WHERE control_channel = 'red' "
       "AND flow = 'import'")


def test_tool_calls_round_trip_through_the_openai_client(server: ScriptedServer,
                                                         runner: Runner,
                                                         offline: OfflineEngine) -> None:
    red = runner.run(SQL).rows[0][0]
    server.script = [
        {"json": completion(calls=[("run_sql", {"query": "SELECT count(*) FROM declaratons"})])},
        {"json": completion(calls=[("run_sql", {"query": SQL})])},
        {"json": completion(f"{red} import declarations went to the red channel.")},
    ]
    answer = engine_for(server.base_url, offline).answer("How many imports were stopped red?")

    assert answer.text.startswith(str(red)) and answer.warnings == []
    assert answer.engine == "llm" and len(answer.sql) == 1 and "control_channel" in answer.sql[0]
    assert answer.table is not None and answer.table.rows == [[red]]
    first, second, third = server.requests
    assert first["model"] == "tiny"
    assert {t["function"]["name"] for t in first["tools"]} >= {
        "run_sql", "describe_schema", "search_regulations", "find_trader", "trader_profile"}
    assert first["messages"][0]["role"] == "system"
    assert server.headers_seen[0].get("authorization") == "Bearer sk-test"
    tool_reply = second["messages"][-1]
    assert tool_reply["role"] == "tool" and "declaratons" in tool_reply["content"]
    assert "error" in tool_reply["content"].lower()
    assert json.loads(third["messages"][-1]["content"])["rows"] == [[red]]


def test_slow_endpoint_times_out_quickly(server: ScriptedServer, offline: OfflineEngine) -> None:
    server.script = [{"sleep": 5, "json": completion("too late")}]
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable, match="did not answer"):
        engine_for(server.base_url, offline, timeout_s=1.0).answer("Anything?")
    assert time.perf_counter() - started < 2.5


def test_http_500_is_llm_unavailable(server: ScriptedServer, offline: OfflineEngine) -> None:
    server.script = [{"status": 500, "json": {"error": {"message": "model crashed"}}}]
    with pytest.raises(LLMUnavailable, match="HTTP 500"):
        engine_for(server.base_url, offline).answer("Anything?")
    assert len(server.requests) == 1  # no retries


def test_garbage_reply_is_llm_unavailable(server: ScriptedServer, offline: OfflineEngine) -> None:
    server.script = [{"raw": b"<html>this is not json"}]
    with pytest.raises(LLMUnavailable):
        engine_for(server.base_url, offline).answer("Anything?")
    server.script = [{"json": {"unexpected": "shape"}}]
    with pytest.raises(LLMUnavailable):
        engine_for(server.base_url, offline).answer("Anything?")


def test_malformed_tool_call_is_llm_unavailable(server: ScriptedServer,
                                                offline: OfflineEngine) -> None:
    server.script = [{"json": completion(calls=[("run_sql", '{"query": "SELECT 1')])}]
    with pytest.raises(LLMUnavailable, match="malformed tool call"):
        engine_for(server.base_url, offline).answer("Anything?")


def test_endpoint_down_is_llm_unavailable(offline: OfflineEngine) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable, match="Cannot reach"):
        engine_for(f"http://127.0.0.1:{port}/v1", offline).answer("Anything?")
    assert time.perf_counter() - started < 5


def plan_engine(url: str, offline: OfflineEngine) -> PlanFillEngine:
    settings = Settings(llm_base_url=url, llm_api_key="sk-test", llm_model="tiny",
                        llm_timeout_s=10.0, home=Path("/nonexistent"))
    engine = build_engine(offline, settings)
    assert isinstance(engine, PlanFillEngine)
    return engine


def draft(**fields: Any) -> str:
    """A plan draft as the model writes it (every key, as the schema asks)."""
    base = {"fits": True, "shape": "total", "measure": "customs_value", "by": [],
            "period": None, "vs": None, "n": None, "low": False, "count": False, "above": None}
    return json.dumps({**base, **fields})


def test_the_model_fills_a_plan_over_http(server: ScriptedServer, runner: Runner,
                                          offline: OfflineEngine) -> None:
    """Structured output: the request carries the draft's JSON schema, the reply's plan is
    compiled by code and run through the guarded runner (the model writes no SQL)."""
    latest = runner.run("SELECT max(declaration_date) FROM declarations").rows[0][0]
    year = int(str(latest)[:4]) - 1
    server.script = [{"json": completion(draft(shape="top", measure="duty", by=["origin"],
                                               period=str(year), n=3))}]
    answer = plan_engine(server.base_url, offline).answer(
        f"Which three origin countries paid the most duty in {year}?")

    assert len(server.requests) == 1
    request = server.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    schema = request["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) >= {"fits", "shape", "measure", "by", "period"}
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1]["content"].startswith("Which three origin countries")
    expected = runner.run(
        "SELECT i.origin_country, round(sum(i.duty_amount), 2) FROM declarations d "
        "JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        f"WHERE d.flow = 'import' AND year(d.declaration_date) = {year} "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 3").rows
    assert answer.engine == "llm" and answer.intent == "plan:top"
    assert answer.table is not None
    got = [[r[answer.table.columns.index("origin")], r[answer.table.columns.index("duty")]]
           for r in answer.table.rows]
    assert got == expected
    assert answer.understood is not None and "duty" in answer.understood
    assert answer.plan is not None and answer.plan["shape"] == "top"
    assert "duty_amount" in answer.sql[0]


def test_json_mode_when_the_server_refuses_schemas(server: ScriptedServer,
                                                   offline: OfflineEngine) -> None:
    server.script = [
        {"status": 400, "json": {"error": {"message": "response_format json_schema "
                                           "is not supported"}}},
        {"json": completion(draft(measure="declarations"))},
    ]
    answer = plan_engine(server.base_url, offline).answer("How many import declarations?")
    assert [r["response_format"]["type"] for r in server.requests] == ["json_schema",
                                                                        "json_object"]
    assert answer.engine == "llm" and answer.intent == "plan:total"
    assert answer.table is not None and answer.table.rows[0][0] > 0


def test_a_question_the_plan_cannot_hold_goes_to_the_agent(server: ScriptedServer,
                                                           runner: Runner,
                                                           offline: OfflineEngine) -> None:
    red = runner.run(SQL).rows[0][0]
    server.script = [
        {"json": completion(draft(fits=False))},
        {"json": completion(calls=[("run_sql", {"query": SQL})])},
        {"json": completion(f"{red} import declarations went to the red channel.")},
    ]
    answer = plan_engine(server.base_url, offline).answer("How many imports were stopped red?")
    assert len(server.requests) == 3
    assert "tools" not in server.requests[0] and "tools" in server.requests[1]
    assert answer.engine == "llm" and answer.table is not None
    assert answer.table.rows == [[red]]


def test_an_impossible_plan_says_why_and_falls_back(server: ScriptedServer,
                                                    offline: OfflineEngine) -> None:
    server.script = [{"json": completion(draft(shape="top", by=["trader"], n=0))}]
    engine = plan_engine(server.base_url, offline)
    engine.fallback = None
    with pytest.raises(LLMUnavailable, match="between 1 and"):
        engine.answer("Top zero importers")
