"""The chat page: questions, answers with their provenance, examples, follow-ups and feedback."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from assistant.answer import Answer
from assistant.errors import TamgaError
from assistant.settings import get_settings
from assistant.web.render import render_answer
from assistant.web.resources import dataset_info, get_assistant, get_runner, reporting_currency

TURNS = "turns"
PENDING = "pending_question"


def example_questions() -> dict[str, list[str]]:
    """Example questions for each kind of user, naming a real trader and year of the data."""
    trader, year = "the largest importer", None
    try:
        info = dataset_info()
        year = str(info.get("date_to") or "")[:4] or None
        rows = (
            get_runner()
            .run(
                "SELECT t.name FROM declarations d JOIN declaration_items i USING (declaration_id) "
                "JOIN traders t ON t.trader_id = d.trader_id GROUP BY t.name "
                "ORDER BY sum(i.customs_value) DESC LIMIT 1"
            )
            .rows
        )
        if rows:
            trader = str(rows[0][0])
    except TamgaError:
        pass
    in_year = f" in {year}" if year else ""
    return {
        "Audit officer": [
            f"What did {trader} import{in_year}, by HS chapter?",
            f"Top origins of {trader}'s imports",
            f"Audit history of {trader}",
        ],
        "Staff": [
            "When can we reject the declared price between related parties?",
            "How long must an importer keep records?",
            "What are the General Interpretative Rules for classification?",
        ],
        "Supervisor": [
            f"Top 10 importers{in_year}",
            "Share of red channel declarations by customs office",
            "Monthly import value over the last 12 months",
        ],
    }


def _ask_later(question: str) -> None:
    st.session_state[PENDING] = question


def _store_feedback(index: int) -> None:
    """Append the thumbs up/down of turn `index` to the feedback log, with the question."""
    turns = st.session_state.get(TURNS, [])
    if index >= len(turns):
        return
    turn = turns[index]
    value = st.session_state.get(f"fb-{turn['id']}")
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": st.session_state.get("user", "web"),
        "question": turn["question"],
        "answer": turn["answer"].text,
        "engine": turn["answer"].engine,
        "intent": turn["answer"].intent,
        "sql": turn["answer"].sql,
        "rating": None if value is None else ("up" if value == 1 else "down"),
    }
    logs = get_settings().logs
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "feedback.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    turn["rating"] = record["rating"]


def _render_turn(index: int, turn: dict[str, Any], currency: str) -> None:
    with st.chat_message("user"):
        st.markdown(turn["question"])
    with st.chat_message("assistant"):
        answer: Answer = turn["answer"]
        render_answer(answer, key=str(turn["id"]), currency=currency)
        left, right = st.columns([1, 5])
        with left:
            st.feedback("thumbs", key=f"fb-{turn['id']}", on_change=_store_feedback, args=(index,))
        with right:
            if answer.suggestions:
                cols = st.columns(min(len(answer.suggestions), 3))
                for n, suggestion in enumerate(answer.suggestions[:3]):
                    cols[n].button(
                        suggestion,
                        key=f"sug-{turn['id']}-{n}",
                        on_click=_ask_later,
                        args=(suggestion,),
                    )


def _answer(question: str) -> Answer:
    """Ask the assistant, showing its steps in a status box while it works."""
    assistant = get_assistant()
    conversation = st.session_state.get("conversation")
    if conversation is None:
        conversation = assistant.new_conversation()
        st.session_state["conversation"] = conversation
    with st.status("Reading the question…", expanded=False) as status:

        def on_step(step: str) -> None:
            status.update(label=step)
            status.write(step)

        answer = assistant.ask(
            question,
            conversation=conversation,
            user=st.session_state.get("user", "web"),
            engine=st.session_state.get("engine", "auto"),
            on_step=on_step,
        )
        status.update(label=f"Answered in {answer.elapsed_ms:,.0f} ms", state="complete")
    return answer


def chat_page() -> None:
    """Render the chat page."""
    st.header("Ask Tamga")
    turns: list[dict[str, Any]] = st.session_state.setdefault(TURNS, [])
    currency = reporting_currency()
    if not turns:
        st.markdown(
            "Ask about a trader's history, a rule, or a period. Every figure comes "
            "with the SQL that produced it; every rule with its source. Try:"
        )
        columns = st.columns(3)
        for column, (who, questions) in zip(columns, example_questions().items(), strict=True):
            with column:
                st.markdown(f"**{who}**")
                for n, question in enumerate(questions):
                    st.button(
                        question,
                        key=f"ex-{who}-{n}",
                        on_click=_ask_later,
                        args=(question,),
                        width="stretch",
                    )
    for index, turn in enumerate(turns):
        _render_turn(index, turn, currency)

    typed = st.chat_input("Ask about a trader, a rule or a period…")
    question = typed or st.session_state.pop(PENDING, None)
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            answer = _answer(question)
        except TamgaError as exc:
            st.error(str(exc))
            return
    turns.append(
        {
            "id": f"{len(turns)}-{int(time.time() * 1000)}",
            "question": question,
            "answer": answer,
            "rating": None,
        }
    )
    st.rerun()
