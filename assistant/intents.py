"""The verified intent library (assistant/intents.yaml): loading and validation.

An intent is one kind of question the offline engine answers with checked SQL. The library is
data; this module only reads it and refuses a library that would let user text reach SQL.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tamga.errors import TamgaError

SLOT_NAMES = frozenset({
    "trader", "period", "period_b", "flow", "country", "hs", "office", "channel", "metric",
    "grain", "top_n", "declaration",
})
SCOPES = frozenset({"trader", "national", "any"})
KINDS = frozenset({"sql", "search", "hs_lookup", "tool"})
# Functions a `kind: tool` intent may name (the registry is assistant/tool_intents.py).
TOOL_NAMES = frozenset({"audit_candidates", "trader_score", "trader_briefing", "period_briefing"})
PERIOD_MODES = frozenset({"filter", "compare", "years", "required"})
# The only `{...}` fragments allowed in SQL text; each is produced by code from validated slots.
SQL_FRAGMENTS = frozenset({
    "filters", "measures", "metric_expr", "metric_col", "grain_expr", "grain_col",
    "year_a", "year_b", "audit_period",
})
# The only `$name` parameters allowed in SQL text; their values are validated slot values.
SQL_PARAMS = frozenset({
    "trader_id", "date_from", "date_to", "flow", "country", "hs", "office", "channel",
    "top_n", "a_label", "a_from", "a_to", "b_label", "b_from", "b_to", "year_a", "year_b",
    "declaration_id",
})
# Names an answer template may use (see offline.py, `_template_context`).
TEMPLATE_NAMES = frozenset({
    "row", "last", "total", "peak", "n", "subject", "trader", "when", "filters", "flow", "flows",
    "flowed", "flow_title", "currency", "metric_label", "top_metric", "total_metric",
    "peak_metric", "grain", "year_a", "year_b", "channel_summary", "hs_code",
})
PLACEHOLDERS = frozenset({
    "trader", "period", "country", "hs", "goods", "office", "n", "declaration",
})
_PARAM_RE = re.compile(r"\$([a-z_]+)")


class IntentLibraryError(TamgaError):
    """The intent library file is malformed (a developer error, reported with the intent id)."""


@dataclass(frozen=True)
class ExtraQuery:
    """A further table an intent shows after its main result."""

    title: str
    sql: str


@dataclass
class Intent:
    """One verified question type: phrasings, slots, SQL, answer template, chart hint."""

    id: str
    title: str
    description: str
    scope: str
    examples: list[str]
    kind: str = "sql"
    tool: str = ""
    keywords: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    sql: str = ""
    more_sql: list[ExtraQuery] = field(default_factory=list)
    answer: str = ""
    empty: str = ""
    empty_when: str | None = None
    chart: dict[str, Any] | None = None
    display: str | None = None
    follow_ups: list[str] = field(default_factory=list)
    items_joined: bool = True
    aliases: dict[str, str] = field(default_factory=dict)
    period_mode: str = "filter"
    requires_keyword: bool = False
    keyword_patterns: list[re.Pattern[str]] = field(default_factory=list, repr=False)
    keyword_weights: list[int] = field(default_factory=list, repr=False)

    @property
    def accepted(self) -> set[str]:
        """Every slot this intent uses (required or optional)."""
        return set(self.required) | set(self.optional)

    def accepts(self, slot: str) -> bool:
        """True when the intent uses `slot`."""
        return slot in self.required or slot in self.optional

    def keyword_hits(self, text: str) -> int:
        """The weights of the intent's keyword patterns that occur in `text` (lower-cased)."""
        return sum(w for p, w in zip(self.keyword_patterns, self.keyword_weights, strict=True)
                   if p.search(text))

    def stems(self) -> frozenset[str]:
        """Word stems (first five letters) of the intent's phrasings, title, description and
        keywords: the words a question matched to this intent is expected to use."""
        cached = self.__dict__.get("_stems")
        if cached is None:
            text = " ".join([self.title, self.description, *self.examples, *self.keywords])
            text = re.sub(r"\{[a-z_]+\}", " ", text).lower()
            cached = frozenset(stem(w) for w in re.findall(r"[a-z]{3,}", text))
            self.__dict__["_stems"] = cached
        return cached

    def example_texts(self, fill: dict[str, str]) -> list[str]:
        """The example phrasings with placeholders replaced by `fill` values."""
        return [ex.format(**fill) for ex in self.examples]


@dataclass
class IntentLibrary:
    """All intents, in file order, with look-up by id."""

    intents: list[Intent]

    def __post_init__(self) -> None:
        self.by_id = {i.id: i for i in self.intents}

    def __len__(self) -> int:
        return len(self.intents)

    def __iter__(self) -> Iterator[Intent]:
        return iter(self.intents)

    def get(self, intent_id: str) -> Intent:
        """The intent with this id (KeyError when unknown)."""
        return self.by_id[intent_id]

    def vocabulary(self) -> set[str]:
        """Lower-case words used in the library's phrasings, titles and descriptions."""
        words: set[str] = set()
        for intent in self.intents:
            text = " ".join([intent.title, intent.description, *intent.examples])
            text = re.sub(r"\{[a-z_]+\}", " ", text)
            words.update(w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 1)
        return words


def stem(word: str) -> str:
    """A crude stem for comparing words: the first five letters ('audited' -> 'audit')."""
    return word.lower()[:5]


def _fields(template: str) -> set[str]:
    """Top-level names used by a str.format template."""
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            names.add(re.split(r"[.\[]", name, maxsplit=1)[0])
    return names


def _check_sql(intent_id: str, sql: str) -> None:
    fragments = _fields(sql)
    bad = fragments - SQL_FRAGMENTS
    if bad:
        raise IntentLibraryError(f"intent {intent_id}: unknown SQL fragment(s) {sorted(bad)}")
    params = set(_PARAM_RE.findall(sql))
    bad = params - SQL_PARAMS
    if bad:
        raise IntentLibraryError(f"intent {intent_id}: unknown SQL parameter(s) {sorted(bad)}")
    if ";" in sql.strip().rstrip(";"):
        raise IntentLibraryError(f"intent {intent_id}: one statement per query")


def _compile_keywords(intent_id: str, keywords: list[str]
                      ) -> tuple[list[re.Pattern[str]], list[int]]:
    """Compile keyword patterns; each leading '!' adds one to a keyword's weight of 1."""
    patterns, weights = [], []
    for kw in keywords:
        body = kw.lstrip("!")
        try:
            patterns.append(re.compile(rf"(?<![\w-]){body}(?![\w-])", re.IGNORECASE))
        except re.error as exc:
            raise IntentLibraryError(f"intent {intent_id}: bad keyword {kw!r}: {exc}") from exc
        weights.append(1 + len(kw) - len(body))
    return patterns, weights


def parse_intent(raw: dict[str, Any]) -> Intent:
    """One validated Intent from its YAML mapping."""
    intent_id = str(raw.get("id", "")).strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]*", intent_id):
        raise IntentLibraryError(f"bad or missing intent id: {intent_id!r}")
    known = {
        "id", "title", "description", "scope", "kind", "examples", "keywords", "slots",
        "defaults", "sql", "more_sql", "answer", "empty", "empty_when", "chart", "display",
        "follow_ups", "items_joined", "aliases", "period_mode", "requires_keyword", "tool",
    }
    unknown = set(raw) - known
    if unknown:
        raise IntentLibraryError(f"intent {intent_id}: unknown key(s) {sorted(unknown)}")
    for key in ("title", "description", "scope", "examples"):
        if not raw.get(key):
            raise IntentLibraryError(f"intent {intent_id}: missing {key}")
    scope = raw["scope"]
    kind = raw.get("kind", "sql")
    if scope not in SCOPES:
        raise IntentLibraryError(f"intent {intent_id}: scope must be one of {sorted(SCOPES)}")
    if kind not in KINDS:
        raise IntentLibraryError(f"intent {intent_id}: kind must be one of {sorted(KINDS)}")
    examples = [str(e) for e in raw["examples"]]
    if len(examples) < 5:
        raise IntentLibraryError(f"intent {intent_id}: needs at least 5 example phrasings")
    for ex in examples:
        bad = _fields(ex) - PLACEHOLDERS
        if bad:
            raise IntentLibraryError(f"intent {intent_id}: unknown placeholder(s) {sorted(bad)}")
    slots = raw.get("slots") or {}
    required = list(slots.get("required") or [])
    optional = list(slots.get("optional") or [])
    bad = (set(required) | set(optional)) - SLOT_NAMES
    if bad:
        raise IntentLibraryError(f"intent {intent_id}: unknown slot(s) {sorted(bad)}")
    if scope == "trader" and "trader" not in required:
        raise IntentLibraryError(f"intent {intent_id}: trader scope needs a required trader slot")
    sql = str(raw.get("sql") or "")
    more = [ExtraQuery(str(m["title"]), str(m["sql"])) for m in raw.get("more_sql") or []]
    if kind == "sql":
        if not sql:
            raise IntentLibraryError(f"intent {intent_id}: missing sql")
        if not raw.get("answer"):
            raise IntentLibraryError(f"intent {intent_id}: missing answer template")
    tool = str(raw.get("tool") or "")
    if kind == "tool":
        if tool not in TOOL_NAMES:
            raise IntentLibraryError(f"intent {intent_id}: tool must be one of "
                                     f"{sorted(TOOL_NAMES)}")
        if sql or more:
            raise IntentLibraryError(f"intent {intent_id}: a tool intent has no SQL of its own")
    elif tool:
        raise IntentLibraryError(f"intent {intent_id}: only a tool intent names a tool")
    for text in [sql, *(m.sql for m in more)]:
        _check_sql(intent_id, text)
    answer = str(raw.get("answer") or "").strip()
    empty = str(raw.get("empty") or "").strip()
    for template in (answer, empty):
        bad = _fields(template) - TEMPLATE_NAMES
        if bad:
            raise IntentLibraryError(f"intent {intent_id}: unknown template name(s) {sorted(bad)}")
    chart = raw.get("chart")
    if chart is not None and (chart.get("kind") not in ("bar", "line") or not chart.get("x")):
        raise IntentLibraryError(f"intent {intent_id}: chart needs kind bar|line and x, y")
    period_mode = raw.get("period_mode", "filter")
    if period_mode not in PERIOD_MODES:
        raise IntentLibraryError(f"intent {intent_id}: bad period_mode {period_mode!r}")
    keywords = [str(k) for k in raw.get("keywords") or []]
    patterns, weights = _compile_keywords(intent_id, keywords)
    return Intent(
        id=intent_id,
        title=str(raw["title"]),
        description=str(raw["description"]),
        scope=scope,
        kind=kind,
        tool=tool,
        examples=examples,
        keywords=keywords,
        required=required,
        optional=optional,
        defaults=dict(raw.get("defaults") or {}),
        sql=sql,
        more_sql=more,
        answer=" ".join(answer.split()),
        empty=" ".join(empty.split()),
        empty_when=raw.get("empty_when"),
        chart=dict(chart) if chart else None,
        display=raw.get("display"),
        follow_ups=[str(f) for f in raw.get("follow_ups") or []],
        items_joined=bool(raw.get("items_joined", True)),
        aliases=dict(raw.get("aliases") or {}),
        period_mode=period_mode,
        requires_keyword=bool(raw.get("requires_keyword", False)),
        keyword_patterns=patterns,
        keyword_weights=weights,
    )


def parse_library(text: str) -> IntentLibrary:
    """Parse and validate a whole library from YAML text."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it
    data = yaml.load(text, Loader=loader)
    if not isinstance(data, list):
        raise IntentLibraryError("the intent library must be a YAML list of intents")
    intents = [parse_intent(item) for item in data]
    ids = [i.id for i in intents]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise IntentLibraryError(f"duplicate intent id(s): {sorted(dupes)}")
    return IntentLibrary(intents)


def library_text(path: Path | None = None) -> str:
    """The YAML text of the library (the packaged one unless `path` is given)."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    return resources.files("assistant").joinpath("intents.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def load_intents(path: Path | None = None) -> IntentLibrary:
    """The validated intent library (cached per path)."""
    return parse_library(library_text(path))
