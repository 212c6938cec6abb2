"""The chat page: questions, answers with their provenance, examples, follow-ups and feedback."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from assistant.plan_render import plan_variants
from tamga.answer import Answer, Table
from tamga.errors import TamgaError
from tamga.plan import QueryPlan
from tamga.settings import get_settings
from web.render import answer_view, render_answer
from web.resources import (
    answer_drawn,
    dataset_info,
    get_assistant,
    largest_importer,
    reporting_currency,
    wait_for_warm_up,
)
from web.timing import section
from web.verify import document_check

TURNS = "turns"
PENDING = "pending_question"
PENDING_PLAN = "pending_plan"  # (label, plan): a one-click change of an answered plan
FULL_TURNS = 3  # the latest answers drawn in full; earlier ones in short unless opened


def example_questions() -> dict[str, list[str]]:
    """Example questions for each kind of user, naming a real trader and year of the data."""
    trader, year = "the largest importer", None
    try:
        info = dataset_info()
        year = str(info.get("date_to") or "")[:4] or None
        trader = largest_importer() or trader
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


def _change_later(label: str, plan: dict[str, Any]) -> None:
    st.session_state[PENDING_PLAN] = (label, plan)


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


def _open_turn(turn_id: str) -> None:
    for turn in st.session_state.get(TURNS, []):
        if turn["id"] == turn_id:
            turn["open"] = True


def _render_turn(index: int, turn: dict[str, Any], currency: str, full: bool = True) -> None:
    with st.chat_message("user"):
        st.markdown(turn["question"])
    with st.chat_message("assistant"):
        if full or turn.get("open"):
            _render_reply(index, turn, currency)
        else:
            _render_short(index, turn)


def _hidden_parts(answer: Answer) -> str:
    """What the short form of an answer leaves out, in words ("" when nothing)."""
    parts = []
    table = answer.table
    if table is not None and table.columns:
        parts.append(f"the table ({len(table.rows):,} rows)")
    if answer.chart:
        parts.append("the chart")
    if answer.sql:
        parts.append("the SQL")
    if answer.citations:
        parts.append(f"{len(answer.citations)} sources")
    if not parts:
        return ""
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _render_short(index: int, turn: dict[str, Any]) -> None:
    """An earlier answer in short form: its text, feedback and a button to draw it in full
    (keeps a long conversation quick to redraw)."""
    answer: Answer = turn["answer"]
    st.markdown(answer.text)
    for warning in answer.warnings:
        st.warning(warning, icon="⚠️")
    left, right = st.columns([1, 5])
    with left:
        st.feedback("thumbs", key=f"fb-{turn['id']}", on_change=_store_feedback, args=(index,))
    hidden = _hidden_parts(answer)
    if hidden:
        right.button(
            f"Show {hidden}",
            key=f"open-{turn['id']}",
            on_click=_open_turn,
            args=(turn["id"],),
            type="tertiary",
        )


def _render_reply(index: int, turn: dict[str, Any], currency: str) -> None:
    """The answer of one turn, its feedback widget and its follow-up suggestions."""
    answer: Answer = turn["answer"]
    if turn.get("view") is None:
        turn["view"] = answer_view(answer, currency)
    render_answer(answer, key=str(turn["id"]), currency=currency, view=turn["view"])
    left, right = st.columns([1, 5])
    with left:
        st.feedback("thumbs", key=f"fb-{turn['id']}", on_change=_store_feedback, args=(index,))
    with right:
        if answer.plan is not None:
            variants = plan_variants(QueryPlan.model_validate(answer.plan))
            if variants:
                cols = st.columns(len(variants))
                for n, (label, changed) in enumerate(variants):
                    cols[n].button(label, key=f"plan-{turn['id']}-{n}", on_click=_change_later,
                                   args=(label, changed.model_dump(mode="json")))
        if answer.suggestions:
            cols = st.columns(min(len(answer.suggestions), 3))
            for n, suggestion in enumerate(answer.suggestions[:3]):
                cols[n].button(
                    suggestion,
                    key=f"sug-{turn['id']}-{n}",
                    on_click=_ask_later,
                    args=(suggestion,),
                )


def _answer_plan(plan: dict[str, Any]) -> Answer:
    """Run a changed plan (no retyping): validated, compiled and run in the user's scope."""
    assistant = get_assistant()
    conversation = st.session_state.get("conversation")
    if conversation is None:
        conversation = assistant.new_conversation()
        st.session_state["conversation"] = conversation
    with section("engine"):
        return assistant.ask_plan(plan, conversation, user=st.session_state.get("user", "web"))


def _answer(question: str) -> Answer:
    """Ask the assistant, showing its steps in a status box while it works."""
    with st.spinner("Loading the assistant…", show_time=True):
        wait_for_warm_up()
    assistant = get_assistant()
    conversation = st.session_state.get("conversation")
    if conversation is None:
        conversation = assistant.new_conversation()
        st.session_state["conversation"] = conversation
    with st.status("Reading the question…", expanded=False) as status:

        def on_step(step: str) -> None:
            status.update(label=step)
            status.write(step)

        with section("engine"):
            answer = assistant.ask(
                question,
                conversation=conversation,
                user=st.session_state.get("user", "web"),
                engine=st.session_state.get("engine", "auto"),
                on_step=on_step,
            )
        status.update(label=f"Answered in {answer.elapsed_ms:,.0f} ms", state="complete")
    return answer


def _data_at_a_glance(currency: str) -> None:
    """The imports of the data's last 12 months, drawn as an answer is (chart, table, SQL,
    CSV), before the first question. Kept with the data overview, so it costs no query; and the
    browser has the table and chart code loaded by the time the first answer arrives."""
    try:
        trend = dataset_info().get("recent_months")
    except TamgaError:
        return
    if not trend or not trend["rows"]:
        return
    rows = trend["rows"]
    answer = Answer(
        text=f"Import customs value, duty and declarations per month, {rows[0][0]} to "
             f"{rows[-1][0]} (the last {len(rows)} months of the data), in {currency}.",
        engine="offline", sql=[trend["sql"]], tables=[Table(trend["columns"], rows)],
        chart={"kind": "line", "x": "month", "y": "customs_value",
               "title": "Import customs value per month"})
    with st.expander(f"The data at a glance: imports per month, {rows[0][0]} to {rows[-1][0]}"):
        render_answer(answer, key="glance", currency=currency)


def chat_page() -> None:
    """Render the chat page.

    A new question is answered and drawn in place, in the same script run (no second run to
    redraw the whole conversation); earlier answers are drawn from views built once."""
    st.header("Ask Tamga")
    with st.expander("Check a document against its declaration"):
        document_check("chat-doc")
    turns: list[dict[str, Any]] = st.session_state.setdefault(TURNS, [])
    currency = reporting_currency()
    typed = st.chat_input("Ask about a trader, a rule or a period…")
    question = typed or st.session_state.pop(PENDING, None)
    changed = None if question else st.session_state.pop(PENDING_PLAN, None)
    if changed is not None:
        question = changed[0]
    if not turns and not question:
        st.markdown(
            "Ask about a trader's history, a rule, or a period. Every figure comes "
            "with the SQL that produced it; every rule with its source. Try:"
        )
        columns = st.columns(3)
        with section("examples"):
            examples = example_questions()
        for column, (who, questions) in zip(columns, examples.items(), strict=True):
            with column:
                st.markdown(f"**{who}**")
                for n, example in enumerate(questions):
                    st.button(
                        example,
                        key=f"ex-{who}-{n}",
                        on_click=_ask_later,
                        args=(example,),
                        width="stretch",
                    )
        with section("glance"):
            _data_at_a_glance(currency)
    with section("history"):
        # With a new question, the answer about to be drawn counts among the latest ones.
        first_full = len(turns) + (1 if question else 0) - FULL_TURNS
        for index, turn in enumerate(turns):
            _render_turn(index, turn, currency, full=index >= first_full)
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            answer = _answer_plan(changed[1]) if changed is not None else _answer(question)
        except TamgaError as exc:
            st.error(str(exc))
            return
        turn = {
            "id": f"{len(turns)}-{int(time.time() * 1000)}",
            "question": question,
            "answer": answer,
            "rating": None,
            "view": None,
        }
        turns.append(turn)
        with section("new_answer"):
            _render_reply(len(turns) - 1, turn, currency)
        answer_drawn()
