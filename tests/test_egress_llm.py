"""What leaves the machine on the LLM path: the agent's tools under the endpoint's data policy.

The model is scripted (no network is used), but everything else is real: the agent, the tools,
the demo database, the masker and the egress log. A remote base URL (https://llm.example.org)
makes the data policy apply; a loopback one means nothing leaves the machine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from assistant.context import DataContext
from assistant.conversation import Conversation
from assistant.core import Assistant
from assistant.intents import load_intents
from assistant.llm import AgentEngine
from assistant.prompts import hints_for
from tamga.errors import LLMUnavailable
from tamga.settings import Settings
from tests.test_llm_engine import ScriptedChatModel, call
from tools.egress import Destination
from tools.runner import Runner

REMOTE = "https://llm.example.org/v1"
LOOPBACK = "http://127.0.0.1:8080/v1"


@pytest.fixture(scope="module")
def context(demo_db: Path) -> DataContext:
    """The demo data as an unrestricted scope sees it, with the intent vocabulary (as the
    offline engine's slot look-ups that the hints and the masker use)."""
    context = DataContext.open(demo_db)
    context.vocabulary = frozenset(load_intents().vocabulary())
    return context


@pytest.fixture(scope="module")
def runner(context: DataContext) -> Runner:
    return context.runner


@pytest.fixture(scope="module")
def trader(runner: Runner) -> dict[str, Any]:
    """The trader with the most declarations: its ID, name, TIN and declaration IDs."""
    trader_id, name, tin, count = runner.run(
        "SELECT t.trader_id, t.name, t.tin, count(*) FROM declarations d "
        "JOIN traders t USING (trader_id) GROUP BY ALL ORDER BY 4 DESC, 1 LIMIT 1").rows[0]
    ids = [r[0] for r in runner.run(
        f"SELECT declaration_id FROM declarations WHERE trader_id = '{trader_id}' "
        "ORDER BY declaration_date DESC, declaration_id LIMIT 5").rows]
    return {"id": trader_id, "name": name, "tin": tin, "count": count, "declarations": ids}


def destination(base_url: str, policy: str = "aggregates") -> Destination:
    settings = Settings(llm_base_url=base_url, llm_data_policy=policy)  # type: ignore[arg-type]
    return Destination.from_settings(settings)


def sent_text(model: ScriptedChatModel) -> str:
    """Everything the model received, as one text."""
    return "\n".join(str(m.content) for batch in model.received for m in batch)


def last_tool(messages: list[BaseMessage]) -> dict[str, Any]:
    tool = [m for m in messages if isinstance(m, ToolMessage)][-1]
    data: dict[str, Any] = json.loads(str(tool.content))
    return data


def pseudonym_id(messages: list[BaseMessage]) -> str:
    """The trader_id the (masked) question hints gave the model."""
    human = [m for m in messages if isinstance(m, HumanMessage)][-1]
    found = re.search(r"trader_id = '([^']+)'", str(human.content))
    assert found, human.content
    return found.group(1)


def detail_sql(trader_id: str) -> str:
    return ("SELECT d.declaration_id, d.declaration_date, t.name, t.tin FROM declarations d "
            f"JOIN traders t USING (trader_id) WHERE d.trader_id = '{trader_id}' "
            "ORDER BY d.declaration_date DESC, d.declaration_id LIMIT 5")


def totals_sql(trader_id: str) -> str:
    return ("SELECT t.name, count(*) AS declarations FROM declarations d "
            f"JOIN traders t USING (trader_id) WHERE d.trader_id = '{trader_id}' GROUP BY t.name")


def agent_script(final: str = "{name} lodged {n} declarations.") -> list[Any]:
    """A model that asks for row-level detail, then totals, then answers from what it got."""
    def first(messages: list[BaseMessage]) -> AIMessage:
        return call("run_sql", 1, query=detail_sql(pseudonym_id(messages)))

    def second(messages: list[BaseMessage]) -> AIMessage:
        return call("run_sql", 2, query=totals_sql(pseudonym_id(messages)))

    def answer(messages: list[BaseMessage]) -> AIMessage:
        data = last_tool(messages)
        if "rows" not in data:
            return AIMessage("The data policy kept the rows back.")
        name, n = data["rows"][0]
        return AIMessage(final.format(name=name, n=f"{n:,}"))

    return [first, second, answer]


def test_remote_endpoint_gets_no_trader_identity_or_row_values(
    context: DataContext, trader: dict[str, Any]
) -> None:
    model = ScriptedChatModel(script=agent_script())
    engine = AgentEngine(model, context, destination=destination(REMOTE),
                         hints=lambda question: hints_for(question, context))
    conversation = Conversation()
    question = f"Show the latest declarations of {trader['name']} and how many it lodged"
    answer = engine.answer(question, conversation)

    sent = sent_text(model)
    for secret in [trader["name"], trader["tin"], trader["id"], *trader["declarations"]]:
        assert secret not in sent, f"{secret!r} reached the remote model"
    detail = last_tool(model.received[1])
    assert "rows" not in detail and "aggregated results" in detail["withheld"]
    totals = last_tool(model.received[2])
    assert totals["masked_columns"] == ["name"] and totals["rows"][0][1] == trader["count"]
    assert totals["rows"][0][0].startswith("TRADER-")

    # locally: the real name in the answer, the real queries and the full table
    assert answer.text == f"{trader['name']} lodged {trader['count']:,} declarations."
    assert "TRADER-" not in answer.text and answer.warnings == []
    assert len(answer.sql) == 2 and all(f"'{trader['id']}'" in sql for sql in answer.sql)
    assert answer.table is not None and answer.table.rows == [[trader["name"], trader["count"]]]

    egress = answer.egress
    assert egress is not None and egress["remote"] and egress["policy"] == "aggregates"
    assert "llm.example.org" in egress["destination"]
    assert [r["tool"] for r in egress["records"]] == ["prompt", "run_sql", "run_sql"]
    assert egress["rows_sent"] == 1 and egress["rows_withheld"] == len(trader["declarations"])
    assert egress["results_sent"] == 3
    # the records hold exactly what the model got, and no identity
    record_text = json.dumps([r["payload"] for r in egress["records"]], ensure_ascii=False)
    assert trader["name"] not in record_text and trader["tin"] not in record_text
    assert egress["records"][2]["payload"] == totals
    assert answer.to_json(question)["egress"]["rows_sent"] == 1

    # a follow-up in the same conversation: the same pseudonym, the history masked too
    conversation.record(question, answer)
    alias = totals["rows"][0][0]
    follow = ScriptedChatModel(script=[AIMessage(f"{alias} is the trader we discussed.")])
    engine.model = follow
    again = engine.answer("Which trader was that again?", conversation)
    assert trader["name"] not in sent_text(follow)
    assert alias in sent_text(follow)  # the previous answer, re-masked with the same alias
    assert again.text == f"{trader['name']} is the trader we discussed."


def test_pseudonyms_work_as_tool_arguments_and_profiles_are_masked(
    runner: Runner, context: DataContext, trader: dict[str, Any]
) -> None:
    def profile(messages: list[BaseMessage]) -> AIMessage:
        match = last_tool(messages)["matches"][0]
        assert match["trader_id"].startswith("TRADER-") and match["name"].startswith("TRADER-")
        return call("trader_profile", 2, trader_id=match["trader_id"])

    def final(messages: list[BaseMessage]) -> AIMessage:
        data = last_tool(messages)["profile"]
        return AIMessage(f"{data['name']} has {data['figures']['declarations']:,} declarations.")

    model = ScriptedChatModel(script=[call("find_trader", 1, name_or_id=trader["tin"]),
                                      profile, final])
    answer = AgentEngine(model, context, destination=destination(REMOTE)).answer(
        f"Profile of the trader with TIN {trader['tin']}")
    sent_profile = last_tool(model.received[2])["profile"]
    assert trader["name"] not in json.dumps(sent_profile, ensure_ascii=False)
    audits = runner.run(f"SELECT count(*) FROM audits WHERE trader_id = '{trader['id']}'")
    if audits.rows[0][0]:
        assert sent_profile["audits"]["count"] == audits.rows[0][0]
        assert "withheld" in sent_profile["audits"]
    # the profile ran on the real trader; the officer reads the real name
    assert answer.table is not None and ["trader_id", trader["id"]] in answer.table.rows
    assert answer.text == f"{trader['name']} has {trader['count']:,} declarations."
    assert answer.egress is not None
    assert [r["tool"] for r in answer.egress["records"]] == ["prompt", "find_trader",
                                                             "trader_profile"]


def test_loopback_endpoint_gets_the_rows_and_nothing_leaves(
    context: DataContext, trader: dict[str, Any]
) -> None:
    model = ScriptedChatModel(script=[
        call("run_sql", 1, query=detail_sql(trader["id"])),
        AIMessage("Here are the latest declarations."),
    ])
    answer = AgentEngine(model, context, destination=destination(LOOPBACK)).answer(
        f"Latest declarations of {trader['name']}")
    rows = last_tool(model.received[1])["rows"]
    assert [r[0] for r in rows] == trader["declarations"]
    assert rows[0][2] == trader["name"] and rows[0][3] == trader["tin"]
    assert trader["name"] in sent_text(model)
    assert answer.egress is not None and not answer.egress["remote"]
    assert answer.egress["records"] == [] and answer.egress["rows_sent"] == 0
    assert "this machine" in answer.egress["destination"]


def test_schema_policy_sends_no_rows(context: DataContext, trader: dict[str, Any]) -> None:
    model = ScriptedChatModel(script=[
        call("run_sql", 1, query=totals_sql(trader["id"])),
        call("find_trader", 2, name_or_id=trader["id"]),
        AIMessage("The policy only lets me see column names."),
    ])
    answer = AgentEngine(model, context, destination=destination(REMOTE, "schema")).answer(
        "How many declarations did that trader lodge?")
    result = last_tool(model.received[1])
    assert "rows" not in result and result["row_count"] == 1
    assert result["columns"] == [{"name": "name", "type": "text"},
                                 {"name": "declarations", "type": "number"}]
    found = last_tool(model.received[2])
    assert "matches" not in found and found["shape"]["matches"][0]["name"] == "text"
    assert str(trader["count"]) not in sent_text(model) and trader["name"] not in sent_text(model)
    assert answer.egress is not None
    assert answer.egress["policy"] == "schema" and answer.egress["rows_sent"] == 0
    assert answer.egress["rows_withheld"] == 2  # the result's row and the trader match
    # the officer still gets the real table locally
    assert answer.table is not None and answer.table.rows == [[trader["name"], trader["count"]]]


def test_audit_log_records_policy_and_counts_and_a_failure_keeps_what_was_sent(
    demo_db: Path, guidance_index: Path, tmp_path: Path, trader: dict[str, Any],
    context: DataContext,
) -> None:
    settings = Settings(llm_base_url=REMOTE, home=tmp_path / "home", log_dir=tmp_path / "logs")
    model = ScriptedChatModel(script=[
        call("run_sql", 1, query=totals_sql(trader["id"])),
        AIMessage("Done."),
        call("run_sql", 2, query=detail_sql(trader["id"])),
        LLMUnavailable("The language model endpoint answered HTTP 500: boom"),
    ])
    engine = AgentEngine(model, context, destination=Destination.from_settings(settings))
    assistant = Assistant(settings, db_path=demo_db, index_dir=guidance_index,
                          llm_engine=engine, engine="llm")
    chat = assistant.new_conversation()
    first = assistant.ask("How many declarations has our biggest trader lodged?", chat)
    assert first.engine == "llm"
    second = assistant.ask("List the latest declarations of our biggest trader", chat)
    assert second.engine == "offline" and "unavailable" in second.warnings[0]
    assert second.egress is not None and [r["tool"] for r in second.egress["records"]] == [
        "prompt", "run_sql"]
    assert second.egress["rows_withheld"] == len(trader["declarations"])

    lines = (tmp_path / "logs" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    logged = [json.loads(line)["egress"] for line in lines]
    assert logged[0]["policy"] == "aggregates" and logged[0]["remote"] is True
    assert logged[0]["rows_sent"] == 1 and logged[0]["rows_withheld"] == 0
    assert [s["tool"] for s in logged[0]["sent"]] == ["prompt", "run_sql"]
    assert logged[0]["sent"][1]["masked_columns"] == ["name"]
    assert logged[1]["rows_sent"] == 0 and logged[1]["rows_withheld"] == 5
    assert "payload" not in json.dumps(logged)  # counts in the log, payloads in the app


def test_offline_answers_are_logged_as_sending_nothing(
    demo_db: Path, guidance_index: Path, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", log_dir=tmp_path / "logs")
    assistant = Assistant(settings, db_path=demo_db, index_dir=guidance_index, load_llm=False)
    answer = assistant.ask("Top 5 importers in 2024")
    assert answer.engine == "offline" and answer.egress is None
    assert "egress" not in answer.to_json("q")
    record = json.loads((tmp_path / "logs" / "audit.jsonl").read_text().splitlines()[-1])
    assert record["egress"] == {"destination": "none", "remote": False, "policy": None,
                                "results_sent": 0, "rows_sent": 0, "rows_withheld": 0}
