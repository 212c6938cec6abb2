"""The offline engine: verified intents over guarded SQL, and quoted regulation passages.

    engine = OfflineEngine(db_path, index_dir)
    answer = engine.answer("What did Jefferson Food Distributors import in 2024, by HS chapter?")

For a question it (1) refuses requests to change data, (2) fills slots from the question and
the database, (3) picks the intent by meaning and keywords (or keeps the previous one for a
follow-up), (4) builds the intent's SQL from validated slot values only, runs it through the
guarded SqlRunner and (5) writes the answer from the result: every figure in the text is a
value of the result table. Rule questions get the best passages of the regulations index,
quoted with citations. Below the confidence threshold it says it cannot answer, and offers the
closest questions it can.
"""

from __future__ import annotations

import re
import string
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import plan_render
from assistant.context import DataContext
from assistant.conversation import (
    METRIC_ONLY,
    Conversation,
    TurnState,
    content_words,
    looks_like_follow_up,
    merge_slots,
)
from assistant.intents import Intent, IntentLibrary, load_intents
from assistant.matcher import Match, Matcher, unexplained_words
from assistant.planner import Planner
from assistant.slots import MASKS, SlotExtractor, Slots, clean_question
from assistant.tool_intents import TOOLS, ToolRequest
from retrieval.search import RegulationsIndex
from tamga.answer import Answer, Table
from tamga.errors import SqlFailed, TamgaError
from tamga.formatting import fmt_money, fmt_num
from tamga.period import Period
from tamga.plan import Filter, PeriodSpec, QueryPlan
from tamga.sqltext import bind
from tools.plan_sql import compile_plan
from tools.regulations import best_excerpt, search_regulations
from tools.runner import RecordingRunner

if TYPE_CHECKING:
    from retrieval.search import Searcher
    from tamga.scope import Scope
    from tools.runner import Runner
    from tools.sql import QueryResult

MAX_QUESTION_CHARS = 2000
LOW_CONFIDENCE = 0.40  # below: "I can't answer that"
MIN_SIMILARITY = 0.20  # ... and so is a keyword hit in a question that means something else
HIGH_CONFIDENCE = 0.55  # at or above: confident enough that `auto` needs no LLM
SEARCH_K = 4
# Below this intent score, a question with a shape no intent has (growth ranking, share,
# peers, new traders, set difference, threshold, coded filters) is answered from its plan.
SPECIFIC_OVERRIDE = 0.75
@dataclass(frozen=True)
class Covers:
    """What one verified analytical intent answers, in plan terms: the shapes it gives, the
    groupings, the measures its table shows (or ranks by), the kinds of filter its SQL can
    apply, filter values its SQL rules out (the AEO intents keep certified traders only),
    whether it answers "how many" (a count of groups) rather than listing them, and the
    related-party choice its SQL makes (None: all sellers)."""

    shapes: frozenset[str]
    dimensions: frozenset[str]
    measures: frozenset[str]
    filters: frozenset[str] = frozenset()
    excludes: tuple[tuple[str, str], ...] = ()
    counts: bool = False
    related: bool | None = None


# The plan filters each intent slot applies (an intent applies a filter only when it takes the
# slot: new_traders takes no goods, so "newcomers to chapter 27" is not its question).
_SLOT_DIMENSIONS: dict[str, frozenset[str]] = {
    "trader": frozenset({"trader"}),
    "country": frozenset({"origin"}),
    "hs": frozenset({"hs_chapter", "hs_heading", "hs_subheading"}),
    "office": frozenset({"office"}),
    "channel": frozenset({"channel"}),
}


def _filter_kinds(intent: Intent | None, covers: Covers) -> frozenset[str]:
    """The filter kinds the intent applies: its declared ones, cut to the slots it takes."""
    if intent is None:
        return covers.filters
    slotted = frozenset().union(*(dims for slot, dims in _SLOT_DIMENSIONS.items()
                                  if intent.accepts(slot)))
    unslotted = covers.filters - frozenset().union(*_SLOT_DIMENSIONS.values())
    return (covers.filters & slotted) | unslotted


def _covers_of(intent_id: str) -> Covers | None:
    return INTENT_COVERS.get(intent_id)


def drops_filter(intent_id: str, query: QueryPlan, intent: Intent | None = None) -> bool:
    """True when the plan filters on something the intent cannot filter on, or on a value its
    SQL excludes (its answer would leave the filter out)."""
    found = _covers_of(intent_id)
    if found is None:
        return False
    # A filter on a dimension the intent groups by keeps its row ("red channel declarations of
    # X": the channel view's red row).
    if not {f.dimension for f in query.filters} <= _filter_kinds(intent, found) | found.dimensions:
        return True
    return any(f.dimension == dim and value in f.values
               for dim, value in found.excludes for f in query.filters)


def gives(intent_id: str, query: QueryPlan, intent: Intent | None = None) -> bool:
    """True when the intent gives the plan's measures and shape (a total where it breaks down
    counts: its table holds the figure), counts when the plan counts, and keeps its filters.
    An intent that does not give them never takes the question from the plan."""
    found = _covers_of(intent_id)
    if found is None:
        return True
    return (set(query.measures) <= found.measures
            and (query.shape in found.shapes or query.shape == "total")
            and (not query.count_only or found.counts)
            and query.related_party in (None, found.related) and query.flow != "both"
            and not drops_filter(intent_id, query, intent))


def intent_covers(intent_id: str, query: QueryPlan, intent: Intent | None = None) -> bool:
    """True when the verified intent answers what the query plan asks (then the intent,
    with its richer answer, is kept): same shape, groupings, measures and kinds of filter."""
    found = _covers_of(intent_id)
    if found is None or drops_filter(intent_id, query, intent):
        return False
    if query.count_only and not found.counts:
        return False  # the intents list; a count is a plan's
    if query.shape == "first_seen" and query.n is not None:
        return False  # "the five biggest newcomers": the intent lists them, a plan ranks
    return (query.shape in found.shapes and set(query.dimensions) <= found.dimensions
            and set(query.measures) <= found.measures
            and query.related_party in (None, found.related) and query.flow != "both")


def asks_more(intent_id: str, query: QueryPlan, intent: Intent | None = None) -> bool:
    """True when the plan asks for something the intent does not give (another measure,
    grouping, filter or shape), not merely for less (a total where the intent breaks down)."""
    found = _covers_of(intent_id)
    if found is None:
        return False
    return not gives(intent_id, query, intent) or not set(query.dimensions) <= found.dimensions


_SLOT_FILTERS = frozenset({"trader", "origin", "hs_chapter", "hs_heading", "hs_subheading",
                           "office", "channel"})
_COUNT = frozenset({"declarations"})
_VALUE = frozenset({"customs_value", "duty", "declarations"})
_RANK = _VALUE | {"net_mass"}  # what the ranking intents rank by (their metric slot)
_TOTALS = frozenset({"customs_value", "duty", "vat", "declarations", "items", "traders",
                     "net_mass"})
_TIME = frozenset({"month", "quarter", "year"})
_RANKING = frozenset({"top", "breakdown", "argmax"})
_NOT_AEO = (("aeo_status", "none"),)


def _c(shapes: frozenset[str], dims: frozenset[str], measures: frozenset[str],
       filters: frozenset[str] = _SLOT_FILTERS, **more: Any) -> Covers:
    return Covers(shapes, dims, measures, filters, **more)


# What each verified analytical intent answers. An intent not listed never stands in for a
# plan; a listed one takes a question only when it gives the plan's measure and shape.
INTENT_COVERS: dict[str, Covers] = {
    "national_total": _c(frozenset({"total"}), frozenset(), _TOTALS),
    "trader_total": _c(frozenset({"total"}), frozenset(), _TOTALS),
    "duty_revenue": _c(frozenset({"total", "breakdown"}), frozenset({"year"}),
                       frozenset({"duty", "vat", "effective_duty_rate", "customs_value"})),
    "trader_duty": _c(frozenset({"total", "breakdown"}), frozenset({"year"}),
                      frozenset({"duty", "vat", "effective_duty_rate"})),
    # The comparison intents show one row per period; a plan gives both values, the change and
    # the % change in one row, so it answers comparisons they would otherwise take.
    "compare_periods": _c(frozenset(), frozenset(), _VALUE),
    "trader_compare": _c(frozenset(), frozenset(), _VALUE),
    "national_trend": _c(frozenset({"breakdown"}), _TIME, _VALUE),
    "trader_trend": _c(frozenset({"breakdown"}), _TIME, _VALUE),
    "top_traders": _c(_RANKING, frozenset({"trader"}), _RANK),
    "top_chapters": _c(_RANKING, frozenset({"hs_chapter"}), _RANK),
    "trader_by_chapter": _c(_RANKING, frozenset({"hs_chapter"}), _RANK),
    "top_headings": _c(_RANKING, frozenset({"hs_heading"}), _RANK),
    "trader_by_heading": _c(_RANKING, frozenset({"hs_heading"}), _RANK),
    "top_subheadings": _c(_RANKING, frozenset({"hs_subheading"}), _RANK),
    "top_origins": _c(_RANKING, frozenset({"origin"}), _RANK),
    "trader_by_origin": _c(_RANKING, frozenset({"origin"}), _RANK),
    "top_sellers": _c(_RANKING, frozenset({"seller"}), _VALUE),
    "trader_by_supplier": _c(_RANKING, frozenset({"seller"}), _VALUE),
    "trader_by_office": _c(_RANKING, frozenset({"office"}), _VALUE),
    "office_workload": _c(_RANKING, frozenset({"office"}), _COUNT),
    "channel_stats": _c(frozenset({"breakdown", "total"}), frozenset({"channel"}),
                        frozenset({"declarations", "red_share"})),
    "trader_channels": _c(frozenset({"breakdown"}), frozenset({"channel"}),
                          frozenset({"declarations"})),
    "red_share_by_office": _c(_RANKING, frozenset({"office"}),
                              frozenset({"red_share", "declarations"})),
    "by_sector": _c(_RANKING, frozenset({"sector"}), _RANK | {"traders"}),
    "by_region": _c(_RANKING, frozenset({"region"}), _RANK | {"traders"}),
    "by_transport": _c(_RANKING, frozenset({"transport_mode"}), _VALUE),
    "by_procedure": _c(_RANKING, frozenset({"procedure"}), _COUNT),
    "by_incoterm": _c(_RANKING, frozenset({"incoterm"}), _COUNT),
    "new_traders": _c(frozenset({"first_seen"}), frozenset({"trader"}), _VALUE),
    "trader_unit_values": _c(frozenset({"breakdown"}),
                             frozenset({"hs_subheading", "hs_heading", "hs_chapter"}),
                             frozenset({"value_per_kg"})),
    "aeo_summary": _c(frozenset({"total", "breakdown"}), frozenset({"aeo_status"}),
                      frozenset({"traders", "customs_value"}), _SLOT_FILTERS | {"aeo_status"},
                      excludes=_NOT_AEO),
    "aeo_traders": _c(frozenset({"top", "breakdown"}), frozenset({"trader"}), _VALUE,
                      _SLOT_FILTERS | {"aeo_status"}, excludes=_NOT_AEO),
    "trader_related_party": _c(frozenset({"total", "breakdown"}), frozenset({"seller"}),
                               frozenset({"related_party_share", "customs_value"})),
    "related_party_traders": _c(_RANKING, frozenset({"trader"}),
                                frozenset({"related_party_share", "customs_value"}),
                                related=True),
    "audit_outcomes": _c(frozenset({"total", "breakdown"}), frozenset({"audit_outcome"}),
                         frozenset({"audits"})),
    "trader_audits": _c(frozenset({"total", "breakdown"}), frozenset({"audit_outcome"}),
                        frozenset({"audits"})),
}

# A follow-up that only changes the previous question ("and in 2023?", "only from China").
_ELLIPTIC = re.compile(r"^\s*(?:and|what about|how about|only|just|same|now|then|but|also|"
                       r"instead|in|for|from|by|per|excluding|without)\b", re.IGNORECASE)

# Problems of a plan that no verified intent could get right either (shown instead).
_IMPOSSIBLE = re.compile(r"data ends on|data starts on|between 1 and|ends before it starts|"
                         r"overlap|^There is no |is not a valid date|is an empty period|"
                         r"cannot be negative", re.IGNORECASE)

METRICS = {
    "value": ("sum(i.customs_value)", "value", "customs value"),
    "duty": ("sum(i.duty_amount)", "duty", "duty"),
    "mass": ("sum(i.net_mass_kg)", "mass_kg", "net mass"),
    "count": ("count(DISTINCT d.declaration_id)", "declarations", "number of declarations"),
}
GRAINS = {
    "month": ("strftime({d}.declaration_date, '%Y-%m')", "month"),
    "quarter": ("strftime({d}.declaration_date, '%Y') || '-Q' || quarter({d}.declaration_date)",
                "quarter"),
    "year": ("year({d}.declaration_date)", "year"),
}

# -- requests to change data -----------------------------------------------------------------------

_SQL_WRITE = re.compile(
    r"^\s*(?:insert|update|delete|drop|truncate|alter|create|replace|merge|grant|revoke|attach|"
    r"detach|copy|install|load|pragma|set|call|vacuum|checkpoint|upsert)\b|;\s*(?:insert|update|"
    r"delete|drop|truncate|alter|create)\b", re.IGNORECASE)
_POLITE = (r"^(?:please\s+|pls\s+|kindly\s+|(?:can|could|would|will)\s+you\s+(?:please\s+)?|"
           r"i\s+(?:want|need|would\s+like)\s+(?:you\s+)?to\s+|go\s+ahead\s+and\s+|let'?s\s+|"
           r"you\s+(?:should|must|need\s+to)\s+|now\s+|then\s+|and\s+)*")
_DESTRUCTIVE = re.compile(
    _POLITE + r"(?:delete|remove|erase|wipe|purge|drop|truncate|overwrite|alter|insert|rename|"
    r"void|amend|reset|destroy|clean\s+out|get\s+rid\s+of)\b", re.IGNORECASE)
_CHANGING = re.compile(
    _POLITE + r"(?:add|set|change|update|modify|edit|move|increase|decrease|lower|raise|adjust|"
    r"mark|flag|record|register|correct|fix|create|write|save|store|approve|assign|upgrade|"
    r"downgrade|replace|cancel|clear|reclassify|import\s+(?:this|these|the\s+file))\b",
    re.IGNORECASE)
_DATA_OBJECT = re.compile(
    r"\b(?:traders?|declarations?|records?|rows?|tables?|values?|entr(?:y|ies)|audits?|items?|"
    r"database|data|log|status|amounts?|dut(?:y|ies)|origins?|names?|columns?|compan(?:y|ies)|"
    r"importers?|exporters?|everything|all|risk|aeo|tin|codes?|country|currency|penalt(?:y|ies)|"
    r"as\s+\w+)\b", re.IGNORECASE)
_DISPLAY_ONLY = re.compile(
    r"\b(?:from|in|on|to)\s+the\s+(?:chart|table|graph|list|answer|results?|view)\b|"
    r"\b(?:chart|graph|table|column\s+chart)\b", re.IGNORECASE)


_ORDINAL = re.compile(
    r"\b(?:the\s+)?(first|second|third|fourth|fifth|top|largest|biggest|leading|last)\s+"
    r"(?:one|trader|company|importer|exporter|firm)\b", re.IGNORECASE)


def is_write_request(question: str) -> bool:
    """True when the question asks to change, add or delete data (never carried out)."""
    text = question.strip()
    if _SQL_WRITE.search(text):
        return True
    if _DISPLAY_ONLY.search(text):
        return False
    if _DESTRUCTIVE.match(text):
        return True
    return bool(_CHANGING.match(text) and _DATA_OBJECT.search(text))


def foreign_script_share(text: str) -> float:
    """The share of letters that are not Latin (Cyrillic, Hangul, Arabic, CJK...)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    other = 0
    for ch in letters:
        try:
            if not unicodedata.name(ch).startswith("LATIN"):
                other += 1
        except ValueError:
            other += 1
    return other / len(letters)


class _Formatter(string.Formatter):
    """str.format with officer-friendly number specs: money, int, num, pct, signed_pct, m."""

    def __init__(self, currency: str, metric: str) -> None:
        self.currency = currency
        self.metric = metric

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "money":
            return fmt_money(value, self.currency)
        if format_spec == "int":
            return "n/a" if value is None else f"{int(value):,}"
        if format_spec == "num":
            return fmt_num(value)
        if format_spec == "pct":
            return "n/a" if value is None else f"{float(value):.1f}%"
        if format_spec == "signed_pct":
            return "n/a" if value is None else f"{float(value):+.1f}%"
        if format_spec == "m":
            if self.metric in ("value", "duty"):
                return fmt_money(value, self.currency)
            if self.metric == "mass":
                return "n/a" if value is None else f"{fmt_num(value)} kg"
            return "n/a" if value is None else f"{int(value):,} declarations"
        if value is None:
            return "n/a"
        return super().format_field(value, format_spec)


class _Row:
    """Attribute access to a result row for templates (missing columns read as None)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._data.get(name)


@dataclass
class Plan:
    """What the engine decided to do with a question, before running anything."""

    kind: str  # intent | query | search | refuse | empty | too_long | foreign | clarify
    #            | need_trader | unknown_trader | problem | impossible | fallback
    question: str
    intent: Intent | None = None
    slots: Slots | None = None
    score: float = 0.0
    ranked: list[Match] = field(default_factory=list)
    follow_up: bool = False
    message: str = ""
    suggestions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    unexplained: list[str] = field(default_factory=list)
    query: QueryPlan | None = None  # kind "query": the analytical plan to compile and run

    @property
    def confident(self) -> bool:
        """True when the offline engine should answer even if an LLM is available: a
        follow-up, or a strong match whose words the intent accounts for."""
        if self.kind == "query":
            return not self.unexplained
        if self.kind in ("intent", "search"):
            return self.follow_up or (self.score >= HIGH_CONFIDENCE and not self.unexplained)
        return self.kind != "fallback"


@dataclass
class _Resolved:
    """Slot values after the intent's defaults are applied."""

    flow: str | None
    metric: str
    grain: str
    top_n: int
    period: Period | None
    period_a: Period | None = None
    period_b: Period | None = None
    year_a: int | None = None
    year_b: int | None = None


class OfflineEngine:
    """Answers from verified intents and the regulations index; no model needed.

    Heavy parts (SQL runner, slot look-ups, intent embeddings, search index) are built once,
    on first use, and shared by every thread.
    """

    name = "offline"

    def __init__(self, context: DataContext, matcher: Matcher | None = None,
                 library: IntentLibrary | None = None) -> None:
        """`context`: the trade data as the user's scope sees it; `matcher`: the intent matcher
        (scope-free, so one can serve every context; built here when not given)."""
        self.context = context
        self.library = library or (matcher.library if matcher is not None else load_intents())
        self._matcher = matcher
        self._defaults: dict[str, str] | None = None
        self._lock = threading.RLock()
        self.planner = Planner(context)

    @classmethod
    def open(cls, db_path: Path, index_dir: Path | None = None, *, scope: Scope | None = None,
             cache_dir: Path | None = None) -> OfflineEngine:
        """A stand-alone engine with a data context of its own (scripts, tests, benchmarks)."""
        library = load_intents()
        regulations = RegulationsIndex(index_dir) if index_dir is not None else None
        context = DataContext.open(db_path, scope, regulations=regulations)
        context.vocabulary = frozenset(library.vocabulary())
        return cls(context, Matcher(library, cache_dir), library)

    # -- shared parts, built once ------------------------------------------------------------------

    @property
    def runner(self) -> Runner:
        """The guarded SQL runner of the user's scope (DatabaseMissing without a database)."""
        return self.context.runner

    @property
    def analysis_runner(self) -> Runner:
        """The runner the risk and briefing tools use: the same scope as `runner`, with the
        long time limit and large row cap of tools.indicators.analysis_runner."""
        return self.context.analysis_runner

    @property
    def extractor(self) -> SlotExtractor:
        """Slot extraction over what the user's scope can see."""
        return self.context.extractor

    @property
    def matcher(self) -> Matcher:
        """The intent matcher (example embeddings computed on first use)."""
        with self._lock:
            if self._matcher is None:
                self._matcher = Matcher(self.library)
            return self._matcher

    def warm(self) -> None:
        """Build everything now (database look-ups, embeddings) instead of on the first question."""
        self.extractor  # noqa: B018
        self.matcher.centroids()
        self.matcher.question_vector("warm up")

    def searcher(self) -> Searcher:
        """The regulations searcher (TamgaError when no index is configured or built)."""
        return self.context.searcher()

    # -- the public API ---------------------------------------------------------------------------

    def answer(self, question: str, conversation: Conversation | None = None) -> Answer:
        """Plan and answer one question (conversation: for follow-ups; not recorded here)."""
        plan = self.plan(question, conversation)
        return self.execute(plan)

    def plan(self, question: str, conversation: Conversation | None = None) -> Plan:
        """Decide how to answer, without running the answer's SQL."""
        started = time.perf_counter()
        q = clean_question(question)
        if not q:
            return Plan("empty", q)
        if len(q) > MAX_QUESTION_CHARS:
            return Plan("too_long", q)
        if foreign_script_share(q) > 0.3:
            return Plan("foreign", q)
        if is_write_request(q):
            return Plan("refuse", q)
        t0 = time.perf_counter()
        slots = self.extractor.extract(q)
        last = conversation.last_answer if conversation is not None else None
        if slots.trader is None and last is not None:
            self._trader_from_table(q, slots, last)
        t1 = time.perf_counter()
        vector = self.matcher.question_vector(slots.masked)
        ranked_all = self.matcher.rank(slots.masked, None, vector)
        plan = self._decide(q, slots, ranked_all, vector, conversation)
        plan = self._consider_query_plan(plan, q, slots, conversation)
        if plan.kind == "fallback" and not plan.follow_up and self._reads_as_foreign(q):
            plan = Plan("search_foreign", q, slots=slots, ranked=plan.ranked)
        t2 = time.perf_counter()
        plan.timings.update({"slots_ms": (t1 - t0) * 1000, "match_ms": (t2 - t1) * 1000,
                             "plan_ms": (t2 - started) * 1000})
        return plan

    def _reads_as_foreign(self, q: str) -> bool:
        """A question in a Latin-script language other than English (see
        `Searcher.reads_as_foreign`); False when there is no regulations index."""
        try:
            return self.searcher().reads_as_foreign(q)
        except TamgaError:
            return False

    def _decide(self, q: str, slots: Slots, ranked_all: list[Match], vector: Any,
                conversation: Conversation | None) -> Plan:
        state = conversation.state if conversation is not None else None
        last = conversation.last_answer if conversation is not None else None
        if slots.trader_candidates:
            return Plan("clarify", q, slots=slots)
        if (state is not None and state.slots is not None and state.intent_id is not None
                and looks_like_follow_up(q, slots.masked, slots)):
            if state.query is not None:
                if _ELLIPTIC.match(q) and len(q.split()) <= 8:  # "and in 2023?", "only China"
                    return Plan("fallback", q, slots=slots, follow_up=True)
            else:
                return self._follow_up(q, slots, state, vector)
        if slots.problems:
            return Plan("problem", q, slots=slots, message=" ".join(slots.problems))
        impossible = self.planner.impossible(q)
        if impossible is not None:
            return Plan("impossible", q, slots=slots, message=impossible)
        if slots.trader is None and slots.pronoun:
            previous = state.slots.trader if state is not None and state.slots else None
            if previous is None and last is not None:
                previous = self._only_trader(last)
            if previous is not None:
                slots.trader = previous
                slots.notes.append(f"Taking 'they' to mean {previous.name} from the previous "
                                   "question.")
            elif ranked_all and ranked_all[0].intent.scope == "trader":
                return Plan("need_trader", q, slots=slots, ranked=ranked_all)
        if slots.trader is None and slots.unknown_name and ranked_all:
            best = ranked_all[0]
            if best.intent.scope == "trader" or best.intent.id == "trader_profile" \
                    or slots.unknown_is_trader:
                return Plan("unknown_trader", q, slots=slots, ranked=ranked_all)
        ranked = [m for m in ranked_all if self._allowed(m.intent, slots)]
        if not ranked or ranked[0].score < LOW_CONFIDENCE \
                or ranked[0].similarity < MIN_SIMILARITY:
            return Plan("fallback", q, slots=slots, ranked=ranked_all,
                        score=ranked[0].score if ranked else 0.0)
        top = ranked[0]
        if top.intent.kind == "search":
            return Plan("search", q, intent=top.intent, slots=slots, score=top.score,
                        ranked=ranked)
        return Plan("intent", q, intent=top.intent, slots=slots, score=top.score, ranked=ranked,
                    unexplained=unexplained_words(slots.masked, top.intent))

    def _consider_query_plan(self, plan: Plan, q: str, slots: Slots,
                             conversation: Conversation | None) -> Plan:
        """Answer from a query plan when the verified intents do not cover the question: no
        intent fits, the best one leaves words unexplained that the plan accounts for, or the
        question has a shape no intent has (growth ranking, share, peers, new traders...)."""
        state = conversation.state if conversation is not None else None
        if plan.follow_up and state is not None and state.query is not None:
            return self._query_follow_up(plan, q, slots, state)
        if plan.kind not in ("intent", "fallback", "problem") or plan.follow_up:
            return plan
        if plan.intent is not None and plan.intent.kind not in ("sql", "hs_lookup"):
            return plan  # the HS look-up says what a code covers; a figure about it is a plan's
        planned = self.planner.plan(q, slots)
        if planned.problem is not None:
            if plan.kind == "fallback" or _IMPOSSIBLE.search(planned.problem):
                return Plan("impossible", q, slots=slots, message=planned.problem,
                            ranked=plan.ranked)
            return plan
        if planned.plan is None:
            return plan
        covers_more = len(planned.unexplained) < len(plan.unexplained)
        query = planned.plan
        # An analytical intent whose coverage is known gives way to a plan it does not cover;
        # any other intent (profiles, listings, look-ups) only to a plan with a shape, measure
        # or filter of its own.
        known = plan.intent is not None and plan.intent.id in INTENT_COVERS
        intent = plan.intent
        # An analytical intent takes the question only when it gives the plan's measure and
        # shape (and keeps its filters): "item lines" ranked by value, a bottom-N answered by
        # a descending breakdown, a share answered by a trader's duty view are the plan's,
        # even when the plan, like the intent, leaves a word unplaced (but not when it leaves
        # more words unplaced than the intent: then it is the plan that misread).
        # An intent that would silently drop a filter the plan read ("rail declarations per
        # office") gives way even to a plan with more words it could not place.
        withheld = known and intent is not None and (
            drops_filter(intent.id, query, intent)
            or (not gives(intent.id, query, intent)
                and len(planned.unexplained) <= len(plan.unexplained)))
        use = (plan.kind == "fallback" and not planned.unexplained) or (
            plan.kind == "intent" and intent is not None
            and ((known and asks_more(intent.id, query, intent)) or planned.specific)
            and (covers_more or not planned.unexplained or withheld)
            and not intent_covers(intent.id, query, intent))
        if not use:
            return plan
        return Plan("query", q, slots=slots, score=plan.score, ranked=plan.ranked,
                    unexplained=planned.unexplained, query=planned.plan)

    def _query_follow_up(self, plan: Plan, q: str, slots: Slots, state: TurnState) -> Plan:
        """'and in 2023?', 'only from China', 'by month': the previous plan, changed."""
        previous: QueryPlan = state.query
        changes: dict[str, Any] = {}
        new = slots
        if new.periods:
            changes["period"] = PeriodSpec(start=new.periods[-1].start,
                                           end=new.periods[-1].end, name=new.periods[-1].name)
        filters = list(previous.filters)
        if new.countries:
            filters = [f for f in filters if f.dimension != "origin"] + [Filter(
                dimension="origin", values=[c.code for c in new.countries],
                labels=[c.name for c in new.countries])]
        if new.trader is not None:
            filters = [f for f in filters if f.dimension != "trader"] + [Filter(
                dimension="trader", values=[new.trader.trader_id], labels=[new.trader.name])]
        if new.office is not None:
            filters = [f for f in filters if f.dimension != "office"] + [Filter(
                dimension="office", values=[new.office])]
        changes["filters"] = filters
        if new.grain in ("month", "quarter", "year"):
            changes["dimensions"] = [new.grain]
            if previous.shape in ("total", "top", "bottom"):
                changes["shape"] = "breakdown"
        if new.top_n:
            changes["n"] = new.top_n
        try:
            if changes.get("period") is not None and previous.compare_to is not None and \
                    previous.shape in ("compare", "change_ranking", "set_difference"):
                changes["compare_to"] = None
                changes["shape"] = "breakdown" if previous.dimensions else "total"
            query = previous.with_changes(**changes)
        except (ValueError, TypeError) as exc:
            return Plan("impossible", q, slots=slots, message=str(exc))
        return Plan("query", q, slots=slots, score=1.0, follow_up=True, query=query)

    def _trader_from_table(self, q: str, slots: Slots, last: Answer) -> None:
        """'the first one', 'the second trader': a row of the previous answer's table."""
        m = _ORDINAL.search(q)
        table = last.table
        if m is None or table is None or "trader_id" not in table.columns:
            return
        k = {"first": 0, "top": 0, "largest": 0, "biggest": 0, "leading": 0, "second": 1,
             "third": 2, "fourth": 3, "fifth": 4, "last": len(table.rows) - 1}[m.group(1).lower()]
        if 0 <= k < len(table.rows):
            match = self.extractor.traders.get(str(table.rows[k][table.columns.index("trader_id")]))
            if match is not None:
                slots.trader = match
                slots.notes.append(f"Taking '{m.group(0)}' to mean {match.name}.")
                slots.masked = slots.masked.replace(m.group(0), MASKS["trader"], 1)
                slots.top_n = None  # "the first one" is a row, not a top-N

    def _only_trader(self, last: Answer) -> Any:
        """The trader of the previous answer when its table is about one trader only."""
        table = last.table
        if table is None or "trader_id" not in table.columns or not table.rows:
            return None
        ids = {row[table.columns.index("trader_id")] for row in table.rows}
        return self.extractor.traders.get(str(ids.pop())) if len(ids) == 1 else None

    @staticmethod
    def _allowed(intent: Intent, slots: Slots) -> bool:
        has_trader = slots.trader is not None
        if intent.scope == "trader" and not has_trader:
            return False
        if intent.scope == "national" and has_trader:
            return False
        if "hs" in intent.required and slots.hs is None:
            return False
        return not ("declaration" in intent.required and slots.declaration is None)

    def _follow_up(self, q: str, new: Slots, state: TurnState, vector: Any) -> Plan:
        assert state.slots is not None and state.intent_id is not None
        if new.problems:
            return Plan("problem", q, slots=new, message=" ".join(new.problems))
        merged = merge_slots(state.slots, new)
        last = self.library.get(state.intent_id)
        intent = last
        words = content_words(new.masked)
        ranked: list[Match] = []
        score = 1.0
        if words:
            ranked = self.matcher.rank(new.masked, lambda i: self._allowed(i, merged), vector)
            top = ranked[0] if ranked else None
            metric_only = last.accepts("metric") and bool(METRIC_ONLY.match(q))
            if (top is not None and top.intent.id != last.id and top.keywords > 0
                    and top.score >= LOW_CONFIDENCE and not metric_only):
                intent, score = top.intent, top.score
        if not self._allowed(intent, merged):
            ranked = self.matcher.rank(merged.masked, lambda i: self._allowed(i, merged), vector)
            if not ranked:
                return Plan("fallback", q, slots=merged)
            intent, score = ranked[0].intent, ranked[0].score
        kind = "search" if intent.kind == "search" else "intent"
        return Plan(kind, q, intent=intent, slots=merged, score=score, ranked=ranked,
                    follow_up=True)

    # -- running a plan ---------------------------------------------------------------------------

    def execute(self, plan: Plan) -> Answer:
        """Run a plan and write the answer (engine 'offline', or 'refused' for write requests)."""
        started = time.perf_counter()
        if plan.kind == "query" and plan.query is not None:
            answer = self.run_query(plan.query, plan.unexplained)
        elif plan.kind == "intent" and plan.intent is not None and plan.intent.kind == "tool":
            answer = self._run_tool(plan)
        elif plan.kind == "intent":
            answer = self._run_intent(plan)
        elif plan.kind in ("search", "search_foreign"):
            answer = self._run_search(plan)
        else:
            answer = self._say(plan)
        answer.timings.update(plan.timings)
        answer.timings["execute_ms"] = (time.perf_counter() - started) * 1000
        answer.elapsed_ms = answer.timings.get("plan_ms", 0.0) + answer.timings["execute_ms"]
        if plan.slots is not None:
            answer.slots = plan.slots.to_json()
            answer.warnings = list(dict.fromkeys([*plan.slots.notes, *answer.warnings]))
        return answer

    def state_of(self, plan: Plan) -> TurnState | None:
        """What a conversation should remember of an answered plan (None: nothing new)."""
        if plan.kind in ("intent", "search") and plan.intent is not None:
            return TurnState(plan.intent.id, plan.slots)
        if plan.kind == "query" and plan.query is not None:
            return TurnState("query", plan.slots, plan.query)
        return None

    def run_query(self, query: QueryPlan, unexplained: list[str] | None = None) -> Answer:
        """Compile a query plan, run it through the user's scoped runner, write the answer."""
        understood = plan_render.understood(query)
        try:
            sql = compile_plan(query)
            result = self.runner.run(sql)
        except TamgaError as exc:
            return Answer(f"I could not run the query for this question: {exc}",
                          engine="offline", intent=f"plan:{query.shape}", warnings=[str(exc)],
                          plan=query.model_dump(mode="json"), understood=understood)
        currency = self.extractor.facts.currency
        warnings = []
        if result.truncated:
            warnings.append(f"Only the first {len(result.rows):,} rows are shown.")
        if "invoice_value" in query.measures:
            warnings.append("Invoice values are in each declaration's invoice currency; their "
                            "sum mixes currencies. Customs value is in "
                            f"{currency}.")
        if unexplained:
            words = ", ".join(f'"{w}"' for w in unexplained)
            warnings.append(f"I answered the closest question I can verify ({understood[14:-1]}"
                            f"); it does not take {words} into account.")
        text = plan_render.answer_text(query, result.columns, result.rows, currency)
        table = Table(list(result.columns), [list(r) for r in result.rows],
                      title=understood[14:-1][:1].upper() + understood[15:-1],
                      truncated=result.truncated)
        return Answer(text, engine="offline", sql=[result.sql],
                      tables=[table], chart=plan_render.chart_for(query, result.columns,
                                                                   result.rows),
                      warnings=warnings, timings={"sql_ms": result.elapsed_ms},
                      intent=f"plan:{query.shape}", plan=query.model_dump(mode="json"),
                      understood=understood,
                      suggestions=plan_render.suggestions(query))

    def _say(self, plan: Plan) -> Answer:
        """Answers that run no SQL: refusals, odd input, clarifications, honest fallbacks."""
        slots = plan.slots
        if plan.kind == "refuse":
            return Answer(
                "I can't change data. Tamga only reads the trade data and the regulations: it "
                "never adds, edits or deletes anything. Records are changed in the customs "
                "system itself, by the people authorised to do so.",
                engine="refused",
                suggestions=self._suggest_default(3),
            )
        if plan.kind == "empty":
            return Answer("Ask me about the trade data (a trader's imports, top goods, origins, "
                          "control channels, duty) or about customs rules.", engine="offline",
                          suggestions=self._suggest_default(4))
        if plan.kind == "too_long":
            return Answer(f"That question is too long for me ({len(plan.question):,} characters;"
                          f" the limit is {MAX_QUESTION_CHARS:,}). Please ask one short question "
                          "at a time.", engine="offline", suggestions=self._suggest_default(3))
        if plan.kind == "foreign":
            return Answer("I can only read questions in English for now. Please ask in English; "
                          "trader names, HS codes and country names can stay as they are.",
                          engine="offline", suggestions=self._suggest_default(3))
        if plan.kind == "clarify" and slots is not None:
            names = slots.trader_candidates
            listed = "; ".join(f"{m.name} ({m.trader_id})" for m in names)
            suggestions = [self._replace_span(plan.question, slots.trader_text or "",
                                              f"{m.name} ({m.trader_id})") for m in names]
            return Answer(f'Several traders match "{slots.trader_text}": {listed}. Which one do '
                          "you mean?", engine="offline", suggestions=suggestions)
        if plan.kind == "need_trader":
            return Answer("Which trader do you mean? Name the company, its TIN or its trader "
                          "ID.", engine="offline", suggestions=self._closest(plan, 3))
        if plan.kind == "unknown_trader" and slots is not None:
            close = self.extractor.traders.find(slots.unknown_name or "", limit=3)
            text = f'No trader named "{slots.unknown_name}" in the data'
            if close:
                text += " (did you mean " + " or ".join(f"{m.name} ({m.trader_id})"
                                                        for m in close) + "?)"
            text += ". I did not answer without it, so that no figure is about the wrong company."
            suggestions = [self._replace_span(plan.question, slots.unknown_name or "", m.name)
                           for m in close]
            return Answer(text, engine="offline", suggestions=suggestions)
        if plan.kind == "problem":
            return Answer(plan.message + " Check the code, or name the goods in words.",
                          engine="offline", suggestions=self._suggest_default(3))
        if plan.kind == "impossible":
            return Answer(plan.message, engine="offline", suggestions=self._suggest_default(3))
        text = ("I can't answer that from the trade data or the indexed regulations. "
                "Here are the closest questions I can answer.")
        return Answer(text, engine="offline", suggestions=self._closest(plan, 3))

    @staticmethod
    def _replace_span(question: str, old: str, new: str) -> str:
        return question.replace(old, new, 1) if old and old in question else f"{question} ({new})"

    # -- suggestions ------------------------------------------------------------------------------

    def _default_fill(self) -> dict[str, str]:
        """Real values to put into example phrasings offered as suggestions."""
        with self._lock:
            if self._defaults is not None:
                return self._defaults
        facts = self.extractor.facts
        fill = {"trader": "", "period": str(facts.latest_year - 1), "country": "China",
                "hs": "85", "goods": "HS 85", "office": facts.offices[0] if facts.offices else "",
                "n": "10", "declaration": ""}
        try:
            top = self.runner.run(
                "SELECT t.name FROM declarations d JOIN declaration_items i ON i.declaration_id = "
                "d.declaration_id JOIN traders t ON t.trader_id = d.trader_id WHERE d.flow = "
                "'import' GROUP BY t.name ORDER BY sum(i.customs_value) DESC LIMIT 1").rows
            origin = self.runner.run(
                "SELECT c.name FROM declaration_items i JOIN countries c ON c.iso2 = "
                "i.origin_country GROUP BY c.name ORDER BY sum(i.customs_value) DESC LIMIT 1").rows
            chapter = self.runner.run(
                "SELECT left(hs_code, 2) FROM declaration_items GROUP BY 1 "
                "ORDER BY sum(customs_value) DESC LIMIT 1").rows
            office = self.runner.run(
                "SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) DESC "
                "LIMIT 1").rows
            latest = self.runner.run(
                "SELECT declaration_id FROM declarations ORDER BY declaration_date DESC, "
                "declaration_id DESC LIMIT 1").rows
        except TamgaError:
            top = origin = chapter = office = latest = []
        if top:
            fill["trader"] = top[0][0]
        if origin:
            fill["country"] = origin[0][0]
        if chapter:
            fill["hs"] = f"chapter {chapter[0][0]}"
            fill["goods"] = f"HS chapter {chapter[0][0]}"
        if office:
            fill["office"] = office[0][0]
        if latest:
            fill["declaration"] = latest[0][0]
        with self._lock:
            self._defaults = fill
        return fill

    def _example_for(self, intent: Intent, slots: Slots | None) -> str | None:
        fill = dict(self._default_fill())
        if slots is not None:
            if slots.trader:
                fill["trader"] = slots.trader.name
            if slots.country:
                fill["country"] = slots.country.name
            if slots.hs:
                fill["hs"] = slots.hs.code
                fill["goods"] = slots.hs.words or f"HS {slots.hs.code}"
            if slots.period:
                fill["period"] = slots.period.name
            if slots.office:
                fill["office"] = slots.office
        for example in intent.examples:
            needs = set(re.findall(r"\{(\w+)\}", example))
            if all(fill.get(n) for n in needs):
                return example.format(**fill)
        return None

    def _closest(self, plan: Plan, k: int) -> list[str]:
        out: list[str] = []
        for match in plan.ranked:
            if match.intent.kind == "search":
                continue
            example = self._example_for(match.intent, plan.slots)
            if example and example not in out:
                out.append(example)
            if len(out) >= k:
                break
        return out

    def _suggest_default(self, k: int) -> list[str]:
        picks = ["national_total", "top_traders", "trader_profile", "top_origins", "channel_stats"]
        out = []
        for intent_id in picks:
            example = self._example_for(self.library.get(intent_id), None)
            if example:
                out.append(example)
        return out[:k]

    # -- SQL intents ------------------------------------------------------------------------------

    def resolve(self, intent: Intent, slots: Slots) -> _Resolved:
        """Slot values with the intent's defaults applied and periods worked out."""
        ex = self.extractor
        flow = slots.flow if intent.accepts("flow") and slots.flow else intent.defaults.get("flow")
        if flow == "both":
            flow = None
        metric = slots.metric if intent.accepts("metric") and slots.metric else \
            intent.defaults.get("metric", "value")
        grain = slots.grain if intent.accepts("grain") and slots.grain else \
            intent.defaults.get("grain", "month")
        top_n = slots.top_n if intent.accepts("top_n") and slots.top_n else \
            int(intent.defaults.get("top_n", 10))
        resolved = _Resolved(flow, metric, grain, top_n, slots.period)
        if intent.period_mode == "compare":
            periods = sorted({p for p in slots.periods}, key=lambda p: (p.start, p.end))
            if len(periods) >= 2:
                a, b = periods[0], periods[-1]
            elif periods:
                b = periods[0]
                a = ex.previous(b, yoy=slots.yoy)
            else:
                latest = ex.facts.latest_date
                b = ex.extract("this year").periods[0] if latest.month != 12 or latest.day != 31 \
                    else ex.year_period(latest.year)
                a = ex.previous(b)
            resolved.period_a, resolved.period_b = ex.like_for_like(a, b), b
        elif intent.period_mode == "years":
            years = sorted({p.start.year for p in slots.periods})
            if len(years) >= 2:
                resolved.year_a, resolved.year_b = years[0], years[-1]
            elif years:
                resolved.year_a, resolved.year_b = years[0] - 1, years[0]
            else:
                latest = ex.facts.latest_date
                last_full = latest.year if (latest.month, latest.day) == (12, 31) \
                    else latest.year - 1
                resolved.year_a, resolved.year_b = last_full - 1, last_full
        elif intent.period_mode == "required" and resolved.period is None:
            latest = ex.facts.latest_date
            resolved.period = ex.extract(f"in {latest.year}").periods[0]
        return resolved

    def build_sql(self, intent: Intent, slots: Slots, resolved: _Resolved, sql: str) -> str:
        """The intent's SQL with code-made fragments and validated literals filled in."""
        d = intent.aliases.get("d", "d")
        i = intent.aliases.get("i", "i")
        params: dict[str, Any] = {"top_n": resolved.top_n}
        conds: list[str] = []
        item_conds: list[str] = []
        if slots.trader is not None and intent.accepts("trader"):
            conds.append(f"{d}.trader_id = $trader_id")
            params["trader_id"] = slots.trader.trader_id
        period = resolved.period
        if period is not None:
            params["date_from"], params["date_to"] = period.start, period.end
            if intent.period_mode == "filter" and intent.accepts("period"):
                conds.append(f"{d}.declaration_date >= $date_from AND "
                             f"{d}.declaration_date < $date_to")
        if resolved.flow is not None and (intent.accepts("flow") or "flow" in intent.defaults):
            conds.append(f"{d}.flow = $flow")
            params["flow"] = resolved.flow
        if slots.country is not None and intent.accepts("country"):
            item_conds.append("{i}.origin_country = $country")
            params["country"] = slots.country.code
        if slots.hs is not None and intent.accepts("hs"):
            item_conds.append("starts_with({i}.hs_code, $hs)")
            params["hs"] = slots.hs.code
        if slots.office is not None and intent.accepts("office"):
            conds.append(f"{d}.customs_office = $office")
            params["office"] = slots.office
        if slots.channel is not None and intent.accepts("channel"):
            conds.append(f"{d}.control_channel = $channel")
            params["channel"] = slots.channel
        if item_conds:
            if intent.items_joined:
                conds += [c.format(i=i) for c in item_conds]
            else:
                inner = " AND ".join(c.format(i="x") for c in item_conds)
                conds.append(f"EXISTS (SELECT 1 FROM declaration_items x WHERE x.declaration_id "
                             f"= {d}.declaration_id AND {inner})")
        if slots.declaration is not None:
            params["declaration_id"] = slots.declaration
        if resolved.period_a is not None and resolved.period_b is not None:
            a, b = resolved.period_a, resolved.period_b
            params.update(a_label=a.name, a_from=a.start, a_to=a.end,
                          b_label=b.name, b_from=b.start, b_to=b.end)
        if resolved.year_a is not None:
            params["year_a"], params["year_b"] = resolved.year_a, resolved.year_b
        metric_expr, metric_col, _ = METRICS[resolved.metric]
        measures = (f"count(DISTINCT {d}.declaration_id) AS declarations, "
                    f"round(sum({i}.customs_value), 2) AS value, "
                    f"round(sum({i}.duty_amount), 2) AS duty")
        if resolved.metric == "mass":
            measures += f", round(sum({i}.net_mass_kg), 2) AS mass_kg"
        grain_expr, grain_col = GRAINS[resolved.grain]
        audit_period = ""
        if period is not None and intent.accepts("period"):
            audit_period = "AND a.opened_on >= $date_from AND a.opened_on < $date_to"
        fragments = {
            "filters": "".join(f"\n      AND {c}" for c in conds),
            "measures": measures,
            "metric_expr": metric_expr,
            "metric_col": metric_col,
            "grain_expr": grain_expr.format(d=d),
            "grain_col": grain_col,
            "year_a": str(resolved.year_a or ""),
            "year_b": str(resolved.year_b or ""),
            "audit_period": audit_period,
        }
        text = sql.format(**fragments)
        text = re.sub(r"WHERE TRUE\s+AND\s+", "WHERE ", text)
        text = re.sub(r"\s*WHERE TRUE\s*\n", "\n", text)
        try:
            return bind(text, params)
        except KeyError as exc:
            raise SqlFailed(f"The question lacks a value this answer needs ({exc.args[0]}).") \
                from exc

    def _run_intent(self, plan: Plan) -> Answer:
        assert plan.intent is not None and plan.slots is not None
        intent, slots = plan.intent, plan.slots
        resolved = self.resolve(intent, slots)
        warnings: list[str] = []
        try:
            sql = self.build_sql(intent, slots, resolved, intent.sql)
            result = self.runner.run(sql)
            extra = []
            for query in intent.more_sql:
                extra.append((query.title, self.runner.run(
                    self.build_sql(intent, slots, resolved, query.sql))))
        except TamgaError as exc:
            return Answer(f"I could not run the query for this question: {exc}", engine="offline",
                          intent=intent.id, warnings=[str(exc)])
        if result.truncated:
            warnings.append(f"Only the first {len(result.rows):,} rows are shown.")
        if plan.unexplained:
            words = ", ".join(f'"{w}"' for w in plan.unexplained)
            warnings.append(f"I answered the closest question I can verify ({intent.title}); "
                            f"it does not take {words} into account.")
        text, empty = self._render_text(intent, slots, resolved, result)
        table = self._table(intent, result)
        tables = [table] + [Table(list(r.columns), [list(x) for x in r.rows], title=title,
                                  truncated=r.truncated) for title, r in extra]
        chart = None if empty else self._chart(intent, slots, resolved, result, warnings)
        return Answer(
            text,
            engine="offline",
            sql=[result.sql] + [r.sql for _, r in extra],
            tables=tables,
            chart=chart,
            warnings=warnings,
            timings={"sql_ms": result.elapsed_ms + sum(r.elapsed_ms for _, r in extra)},
            suggestions=list(intent.follow_ups),
            intent=intent.id,
        )

    def _run_tool(self, plan: Plan) -> Answer:
        """A tool intent: the risk or briefing tool named by the intent, on the user's scope."""
        assert plan.intent is not None and plan.slots is not None
        intent = plan.intent
        recorder = RecordingRunner(self.analysis_runner)
        regulations = self.context.regulations
        request = ToolRequest(plan.question, intent, plan.slots, recorder, self.extractor,
                              self.extractor.facts.currency,
                              regulations if regulations is not None and regulations.exists()
                              else None)
        started = time.perf_counter()
        try:
            answer = TOOLS[intent.tool](request)
        except TamgaError as exc:
            answer = Answer(f"I could not run {intent.title.lower()}: {exc}",
                            engine="offline", warnings=[str(exc)])
        answer.intent = intent.id
        answer.sql = list(recorder.statements)
        answer.warnings = [*request.notes, *answer.warnings]
        if plan.unexplained:
            words = ", ".join(f'"{w}"' for w in plan.unexplained)
            answer.warnings.append(f"I answered the closest question I can verify "
                                   f"({intent.title}); it does not take {words} into account.")
        if not answer.suggestions:
            answer.suggestions = list(intent.follow_ups)
        answer.timings.update({"sql_ms": recorder.elapsed_ms,
                               "tool_ms": (time.perf_counter() - started) * 1000})
        return answer

    def _table(self, intent: Intent, result: QueryResult) -> Table:
        if intent.display == "pivot" and len(result.rows) == 1:
            rows = [[col, val] for col, val in zip(result.columns, result.rows[0], strict=True)]
            return Table(["field", "value"], rows, title=intent.title)
        return Table(list(result.columns), [list(r) for r in result.rows], title=intent.title,
                     truncated=result.truncated)

    def _chart(self, intent: Intent, slots: Slots, resolved: _Resolved, result: QueryResult,
               warnings: list[str]) -> dict[str, Any] | None:
        if intent.display == "pivot":
            if slots.chart:
                warnings.append("This answer is a profile, not a series: there is nothing to "
                                "chart.")
            return None
        spec = dict(intent.chart) if intent.chart else None
        metric_col = METRICS[resolved.metric][1]
        if spec is None and slots.chart:
            numeric = [c for k, c in enumerate(result.columns)
                       if result.rows and all(isinstance(r[k], int | float) and not
                                              isinstance(r[k], bool) for r in result.rows
                                              if r[k] is not None)]
            text_cols = [c for c in result.columns if c not in numeric]
            if numeric and text_cols:
                spec = {"kind": "bar", "x": text_cols[0], "y": numeric[0]}
        if spec is None:
            return None
        fill = {"metric_col": metric_col, "grain_col": GRAINS[resolved.grain][1],
                "year_b": str(resolved.year_b or "")}
        spec = {k: (v.format(**fill) if isinstance(v, str) else v) for k, v in spec.items()}
        if len(result.rows) < 2 or spec.get("x") not in result.columns \
                or spec.get("y") not in result.columns:
            if slots.chart:
                warnings.append("There is only one row, so there is nothing to chart.")
            return None
        spec.setdefault("color", None)
        spec["title"] = intent.title
        return spec

    def _render_text(self, intent: Intent, slots: Slots, resolved: _Resolved,
                     result: QueryResult) -> tuple[str, bool]:
        records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        currency = self.extractor.facts.currency
        metric_col = METRICS[resolved.metric][1]
        ctx = self._template_context(intent, slots, resolved, records, metric_col)
        formatter = _Formatter(currency, resolved.metric)
        empty = not records or self._empty_when(intent.empty_when, records[0])
        template = intent.empty if empty and intent.empty else intent.answer
        try:
            text = formatter.format(template, **ctx)
        except (KeyError, AttributeError, ValueError, TypeError, IndexError) as exc:
            text = f"{intent.title}: {len(records):,} rows (the summary sentence failed: {exc})."
        return " ".join(text.split()), empty

    @staticmethod
    def _empty_when(condition: str | None, first: dict[str, Any]) -> bool:
        if not condition:
            return False
        m = re.fullmatch(r"row\.(\w+)\s*==\s*(-?\d+)", condition.strip())
        if not m:
            return False
        value = first.get(m.group(1))
        return value is None or value == int(m.group(2))

    def _template_context(self, intent: Intent, slots: Slots, resolved: _Resolved,
                          records: list[dict[str, Any]], metric_col: str) -> dict[str, Any]:
        def with_aliases(rec: dict[str, Any]) -> dict[str, Any]:
            out = dict(rec)
            for side, year in (("a", resolved.year_a), ("b", resolved.year_b)):
                if year is None:
                    continue
                for stem in ("value", "origin"):
                    if f"{stem}_{year}" in rec:
                        out[f"{stem}_{side}"] = rec[f"{stem}_{year}"]
                if f"share_{year}_pct" in rec:
                    out[f"share_{side}"] = rec[f"share_{year}_pct"]
            return out

        rows = [with_aliases(r) for r in records]
        first = rows[0] if rows else {}
        last = rows[-1] if rows else {}
        totals: dict[str, Any] = {}
        for key in first:
            values = [r.get(key) for r in rows]
            if values and all(isinstance(v, int | float) and not isinstance(v, bool)
                              for v in values if v is not None):
                totals[key] = round(sum(v for v in values if v is not None), 2)
        grain_col = GRAINS[resolved.grain][1]
        peak_row: dict[str, Any] = {}
        numeric_rows = [r for r in rows if isinstance(r.get(metric_col), int | float)]
        if numeric_rows:
            peak_row = dict(max(numeric_rows, key=lambda r: r[metric_col]))
            peak_row["label"] = peak_row.get(grain_col)
        flow = resolved.flow
        flows = {"import": "imports", "export": "exports"}.get(flow or "", "imports and exports")
        flowed = {"import": "imported", "export": "exported"}.get(flow or "", "traded")
        parts = []
        if slots.country is not None and intent.accepts("country"):
            parts.append(f" from {slots.country.name}")
        if slots.hs is not None and intent.accepts("hs"):
            parts.append(f" of {slots.hs.label}")
        if slots.office is not None and intent.accepts("office"):
            parts.append(f" at {slots.office}")
        if slots.channel is not None and intent.accepts("channel"):
            parts.append(f" in the {slots.channel} channel")
        period = resolved.period
        if intent.period_mode in ("compare", "years"):
            when = ""
        elif period is not None and intent.accepts("period"):
            when = period.label
        else:
            when = self.extractor.all_data().label
        channel_summary = ", ".join(
            f"{r.get('channel')} {int(r.get('declarations') or 0):,} "
            f"({float(r.get('share_pct') or 0):.1f}%)" for r in rows if "channel" in r)
        return {
            "row": _Row(first), "last": _Row(last), "total": _Row(totals),
            "peak": _Row(peak_row), "n": len(rows),
            "subject": slots.trader.name if slots.trader else "",
            "trader": slots.trader.name if slots.trader else "",
            "when": when, "filters": "".join(parts),
            "flow": flow or "import and export", "flows": flows, "flowed": flowed,
            "flow_title": flows.capitalize(),
            "currency": self.extractor.facts.currency,
            "metric_label": METRICS[resolved.metric][2],
            "top_metric": first.get(metric_col), "total_metric": totals.get(metric_col),
            "peak_metric": peak_row.get(metric_col),
            "grain": resolved.grain, "year_a": resolved.year_a, "year_b": resolved.year_b,
            "channel_summary": channel_summary,
            "hs_code": slots.hs.code if slots.hs else "",
        }

    # -- rule questions ---------------------------------------------------------------------------

    def _run_search(self, plan: Plan) -> Answer:
        started = time.perf_counter()
        try:
            citations = search_regulations(self.searcher(), plan.question, k=SEARCH_K)[:3]
        except TamgaError as exc:
            return Answer("I can't search the regulations right now: " + str(exc),
                          engine="offline", intent="regulation_lookup", warnings=[str(exc)])
        search_ms = (time.perf_counter() - started) * 1000
        if not citations:
            return Answer("I found nothing in the indexed regulations and guidance about that.",
                          engine="offline", intent="regulation_lookup",
                          timings={"search_ms": search_ms})
        lines = ["Here is what the indexed regulations and guidance say (quoted, best match "
                 "first; I do not paraphrase rules):"]
        warnings: list[str] = []
        if plan.kind == "search_foreign":
            lines = ["I read data questions in English only, and this one does not look like "
                     "English. For rules, these are the passages of the indexed regulations "
                     "and guidance closest to your question, found by the multilingual search "
                     "(quoted in English, best match first):"]
            warnings.append("Not read as English: the regulations were searched with the "
                            "multilingual model (and, for Spanish customs words, their English "
                            "terms). Ask data questions in English.")
        for n, citation in enumerate(citations, 1):
            quote = best_excerpt(citation.text, plan.question)
            lines.append(f'[{n}] {citation.locator} ({citation.source}): "{quote}"')
        return Answer("\n\n".join(lines), engine="offline", citations=citations,
                      intent="regulation_lookup", timings={"search_ms": search_ms},
                      suggestions=[], warnings=warnings)
