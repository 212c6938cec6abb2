"""The LLM engine: a language model answers from guarded SQL and cited passages.

Two strategies, one protocol (`engine.answer(question, conversation) -> Answer`):

* `AgentEngine`: a langchain agent (`create_agent`) whose tools are run_sql, describe_schema,
  search_regulations, find_trader and trader_profile (tools/agent_tools.py). Used for an
  OpenAI-compatible endpoint (`ChatOpenAI`), and usable with the local model (`LocalChatModel`).
* `DirectSqlEngine`: the model writes one SQL query from the schema and verified examples;
  Tamga runs it and feeds errors back for a bounded number of attempts. Measured to suit the
  small local model better (docs/llm.md).

Every answer carries the SQL that ran, the main result table, citations and timings. Figures in
the final text are checked against the tool results (`unverified_figures`); any figure not
found there puts a warning on the Answer. A model that is down, slow, or answers nonsense
raises LLMUnavailable, so that the router can fall back to the offline engine; the whole
question is bounded by `llm_timeout_s`. With a remote endpoint, what the model is sent goes
through the data policy of tools/egress.py and is listed in `answer.egress`.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from assistant.prompts import (
    DataCard,
    Example,
    ExampleSource,
    IntentExamples,
    agent_system_prompt,
    hints_for,
    sql_system_prompt,
    sql_user_prompt,
    summary_prompt,
)
from assistant.slots import clean_question
from tamga.answer import Answer, Table
from tamga.errors import LLMUnavailable, TamgaError
from tools.agent_tools import AgentToolbox, ToolLog
from tools.egress import (
    Destination,
    EgressRecord,
    EgressSession,
    egress_summary,
    redact_data,
    session_for,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from assistant.context import DataContext
    from assistant.offline import OfflineEngine
    from tamga.settings import Settings
    from tools.sql import QueryResult

T = TypeVar("T")
ChatMessage = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": ...}
ChatFn = Callable[[list[ChatMessage], int, threading.Event], str]

MAX_SQL_ATTEMPTS = 3
MAX_MODEL_CALLS = 8
EXAMPLES_K = 3


class Engine(Protocol):
    """What the router calls: one question (with its conversation) in, one Answer out."""

    name: str

    def answer(self, question: str, conversation: Any = None) -> Answer:
        """Answer `question`; raises LLMUnavailable when the model cannot be used."""
        ...


# ---------------------------------------------------------------------------------------------
# Number check


@dataclass(frozen=True)
class Figure:
    """A number written in a text: its value, the precision it was written with, its form."""

    raw: str
    value: float
    unit: float  # place value of the last digit shown: 0.01 for "1.25", 1e5 for "1.2 million"
    percent: bool = False
    scaled: bool = False


_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mln": 1e6, "mn": 1e6, "m": 1e6,
           "billion": 1e9, "bn": 1e9, "b": 1e9}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−])?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
    r"(?:\s?(?P<pct>%|percent\b|per cent\b)"
    r"|\s?(?P<scale>thousand|million|billion|mln|mn|bn|k|m|b)\b)?",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b")


def extract_figures(text: str) -> list[Figure]:
    """The numbers in `text`: 1,234.5 / 1234.50 / 12.3% / 1.2 million / -5; ISO dates skipped."""
    text = _DATE.sub(" ", text or "")
    figures = []
    for match in _NUMBER.finditer(text):
        digits = match.group("int").replace(",", "")
        frac = match.group("frac") or ""
        value = float(f"{digits}.{frac}" if frac else digits)
        if frac:
            unit = 10.0 ** -len(frac)
        else:  # "1,200,000" is rounded to its last non-zero digit, but keep 2 significant ones
            zeros = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
            unit = 10.0 ** min(zeros, max(len(digits) - 2, 0))
        scale = match.group("scale")
        factor = _SCALES[scale.lower()] if scale else 1.0
        if match.group("sign"):
            value = -value
        figures.append(Figure(match.group(0).strip(), value * factor, unit * factor,
                              percent=bool(match.group("pct")), scaled=bool(scale)))
    return figures


def _values(data: Any, out: list[float]) -> None:
    """Every number in nested tool data, numbers inside strings included; row counts too."""
    if isinstance(data, bool) or data is None:
        return
    if isinstance(data, int | float):
        if math.isfinite(data):
            out.append(abs(float(data)))
    elif isinstance(data, str):
        out.extend(abs(f.value) for f in extract_figures(data))
    elif isinstance(data, dict):
        for value in data.values():
            _values(value, out)
    elif isinstance(data, list | tuple):
        out.append(float(len(data)))
        for value in data:
            _values(value, out)


def _tolerated(figure: Figure) -> bool:
    """Years and small counts (top-N, months) need no source."""
    if figure.percent or figure.scaled or figure.unit < 1:
        return False
    value = abs(figure.value)
    return value <= 10 or (1900 <= value <= 2100 and "," not in figure.raw)


def unverified_figures(text: str, sources: Iterable[Any], question: str = "") -> list[str]:
    """The figures of `text` found neither in `sources` (tool results) nor in `question`.

    A figure matches a source value when it equals it at the precision it was written with
    (1,234.6 for 1234.5678; 1.2 million for 1,234,567; 12.3% for 12.34 or for 0.1234).
    """
    known: list[float] = []
    for source in sources:
        _values(source, known)
    for figure in extract_figures(question):
        known.append(abs(figure.value))
    known.sort()
    missing = []
    for figure in extract_figures(text):
        if _tolerated(figure):
            continue
        target = abs(figure.value)
        tolerance = figure.unit / 2 + 1e-9 * max(1.0, target)
        candidates = [target] + ([target / 100] if figure.percent else [])
        if not any(_near(known, c, tolerance / (100 if i else 1))
                   for i, c in enumerate(candidates)):
            missing.append(figure.raw)
    return missing


def _near(sorted_values: list[float], target: float, tolerance: float) -> bool:
    i = bisect.bisect_left(sorted_values, target - tolerance)
    return i < len(sorted_values) and sorted_values[i] <= target + tolerance


def figures_warning(missing: Sequence[str]) -> str:
    """The warning an Answer carries when its text has figures not found in any result."""
    listed = ", ".join(dict.fromkeys(missing))
    return (f"Figures not found in the query results: {listed}. Check them against the table "
            "before relying on them.")


# ---------------------------------------------------------------------------------------------
# Deadlines and model errors


def run_with_deadline(fn: Callable[[], T], timeout_s: float, cancelled: threading.Event) -> T:
    """Run `fn` in a worker thread; past `timeout_s` set `cancelled` and raise LLMUnavailable."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=work, name="tamga-llm", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        cancelled.set()
        raise LLMUnavailable(
            f"The language model did not answer within {timeout_s:g} s "
            "(setting TAMGA_LLM_TIMEOUT_S)."
        )
    if "error" in box:
        raise box["error"]
    return box["value"]


def model_error(exc: BaseException) -> LLMUnavailable:
    """A clear LLMUnavailable for whatever went wrong calling the model."""
    if isinstance(exc, LLMUnavailable):
        return exc
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APITimeoutError):
            return LLMUnavailable("The language model endpoint did not answer in time.")
        if isinstance(exc, openai.APIConnectionError):
            return LLMUnavailable(f"Cannot reach the language model endpoint ({exc}).")
        if isinstance(exc, openai.APIStatusError):
            return LLMUnavailable(
                f"The language model endpoint answered HTTP {exc.status_code}: "
                f"{str(exc.message)[:200]}"
            )
        if isinstance(exc, openai.APIError):
            return LLMUnavailable(f"The language model endpoint failed: {str(exc)[:200]}")
    return LLMUnavailable(
        f"The language model answered something Tamga could not read "
        f"({type(exc).__name__}: {str(exc)[:200]})."
    )


# ---------------------------------------------------------------------------------------------
# Shared answer building


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "".join(parts)
    return str(content or "")


def chart_for(table: Table | None) -> dict[str, Any] | None:
    """A bar (or, over time, line) chart spec for a label column and a numeric column."""
    if table is None or not 2 <= len(table.rows) <= 50 or len(table.columns) < 2:
        return None

    def numeric(i: int) -> bool:
        values = [r[i] for r in table.rows if r[i] is not None]
        return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                    for v in values)

    numbers = [c for i, c in enumerate(table.columns) if numeric(i)]
    labels = [c for i, c in enumerate(table.columns) if not numeric(i)]
    if not numbers:
        return None
    x = labels[0] if labels else table.columns[0]
    preferred = [c for c in numbers if c != x and re.search(r"value|duty|amount|total", c, re.I)]
    others = preferred or [c for c in numbers if c != x]
    if not others:
        return None
    y = others[0]
    first = str(table.rows[0][table.columns.index(x)])
    kind = "line" if re.fullmatch(r"\d{4}(-\d{2})?(-\d{2})?", first) else "bar"
    return {"kind": kind, "x": x, "y": y, "color": None, "title": ""}


def describe_result(result: QueryResult, currency: str = "") -> str:
    """A plain sentence built from a result table itself (no model): its figures are exact."""
    if not result.rows:
        return "The query returned no rows."

    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    if len(result.rows) == 1:
        pairs = ", ".join(f"{c}: {show(v)}" for c, v in zip(result.columns, result.rows[0],
                                                            strict=False))
        return f"Result: {pairs}."
    first = ", ".join(f"{c}: {show(v)}" for c, v in zip(result.columns, result.rows[0],
                                                        strict=False))
    more = " (more rows than shown)" if result.truncated else ""
    return f"The query returned {len(result.rows):,} rows{more}; the first is {first}."


def _history(conversation: Any, turns: int = 3) -> list[tuple[str, str, list[str]]]:
    """(question, answer text, sql) of the last turns of a conversation, oldest first."""
    if conversation is None:
        return []
    items = getattr(conversation, "turns", conversation)
    out = []
    try:
        for turn in list(items)[-turns:]:
            question = getattr(turn, "question", None)
            answer = getattr(turn, "answer", None)
            if question is None and isinstance(turn, dict):
                question, answer = turn.get("question"), turn.get("answer")
            if not question or answer is None:
                continue
            text = answer.text if hasattr(answer, "text") else str(answer)
            sql = list(getattr(answer, "sql", []) or [])
            out.append((str(question), str(text), sql))
    except TypeError:
        return []
    return out


def _finish(
    text: str,
    engine: str,
    question: str,
    log: ToolLog,
    started: float,
    timings: dict[str, float],
    warnings: list[str],
    slots: dict[str, Any],
    egress: dict[str, Any] | None = None,
) -> Answer:
    # Pseudonyms (TRADER-001) are not figures; the check runs before they are unmasked.
    missing = unverified_figures(_PSEUDONYM.sub(" ", text), log.shown, question)
    if missing:
        warnings.append(figures_warning(missing))
    if log.refused_sql or claims_change(text):
        warnings.append(_no_change_warning(len(log.refused_sql)))
    tables = [log.main_table] if log.main_table is not None else []
    elapsed = (time.perf_counter() - started) * 1000
    timings["total_ms"] = round(elapsed, 1)
    slots = {**slots, "tool_calls": list(log.calls),
             "failed_sql": [{"sql": s, "error": e} for s, e in log.failed_sql],
             "refused_sql": list(log.refused_sql)}
    return Answer(
        text=text.strip(),
        engine=engine,
        sql=list(log.sql),
        tables=tables,
        chart=chart_for(tables[0] if tables else None),
        citations=list(log.citations),
        warnings=warnings,
        timings=timings,
        slots=slots,
        elapsed_ms=elapsed,
        egress=egress,
    )


_PSEUDONYM = re.compile(r"TRADER-\d{3,}")
_CHANGE_CLAIM = re.compile(
    r"\b(?:dropped|deleted|removed|erased|truncated|wiped|overwr(?:ote|itten)|altered|"
    r"inserted|updated|modified|attached|exported|copied)\b[^.]{0,80}?\b(?:tables?|database|"
    r"records?|rows?|declarations?|traders?|data|files?)\b|\b(?:tables?|database|records?|"
    r"rows?|declarations?|data|files?)\b[^.]{0,40}?\b(?:(?:has|have) been|was|were)\s+"
    r"(?:dropped|deleted|removed|erased|truncated|wiped|overwritten|altered|inserted|updated|"
    r"modified|attached|exported|copied)\b",
    re.IGNORECASE,
)


def claims_change(text: str) -> bool:
    """True when `text` says data was changed, deleted or written out (Tamga cannot do that)."""
    return bool(_CHANGE_CLAIM.search(text or ""))


def _no_change_warning(refused: int) -> str:
    tried = (f"The model asked to run {refused} statement{'s' if refused != 1 else ''} that "
             "Tamga does not allow (writes, file or network access, settings); all were "
             "refused. ") if refused else ""
    return (tried + "Nothing was changed: Tamga only runs read-only queries, whatever the "
            "answer text says.")


def _learn_traders(context: DataContext, session: EgressSession) -> None:
    """Teach the masker every trader name, TIN and ID the user's scope can see."""
    try:
        rows = context.traders.rows
    except TamgaError:
        return
    session.masker.add_sensitive([v for r in rows for v in (r.name, r.tin, r.trader_id) if v])


def _mask_question(question: str, context: DataContext, session: EgressSession) -> str:
    """The question with the trader it names (as the offline engine reads it) masked."""
    try:
        slots = context.extractor.extract(clean_question(question))
        if slots.trader is not None and slots.trader_text:
            session.masker.alias(slots.trader_text, slots.trader.name)
    except (TamgaError, AttributeError, ValueError):
        pass
    return session.masker.mask_text(question)


def _with_egress(exc: LLMUnavailable, destination: Destination | None,
                 records: list[EgressRecord]) -> LLMUnavailable:
    """`exc` carrying what was sent before the model failed (`exc.egress`), for the router."""
    if destination is not None and destination.remote and records:
        exc.egress = egress_summary(destination, records)  # type: ignore[attr-defined]
    return exc


# ---------------------------------------------------------------------------------------------
# Strategy 1: the tool-calling agent


class AgentEngine:
    """A langchain `create_agent` agent over Tamga's tools, for any langchain chat model."""

    def __init__(
        self,
        model: BaseChatModel | Callable[[threading.Event], BaseChatModel],
        context: DataContext,
        *,
        name: str = "llm",
        timeout_s: float = 60.0,
        examples: ExampleSource | None = None,
        examples_k: int = EXAMPLES_K,
        max_sql_errors: int = MAX_SQL_ATTEMPTS,
        max_model_calls: int = MAX_MODEL_CALLS,
        hints: Callable[[str], list[str]] | None = None,
        destination: Destination | None = None,
    ) -> None:
        """`model` is a chat model, or a factory making one per question given its cancel flag;
        `context` is the trade data as the user's scope sees it (runner, data card, traders,
        regulations); `hints(question)` looks up facts (trader IDs, date ranges, codes).

        `destination` says where the model runs (Destination.from_settings): for a remote
        endpoint, the prompt and every tool result go through the data policy, trader
        identities become pseudonyms (one masker per conversation), the answer is unmasked
        locally and `answer.egress` lists every payload sent. None means this machine."""
        self.destination = destination
        self.model = model
        self.context = context
        self.runner = context.runner
        self.name = name
        self.timeout_s = timeout_s
        self.examples = examples
        self.examples_k = examples_k
        self.max_sql_errors = max_sql_errors
        self.max_model_calls = max_model_calls
        self.hints = hints

    def system_prompt(self, question: str) -> str:
        """The system prompt for `question`: rules, schema card and the nearest examples."""
        card = self.context.data_card
        shots = self.examples.nearest(question, self.examples_k) if self.examples else []
        return agent_system_prompt(card, shots)

    def answer(self, question: str, conversation: Any = None) -> Answer:
        """Run the agent on `question`; raises LLMUnavailable if the model fails or is slow."""
        started = time.perf_counter()
        cancelled = threading.Event()
        destination = self.destination
        remote = destination is not None and destination.remote
        session = session_for(conversation) if remote else EgressSession()
        mark = session.log.mark()
        toolbox = AgentToolbox(self.runner, self.context.regulations,
                               traders=self.context.traders, max_sql_errors=self.max_sql_errors,
                               cancelled=cancelled, repair_hint=self.context.data_card.repair_hint,
                               destination=destination, session=session)
        prompt = self.system_prompt(question)
        hints = self.hints(question) if self.hints else []
        masking = remote and toolbox.policy != "rows"
        if masking:  # trader identities leave the machine only as pseudonyms
            _learn_traders(self.context, session)
            asked = _mask_question(question, self.context, session)
            hints = [session.masker.mask_text(h) for h in hints]
            prompt = session.masker.mask_text(prompt)
        else:
            asked = question
        request = sql_user_prompt(asked, hints) if hints else asked
        history = _history(conversation)
        if masking:
            history = [(session.masker.mask_text(q), session.masker.mask_text(a),
                        [session.masker.mask_text(sql) for sql in past])
                       for q, a, past in history]
        if remote:
            redact_data({"system_prompt": prompt, "history": [
                {"question": q, "answer": a, "sql": past} for q, a, past in history],
                "question": request}, toolbox.policy, tool="prompt", public=True,
                masker=session.masker, log=session.log)
        timings: dict[str, float] = {"prompt_ms": round((time.perf_counter() - started) * 1000, 1)}
        remaining = self.timeout_s  # the limit is the model's: local preparation is not counted
        if _is_chat_model(self.model):
            model = cast("BaseChatModel", self.model)
        else:
            model = cast(Callable[[threading.Event], "BaseChatModel"], self.model)(cancelled)
        llm_started = time.perf_counter()
        try:
            messages = run_with_deadline(
                lambda: self._run(model, prompt, request, history, toolbox, cancelled),
                remaining, cancelled,
            )
        except LLMUnavailable as exc:
            raise _with_egress(exc, destination, session.log.records_since(mark)) from None
        timings["llm_ms"] = round((time.perf_counter() - llm_started) * 1000, 1)
        from langchain_core.messages import AIMessage

        final = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        text = _text_of(final.content).strip() if final is not None else ""
        if not text:
            raise _with_egress(LLMUnavailable("The language model returned an empty answer."),
                               destination, session.log.records_since(mark))
        warnings: list[str] = []
        if len(toolbox.log.failed_sql) >= self.max_sql_errors and not toolbox.log.sql:
            warnings.append("The model could not write a working query for this question.")
        slots = {"strategy": "agent", "model_calls": sum(isinstance(m, AIMessage)
                                                         for m in messages)}
        answer = _finish(text, self.name, question, toolbox.log, started, timings, warnings,
                         slots, egress_summary(destination or Destination(None, "rows"),
                                               session.log.records_since(mark)))
        if remote:  # the model wrote pseudonyms: the officer reads the real names
            answer.text = session.masker.unmask(answer.text)
        return answer

    def _run(
        self,
        model: BaseChatModel,
        prompt: str,
        question: str,
        past: list[tuple[str, str, list[str]]],
        toolbox: AgentToolbox,
        cancelled: threading.Event,
    ) -> list[Any]:
        from langchain.agents import create_agent
        from langchain_core.messages import AIMessage, HumanMessage

        agent = create_agent(
            model,
            tools=toolbox.langchain_tools(),
            system_prompt=prompt,
            middleware=[_guard_middleware(self.max_model_calls, cancelled)],
        )
        history: list[Any] = []
        for past_q, past_a, past_sql in past:
            history.append(HumanMessage(past_q))
            sql = "\n".join(past_sql)
            history.append(AIMessage(past_a + (f"\n(SQL used: {sql})" if sql else "")))
        result = agent.invoke(
            {"messages": [*history, HumanMessage(question)]},
            config={"recursion_limit": 2 * self.max_model_calls + 4},
        )
        return list(result["messages"])


def _is_chat_model(obj: Any) -> bool:
    from langchain_core.language_models import BaseChatModel

    return isinstance(obj, BaseChatModel)


def _guard_middleware(max_calls: int, cancelled: threading.Event) -> Any:
    """Middleware: stop on cancel, map model errors, bound calls (the last one has no tools)."""
    from langchain.agents.middleware import AgentMiddleware
    from langchain_core.messages import AIMessage

    class Guard(AgentMiddleware):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
            if cancelled.is_set():
                raise LLMUnavailable("The language model ran out of time.")
            self.calls += 1
            if self.calls > max_calls:
                raise LLMUnavailable(
                    f"The language model kept calling tools after {max_calls} turns."
                )
            if self.calls == max_calls:
                request = request.override(tools=[])
            try:
                response = handler(request)
            except TamgaError:
                raise
            except Exception as exc:
                raise model_error(exc) from exc
            messages = getattr(response, "result", None) or [response]
            last = messages[-1]
            if isinstance(last, AIMessage) and last.invalid_tool_calls and not last.tool_calls:
                bad = last.invalid_tool_calls[0]
                raise LLMUnavailable(
                    f"The language model made a malformed tool call "
                    f"({bad.get('name')}: {str(bad.get('error') or bad.get('args'))[:120]})."
                )
            return response

    return Guard()


# ---------------------------------------------------------------------------------------------
# Strategy 2: direct SQL with verified examples and retries


_SQL_BLOCK = re.compile(r"```(?:sql|duckdb)?\s*\n?(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


def extract_sql(reply: str) -> str | None:
    """The SQL in a model reply: a JSON object {"sql": ...}, a ```sql block, or bare SQL."""
    reply = (reply or "").strip()
    if reply.startswith("{"):
        try:
            data = json.loads(reply)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("sql"), str):
            return data["sql"].strip().rstrip(";").strip() or None
    match = _SQL_BLOCK.search(reply)
    candidate = match.group(1) if match else reply
    candidate = candidate.strip().rstrip(";").strip()
    if re.match(r"(?is)^\s*(select|with)\b", candidate):
        return candidate
    return None


class DirectSqlEngine:
    """The model writes one SQL query (schema + verified examples); errors go back to it."""

    def __init__(
        self,
        chat: ChatFn,
        context: DataContext,
        *,
        name: str = "local",
        timeout_s: float = 60.0,
        examples: ExampleSource | None = None,
        examples_k: int = EXAMPLES_K,
        max_attempts: int = MAX_SQL_ATTEMPTS,
        summarise: bool = False,
        hints: Callable[[str], list[str]] | None = None,
        sql_tokens: int = 320,
    ) -> None:
        """`chat(messages, max_tokens, cancelled) -> reply text`; `context`: the trade data as the
        user's scope sees it; `hints(question)` adds facts."""
        self.chat = chat
        self.context = context
        self.runner = context.runner
        self.name = name
        self.timeout_s = timeout_s
        self.examples = examples
        self.examples_k = examples_k
        self.max_attempts = max_attempts
        self.summarise = summarise
        self.hints = hints
        self.sql_tokens = sql_tokens

    def messages(self, question: str, conversation: Any = None) -> list[ChatMessage]:
        """System prompt, the nearest verified examples as turns, then the question."""
        card = self.context.data_card
        messages: list[ChatMessage] = [{"role": "system", "content": sql_system_prompt(card)}]
        shots: list[Example] = (self.examples.nearest(question, self.examples_k)
                                if self.examples else [])
        for example in reversed(shots):  # the closest example right before the question
            messages.append({"role": "user", "content": sql_user_prompt(example.question, [])})
            messages.append({"role": "assistant",
                             "content": f"```sql\n{example.sql.strip()}\n```"})
        history = _history(conversation, turns=1)
        previous = None
        if history and history[-1][2]:
            previous = f"Q: {history[-1][0]}\nSQL: {history[-1][2][-1]}"
        hints = self.hints(question) if self.hints else []
        messages.append({"role": "user", "content": sql_user_prompt(question, hints, previous)})
        return messages

    def answer(self, question: str, conversation: Any = None) -> Answer:
        """Ask for SQL, run it, retry on errors; raises LLMUnavailable if the model fails."""
        started = time.perf_counter()
        cancelled = threading.Event()
        toolbox = AgentToolbox(self.runner, None, traders=self.context.traders,
                               max_sql_errors=self.max_attempts, cancelled=cancelled,
                               repair_hint=self.context.data_card.repair_hint)
        messages = self.messages(question, conversation)
        timings: dict[str, float] = {"prompt_ms": round((time.perf_counter() - started) * 1000, 1)}
        remaining = self.timeout_s  # the limit is the model's: local preparation is not counted
        card = self.context.data_card
        llm_started = time.perf_counter()
        text, attempts = run_with_deadline(
            lambda: self._run(question, messages, toolbox, cancelled, card), remaining, cancelled
        )
        timings["llm_ms"] = round((time.perf_counter() - llm_started) * 1000, 1)
        warnings: list[str] = []
        if toolbox.log.last_result is None:
            warnings.append("The model could not write a working query for this question.")
        slots = {"strategy": "direct_sql", "attempts": attempts}
        return _finish(text, self.name, question, toolbox.log, started, timings, warnings, slots,
                       egress_summary(Destination(None, "rows"), []))

    def _ask(self, messages: list[ChatMessage], max_tokens: int,
             cancelled: threading.Event) -> str:
        try:
            return self.chat(messages, max_tokens, cancelled)
        except TamgaError:
            raise
        except Exception as exc:
            raise model_error(exc) from exc

    def _run(
        self,
        question: str,
        messages: list[ChatMessage],
        toolbox: AgentToolbox,
        cancelled: threading.Event,
        card: DataCard,
    ) -> tuple[str, int]:
        attempts = 0
        result: QueryResult | None = None
        while attempts < self.max_attempts and result is None:
            attempts += 1
            reply = self._ask(messages, self.sql_tokens, cancelled)
            if cancelled.is_set():
                raise LLMUnavailable("The language model ran out of time.")
            sql = extract_sql(reply)
            messages.append({"role": "assistant", "content": reply})
            if sql is None:
                messages.append({"role": "user", "content":
                                 "Reply with one SQL SELECT query in a ```sql block."})
                continue
            outcome = toolbox.run_sql(sql)
            if "error" in outcome:
                messages.append({"role": "user", "content":
                                 f"The query failed: {outcome['error']}\n"
                                 f"{outcome.get('hint', '')}\n"
                                 "Write a corrected query in a ```sql block."})
                continue
            result = toolbox.log.last_result
        if result is None:
            return ("I could not build a working query for this question; try rephrasing it "
                    "or use the offline engine."), attempts
        text = describe_result(result, card.currency)
        if self.summarise and result.rows:
            rows = result.rows[:20]
            reply = self._ask([{"role": "user", "content": summary_prompt(
                question, result.columns, rows, card.currency)}], 120, cancelled).strip()
            if reply and not unverified_figures(reply, toolbox.log.shown, question):
                text = reply
        return text, attempts


def langchain_chat_fn(model: BaseChatModel) -> ChatFn:
    """A ChatFn over any langchain chat model (to run the direct strategy on an endpoint)."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}

    def chat(messages: list[ChatMessage], max_tokens: int, cancelled: threading.Event) -> str:
        reply = model.invoke([kinds[m["role"]](m["content"]) for m in messages])
        return _text_of(reply.content)

    return chat


# ---------------------------------------------------------------------------------------------
# The local model (llama-cpp-python)


class LocalLlama:
    """The local GGUF model in this process: one instance, one generation at a time.

    Prompts are rendered with the chat template stored in the GGUF file itself; llama.cpp keeps
    the evaluated prompt, so a question that shares the (long, fixed) schema prefix with the
    previous one only pays for its new tokens.
    """

    def __init__(self, path: Path, n_ctx: int = 8192, n_threads: int | None = None) -> None:
        import os

        # llama.cpp's OpenMP threads spin while waiting by default; on a shared machine that
        # made generation ten times slower (docs/llm.md). Must be set before the library loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from llama_cpp import Llama

        threads = n_threads or min(4, os.cpu_count() or 2)
        self.path = path
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                         n_threads_batch=threads, n_batch=512, seed=0, verbose=False)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMUnavailable(f"The local model file {path} has no chat template.")
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False,
                                                                   indent=indent)
        self.template = env.from_string(template)
        self.lock = threading.Lock()
        self.last_stats: dict[str, float] = {}
        self._grammars: dict[str, Any] = {}

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
               ) -> str:
        """The prompt text for `messages` (and tool definitions), ending with the reply cue."""
        return str(self.template.render(messages=messages, tools=tools or None,
                                        add_generation_prompt=True))

    def complete(
        self,
        prompt: str,
        max_tokens: int,
        cancelled: threading.Event | None = None,
        grammar: Any = None,
    ) -> str:
        """Greedy completion of `prompt`; stops early when `cancelled` is set."""
        from llama_cpp import StoppingCriteriaList

        stop_flag = cancelled or threading.Event()
        with self.lock:
            started = time.perf_counter()
            out = cast(dict[str, Any], self.llm.create_completion(
                prompt, max_tokens=max_tokens, temperature=0.0, top_k=1,
                stop=["<|im_end|>", "<|endoftext|>"], grammar=grammar,
                stopping_criteria=StoppingCriteriaList([lambda _ids, _logits: stop_flag.is_set()]),
            ))
            usage = out.get("usage", {})
            self.last_stats = {"prompt_tokens": usage.get("prompt_tokens", 0),
                               "completion_tokens": usage.get("completion_tokens", 0),
                               "seconds": time.perf_counter() - started}
        return str(out["choices"][0]["text"])

    def chat(self, messages: list[ChatMessage], max_tokens: int,
             cancelled: threading.Event | None = None) -> str:
        """Reply to chat `messages` (the ChatFn the direct strategy uses)."""
        return self.complete(self.render(list(messages)), max_tokens, cancelled)

    def chat_schema(self, messages: list[ChatMessage], max_tokens: int,
                    cancelled: threading.Event | None, schema: dict[str, Any] | str) -> str:
        """Reply constrained by a grammar: made from a JSON schema (a dict), or GBNF text (the
        plan draft's line)."""
        key = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
        grammar = self._grammars.pop(key, None)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            grammar = (LlamaGrammar.from_string(key, verbose=False) if isinstance(schema, str)
                       else LlamaGrammar.from_json_schema(key, verbose=False))
        self._grammars[key] = grammar  # most recent last; a line's grammar varies by question
        while len(self._grammars) > _GRAMMARS_KEPT:
            self._grammars.pop(next(iter(self._grammars)))
        return self.complete(self.render(list(messages)), max_tokens, cancelled,
                             grammar=grammar)

    def chat_json(self, messages: list[ChatMessage], max_tokens: int,
                  cancelled: threading.Event | None = None) -> str:
        """Reply constrained by a grammar to a JSON object {"sql": "..."}."""
        return self.complete(self.render(list(messages)), max_tokens, cancelled,
                             grammar=_sql_json_grammar())


#: Compiled grammars a local model keeps (a plan line's grammar depends on the question).
_GRAMMARS_KEPT = 64


@lru_cache(maxsize=1)
def _sql_json_grammar() -> Any:
    from llama_cpp import LlamaGrammar

    schema = {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}
    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


_LOCAL: dict[str, LocalLlama] = {}
_LOCAL_LOCK = threading.Lock()


def local_llama(home: Path | None = None, progress: Callable[[str], None] | None = None,
                role: str = "sql") -> LocalLlama:
    """The process-wide local model for one `role`, assembled and hash-checked on first use.

    Each role ("sql": the SQL writer, "plan": the plan filler) has its own llama.cpp context
    over the same mapped weights, so that each keeps its own long prompt prefix evaluated:
    alternating prefixes in one context cost ~15 s each time, and saving and restoring the
    state ~2 s (measured, docs/llm.md)."""
    from assistant import local_model

    if not local_model.llama_cpp_installed():
        raise LLMUnavailable(f"llama-cpp-python is not installed. {local_model.INSTALL_HINT}")
    path = local_model.assemble_model(home, progress=progress)
    with _LOCAL_LOCK:
        key = f"{path}#{role}"
        llama = _LOCAL.get(key)
        if llama is None:
            if progress:
                progress("Loading the local model")
            llama = LocalLlama(path)
            _LOCAL[key] = llama
        return llama


def _local_chat_model_class() -> type:
    """LocalChatModel, built lazily so that langchain is imported only when needed."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic import Field

    class LocalChatModel(BaseChatModel):
        """The local model as a langchain chat model with tool calling (<tool_call> JSON)."""

        llama: Any
        tools: list[dict[str, Any]] = Field(default_factory=list)
        max_tokens: int = 400
        cancelled: Any = None
        force_tool_call: bool = True

        @property
        def _llm_type(self) -> str:
            return "tamga-local-llama"

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
            return self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})

        def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                      run_manager: Any = None, **kwargs: Any) -> ChatResult:
            prompt = self.llama.render([_template_message(m) for m in messages], self.tools)
            # A small model often writes SQL as text instead of calling a tool: on the first
            # turn (no tool result yet) and after a failed call its reply is started as a tool
            # call. (Starting it with the bare <tool_call> token made this model stop at once.)
            start = '<tool_call>\n{"name": "' if self.tools and self.force_tool_call and (
                not any(isinstance(m, ToolMessage) for m in messages)
                or _failed_tool_result(messages[-1])) else ""
            reply = start + self.llama.complete(prompt + start, self.max_tokens, self.cancelled)
            message = parse_tool_calls(reply)
            return ChatResult(generations=[ChatGeneration(message=message)])

    def _failed_tool_result(message: BaseMessage) -> bool:
        return isinstance(message, ToolMessage) and \
            _text_of(message.content).lstrip().startswith('{"error"')

    def _template_message(message: BaseMessage) -> dict[str, Any]:
        if isinstance(message, ToolMessage):
            return {"role": "tool", "content": _text_of(message.content)}
        if isinstance(message, AIMessage):
            calls = [{"type": "function", "function": {"name": c["name"], "arguments": c["args"]}}
                     for c in message.tool_calls]
            out: dict[str, Any] = {"role": "assistant", "content": _text_of(message.content)}
            if calls:
                out["tool_calls"] = calls
            return out
        role = {"system": "system", "human": "user"}.get(message.type, "user")
        return {"role": role, "content": _text_of(message.content)}

    return LocalChatModel


_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def parse_tool_calls(reply: str) -> Any:
    """An AIMessage from a reply holding Qwen-style <tool_call>{"name", "arguments"}</tool_call>."""
    from langchain_core.messages import AIMessage

    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for n, match in enumerate(_TOOL_CALL.finditer(reply)):
        raw = match.group(1).strip()
        try:
            data, _ = json.JSONDecoder().raw_decode(raw)  # text after the object is ignored
            name, args = data["name"], data.get("arguments", {})
            if isinstance(args, str):
                args = json.loads(args)
            if not isinstance(args, dict):
                raise TypeError("arguments is not an object")
            calls.append({"name": str(name), "args": args, "id": f"call_{n}", "type": "tool_call"})
        except (ValueError, KeyError, TypeError) as exc:
            invalid.append({"name": None, "args": raw, "id": f"call_{n}", "error": str(exc),
                            "type": "invalid_tool_call"})
    text = _TOOL_CALL.sub("", reply).strip()
    return AIMessage(content=text, tool_calls=calls, invalid_tool_calls=invalid)


def local_chat_model(llama: LocalLlama, cancelled: threading.Event | None = None) -> BaseChatModel:
    """The local model as a langchain chat model (for the agent strategy)."""
    cls = _local_chat_model_class()
    return cls(llama=llama, cancelled=cancelled)


# ---------------------------------------------------------------------------------------------
# Factories


def endpoint_model(settings: Settings) -> BaseChatModel:
    """ChatOpenAI for the configured OpenAI-compatible endpoint (no retries, bounded time)."""
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    if not settings.llm_base_url:
        raise LLMUnavailable("No language model endpoint is configured (TAMGA_LLM_BASE_URL).")
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=SecretStr(settings.llm_api_key or "not-needed"),
        model=settings.llm_model,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        temperature=0,
    )


def build_engine(
    offline: OfflineEngine,
    settings: Settings,
    *,
    which: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Engine | None:
    """The LLM engine the settings ask for, over the data context of `offline` (the router's
    offline engine for the user's scope, whose slot look-ups and verified SQL it shares):
    "endpoint" (TAMGA_LLM_BASE_URL), "local" (TAMGA_LOCAL_MODEL) or None when no model is
    configured. `which` forces one of them.

    Raises LLMUnavailable when the local model is asked for but not installed.
    """
    which = which or ("endpoint" if settings.llm_base_url else
                      "local" if settings.local_model else None)
    if which is None:
        return None
    context = offline.context
    examples = IntentExamples(offline)

    def hints(question: str) -> list[str]:
        return hints_for(question, context)

    from assistant.plan_llm import PlanFillEngine, endpoint_json_chat

    if which == "endpoint":
        destination = Destination.from_settings(settings)
        agent = AgentEngine(endpoint_model(settings), context, name="llm",
                            timeout_s=settings.llm_timeout_s, examples=examples, hints=hints,
                            destination=destination)
        assert settings.llm_base_url is not None
        chat = endpoint_json_chat(settings.llm_base_url, settings.llm_api_key,
                                  settings.llm_model, settings.llm_timeout_s)
        return PlanFillEngine(chat, offline, name="llm", timeout_s=settings.llm_timeout_s,
                              fallback=agent, destination=destination)
    if which == "local":
        llama = local_llama(settings.resolved_home(), progress=progress)
        direct = DirectSqlEngine(llama.chat, context, name="local",
                                 timeout_s=settings.llm_timeout_s, examples=examples,
                                 hints=hints)
        from assistant.plan_examples import default_bank
        from assistant.restate import Restater

        planner = local_llama(settings.resolved_home(), progress=progress, role="plan")
        restater = local_llama(settings.resolved_home(), progress=progress, role="restate")
        return PlanFillEngine(planner.chat_schema, offline, name="local",
                              timeout_s=settings.llm_timeout_s, fallback=direct, line=True,
                              bank=default_bank(),
                              restater=Restater(restater.chat_schema, offline))
    raise ValueError(f"unknown engine {which!r}")
