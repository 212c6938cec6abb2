"""Finding traders by name (fuzzy), TIN or trader ID, and a trader's profile in figures.

Names are compared folded: accents stripped, lower case, punctuation dropped, legal forms
("S.A.", "S. de R.L.", "Corp.", "Inc.", "Ltd" ...) removed for the "core" name, so "Oller and
Benitez Plastics" finds "Oller & Benítez Plastics, S. de R.L.".

    index = load_trader_index(runner)
    index.find("oller benitez")          # best matches for a name, TIN or ID
    index.mentions("What did Oller & Benitez import in 2024?")   # a trader named in a question
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tamga.errors import UnknownTrader
from tamga.sqltext import sql_literal

if TYPE_CHECKING:
    from tools.runner import Runner

# Legal forms and filler removed from the end of a name to get its core.
LEGAL_FORMS = frozenset({
    "sa", "sas", "s", "de", "rl", "cv", "corp", "corporation", "inc", "incorporated", "ltd",
    "ltda", "limited", "llc", "plc", "srl", "gmbh", "ag", "bv", "nv", "co", "company", "spa",
    "sl", "sarl", "jsc", "oy", "ab", "pte", "pty", "kg", "eirl", "sac",
})
# Business words many names share: never enough on their own to name a trader.
NAME_FILLERS = frozenset([
    "trading", "trade", "traders", "international", "import", "export", "imports", "exports",
    "group", "grupo", "inversiones", "distribuidora", "importadora", "comercial", "global",
    "wholesale", "distributors", "distribution", "food", "foods", "supplies", "supply",
    "packaging", "plastics", "machinery", "motors", "pharma", "apparel", "electronics", "textiles",
    "chemicals", "materials", "materiales", "home", "digital", "moda", "fashion", "equipment",
    "agro", "alimentos", "building", "construction", "beauty", "health", "personal", "care",
    "metals", "paper", "leather", "polymers", "autos", "drinks", "quimica", "maquinaria", "panama",
    "logistics", "services", "industries", "holdings", "enterprises", "partners", "solutions",
    "company", "corporation", "shipping", "freight", "cargo", "general", "products", "industrial",
])
_TOKEN = re.compile(r"[a-z0-9]+")
MAX_CANDIDATES = 8


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> tuple[str, ...]:
    """The folded pieces of one character: accents dropped, lower case, others a space."""
    pieces = []
    for part in unicodedata.normalize("NFKD", ch):
        if unicodedata.combining(part):
            continue
        low = part.lower()
        pieces.append(low if low.isalnum() else " ")
    return tuple(pieces)


def fold_text(text: str) -> tuple[str, list[int]]:
    """Lower-cased, accent-free text plus, for each of its characters, the index in `text`."""
    out: list[str] = []
    where: list[int] = []
    skip = -1
    for i, ch in enumerate(text):
        if ch == "." or i == skip:  # "S.A." -> "sa", "Corp." -> "corp"
            continue
        if ch in "'’" and text[i + 1:i + 2].lower() == "s" and not text[i + 2:i + 3].isalnum():
            skip = i + 1  # possessive: "Puma's" -> "puma"
            continue
        pieces = _fold_char(ch)
        out.extend(pieces)
        where.extend([i] * len(pieces))
    return "".join(out), where


def fold(text: str) -> str:
    """`text` folded for comparison: 'Oller & Benítez, S. de R.L.' -> 'oller benitez s de rl'."""
    return " ".join(t for t in _TOKEN.findall(fold_text(text)[0]) if t != "and")


def core_name(name: str) -> str:
    """A folded name without its trailing legal form ('oller benitez plastics')."""
    tokens = fold(name).split()
    while len(tokens) > 1 and tokens[-1] in LEGAL_FORMS:
        tokens.pop()
    return " ".join(tokens)


def fold_code(text: str) -> str:
    """Only the letters and digits of a code, lower case ('62-1892631' -> '621892631')."""
    return "".join(ch for ch in fold_text(text)[0] if ch.isalnum())


@dataclass(frozen=True)
class TraderMatch:
    """A trader that matches a name, TIN or ID, with how well (0-100) and by what."""

    trader_id: str
    name: str
    tin: str | None
    score: float
    how: str  # "id" | "tin" | "name" | "core" | "fuzzy" | "word"

    def to_json(self) -> dict[str, Any]:
        """A plain dict for tools and JSON output."""
        return {"trader_id": self.trader_id, "name": self.name, "tin": self.tin,
                "score": round(self.score, 1), "matched_by": self.how}


@dataclass
class TraderMention:
    """A trader named in a question: where (character span) and which trader(s) it can be."""

    start: int
    end: int
    text: str
    matches: list[TraderMatch]

    @property
    def ambiguous(self) -> bool:
        """More than one trader fits equally well."""
        return len(self.matches) > 1


@dataclass
class _Row:
    trader_id: str
    name: str
    tin: str | None
    full: str
    core: str


@dataclass
class TraderIndex:
    """All traders of one database, indexed for exact, fuzzy and word look-ups."""

    rows: list[_Row]
    by_id: dict[str, int] = field(default_factory=dict)
    by_tin: dict[str, list[int]] = field(default_factory=dict)
    by_full: dict[str, list[int]] = field(default_factory=dict)
    by_core: dict[str, list[int]] = field(default_factory=dict)
    by_word: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, traders: Iterable[tuple[str, str, str | None]]) -> TraderIndex:
        """Index (trader_id, name, tin) triples."""
        return cls._index([_Row(str(tid), str(name), tin, fold(str(name)), core_name(str(name)))
                           for tid, name, tin in traders])

    @classmethod
    def _index(cls, rows: list[_Row]) -> TraderIndex:
        index = cls(rows)
        for n, row in enumerate(rows):
            index.by_id[row.trader_id.lower()] = n
            code = fold_code(row.tin or "")
            if len(code) >= 6 and sum(ch.isdigit() for ch in code) >= 5:
                index.by_tin.setdefault(code, []).append(n)
            index.by_full.setdefault(row.full, []).append(n)
            index.by_core.setdefault(row.core, []).append(n)
            for word in set(row.core.split()):
                index.by_word.setdefault(word, []).append(n)
        return index

    def to_json(self) -> list[list[str | None]]:
        """The indexed rows as plain lists (for the look-up cache; the maps are rebuilt)."""
        return [[r.trader_id, r.name, r.tin, r.full, r.core] for r in self.rows]

    @classmethod
    def from_json(cls, rows: list[list[str | None]]) -> TraderIndex:
        """The index of rows written by `to_json` (names already folded: no folding again)."""
        return cls._index([_Row(str(r[0]), str(r[1]), r[2], str(r[3]), str(r[4])) for r in rows])

    def __len__(self) -> int:
        return len(self.rows)

    def _match(self, n: int, score: float, how: str) -> TraderMatch:
        row = self.rows[n]
        return TraderMatch(row.trader_id, row.name, row.tin, score, how)

    def get(self, trader_id: str) -> TraderMatch | None:
        """The trader with this exact ID (case-insensitive), or None."""
        n = self.by_id.get(trader_id.strip().lower())
        return None if n is None else self._match(n, 100.0, "id")

    # -- look-up of an explicit name, TIN or ID (tools, the LLM agent) ---------------------------

    def find(self, query: str, limit: int = 5) -> list[TraderMatch]:
        """Traders matching `query` (ID, TIN, exact or fuzzy name), best first."""
        from rapidfuzz import fuzz, process

        query = (query or "").strip()
        if not query:
            return []
        exact = self.get(query)
        if exact:
            return [exact]
        code = fold_code(query)
        if code in self.by_tin:
            return [self._match(n, 100.0, "tin") for n in self.by_tin[code]][:limit]
        full = fold(query)
        if full in self.by_full:
            return [self._match(n, 100.0, "name") for n in self.by_full[full]][:limit]
        core = core_name(query)
        if core in self.by_core:
            return [self._match(n, 97.0, "core") for n in self.by_core[core]][:limit]
        found = process.extract(core, [r.core for r in self.rows], scorer=fuzz.WRatio,
                                limit=limit, score_cutoff=60)
        return [self._match(n, float(score), "fuzzy") for _, score, n in found]

    # -- a trader named somewhere in a question ----------------------------------------------------

    def mentions(self, question: str, common_words: set[str] | frozenset[str] = frozenset()
                 ) -> TraderMention | None:
        """The trader(s) a question names, by ID, TIN, full or core name, close spelling or a
        distinctive word of the name; None when it names none.

        `common_words` are words that never count as a name on their own (question words,
        goods, countries).
        """
        folded, where = fold_text(question)
        tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(folded)
                  if m.group() != "and"]
        if not tokens:
            return None

        def span(i: int, j: int) -> tuple[int, int, str]:
            start = where[tokens[i][1]]
            end = where[tokens[j - 1][2] - 1] + 1
            return start, end, question[start:end]

        for i, (tok, _, _) in enumerate(tokens):  # trader ID
            if tok in self.by_id:
                s, e, text = span(i, i + 1)
                return TraderMention(s, e, text, [self._match(self.by_id[tok], 100.0, "id")])
        tin = self._tin_mention(question)
        if tin:
            return tin
        best: tuple[int, int, str, list[int]] | None = None  # (i, j, how, rows)
        for length in range(min(8, len(tokens)), 0, -1):
            for i in range(len(tokens) - length + 1):
                key = " ".join(t for t, _, _ in tokens[i:i + length])
                for how, table in (("name", self.by_full), ("core", self.by_core)):
                    hits = table.get(key)
                    if not hits:
                        continue
                    if length == 1 and not self._name_word_ok(question, tokens[i], where,
                                                              common_words):
                        continue
                    best = (i, i + length, how, hits)
                    break
                if best:
                    break
            if best:
                break
        if best:
            i, j, how, hits = best
            s, e, text = span(i, j)
            score = 100.0 if how == "name" else 97.0
            return TraderMention(s, e, text, [self._match(n, score, how) for n in hits])
        fuzzy = self._fuzzy_mention(question, tokens, where, common_words)
        if fuzzy:
            return fuzzy
        return self._word_mention(question, tokens, where, common_words)

    def _tin_mention(self, question: str) -> TraderMention | None:
        folded, where = fold_text(question)
        alnum = [(ch, where[k]) for k, ch in enumerate(folded) if ch.isalnum()]
        flat = "".join(ch for ch, _ in alnum)
        for code, rows in self.by_tin.items():
            pos = flat.find(code)
            while pos >= 0:
                start = alnum[pos][1]
                end = alnum[pos + len(code) - 1][1] + 1
                before = question[start - 1] if start > 0 else " "
                after = question[end] if end < len(question) else " "
                if not before.isalnum() and not after.isalnum():
                    return TraderMention(start, end, question[start:end],
                                         [self._match(n, 100.0, "tin") for n in rows])
                pos = flat.find(code, pos + 1)
        return None

    @staticmethod
    def _name_word_ok(question: str, token: tuple[str, int, int], where: list[int],
                      common_words: set[str] | frozenset[str]) -> bool:
        """A one-word name counts unless it is a common word written in lower case or
        opening the question."""
        word, start, _ = token
        if word not in common_words:
            return len(word) >= 3
        original = question[where[start]]
        return original.isupper() and where[start] > 0

    def _fuzzy_mention(self, question: str, tokens: list[tuple[str, int, int]],
                       where: list[int], common_words: set[str] | frozenset[str]
                       ) -> TraderMention | None:
        from rapidfuzz import fuzz, process

        cores = [r.core for r in self.rows]
        best: tuple[float, int, int, list[int]] | None = None
        for length in range(2, min(6, len(tokens)) + 1):
            for i in range(len(tokens) - length + 1):
                words = [t for t, _, _ in tokens[i:i + length]]
                if sum(w not in common_words for w in words) < 2 or len(" ".join(words)) < 8:
                    continue
                key = " ".join(words)
                found = process.extract(key, cores, scorer=fuzz.ratio, score_cutoff=88, limit=5)
                if not found:
                    continue
                top = found[0][1]
                hits = [n for _, score, n in found if score >= top - 1.0]
                if best is None or top > best[0]:
                    best = (float(top), i, i + length, hits)
        if best is None:
            return None
        score, i, j, hits = best
        start = where[tokens[i][1]]
        end = where[tokens[j - 1][2] - 1] + 1
        return TraderMention(start, end, question[start:end],
                             [self._match(n, score, "fuzzy") for n in hits])

    def _word_mention(self, question: str, tokens: list[tuple[str, int, int]],
                      where: list[int], common_words: set[str] | frozenset[str]
                      ) -> TraderMention | None:
        """A distinctive word of a name ('Ferrera' for 'Inversiones Ferrera, Corp.')."""
        best: tuple[int, int, list[int]] | None = None
        for k, (tok, start, _) in enumerate(tokens):
            if (len(tok) < 4 or tok.isdigit() or tok in LEGAL_FORMS or tok in common_words
                    or tok in NAME_FILLERS):
                continue
            hits = self.by_word.get(tok)
            if not hits or len(hits) > MAX_CANDIDATES:
                continue
            if not question[where[start]].isupper() and len(hits) > 1:
                continue  # a lower-case word naming several traders is too weak a hint
            if best is None or len(hits) < len(best[2]):
                best = (k, k + 1, hits)
        if best is None:
            return None
        i, j, hits = best
        # widen to a following word that narrows the candidates ("Puma Moda")
        while j < len(tokens):
            narrowed = [n for n in hits if tokens[j][0] in self.rows[n].core.split()]
            if not narrowed or tokens[j][0] in common_words:
                break
            hits, j = narrowed, j + 1
        start = where[tokens[i][1]]
        end = where[tokens[j - 1][2] - 1] + 1
        score = 85.0 if len(hits) == 1 else 70.0
        return TraderMention(start, end, question[start:end],
                             [self._match(n, score, "word") for n in hits])


# -- loading -------------------------------------------------------------------------------------


def load_trader_index(runner: Runner) -> TraderIndex:
    """The index of the traders `runner` can see (an officer's runner: only the traders with
    declarations in the officer's offices). Build it once per (database, scope) and pass it
    on; nothing here caches it."""
    result = runner.run("SELECT trader_id, name, tin FROM traders ORDER BY trader_id")
    return TraderIndex.build((r[0], r[1], r[2]) for r in result.rows)


@dataclass
class TraderProfile:
    """Who a trader is, and its trade, control and audit record in figures."""

    trader_id: str
    name: str
    tin: str | None
    country: str | None
    region: str | None
    sector: str | None
    aeo_status: str | None
    registered_on: str | None
    figures: dict[str, Any]
    top_chapters: list[dict[str, Any]]
    top_origins: list[dict[str, Any]]
    audits: list[dict[str, Any]]
    sql: list[str]

    def to_json(self) -> dict[str, Any]:
        """Everything as plain JSON data (the SQL that produced it included)."""
        return {
            "trader_id": self.trader_id, "name": self.name, "tin": self.tin,
            "country": self.country, "region": self.region, "sector": self.sector,
            "aeo_status": self.aeo_status, "registered_on": self.registered_on,
            "figures": self.figures, "top_chapters": self.top_chapters,
            "top_origins": self.top_origins, "audits": self.audits,
        }


def trader_profile(runner: Runner, trader_id: str, traders: TraderIndex) -> TraderProfile:
    """The profile of one trader of `traders` (the index of the runner's scope); raises
    UnknownTrader when the ID is not there."""
    match = traders.get(trader_id)
    if match is None:
        raise UnknownTrader(f"No trader with ID {trader_id!r}. Use find_trader to look it up.")
    tid = sql_literal(match.trader_id)
    queries = {
        "trader": f"SELECT trader_id, name, tin, country, region, sector, aeo_status, "
                  f"registered_on FROM traders WHERE trader_id = {tid}",
        "figures": (
            "SELECT count(DISTINCT d.declaration_id) AS declarations, "
            "min(d.declaration_date) AS first_declaration, "
            "max(d.declaration_date) AS last_declaration, "
            "round(sum(i.customs_value) FILTER (WHERE d.flow = 'import'), 2) AS import_value, "
            "round(sum(i.customs_value) FILTER (WHERE d.flow = 'export'), 2) AS export_value, "
            "round(sum(i.duty_amount), 2) AS duty_paid, "
            "round(100.0 * count(DISTINCT d.declaration_id) FILTER "
            "(WHERE d.control_channel = 'red') / nullif(count(DISTINCT d.declaration_id), 0), 1) "
            "AS red_share_pct, "
            "round(100.0 * sum(i.customs_value) FILTER (WHERE i.related_party) "
            "/ nullif(sum(i.customs_value), 0), 1) AS related_party_share_pct "
            "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
            f"WHERE d.trader_id = {tid}"
        ),
        "chapters": (
            "SELECT left(i.hs_code, 2) AS chapter, round(sum(i.customs_value), 2) AS value "
            "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
            f"WHERE d.trader_id = {tid} AND d.flow = 'import' "
            "GROUP BY 1 ORDER BY value DESC LIMIT 5"
        ),
        "origins": (
            "SELECT i.origin_country AS origin, round(sum(i.customs_value), 2) AS value "
            "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
            f"WHERE d.trader_id = {tid} AND d.flow = 'import' "
            "GROUP BY 1 ORDER BY value DESC LIMIT 5"
        ),
        "audits": (
            "SELECT audit_id, opened_on, closed_on, audit_type, outcome, additional_duty, "
            f"penalty_amount FROM audits WHERE trader_id = {tid} ORDER BY opened_on DESC"
        ),
    }
    results = {key: runner.run(sql) for key, sql in queries.items()}

    def records(key: str) -> list[dict[str, Any]]:
        res = results[key]
        return [dict(zip(res.columns, row, strict=True)) for row in res.rows]

    trader = records("trader")[0]
    return TraderProfile(
        trader_id=trader["trader_id"], name=trader["name"], tin=trader["tin"],
        country=trader["country"], region=trader["region"], sector=trader["sector"],
        aeo_status=trader["aeo_status"], registered_on=trader["registered_on"],
        figures=records("figures")[0], top_chapters=records("chapters"),
        top_origins=records("origins"), audits=records("audits"),
        sql=[r.sql for r in results.values()],
    )
