"""A language model fills the query plan (not SQL): a small JSON draft, checked and compiled.

The model sees the plan language, the data's coded values and a few worked examples, always in
the same order (the fixed prefix, which llama.cpp keeps evaluated between questions, so a
question costs only its own tokens), then the question with the facts the slot extractor
found (trader IDs, periods). It answers with one JSON object: a `PlanDraft`. With the local
model the reply is constrained by a grammar made from the draft's JSON schema; with an
OpenAI-compatible endpoint it is asked for JSON output. Code then turns the draft into a
validated QueryPlan (periods resolved by the slot extractor, codes checked against the data)
and the offline engine compiles, runs and explains it. A draft that says the question does
not fit, or that does not validate, goes to the next engine (the raw-SQL strategy).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from assistant.slots import clean_question
from tamga.answer import Answer
from tamga.errors import LLMUnavailable, TamgaError
from tamga.plan import (
    Dimension,
    Measure,
    PeriodSpec,
    PlanError,
    QueryPlan,
    Shape,
    Threshold,
)
from tools.egress import Destination, EgressSession, egress_summary, redact_data, session_for

if TYPE_CHECKING:
    from assistant.offline import OfflineEngine

ChatMessage = dict[str, str]
#: (messages, max_tokens, cancelled, JSON schema) -> reply text
JsonChat = Callable[[list[ChatMessage], int, threading.Event, dict[str, Any]], str]


class PlanDraft(BaseModel):
    """What the model writes: the plan's shape, measure, grouping and periods (all keys, in
    this order; short names, since every token of the reply costs time on a CPU). Filters
    (trader, country, goods, office, transport mode...) are not the model's job: the slot
    extractor reads them from the question and checks them against the data."""

    fits: bool = Field(description="false when the question is not about figures of the "
                                   "trade data")
    shape: Shape
    measure: Measure
    by: list[Dimension] = Field(max_length=2, description="grouping")
    period: str | None = Field(description="as the officer says it: '2025', 'last quarter'")
    vs: str | None = Field(description="the other period of a comparison")
    n: int | None
    low: bool = Field(description="lowest first (bottom, falls)")
    count: bool = Field(description="how many, not which")
    above: float | None = Field(description="threshold of the measure")


def draft_schema() -> dict[str, Any]:
    """The JSON schema of a draft (for grammars and structured output)."""
    return PlanDraft.model_json_schema()


SHAPES_HELP = """shape: total | breakdown (figures by the `by` groups) | top / bottom (the n \
largest / smallest groups) | argmax / argmin (the single largest / smallest group, e.g. the peak \
month: by month) | compare (period against vs) | change_ranking (groups ranked by their change \
from vs to period; low=true for the biggest falls) | share (the share of the part the question \
names, or of each group) | vs_peers (the trader named against the other traders) | \
set_difference (groups active in period but not in vs) | first_seen (groups whose first \
declaration falls in period) | threshold (groups whose measure is above `above`; by \
declaration for single declarations). count=true when the question asks how many."""


class PlanFillEngine:
    """An LLM engine that answers by filling a query plan; other questions go to `fallback`."""

    def __init__(self, chat: JsonChat, offline: OfflineEngine, *, name: str = "local",
                 timeout_s: float = 60.0, fallback: Any = None, max_tokens: int = 200,
                 destination: Destination | None = None) -> None:
        """`chat` returns the model's JSON reply; `offline` is the user's offline engine (its
        data context, slot extraction and plan runner); `fallback` is the engine for
        questions a plan cannot express (the raw-SQL strategy), or None. For a remote
        `destination`, trader identities are sent as pseudonyms and every prompt is
        recorded (tools/egress.py)."""
        self.chat = chat
        self.offline = offline
        self.name = name
        self.timeout_s = timeout_s
        self.fallback = fallback
        self.max_tokens = max_tokens
        self.destination = destination
        self._prefix: list[ChatMessage] | None = None

    # -- the prompt -----------------------------------------------------------------------------

    def prefix(self) -> list[ChatMessage]:
        """The fixed part of every prompt: instructions, the data's values and examples."""
        if self._prefix is None:
            context = self.offline.context
            facts = context.facts
            values = context.coded_values
            listed = "; ".join(f"{k}: {', '.join(v[:12])}" for k, v in values.items()
                               if k in ("transport_mode", "incoterm", "aeo_status") and v)
            offices = ", ".join(facts.offices[:20])
            system = (
                "You turn a customs officer's question about the trade database into a JSON "
                "plan. Reply with the JSON object only. Use only codes: trader_id from the facts "
                "given, ISO2 country codes, HS digits. Periods in words as the officer says "
                "them. Set fits=false for questions that are not figures from the trade data.\n"
                f"{SHAPES_HELP}\nmeasure: one of {', '.join(Measure.__args__)}.\n"  # type: ignore[attr-defined]
                f"by: up to two of {', '.join(Dimension.__args__)}.\n"  # type: ignore[attr-defined]
                f"Data: {facts.first_date} to {facts.latest_date}; money in {facts.currency}; "
                f"offices: {offices}; {listed}."
            )
            messages: list[ChatMessage] = [{"role": "system", "content": system}]
            for question, draft in EXAMPLES:
                messages.append({"role": "user", "content": question})
                messages.append({"role": "assistant", "content": json.dumps(
                    draft, separators=(",", ":"))})
            self._prefix = messages
        return self._prefix

    def messages(self, question: str) -> list[ChatMessage]:
        """The prefix, then the question with the facts found in it."""
        return [*self.prefix(), {"role": "user", "content": question}]

    # -- answering ------------------------------------------------------------------------------

    def draft(self, question: str, cancelled: threading.Event | None = None,
              session: EgressSession | None = None) -> PlanDraft | None:
        """The model's draft for `question`, or None when the reply is not a usable draft;
        LLMUnavailable when the model cannot be reached or fails.

        With an egress `session` (remote model), the prompt goes out masked and recorded, and
        the pseudonyms in the draft are mapped back."""
        messages = self.messages(question)
        if session is not None:
            assert self.destination is not None
            policy = self.destination.effective
            if policy != "rows":
                rows = self.offline.context.traders.rows
                session.masker.add_sensitive([v for r in rows for v in (r.name, r.tin,
                                                                       r.trader_id) if v])
                messages = [{"role": m["role"], "content": session.masker.mask_text(m["content"])}
                            for m in messages]
            redact_data({"messages": messages}, policy, tool="plan_prompt", public=True,
                        masker=session.masker, log=session.log)
        try:
            reply = self.chat(messages, self.max_tokens, cancelled or threading.Event(),
                              draft_schema())
        except LLMUnavailable:
            raise
        except Exception as exc:  # the endpoint's own errors, as the router expects them
            from assistant.llm import model_error

            raise model_error(exc) from exc
        if session is not None and self.destination is not None and \
                self.destination.effective != "rows":
            reply = session.masker.unmask(reply)
        match = re.search(r"\{.*\}", reply or "", re.DOTALL)
        if match is None:
            return None
        try:
            return PlanDraft.model_validate_json(match.group(0))
        except ValidationError:
            return None

    def to_plan(self, draft: PlanDraft, question: str) -> QueryPlan:
        """The draft as a validated plan: filters read from the question by the slot
        extractor, periods resolved, values checked (PlanError when it does not hold)."""
        slots = self.offline.extractor.extract(clean_question(question))
        filters, related, flow = self.offline.planner.filters_for(question, slots,
                                                                  [draft.measure])
        period = self._period(draft.period)
        compare_to = self._period(draft.vs)
        named = sorted(slots.periods, key=lambda p: p.start)
        if len(named) >= 2 and compare_to is None and draft.shape in (
                "compare", "change_ranking", "set_difference"):
            # the question names both periods: take them from the question, not the model
            if draft.shape == "set_difference":
                first, second = sorted(named[:2], key=lambda p: _position(question, p))
                period, compare_to = self._spec(first), self._spec(second)
            else:
                period, compare_to = self._spec(named[-1]), self._spec(named[0])
        if period is None and slots.periods:
            period = self._spec(slots.periods[-1])
        count = bool(_HOW_MANY.search(question.lower()))
        ex = self.offline.extractor
        if draft.shape in ("compare", "change_ranking") and compare_to is None:
            base = ex.extract(clean_question(draft.period or "")).periods or slots.periods \
                or ex.extract("this year").periods
            later = base[-1]
            earlier = ex.like_for_like(ex.previous(later), later)
            period, compare_to = self._spec(later), self._spec(earlier)
        if draft.shape == "set_difference" and compare_to is None and period is not None:
            named = ex.extract(clean_question(draft.period or "")).periods
            if named:
                compare_to = period
                period = self._spec(ex.previous(named[0]))
        if draft.shape in ("compare", "change_ranking") and period is not None and \
                compare_to is not None and compare_to.start > period.start:
            period, compare_to = compare_to, period
        share_of = None
        if draft.shape == "share":
            share_of = self.offline.planner.share_part(filters)
            if share_of is not None:
                filters = [f for f in filters if f is not share_of]
        entity = None
        if draft.shape == "vs_peers":
            entity = next((f for f in filters if f.dimension == "trader"), None)
            filters = [f for f in filters if f.dimension != "trader"]
        threshold = None
        if draft.shape == "threshold" and draft.above is not None:
            threshold = Threshold(measure=draft.measure, value=draft.above)
        dims = list(draft.by)
        if draft.shape in ("first_seen", "set_difference", "threshold") and not dims:
            dims = ["declaration"] if draft.shape == "threshold" else ["trader"]
        try:
            return QueryPlan(
                shape=draft.shape, measures=[draft.measure], dimensions=dims,
                filters=filters, period=period, compare_to=compare_to, flow=flow,
                related_party=related, n=draft.n,
                order="asc" if draft.low else "desc", threshold=threshold,
                count_only=count and draft.shape in ("threshold", "first_seen",
                                                     "set_difference"),
                share_of=share_of, entity=entity)
        except ValidationError as exc:
            raise PlanError(str(exc.errors()[0].get("msg", "")).removeprefix(
                "Value error, ")) from exc

    @staticmethod
    def _spec(period: Any) -> PeriodSpec:
        return PeriodSpec(start=period.start, end=period.end, name=period.name)

    def _period(self, words: str | None) -> PeriodSpec | None:
        if not words:
            return None
        found = self.offline.extractor.extract(clean_question(words)).periods
        if not found:
            raise PlanError(f"I cannot read the period {words!r}.")
        p = found[0]
        return PeriodSpec(start=p.start, end=p.end, name=p.name)

    def answer(self, question: str, conversation: Any = None) -> Answer:
        """Fill, check and run the plan; questions a plan cannot express go to the fallback."""
        from assistant.llm import run_with_deadline

        started = time.perf_counter()
        cancelled = threading.Event()
        remote = self.destination is not None and self.destination.remote
        session = session_for(conversation) if remote else None
        mark = session.log.mark() if session is not None else 0
        draft = run_with_deadline(lambda: self.draft(question, cancelled, session),
                                  self.timeout_s, cancelled)
        llm_ms = (time.perf_counter() - started) * 1000
        egress = egress_summary(self.destination, session.log.records_since(mark)) \
            if session is not None else None
        problem = None if draft is not None else "the reply was not a plan"
        if draft is not None and draft.fits:
            try:
                plan = self.to_plan(draft, question)
            except (PlanError, TamgaError) as exc:
                problem = str(exc)
            else:
                answer = self.offline.run_query(plan)
                answer.engine = self.name
                answer.timings.update({"llm_ms": round(llm_ms, 1)})
                answer.slots = {"draft": draft.model_dump(exclude_defaults=True)}
                answer.egress = egress
                return answer
        if self.fallback is not None:
            answer = self.fallback.answer(question, conversation)
            if egress is not None and answer.egress is not None:
                answer.egress["records"] = egress["records"] + answer.egress["records"]
            elif egress is not None:
                answer.egress = egress
            if problem:
                answer.warnings.append(f"The plan the model wrote did not hold ({problem}); "
                                       "this answer comes from the SQL the model wrote.")
            return answer
        raise LLMUnavailable(problem or "The language model found no plan for this question.")


_HOW_MANY = re.compile(r"\bhow many\b|\bnumber of\b|\bcount (?:of|the)\b")


def _position(question: str, period: Any) -> int:
    text = question.lower()
    for probe in (str(period.name).lower(), str(period.start.year)):
        k = text.find(probe)
        if k >= 0:
            return k
    return len(text)


def endpoint_json_chat(base_url: str, api_key: str | None, model: str, timeout_s: float
                       ) -> JsonChat:
    """A JsonChat for an OpenAI-compatible endpoint: structured output with the draft's JSON
    schema, or JSON mode where the server does not support schemas."""
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                    max_retries=0)

    def chat(messages: list[ChatMessage], max_tokens: int, cancelled: threading.Event,
             schema: dict[str, Any]) -> str:
        formats: list[dict[str, Any]] = [
            {"type": "json_schema", "json_schema": {"name": "plan_draft", "schema": schema}},
            {"type": "json_object"}]
        for n, response_format in enumerate(formats):
            try:
                create: Any = client.chat.completions.create
                reply = create(model=model, messages=messages, max_tokens=max_tokens,
                               temperature=0, response_format=response_format)
            except BadRequestError:
                if n + 1 == len(formats):
                    raise
                continue
            return reply.choices[0].message.content or ""
        return ""

    return chat


# Worked examples (question -> draft), written for the demo's vocabulary; the model copies
# their form. They never carry data values other than codes the question itself names.
def _example(fits: bool = True, shape: str = "total", measure: str = "customs_value",
             group_by: tuple[str, ...] = (), period: str | None = None,
             compare_to: str | None = None, n: int | None = None, lowest_first: bool = False,
             count_only: bool = False, threshold: float | None = None) -> dict[str, Any]:
    return {"fits": fits, "shape": shape, "measure": measure, "by": list(group_by),
            "period": period, "vs": compare_to, "n": n, "low": lowest_first,
            "count": count_only, "above": threshold}


# Worked examples (question -> draft), written for the demo's vocabulary; the model copies
# their form. Filters are not in the draft: the slot extractor reads them from the question.
EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Total import value in 2024", _example(period="2024")),
    ("Duty paid per month this year", _example(shape="breakdown", measure="duty",
                                               group_by=("month",), period="this year")),
    ("Top 5 importers by number of declarations last quarter",
     _example(shape="top", measure="declarations", group_by=("trader",), period="last quarter",
              n=5)),
    ("Which month was busiest in 2025?", _example(shape="argmax", measure="declarations",
                                                  group_by=("month",), period="2025")),
    ("Imports last quarter compared with the quarter before",
     _example(shape="compare", period="last quarter")),
    ("Which origins grew the most from 2024 to 2025?",
     _example(shape="change_ranking", group_by=("origin",), period="2025",
              compare_to="2024", n=10)),
    ("Which offices lost the most declarations this year?",
     _example(shape="change_ranking", measure="declarations", group_by=("office",),
              period="this year", n=10, lowest_first=True)),
    ("What share of 2025 imports came from Japan?", _example(shape="share", period="2025")),
    ("Traders that imported in 2024 but not in 2025",
     _example(shape="set_difference", group_by=("trader",), period="2024", compare_to="2025")),
    ("How many new exporters were there in 2025?",
     _example(shape="first_seen", group_by=("trader",), period="2025", count_only=True)),
    ("Declarations worth more than 2 million in 2024",
     _example(shape="threshold", group_by=("declaration",), period="2024", threshold=2e6)),
    ("Red channel rate of AEO versus non-AEO traders",
     _example(shape="breakdown", measure="red_share", group_by=("aeo_status",))),
    ("Value per kg of rail imports by HS chapter",
     _example(shape="breakdown", measure="value_per_kg", group_by=("hs_chapter",))),
    ("How does Acme Trading's unit value compare with its peers?",
     _example(shape="vs_peers", measure="value_per_kg")),
    ("When must an importer keep records?", _example(fits=False)),
)
