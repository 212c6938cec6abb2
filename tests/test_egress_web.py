"""The web app shows what was sent to a remote model, under each LLM answer (Streamlit AppTest).

The app builds its LLM engine from the settings: TAMGA_LLM_BASE_URL is a remote address, so
the data policy applies. Only the chat model itself is replaced (assistant.llm.endpoint_model
returns the scripted model instead of ChatOpenAI), so no network is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from tamga.settings import get_settings
from tests.test_egress_llm import last_tool, sent_text
from tests.test_llm_engine import ScriptedChatModel, call
from tests.test_webapp import _app, app_env  # noqa: F401  (the app's fixture)
from tradedata.db import connect

TOP_TRADERS = ("SELECT t.name, count(*) AS declarations FROM declarations d "
               "JOIN traders t USING (trader_id) GROUP BY t.name ORDER BY 2 DESC, 1 LIMIT 3")


@pytest.fixture()
def remote_llm(app_env: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
               ) -> Iterator[ScriptedChatModel]:
    """A remote endpoint in the settings, answered by a scripted model."""
    from assistant import llm, plan_llm
    from web.resources import _assistant

    def answer(messages: list[BaseMessage]) -> AIMessage:
        name, count = last_tool(messages)["rows"][0]
        return AIMessage(f"{name} lodged the most declarations: {count:,}.")

    model = ScriptedChatModel(script=[call("run_sql", 1, query=TOP_TRADERS), answer])
    monkeypatch.setenv("TAMGA_LLM_BASE_URL", "https://llm.example.org/v1")
    get_settings.cache_clear()
    monkeypatch.setattr(llm, "endpoint_model", lambda settings: model)
    # the plan step is asked first over JSON; this model declines it, so the SQL agent answers
    drafts: list[Any] = []

    def json_chat(base_url: str, api_key: str | None, model_name: str, timeout_s: float) -> Any:
        def chat(messages: Any, max_tokens: int, cancelled: Any, schema: Any) -> str:
            drafts.append(messages)
            return json.dumps({"fits": False})
        return chat

    monkeypatch.setattr(plan_llm, "endpoint_json_chat", json_chat)
    _assistant.clear()  # the app's assistant is rebuilt with this engine
    yield model
    _assistant.clear()


def test_llm_answer_shows_what_was_sent(remote_llm: ScriptedChatModel, demo_db: Path) -> None:
    with connect(demo_db, read_only=True) as con:
        top: list[Any] = list(con.execute(TOP_TRADERS).fetchall())
    at = _app().run()
    at.radio(key="engine").set_value("llm").run()
    at.chat_input[0].set_value("Which trader lodged the most declarations?").run()
    assert not at.exception, at.exception

    # the remote model saw pseudonyms only; the officer reads the real name
    assert not any(name in sent_text(remote_llm) for name, _ in top)
    texts = "\n".join(m.value for m in at.markdown)
    assert f"{top[0][0]} lodged the most declarations: {top[0][1]:,}." in texts

    labels = [e.label for e in at.expander]
    assert "What was sent to the model" in labels
    sent = next(e for e in at.expander if e.label == "What was sent to the model")
    summary = "\n".join(m.value for m in sent.markdown)
    assert "llm.example.org" in summary and "`aggregates`" in summary
    assert f"{len(top)} rows sent" in summary
    payloads = [json.loads(j.value) for j in sent.json]
    run_sql = next(p for p in payloads if "rows" in p)
    assert [row[1] for row in run_sql["rows"]] == [count for _, count in top]
    assert all(row[0].startswith("TRADER-") for row in run_sql["rows"])
    assert not any(name in json.dumps(payloads, ensure_ascii=False) for name, _ in top)
    captions = "\n".join(c.value for c in sent.caption)
    assert "run_sql" in captions and "masked: name" in captions

