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
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast, get_args

from pydantic import BaseModel, Field, ValidationError

from assistant.plan_examples import ExampleBank
from assistant.planner import Cues, newcomer_dimensions, spanning
from assistant.restate import Restater
from assistant.slots import clean_question
from tamga.answer import Answer
from tamga.errors import LLMUnavailable, TamgaError
from tamga.plan import (
    RATIO_MEASURES,
    TIME_DIMENSIONS,
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
#: (messages, max_tokens, cancelled, JSON schema or GBNF grammar text) -> reply text
JsonChat = Callable[[list[ChatMessage], int, threading.Event, Any], str]


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


# -- the line format (the local model) ---------------------------------------------------------
#
# A CPU model pays for every token it writes: a JSON draft is about 80 tokens, the same draft as
# one line ("top duty by trader n 5") about 8. The line carries the shape, measure, grouping,
# n, order, "how many" and a limit; periods and filters are read from the question by the slot
# extractor, as for JSON drafts without them.

LINE_NONE = "none"


def _words(literal: Any) -> tuple[str, ...]:
    return tuple(get_args(literal))


_DIM = "(?:" + "|".join(sorted(_words(Dimension), key=len, reverse=True)) + ")"
_LINE = re.compile(
    rf"^(?P<shape>[a-z_]+) (?P<measure>[a-z_]+)(?: by (?P<by>{_DIM}(?: {_DIM})?))?"
    r"(?: n (?P<n>[1-9]\d?))?(?P<low> low)?(?P<count> count)?(?: above (?P<above>\d+(?:\.\d+)?))?$")


@lru_cache(maxsize=256)
def line_grammar(shapes: frozenset[str] | None = None,
                 dims: frozenset[str] | None = None) -> str:
    """The GBNF grammar of a draft line, built from the plan language's own word lists; with
    `shapes` and `dims`, only those (what a question's words support) may be written, and a
    limit only with a threshold, a row count only with a ranking."""
    def choice(words: tuple[str, ...]) -> str:
        return " | ".join(f'"{w}"' for w in sorted(words, key=len, reverse=True))

    shape_words = tuple(w for w in _words(Shape) if shapes is None or w in shapes)
    dim_words = tuple(w for w in _words(Dimension) if dims is None or w in dims)
    tail = ["by?" if dim_words else "",
            "n?" if shapes is None or shapes & {"top", "bottom", "change_ranking"} else "",
            "low?", "count?", "above?" if shapes is None or "threshold" in shapes else ""]
    return "\n".join([
        f'root ::= "{LINE_NONE}" | shape " " measure ' + " ".join(t for t in tail if t),
        f"shape ::= {choice(shape_words)}",
        f"measure ::= {choice(_words(Measure))}",
        *([f"dim ::= {choice(dim_words)}", 'by ::= " by " dim (" " dim)?'] if dim_words
          else []),
        'n ::= " n " [1-9] [0-9]?',
        'low ::= " low"',
        'count ::= " count"',
        'above ::= " above " [1-9] [0-9]{0,12} ("." [0-9]{1,2})?',
    ]) + "\n"


def draft_line(draft: PlanDraft) -> str:
    """A draft written as one line (periods are not part of the line)."""
    if not draft.fits:
        return LINE_NONE
    parts: list[str] = [draft.shape, draft.measure]
    if draft.by:
        parts += ["by", *draft.by]
    if draft.n is not None:
        parts += ["n", str(draft.n)]
    if draft.low:
        parts.append("low")
    if draft.count:
        parts.append("count")
    if draft.above is not None:
        above = draft.above
        parts += ["above", str(int(above)) if above.is_integer() else f"{above:.2f}"]
    return " ".join(parts)


def parse_line(text: str) -> PlanDraft | None:
    """The draft a line stands for, or None when it is not a well-formed line."""
    line = " ".join((text or "").strip().split()).lower()
    if line == LINE_NONE:
        return PlanDraft(fits=False, shape="total", measure="customs_value", by=[], period=None,
                         vs=None, n=None, low=False, count=False, above=None)
    match = _LINE.match(line)
    if match is None:
        return None
    try:
        return PlanDraft.model_validate({
            "fits": True, "shape": match["shape"], "measure": match["measure"],
            "by": (match["by"] or "").split(), "period": None, "vs": None,
            "n": int(match["n"]) if match["n"] else None, "low": bool(match["low"]),
            "count": bool(match["count"]),
            "above": float(match["above"]) if match["above"] else None})
    except ValidationError:
        return None


SHAPES_HELP = """shape: total | breakdown (figures by the `by` groups) | top / bottom (the n \
largest / smallest groups) | argmax / argmin (the single largest / smallest group, e.g. the peak \
month: by month) | compare (period against vs) | change_ranking (groups ranked by their change \
from vs to period; low=true for the biggest falls) | share (the share of the part the question \
names, or of each group) | vs_peers (the trader named against the other traders) | \
set_difference (groups active in period but not in vs) | first_seen (groups whose first \
declaration falls in period) | threshold (groups whose measure is above `above`; by \
declaration for single declarations). count=true when the question asks how many."""


LINE_HELP = """You turn a customs officer's question about the trade database into a one-line \
plan. Reply with the line only:
<shape> <measure> [by <dim> [<dim>]] [n <N>] [low] [count] [above <number>]
or "none" when the question is not about figures of the trade data (rules, law, definitions, \
greetings, changing data).
Periods, traders, countries, goods, offices, modes and channels named in the question are read \
from it by other code: never write them in the line.
shape: total (one figure) | breakdown (the measure for each group of `by`) | top / bottom (the \
n largest / smallest groups) | argmax / argmin (the single largest / smallest group: peak month, \
busiest office, largest declaration) | compare (one period against another) | change_ranking \
(groups ranked by their change between two periods; low = biggest falls) | share (share of \
the part named, or of each `by` group) | vs_peers (the named trader against the other traders) \
| set_difference (groups active in one period but not the other: stopped, dropped, lost) | \
first_seen (groups whose first declaration is in the period: new, first-time) | threshold \
(groups whose measure is above the number; by declaration for single declarations).
count: the question asks how many. low: lowest first, smallest, biggest falls.
measure: {measures}
(customs_value = value, imports; declarations = entries, filings; traders = distinct \
importers; sellers = distinct foreign suppliers; origins = distinct countries of origin; \
net_mass = weight, kg, tonnes; effective_duty_rate = duty as % of value; red_share = share sent \
to the red channel, inspection rate; audit_recoveries = what audits recovered, \
audit_penalties = the penalties alone; value_per_declaration = average value of one declaration.)
by: {dims}
(trader = importer, company; seller = foreign supplier; origin = country of origin; office = \
customs office, port; aeo = AEO against non-AEO; audit_outcome = audit result.)"""


class PlanFillEngine:
    """An LLM engine that answers by filling a query plan; other questions go to `fallback`."""

    def __init__(self, chat: JsonChat, offline: OfflineEngine, *, name: str = "local",
                 timeout_s: float = 60.0, fallback: Any = None, max_tokens: int | None = None,
                 destination: Destination | None = None, line: bool = False,
                 bank: ExampleBank | None = None, nearest: int = 6,
                 restater: Restater | None = None) -> None:
        """`chat` returns the model's reply; `offline` is the user's offline engine (its
        data context, slot extraction and plan runner); `fallback` is the engine for
        questions a plan cannot express (the raw-SQL strategy), or None. For a remote
        `destination`, trader identities are sent as pseudonyms and every prompt is
        recorded (tools/egress.py). With `line`, the model writes the draft as one line
        under a GBNF grammar (`chat` gets the grammar text instead of a JSON schema); the
        `nearest` examples of `bank` most like the question come before it. `max_tokens`
        bounds the reply (default: 24 for a line, 200 for JSON). With a `restater`, the
        model first restates the question in plain words; when the restatement keeps what
        the question names and the offline rules read it with confidence, that reading
        answers (assistant/restate.py)."""
        self.chat = chat
        self.offline = offline
        self.name = name
        self.timeout_s = timeout_s
        self.fallback = fallback
        self.max_tokens = max_tokens if max_tokens is not None else 24 if line else 200
        self.destination = destination
        self.line = line
        self.bank = bank
        self.nearest = nearest
        self.corrections = 1 if line else 0
        self.restater = restater
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
            if self.line:
                system = LINE_HELP.format(measures=" ".join(_words(Measure)),
                                          dims=" ".join(_words(Dimension)))
            else:
                system = (
                    "You turn a customs officer's question about the trade database into a "
                    "JSON plan. Reply with the JSON object only. Use only codes: trader_id "
                    "from the facts given, ISO2 country codes, HS digits. Periods in words as "
                    "the officer says them. Set fits=false for questions that are not figures "
                    "from the trade data.\n"
                    f"{SHAPES_HELP}\nmeasure: one of {', '.join(_words(Measure))}.\n"
                    f"by: up to two of {', '.join(_words(Dimension))}.\n"
                    f"Data: {facts.first_date} to {facts.latest_date}; money in "
                    f"{facts.currency}; offices: {offices}; {listed}."
                )
            messages: list[ChatMessage] = [{"role": "system", "content": system}]
            for question, draft in EXAMPLES:
                messages.append({"role": "user", "content": question})
                messages.append({"role": "assistant", "content": self._reply_text(draft)})
            self._prefix = messages
        return self._prefix

    def _reply_text(self, draft: dict[str, Any]) -> str:
        if self.line:
            return draft_line(PlanDraft.model_validate(draft))
        return json.dumps(draft, separators=(",", ":"))

    def messages(self, question: str, nearest: int | None = None) -> list[ChatMessage]:
        """The fixed prefix, the bank's examples nearest the question (`nearest` of them,
        default the engine's), then the question."""
        near: list[ChatMessage] = []
        count = self.nearest if nearest is None else nearest
        if self.bank is not None and count:
            for example in self.bank.nearest(question, count):
                reply = example.line
                if not self.line:
                    parsed = parse_line(example.line)
                    if parsed is None:
                        continue
                    reply = json.dumps(parsed.model_dump(), separators=(",", ":"))
                near += [{"role": "user", "content": example.question},
                         {"role": "assistant", "content": reply}]
        return [*self.prefix(), *near, {"role": "user", "content": question}]

    def constraint(self, question: str | None = None) -> dict[str, Any] | str:
        """What constrains the reply: the GBNF grammar of a line (for a `question`, only the
        shapes and groupings its words support: `Planner.cues`), or the draft's JSON schema."""
        if not self.line:
            return draft_schema()
        if question is None:
            return line_grammar()
        question = clean_question(question)
        cues = self.offline.planner.cues(question, self.offline.extractor.extract(question))
        return line_grammar(frozenset(cues.shapes), frozenset(cues.dimensions))

    def warm(self) -> None:
        """Evaluate the fixed prefix now (the model keeps it), so that the first question pays
        only for its own tokens."""
        self.chat([*self.prefix(), {"role": "user", "content": "total value"}], 1,
                  threading.Event(), self.constraint())
        if self.restater is not None:
            self.restater.warm()

    # -- answering ------------------------------------------------------------------------------

    def draft(self, question: str, cancelled: threading.Event | None = None,
              session: EgressSession | None = None,
              correction: tuple[PlanDraft, str] | None = None,
              nearest: int | None = None) -> PlanDraft | None:
        """The model's draft for `question`, or None when the reply is not a usable draft;
        LLMUnavailable when the model cannot be reached or fails.

        With an egress `session` (remote model), the prompt goes out masked and recorded, and
        the pseudonyms in the draft are mapped back. With a `correction` (an earlier draft and
        why it does not hold), the model sees both and writes another. `nearest` overrides
        how many of the bank's examples come before the question."""
        messages = self.messages(question, nearest)
        if correction is not None:
            earlier, why = correction
            messages += [
                {"role": "assistant", "content": self._reply_text(earlier.model_dump())},
                {"role": "user", "content": f"That plan cannot be answered: {why} Write a "
                                            "corrected plan for the same question."}]
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
                              self.constraint(question))
        except LLMUnavailable:
            raise
        except Exception as exc:  # the endpoint's own errors, as the router expects them
            from assistant.llm import model_error

            raise model_error(exc) from exc
        if session is not None and self.destination is not None and \
                self.destination.effective != "rows":
            reply = session.masker.unmask(reply)
        if self.line:
            return parse_line(reply)
        match = re.search(r"\{.*\}", reply or "", re.DOTALL)
        if match is None:
            return None
        try:
            return PlanDraft.model_validate_json(match.group(0))
        except ValidationError:
            return None

    def to_plan(self, draft: PlanDraft, question: str, strict: bool = False) -> QueryPlan:
        """The draft as a validated plan: filters read from the question by the slot
        extractor, periods resolved, values checked (PlanError when it does not hold).

        A line from the local model stays within what the question's words support
        (`Planner.cues`): a grouping the question does not name is dropped and the groupings
        it states are kept; its own "top 3", direction, "how many" and threshold win over the
        model's; a shape it has no words for is an error when `strict` (the model gets one
        more try), else the plain total or breakdown. A hosted model's JSON draft is read as
        it is written."""
        question = clean_question(question)
        slots = self.offline.extractor.extract(question)
        cues = self.offline.planner.cues(question, slots)
        ground = self.line  # a small local model; a hosted model's reading is kept
        if ground:
            draft = self._grounded(draft, cues, strict)
        stated = self.offline.planner.measures_for(question)
        filters, related, flow = self.offline.planner.filters_for(
            question, slots, [draft.measure, *stated])
        if "flow" in draft.by:
            flow = "both"  # "per channel and flow": imports and exports side by side
        period = self._period(draft.period)
        compare_to = self._period(draft.vs)
        named = sorted({(p.start, p.end): p for p in slots.periods}.values(),
                       key=lambda p: p.start)
        if len(named) >= 2 and compare_to is None and draft.shape in (
                "compare", "change_ranking", "set_difference"):
            # the question names both periods: take them from the question, not the model
            if draft.shape == "set_difference":
                first, second = sorted(named[:2], key=lambda p: _position(question, p))
                period, compare_to = self._spec(first), self._spec(second)
            else:
                later, earlier = named[-1], named[0]
                if later.kind == "ytd" or later.partial or slots.like_for_like:
                    earlier = self.offline.extractor.like_for_like(earlier, later)
                period, compare_to = self._spec(later), self._spec(earlier)
        dims = list(dict.fromkeys(draft.by))  # a grammar cannot forbid "by origin origin"
        if period is None and len(named) >= 2 and TIME_DIMENSIONS & set(dims) and \
                draft.shape not in ("compare", "change_ranking", "set_difference"):
            period = spanning(named)  # "per year, 2024 and 2025"
        if period is None and slots.periods:
            period = self._spec(slots.periods[-1])
        if draft.shape == "total":
            dims = []  # a total has no groups (a small model adds them after named filters)
        elif "aeo" in dims or "aeo_status" in dims:
            # "AEO against non-AEO" groups by AEO status: the "non-AEO" the slot extractor
            # read is one side of the comparison, not a filter
            filters = [f for f in filters if f.dimension not in ("aeo", "aeo_status")]
        count = cues.how_many if ground else draft.count or cues.how_many
        ex = self.offline.extractor
        shape = draft.shape
        measure = draft.measure
        n = draft.n if not ground else cues.n if cues.n is not None else (
            1 if shape in ("argmax", "argmin") else None)
        low = draft.low
        if ground and shape == "change_ranking" and cues.direction is not None:
            low = cues.direction == "down"
        elif ground and shape in ("top", "bottom", "argmax", "argmin") and \
                cues.lowest is not None:
            low = cues.lowest
            shape = cast(Shape, {"top": "bottom", "argmax": "argmin"}.get(shape, shape) if low
                         else {"bottom": "top", "argmin": "argmax"}.get(shape, shape))
        if shape in _MEASURED_SHAPES and stated and stated[0] != "customs_value" and \
                measure not in stated:
            # the question names its measure in words ("VAT", "kg", "duty"): the rules read
            # such words reliably, a small model often does not
            measure = cast(Measure, stated[0])
        elif ground and measure in ("declarations", "items") and shape in _MEASURED_SHAPES and \
                not _COUNT_WORDS.search(question.lower()):
            # a count the question has no word for ("top three sellers", "value per chapter")
            measure = cast(Measure, stated[0] if stated else "customs_value")
        # "how many separate sellers": a distinct count is not also grouped by what it counts
        dims = [d for d in dims if d != _COUNTED_DIMENSION.get(measure)]
        measures = [measure]
        if shape in ("total", "breakdown") and measure in stated and len(stated) > 1 and \
                "customs_value" not in stated:
            measures = [cast(Measure, m) for m in stated[:3]]  # "count + recoveries"
        if shape == "compare" and dims and len(named) < 2 and compare_to is None and \
                not _PERIOD_CHANGE.search(question.lower()):
            # "AEO compared with non-AEO in 2025": groups compared, not periods
            shape = "breakdown"
        if {"aeo", "aeo_status"} & set(dims) and _AEO_CONTRAST.search(question.lower()):
            dims = list(dict.fromkeys("aeo" if d == "aeo_status" else d for d in dims))
        if shape in ("compare", "change_ranking") and compare_to is None:
            base = ex.extract(clean_question(draft.period or "")).periods or slots.periods \
                or ex.extract("this year").periods
            later = base[-1]
            earlier = ex.like_for_like(ex.previous(later), later)
            period, compare_to = self._spec(later), self._spec(earlier)
        if shape == "set_difference" and compare_to is None and period is not None:
            named = ex.extract(clean_question(draft.period or "")).periods
            if named:
                compare_to = period
                period = self._spec(ex.previous(named[0]))
        if shape in ("compare", "change_ranking") and period is not None and \
                compare_to is not None and compare_to.start > period.start:
            period, compare_to = compare_to, period
        if shape == "share" and measure in RATIO_MEASURES:
            shape = "breakdown" if dims else "total"  # a red share is itself a share
        share_of = None
        if shape == "share":
            share_of = self.offline.planner.share_part(filters)
            if share_of is not None:
                filters = [f for f in filters if f is not share_of]
                dims = [d for d in dims if d != share_of.dimension]  # "chapter 02's share"
        entity = None
        if shape == "vs_peers":
            entity = next((f for f in filters if f.dimension == "trader"), None)
            filters = [f for f in filters if f.dimension != "trader"]
        threshold = None
        if ground and shape == "threshold" and cues.threshold is not None:
            # the number and what it counts as the question says them ("more than 25 red
            # declarations"); the model's measure where the words name none
            stated_threshold = cues.threshold
            threshold = stated_threshold if stated_threshold.measure != "customs_value" or \
                measure in _COUNTED else stated_threshold.model_copy(update={"measure": measure})
            measure = cast(Measure, threshold.measure)
        elif shape == "threshold" and draft.above is not None:
            threshold = Threshold(measure=measure, value=draft.above)
        if shape == "first_seen":
            dims = cast(list[Dimension], newcomer_dimensions(list(dims), question))
        if shape in ("first_seen", "set_difference", "threshold") and not dims:
            dims = ["declaration"] if shape == "threshold" else ["trader"]
        try:
            return QueryPlan(
                shape=shape, measures=measures, dimensions=dims,
                filters=filters, period=period, compare_to=compare_to, flow=flow,
                related_party=related, n=n,
                order="asc" if low else "desc", threshold=threshold,
                count_only=count and shape in ("threshold", "first_seen",
                                                     "set_difference"),
                share_of=share_of, entity=entity)
        except ValidationError as exc:
            raise PlanError(str(exc.errors()[0].get("msg", "")).removeprefix(
                "Value error, ")) from exc

    def _plain_reading(self, question: str) -> PlanDraft | None:
        """The figure a question plainly asks for when a small model says it is not about the
        data, but the question names what the data holds (a period, a filter: "value under
        procedure 7100 with incoterm CIF, 2025") and no word of a rule ("must", "allowed",
        "penalty"...): its measure in words, as a total or by the groupings it states. None
        when the question does not read as a data question."""
        question = clean_question(question)
        slots = self.offline.extractor.extract(question)
        filters, _related, _flow = self.offline.planner.filters_for(question, slots, [])
        if _RULE_WORDS.search(question.lower()) or not (filters or slots.periods):
            return None
        measure = self.offline.planner.measures_for(question)[0]
        return PlanDraft(fits=True, shape="total", measure=cast(Measure, measure), by=[],
                         period=None, vs=None, n=None, low=False, count=False, above=None)

    @staticmethod
    def _grounded(draft: PlanDraft, cues: Cues, strict: bool) -> PlanDraft:
        """The draft within what the question's words support: its shape (PlanError when
        `strict`, else the plain reading), the groupings it names and states."""
        if draft.shape not in cues.shapes:
            if strict:
                raise PlanError(f"the question has no words asking for {_SHAPE_WORDS[draft.shape]}"
                                "; choose the shape its words ask for.")
            fallback = "breakdown" if cues.groupings or any(
                d in cues.dimensions for d in draft.by) else "total"
            draft = draft.model_copy(update={"shape": fallback})
        if draft.shape in ("top", "bottom") and cues.direction is not None and \
                "change_ranking" in cues.shapes:
            draft = draft.model_copy(update={"shape": "change_ranking"})  # "biggest gains"
        elif draft.shape in ("top", "bottom", "total", "breakdown") and \
                cues.threshold is not None and cues.n is None:
            draft = draft.model_copy(update={"shape": "threshold"})  # "over 25 times"
        elif draft.shape == "total" and cues.groupings:
            draft = draft.model_copy(update={"shape": "breakdown"})  # "duty per office"
        named_dims = [d for d in draft.by if d in cues.dimensions]
        if strict and draft.by and not named_dims and not cues.groupings and \
                draft.shape in _GROUPED_SHAPES:
            raise PlanError(f"the question does not name the grouping {draft.by[0]}; group "
                            "by what it names.")
        if draft.shape not in ("total", "vs_peers"):
            # the groupings the question states ("by transport mode and by channel"), which a
            # small model drops or swaps for one of its own
            same = {"aeo": "aeo_status", "aeo_status": "aeo"}
            named_dims += [cast(Dimension, d) for d in cues.groupings
                           if d not in named_dims and same.get(d) not in named_dims]
        if named_dims != list(draft.by):
            draft = draft.model_copy(update={"by": named_dims[:2]})
        if draft.shape in _GROUPED_SHAPES and not named_dims:
            draft = draft.model_copy(update={"shape": "total"})  # nothing named to group by
        return draft

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

    def _restated_answer(self, question: str, cancelled: threading.Event, started: float,
                         record: dict[str, str]) -> Answer | None:
        """The offline rules' answer to the model's plain restatement of `question`, or None
        (recorded in `record` with why) when the restatement changes what the question names
        or the rules do not read it with confidence."""
        from assistant.llm import run_with_deadline

        assert self.restater is not None
        restater = self.restater
        restated = run_with_deadline(lambda: restater.restate(question, cancelled),
                                     self.timeout_s, cancelled)
        if not restated:
            return None
        record["restated"] = restated
        why = restater.differs(question, restated)
        plan = self.offline.plan(restated) if why is None else None
        if plan is not None and not (plan.confident and plan.kind in ("query", "intent")):
            why = "the offline rules do not read it either"
        if plan is None or why is not None:
            record["restatement_dropped"] = why or ""
            return None
        answer = self.offline.execute(plan)
        answer.engine = self.name
        answer.slots = {**answer.slots, "restated": restated}
        answer.understood = f'The model restated your question as "{restated}". ' + (
            answer.understood or "")
        answer.timings.update({"llm_ms": round((time.perf_counter() - started) * 1000, 1)})
        return answer

    def _plan_of(self, draft: PlanDraft | None, question: str, strict: bool = False
                 ) -> tuple[QueryPlan | None, str | None]:
        """The draft's plan, or None and why not (None, None: the question does not fit)."""
        if draft is None:
            return None, "the reply was not a plan"
        if not draft.fits:
            return None, None
        try:
            return self.to_plan(draft, question, strict=strict), None
        except (PlanError, TamgaError) as exc:
            return None, str(exc)

    def answer(self, question: str, conversation: Any = None) -> Answer:
        """Fill, check and run the plan (once more with the reason when it does not hold);
        questions a plan cannot express go to the fallback."""
        from assistant.llm import run_with_deadline

        started = time.perf_counter()
        cancelled = threading.Event()
        remote = self.destination is not None and self.destination.remote
        session = session_for(conversation) if remote else None
        mark = session.log.mark() if session is not None else 0
        restated: dict[str, str] = {}
        nearest, corrections = self.nearest, self.corrections
        if self.restater is not None and session is None and \
                not self.offline.plan(question, conversation).confident:
            # only for what the rules decline: on what they read, a restatement adds nothing
            answer = self._restated_answer(question, cancelled, started, restated)
            if answer is not None:
                return answer
            if restated:  # it took about two seconds: a shorter draft prompt, no second draft
                nearest, corrections = min(nearest, NEAREST_AFTER_RESTATEMENT), 0
        draft = run_with_deadline(
            lambda: self.draft(question, cancelled, session, nearest=nearest),
            self.timeout_s, cancelled)
        if self.line and draft is not None and not draft.fits:
            draft = self._plain_reading(question) or draft
        plan, problem = self._plan_of(draft, question, strict=bool(self.corrections))
        if draft is not None and draft.fits and plan is None and corrections:
            # the model reads why its plan does not hold and writes another (a line costs
            # about a second; the SQL writer that comes next costs twenty)
            first, why = draft, problem or ""
            left = max(1.0, self.timeout_s - (time.perf_counter() - started))
            draft = run_with_deadline(
                lambda: self.draft(question, cancelled, session, correction=(first, why)),
                left, cancelled)
            plan, second_problem = self._plan_of(draft, question)
            problem = None if plan is not None else \
                f"{why}; then {second_problem or 'no plan'}"
        llm_ms = (time.perf_counter() - started) * 1000
        egress = egress_summary(self.destination, session.log.records_since(mark)) \
            if session is not None else None
        if plan is not None and draft is not None:
            answer = self.offline.run_query(plan)
            answer.engine = self.name
            answer.timings.update({"llm_ms": round(llm_ms, 1)})
            answer.slots = {"draft": draft.model_dump(exclude_defaults=True), **restated}
            if self.line:
                answer.slots["line"] = draft_line(draft)
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


#: Bank examples before a draft that follows a restatement (each costs ~0.4 s of prompt here).
NEAREST_AFTER_RESTATEMENT = 3

#: What each shape asks for, in the words of a correction ("no words asking for a share").
_SHAPE_WORDS = {
    "total": "a total", "breakdown": "a breakdown", "top": "a ranking", "bottom": "a ranking",
    "argmax": "the highest", "argmin": "the lowest", "compare": "a comparison of periods",
    "change_ranking": "a ranking by change", "share": "a share", "vs_peers": "a comparison "
    "with peers", "set_difference": "those in one period but not another", "first_seen":
    "newcomers", "threshold": "a threshold (no number to exceed)"}
#: Words of a question about rules rather than figures.
_RULE_WORDS = re.compile(
    r"\b(?:must|may|shall|should|allowed|permitted|required|requirements?|rules?|laws?|"
    r"regulations?|articles?|documents?|obligations?|penalt(?:y|ies)|fines?|liable|legal|"
    r"how (?:do|does|can|should|must)|how to|defin\w*|meaning|means|eligible|entitled)\b")
#: The dimension a distinct count counts.
_COUNTED_DIMENSION = {"traders": "trader", "sellers": "seller", "origins": "origin"}
#: Words that ask for a count of declarations or lines.
_COUNT_WORDS = re.compile(
    r"\b(?:declarations?|entries|entry|filings?|shipments?|consignments?|lines?|items?|counts?|"
    r"counted|number|how many|times|busiest|quietest|busy|activity|volume)\b")
#: Measures that count (a threshold in money is not on them: "entries over 5,000,000").
_COUNTED = frozenset({"declarations", "items", "traders", "sellers", "origins", "audits"})
#: Shapes that need a grouping.
_GROUPED_SHAPES = frozenset({"breakdown", "top", "bottom", "argmax", "argmin",
                             "change_ranking"})
#: Shapes whose measure is the figure asked for (in a threshold or "new"/"stopped" question
#: the words may name the unit counted instead: "declarations above 1M").
_MEASURED_SHAPES = frozenset({"total", "breakdown", "top", "bottom", "argmax", "argmin",
                              "compare", "change_ranking", "share", "vs_peers"})
#: Words that make "compared with" a comparison of periods rather than of groups.
_PERIOD_CHANGE = re.compile(
    r"\b(?:previous|prior|before|earlier|ago|same period|year[- ]on[- ]year|yoy|growth|grew|"
    r"grow|chang\w*|ris[ei]\w*|rose|f[ae]ll\w*|drop\w*|increas\w*|decreas\w*|than last|"
    r"vs\.? last|versus last|against last)\b")
#: A yes/no contrast of AEO status ("AEO against non-AEO").
_AEO_CONTRAST = re.compile(r"\bnon[- ]?aeo\b|\bwithout aeo\b|\bnot aeo\b")


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
