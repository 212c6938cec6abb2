"""Slot extraction: the trader, periods, goods, countries, office, top-N and measure in a question.

Everything is read from the question and checked against the database, so a slot value is
always something the data knows (a trader_id, an ISO country code, an HS code in the
nomenclature, an office name): nothing the officer typed reaches SQL text as such.

Relative periods ("this year", "last quarter", "last 3 months") count from the latest
declaration date in the data, not from today: the data is the officer's "now".
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from tamga.period import Period, add_months, month_name, short_month_name
from tamga.sqltext import sql_literal
from tools.runner import reporting_currency
from tools.traders import LEGAL_FORMS, TraderIndex, TraderMatch, fold_text

if TYPE_CHECKING:
    from tools.runner import Runner

MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9,
    "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12,
    "december": 12,
}
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "fifty": 50, "hundred": 100, "a": 1,
}
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
            "4th": 4}
MAX_TOP_N = 100

_M = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
      r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_Y = r"((?:19|20)\d\d)"
_N = (r"(\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
      r"thirty|fifty)")
_HS_CUE = (r"(?:hs|hs code|hs codes|code|codes|tariff|tariff code|tariff line|commodity code|hts|"
           r"heading|headings|subheading|chapter|chapters|position)")

# Everyday words for goods -> HS code (chapter, heading or subheading). Checked against the
# nomenclature when loaded; entries whose code is missing are dropped.
GOODS_SYNONYMS: dict[str, str] = {
    "coffee": "0901", "tea": "0902", "rice": "1006", "wheat": "1001", "maize": "1005",
    "corn": "1005", "sugar": "1701", "cocoa": "18", "chocolate": "1806", "bananas": "0803",
    "banana": "0803", "fruit": "08", "fruits": "08", "vegetables": "07", "fish": "03",
    "seafood": "03", "shrimp": "0306", "shrimps": "0306", "meat": "02", "beef": "0202",
    "chicken": "0207", "poultry": "0207", "dairy": "04", "milk": "0402", "cheese": "0406",
    "beer": "2203", "wine": "2204", "wines": "2204", "spirits": "2208", "whisky": "2208",
    "whiskey": "2208", "rum": "2208", "vodka": "2208", "tobacco": "24", "cigarettes": "2402",
    "cement": "2523", "crude oil": "2709", "petroleum": "2709", "fuel": "2710",
    "diesel": "2710", "gasoline": "2710", "petrol": "2710", "medicines": "3004",
    "medicine": "3004", "medicaments": "3004", "drugs": "3004", "pharmaceuticals": "30",
    "pharmaceutical products": "30", "fertilisers": "31", "fertilizers": "31",
    "cosmetics": "33", "perfume": "3303", "perfumes": "3303", "soap": "3401",
    "plastics": "39", "plastic": "39", "tyres": "4011", "tires": "4011", "tyre": "4011",
    "tire": "4011", "rubber": "40", "leather": "41", "wood": "44", "timber": "44",
    "lumber": "44", "paper": "48", "cardboard": "4819", "cotton": "52", "clothing": "62",
    "clothes": "62", "apparel": "62", "garments": "62", "knitwear": "61", "footwear": "64",
    "shoes": "64", "boots": "64", "sneakers": "64", "iron and steel": "72", "steel": "72",
    "iron": "72", "steel products": "73", "articles of steel": "73", "aluminium": "76",
    "aluminum": "76", "copper": "74", "machinery": "84", "machines": "84",
    "computers": "8471", "laptops": "847130", "laptop": "847130", "notebooks": "847130",
    "mobile phones": "851713", "mobile phone": "851713", "smartphones": "851713",
    "smartphone": "851713", "cell phones": "851713", "cellphones": "851713",
    "phones": "851713", "televisions": "8528", "tvs": "8528", "electronics": "85",
    "electrical equipment": "85", "solar panels": "854143", "solar modules": "854143",
    "cars": "8703", "passenger cars": "8703", "automobiles": "8703", "motor cars": "8703",
    "vehicles": "87", "trucks": "8704", "lorries": "8704", "motorcycles": "8711",
    "car parts": "8708", "auto parts": "8708", "vehicle parts": "8708",
    "spare parts": "8708", "furniture": "94", "toys": "9503", "sports equipment": "9506",
    "watches": "91", "jewellery": "7113", "jewelry": "7113", "gold": "7108", "glass": "70",
    "ceramics": "69", "paint": "3208", "paints": "3208", "air conditioners": "8415",
    "refrigerators": "8418", "fridges": "8418", "washing machines": "8450",
    "medical devices": "9018", "batteries": "8507", "cables": "8544", "tools": "82",
    "textiles": "63", "fabrics": "60", "pasta": "1902", "biscuits": "1905",
    "chemicals": "38", "detergents": "3402", "packaging": "4819", "seeds": "12",
}

# Country names people use that are not ISO short names, and adjectives.
COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US", "u s": "US", "us": "US", "united states of america": "US", "america": "US",
    "the states": "US", "uk": "GB", "britain": "GB", "great britain": "GB", "england": "GB",
    "uae": "AE", "emirates": "AE", "korea": "KR", "south korea": "KR", "north korea": "KP",
    "russia": "RU", "vietnam": "VN", "viet nam": "VN", "taiwan": "TW", "iran": "IR",
    "syria": "SY", "laos": "LA", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
    "moldova": "MD", "ivory coast": "CI", "cote d ivoire": "CI", "czech republic": "CZ",
    "czechia": "CZ", "holland": "NL", "the netherlands": "NL", "turkey": "TR",
    "turkiye": "TR", "hong kong": "HK", "macau": "MO", "brunei": "BN", "cape verde": "CV",
    "burma": "MM", "swaziland": "SZ", "east timor": "TL", "vatican": "VA",
    "chinese": "CN", "german": "DE", "turkish": "TR", "russian": "RU", "korean": "KR",
    "vietnamese": "VN", "indian": "IN", "japanese": "JP", "american": "US", "italian": "IT",
    "french": "FR", "british": "GB", "brazilian": "BR", "thai": "TH", "malaysian": "MY",
    "indonesian": "ID", "spanish": "ES", "dutch": "NL", "mexican": "MX", "canadian": "CA",
    "colombian": "CO", "chilean": "CL", "peruvian": "PE", "costa rican": "CR",
    "panamanian": "PA", "ecuadorian": "EC", "argentinian": "AR", "argentine": "AR",
    "taiwanese": "TW", "swiss": "CH", "belgian": "BE", "polish": "PL", "pakistani": "PK",
    "bangladeshi": "BD", "egyptian": "EG", "australian": "AU", "guatemalan": "GT",
    "honduran": "HN", "nicaraguan": "NI", "salvadoran": "SV", "dominican": "DO",
}
# Before a code word, these make it a country code ('dispatch country CO').
_NAMES_A_COUNTRY = re.compile(r"\b(?:country|countries|origin|code)\s+$", re.IGNORECASE)
# After a code word, these make it a country code ('DE origin', 'CO-origin goods').
_COUNTRY_FOLLOWS = re.compile(r"^[- ](?:origin|origin(?:ating|ated)|made)\b", re.IGNORECASE)
# Two-letter words that are also country codes: only taken as codes when written in capitals
# and not one of these everyday words.
_CODE_WORDS = frozenset({
    "IN", "IT", "AT", "BE", "NO", "TO", "ME", "AM", "IS", "OR", "AS", "BY", "DO", "GO", "SO",
    "ID", "MY", "HE", "WE", "AN", "IF", "OF", "ON", "UP", "OK", "HI", "PA", "MA", "LA", "AD",
    "AI", "AL", "AR", "BO", "CA", "CO", "DE", "EC", "ES", "FI", "GA", "GE", "IL", "KY", "MD",
    "MT", "NE", "PE", "PR", "SC", "SE", "SH", "TV", "VA", "MS", "MO", "NC", "SD", "PM",
})
_ALPHA3_WORDS = frozenset({
    "USD", "EUR", "VAT", "AEO", "CIF", "FOB", "EXW", "DAP", "DDP", "CFR", "FCA", "CPT", "CIP",
    "TIN", "SQL", "CSV", "KCS", "WTO", "WCO", "GDP", "CEO", "LLC", "JSC", "PLC", "LTD", "INC",
    "HTS", "ANY", "ALL", "AND", "THE", "FOR", "TOP", "CAN", "HOW", "WHO", "ARE", "NOT", "PER",
    "YES", "SUM", "MAX", "MIN", "AVG", "BEL", "GUM", "ARM", "COL", "PRT", "MAR", "DEC", "JAN",
    "AGO", "PAN", "TUR", "IND", "BOL", "TON",
})
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off",
    "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same",
    "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves", "please", "show", "me", "give", "tell", "list", "get", "let", "us", "want",
    "need", "see", "find", "know", "make", "much", "many", "one", "ones", "any", "also", "much",
    "per", "via", "vs", "versus", "thing", "things", "stuff", "bit", "lot", "lots", "kind", "sort",
    "way", "ok", "okay", "thanks", "thank", "hi", "hello", "hey", "like", "well", "really",
    "instead", "only", "just", "same", "again", "more", "less", "still", "even", "ever", "yet",
    "so", "far", "already",
])

_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ud800-\udfff]")


_SHORTHAND: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement) for pattern, replacement in (
        (r"\bqtrs\b", "quarters"), (r"\bqtr\b", "quarter"),
        (r"\byrs\b", "years"), (r"\byr\b", "year"), (r"\bly\b", "last year"),
        (r"\bm(?:n)?ths\b", "months"), (r"\bm(?:n)?th\b", "month"),
        (r"\b(?:decls|decs)\b", "declarations"), (r"\bdecl\b", "declaration"),
        (r"\bavg\b", "average"), (r"\bqty\b", "quantity"),
        (r"(?<![\w#])#\s*of\b|\bno\.\s*of\b", "number of"),
        (r"(?<![\w#])#\s*(?=[a-z])", "number of "),
        (r"\bch(?:ap)?\.?\s*(?=\d{1,2}\b)", "chapter "),
        (r"(?<=\d)\s+v\.?\s+(?=(?:q[1-4]\s+)?(?:19|20)\d\d\b)", " vs "),
        (r"(?<=[a-z])\s*/\s*(?=(?:kg|kilo|unit|item|tonne|ton)s?\b)", " per "),
        (r"\s*[,-]?\s*\b(?:pls|plz|please)\b", ""),
        (r"\bw/o\b", "without"), (r"\bw/(?=\s)", "with"), (r"\baddl\b", "additional"),
        (r"(?<![\w<>=])>=\s*(?=[$\d])", "at least "), (r"(?<![\w<>=])<=\s*(?=[$\d])", "at most "),
        (r"(?<![\w<>=-])>\s*(?=[$\d])", "above "), (r"(?<![\w<>=-])<\s*(?=[$\d])", "below "),
        (r"\bapprox\.?(?=\s)", "about"),
        (r"\bctrys\b|\bctries\b", "countries"), (r"\bctry\b", "country"),
        (r"\bccys\b", "currencies"), (r"\bccy\b", "currency"),
        (r"\bproc\.?(?=\s+\d{4}\b)", "procedure"),
        (r"\bpref(?:erence)?\.?[\s-]*(?:code[\s-]*)?(?=\d{2,4}\b)", "preference code "),
        (r"\bpref\.? (?=codes?\b)", "preference "),
        (r"(?<=\b(?:19|20)\d\d)\s*->\s*(?=(?:19|20)\d\d\b)", " vs "),  # "2024->2025"
        (r"(?<=[a-z])\s*/\s*(?=(?:pair|piece)s?\b)", " per "),
        # "last quarter v the quarter before", "AEO v non-AEO" (not "Section V", "Part V")
        (r"(?<!\bsection)(?<!\bpart)(?<!\bannex)(?<!\bchapter)(?<!\btitle)(?<!\barticle)"
         r"(?<=[\w)])\s+v\.?\s+(?=[\w(])", " vs "),
    ))


def expand_shorthand(text: str) -> str:
    """The question with officers' shorthand written out ("last qtr" -> "last quarter", "yr",
    "ly", "decs", "ch 02", "2024 v 2025", "value/kg"), so every reader of it sees plain words."""
    for pattern, replacement in _SHORTHAND:
        text = pattern.sub(replacement, text)
    return text


def clean_question(text: str) -> str:
    """The question with control and invisible characters (and lone surrogates, which no
    encoder accepts) removed, officers' shorthand written out and spaces collapsed."""
    text = _CONTROL.sub(" ", text or "")
    return " ".join(expand_shorthand(" ".join(text.split())).split())


@dataclass(frozen=True)
class HsRef:
    """An HS code the question refers to (by code or by goods word) and what it covers."""

    code: str
    level: int
    description: str
    via: str  # "code" | "goods" | "description"
    words: str = ""

    @property
    def label(self) -> str:
        """'HS chapter 85', 'HS heading 0901 (Coffee)'."""
        kind = {2: "chapter", 4: "heading", 6: "subheading"}.get(self.level, "code")
        desc = self.description.split(";")[0].split(",")[0].strip()
        if len(desc) > 40:
            desc = desc[:37].rstrip() + "..."
        return f"HS {kind} {self.code} ({desc})" if desc else f"HS {kind} {self.code}"


@dataclass(frozen=True)
class CountryRef:
    """An ISO 3166-1 alpha-2 country code and its name."""

    code: str
    name: str


@dataclass
class Slots:
    """What a question says, in values the database knows."""

    trader: TraderMatch | None = None
    trader_candidates: list[TraderMatch] = field(default_factory=list)
    trader_text: str | None = None
    unknown_name: str | None = None
    unknown_is_trader: bool = False  # the name stands where a question names a trader
    periods: list[Period] = field(default_factory=list)
    range_period: Period | None = None
    flow: str | None = None  # "import" | "export" | "both"
    countries: list[CountryRef] = field(default_factory=list)
    hs: HsRef | None = None
    office: str | None = None
    channel: str | None = None
    metric: str | None = None
    grain: str | None = None
    top_n: int | None = None
    declaration: str | None = None
    chart: bool = False
    pronoun: bool = False
    yoy: bool = False
    like_for_like: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    masked: str = ""
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def country(self) -> CountryRef | None:
        """The first country named."""
        return self.countries[0] if self.countries else None

    @property
    def period(self) -> Period | None:
        """The period to filter on: a range if one was given, else the first period named."""
        if self.range_period is not None:
            return self.range_period
        return self.periods[0] if self.periods else None

    def names(self) -> set[str]:
        """Names of the slots that carry a value."""
        out = set()
        for name in ("trader", "flow", "hs", "office", "channel", "metric", "grain", "top_n",
                     "declaration"):
            if getattr(self, name) is not None:
                out.add(name)
        if self.countries:
            out.add("country")
        if self.period is not None:
            out.add("period")
        if len(self.periods) > 1:
            out.add("period_b")
        return out

    def copy(self) -> Slots:
        """A copy whose lists can be changed without touching this one."""
        return replace(self, trader_candidates=list(self.trader_candidates),
                       periods=list(self.periods), countries=list(self.countries),
                       problems=list(self.problems), notes=list(self.notes),
                       spans=list(self.spans))

    def to_json(self) -> dict[str, Any]:
        """The filled slots as plain JSON data (for answers, logs and the UI)."""
        out: dict[str, Any] = {}
        if self.trader:
            out["trader"] = {"trader_id": self.trader.trader_id, "name": self.trader.name}
        if self.period:
            out["period"] = self.period.to_json()
        if len(self.periods) > 1:
            out["periods"] = [p.to_json() for p in self.periods]
        if self.countries:
            out["country"] = [c.code for c in self.countries]
        if self.hs:
            out["hs"] = {"code": self.hs.code, "level": self.hs.level, "via": self.hs.via}
        for name in ("flow", "office", "channel", "metric", "grain", "top_n", "declaration"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass
class DataFacts:
    """What slot extraction needs to know about one database, loaded once."""

    first_date: date
    latest_date: date
    currency: str
    offices: list[str]
    countries: dict[str, str]  # iso2 -> name
    hs: dict[str, tuple[int, str]]  # code -> (level, description)
    hs_words: dict[str, list[str]] = field(default_factory=dict)  # description word -> codes

    def __post_init__(self) -> None:
        if not self.hs_words:
            self.hs_words = hs_word_index(self.hs)

    @property
    def latest_year(self) -> int:
        """The year of the latest declaration."""
        return self.latest_date.year

    def to_json(self) -> dict[str, Any]:
        """Everything as plain JSON data (for the look-up cache)."""
        return {"first_date": self.first_date.isoformat(),
                "latest_date": self.latest_date.isoformat(), "currency": self.currency,
                "offices": self.offices, "countries": self.countries,
                "hs": {code: [level, desc] for code, (level, desc) in self.hs.items()},
                "hs_words": self.hs_words}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataFacts:
        """The facts written by `to_json`."""
        return cls(date.fromisoformat(data["first_date"]), date.fromisoformat(data["latest_date"]),
                   str(data["currency"]), list(data["offices"]), dict(data["countries"]),
                   {code: (int(v[0]), str(v[1])) for code, v in data["hs"].items()},
                   dict(data["hs_words"]))


def hs_word_index(hs: dict[str, tuple[int, str]]) -> dict[str, list[str]]:
    """The chapters, headings and subheadings whose description holds each word (4+ letters)."""
    words: dict[str, list[str]] = {}
    for code, (level, desc) in hs.items():
        if level not in (2, 4, 6):
            continue
        for word in set(re.findall(r"[a-z]{4,}", fold_plain(desc))):
            words.setdefault(word, []).append(code)
    return words


def _fetch_all(runner: Runner, sql: str) -> list[list[Any]]:
    """All rows of `sql` (ordered by its first column), paging past the runner's row cap."""
    rows: list[list[Any]] = []
    page = runner.row_cap
    while True:
        result = runner.run(f"{sql} ORDER BY 1 LIMIT {page} OFFSET {len(rows)}")
        rows.extend(result.rows)
        if len(result.rows) < page:
            return rows


def load_facts(runner: Runner) -> DataFacts:
    """Dates, currency, offices, countries and HS codes of the runner's database."""
    span = runner.run("SELECT min(declaration_date), max(declaration_date) FROM declarations")
    first, latest = span.rows[0] if span.rows else (None, None)
    today = date.today()
    first_date = date.fromisoformat(first) if first else today
    latest_date = date.fromisoformat(latest) if latest else today
    offices = [r[0] for r in _fetch_all(
        runner,
        "SELECT DISTINCT customs_office FROM declarations WHERE customs_office IS NOT NULL")]
    countries = {r[0]: r[1] for r in _fetch_all(runner, "SELECT iso2, name FROM countries")}
    hs = {r[0]: (int(r[1]), r[2]) for r in _fetch_all(
        runner, "SELECT code, level, description FROM hs_nomenclature")}
    return DataFacts(first_date, latest_date, reporting_currency(runner), offices, countries, hs)


class _Text:
    """The question folded for matching, with the spans already claimed by a slot."""

    def __init__(self, question: str) -> None:
        self.original = question
        self.folded, self.where = fold_text(question)
        self.claimed: list[tuple[int, int, str]] = []  # spans in the ORIGINAL text

    def free(self, fs: int, fe: int) -> bool:
        """True when folded span [fs, fe) overlaps no claimed span."""
        s, e = self.orig_span(fs, fe)
        return all(e <= cs or s >= ce for cs, ce, _ in self.claimed)

    def orig_span(self, fs: int, fe: int) -> tuple[int, int]:
        """The original-text span of folded span [fs, fe)."""
        fe = max(fe, fs + 1)
        return self.where[fs], self.where[min(fe, len(self.where)) - 1] + 1

    def claim_orig(self, s: int, e: int, kind: str) -> None:
        """Mark an original-text span as used by a slot of `kind`."""
        self.claimed.append((s, e, kind))

    def claim(self, fs: int, fe: int, kind: str) -> None:
        """Mark folded span [fs, fe) as used by a slot of `kind`."""
        s, e = self.orig_span(fs, fe)
        self.claim_orig(s, e, kind)

    def free_folded(self) -> str:
        """The folded text with every claimed span blanked out."""
        chars = list(self.folded)
        for k, orig in enumerate(self.where):
            if any(cs <= orig < ce for cs, ce, _ in self.claimed):
                chars[k] = " "
        return "".join(chars)

    def finditer(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        """Matches of `pattern` in the folded text that touch no claimed span."""
        return [m for m in pattern.finditer(self.folded) if self.free(m.start(), m.end())]


MASKS = {
    "trader": "Acme", "period": "2024", "country": "China", "hs": "coffee", "office": "Central",
    "declaration": "D123", "name": "Acme",
}


def mask(question: str, spans: list[tuple[int, int, str]]) -> str:
    """The question with slot spans replaced by fixed stand-ins (for intent matching)."""
    out, pos = [], 0
    for s, e, kind in sorted(spans):
        if s < pos:
            continue
        out.append(question[pos:s])
        out.append(MASKS.get(kind, ""))
        pos = e
    out.append(question[pos:])
    return " ".join("".join(out).split())


class SlotExtractor:
    """Fills Slots from questions about one database; build once, share between threads."""

    def __init__(self, runner: Runner, traders: TraderIndex, facts: DataFacts,
                 vocabulary: set[str] | None = None) -> None:
        """`runner`, `traders` and `facts` must belong to the same (database, scope): the
        extractor only ever names what that scope can see."""
        self.runner = runner
        self.facts = facts
        self.traders = traders
        vocab = {w for w in (vocabulary or set()) if w.isalpha()}
        self.common_words = frozenset(vocab | STOPWORDS | set(MONTHS) | set(NUMBER_WORDS)
                                      | LEGAL_FORMS | set(COUNTRY_ALIASES)
                                      | {w for k in GOODS_SYNONYMS for w in k.split()}
                                      | {"import", "imports", "export", "exports", "trader",
                                         "traders", "company", "companies", "duty", "value"})
        self._build_countries()
        self._build_offices()
        self._build_goods()

    # -- reference look-ups built once ----------------------------------------------------------

    def _build_countries(self) -> None:
        import pycountry

        names: dict[str, str] = {}
        for code, name in self.facts.countries.items():
            names[fold_plain(name)] = code
        for c in pycountry.countries:
            if c.alpha_2 not in self.facts.countries:
                continue
            for attr in ("name", "official_name", "common_name"):
                value = getattr(c, attr, None)
                if value:
                    names.setdefault(fold_plain(value), c.alpha_2)
        for alias, code in COUNTRY_ALIASES.items():
            if code in self.facts.countries and alias != "us":
                names[alias] = code
        names = {k: v for k, v in names.items() if len(k) >= 4 or k in ("uk", "usa", "uae")}
        self.country_names = names
        alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        self._country_re = re.compile(rf"(?<![a-z0-9])(?:the )?({alternation})(?![a-z0-9])")

    def _build_offices(self) -> None:
        self.office_full = {fold_plain(o): o for o in self.facts.offices}
        counts: dict[str, set[str]] = {}
        for office in self.facts.offices:
            tokens = fold_plain(office).split()
            grams = set(tokens) | {" ".join(tokens[k:k + 2]) for k in range(len(tokens) - 1)}
            for gram in grams:
                counts.setdefault(gram, set()).add(office)
        generic = {"terminal", "seaport", "airport", "border", "land", "international", "port",
                   "container", "special", "economic", "area", "railway", "customs", "office",
                   "station", "post", "inland", "depot", "free", "zone", "road", "rail",
                   "river", "freight", "the", "de", "del", "of", "and"}
        self.office_words = {
            gram: next(iter(offices)) for gram, offices in counts.items()
            if len(offices) == 1 and len(gram) >= 5 and gram not in generic
            and not (" " not in gram and gram in self.common_words)
        }
        names = sorted(set(self.office_full) | set(self.office_words), key=len, reverse=True)
        # "Manzanillo International Terminal, Colón": punctuation between the words of a name
        alternation = "|".join(_NAME_GAP.join(re.escape(t) for t in n.split())
                               for n in names) or "(?!)"
        self._office_re = re.compile(rf"(?<![a-z0-9])({alternation})(?![a-z0-9])")

    def _build_goods(self) -> None:
        hs = self.facts.hs
        self.goods = {w: c for w, c in GOODS_SYNONYMS.items() if c[:6] in hs or c in hs}
        alternation = "|".join(re.escape(w) for w in sorted(self.goods, key=len, reverse=True))
        self._goods_re = re.compile(rf"(?<![a-z0-9])({alternation})(?![a-z0-9])")
        self.hs_words = self.facts.hs_words

    # -- extraction -----------------------------------------------------------------------------

    def extract(self, question: str) -> Slots:
        """All slots of one (already cleaned) question."""
        slots = Slots()
        text = _Text(question)
        self._declaration(text, slots)
        self._office(text, slots, full_only=True)
        self._trader(text, slots)
        self._periods(text, slots)
        self._hs_codes(text, slots)
        self._office(text, slots, full_only=False)
        self._countries(text, slots)
        self._goods_words(text, slots)
        self._simple(text, slots)
        self._unknown_name(text, slots)
        slots.spans = list(text.claimed)
        slots.masked = mask(question, text.claimed)
        return slots

    def _declaration(self, text: _Text, slots: Slots) -> None:
        candidates = {}
        pattern = r"(?<![\w-])([A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)+|[A-Za-z]+\d{5,})(?![\w-])"
        for m in re.finditer(pattern, text.original):
            token = m.group(1)
            if sum(ch.isdigit() for ch in token) < 5 or re.fullmatch(r"\d{4}-\d\d(-\d\d)?", token):
                continue
            candidates[token] = m.span(1)
        if not candidates:
            return
        listed = ", ".join(sql_literal(t) for t in candidates)
        found = self.runner.run(
            f"SELECT declaration_id FROM declarations WHERE declaration_id IN ({listed})").rows
        if found:
            token = found[0][0]
            s, e = candidates[token]
            slots.declaration = token
            text.claim_orig(s, e, "declaration")

    def _trader(self, text: _Text, slots: Slots) -> None:
        mention = self.traders.mentions(self._unclaimed(text), self.common_words)
        if mention is None:
            return
        text.claim_orig(mention.start, mention.end, "trader")
        slots.trader_text = mention.text
        if mention.ambiguous:
            slots.trader_candidates = mention.matches
        else:
            slots.trader = mention.matches[0]

    def _unclaimed(self, text: _Text) -> str:
        """The original question with claimed spans blanked (same length, same positions)."""
        chars = list(text.original)
        for s, e, _ in text.claimed:
            for k in range(s, e):
                chars[k] = " "
        return "".join(chars)

    # -- periods ----------------------------------------------------------------------------------

    def _periods(self, text: _Text, slots: Slots) -> None:
        latest = self.facts.latest_date
        found: list[tuple[int, Period]] = []

        def add(m: re.Match[str], period: Period | None, group: int = 0) -> None:
            if period is None:
                return
            found.append((m.start(group), period))
            text.claim(m.start(group), m.end(group), "period")

        f = text.folded
        for m in text.finditer(re.compile(
                rf"\b(?:between|from)\s+{_M}(?:\s+{_Y})?\s+(?:and|to|till|until|through|thru)"
                rf"\s+{_M}(?:\s+{_Y})?\b")):
            start_year = m.group(2) or m.group(4)
            end_year = m.group(4) or m.group(2)
            add(m, self._month_range(m.group(1), start_year, m.group(3), end_year))
        for m in text.finditer(re.compile(rf"\b{_M}\s+(?:to|until|till|through)?\s*{_M}\s+{_Y}\b")):
            add(m, self._month_range(m.group(1), m.group(3), m.group(2), m.group(3)))
        for m in text.finditer(re.compile(
                rf"\b(?:between|from)\s+{_Y}\s+(?:and|to|till|until)\s+{_Y}\b")):
            a, b = sorted((int(m.group(1)), int(m.group(2))))
            pa, pb = self._year(a), self._year(b)
            text.claim(m.start(), m.end(), "period")
            found.append((m.start(), pa))
            found.append((m.end(), pb))
            slots.range_period = self._make(date(a, 1, 1), date(b + 1, 1, 1), f"{a}-{b}",
                                            f"from {a} to {b}", "range")
        self._relative(text, found)
        for m in text.finditer(re.compile(
                rf"\b(?:q([1-4])\s*(?:of\s+|in\s+)?{_Y}|{_Y}\s*q([1-4]))\b")):
            q = int(m.group(1) or m.group(4))
            add(m, self._quarter(q, int(m.group(2) or m.group(3))))
        for m in text.finditer(re.compile(
                rf"\b(?:the\s+)?(first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter"
                rf"(?:\s+(?:of|in))?(?:\s+{_Y})?\b")):
            q = ORDINALS[m.group(1)]
            add(m, self._quarter(q, int(m.group(2)) if m.group(2) else None))
        for m in text.finditer(re.compile(r"\bq([1-4])\b")):
            add(m, self._quarter(int(m.group(1)), None))
        for m in text.finditer(re.compile(
                rf"\b(?:h([12])\s*{_Y}|(?:the\s+)?(first|second)\s+half(?:\s+(?:of|in))?"
                rf"(?:\s+{_Y})?)\b")):
            if m.group(1):
                add(m, self._half(int(m.group(1)), int(m.group(2))))
            else:
                half = 1 if m.group(3) == "first" else 2
                add(m, self._half(half, int(m.group(4)) if m.group(4) else None))
        for m in text.finditer(re.compile(
                rf"\b(?:since|from)\s+(?:{_M}\s+)?{_Y}\b(?!\s+(?:to|and|until|till))")):
            month = MONTHS[m.group(1)] if m.group(1) else 1
            start = date(int(m.group(2)), month, 1)
            name = month_name(start) if m.group(1) else str(start.year)
            add(m, self._make(start, latest + timedelta(days=1), f"since {name}",
                              f"since {name}", "since"))
        for m in text.finditer(re.compile(rf"\b{_M}\s+{_Y}\b")):
            add(m, self._month(MONTHS[m.group(1)], int(m.group(2))))
        for m in text.finditer(re.compile(rf"\b{_Y}\s+(0[1-9]|1[0-2])\b(?!\s+\d)")):
            add(m, self._month(int(m.group(2)), int(m.group(1))))
        for m in text.finditer(re.compile(
                r"\b(?:(?:in|during|for|of|since|from)\s+)?(january|february|march|april|june|"
                r"july|august|september|october|november|december)\b")):
            add(m, self._month(MONTHS[m.group(1)], None), group=1)
        for m in text.finditer(re.compile(
                r"\b(?:in|during|for|of)\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|"
                r"dec)\b")):
            add(m, self._month(MONTHS[m.group(1)], None), group=1)
        for m in text.finditer(re.compile(rf"\b(?:fy\s*)?{_Y}\b")):
            before = f[max(0, m.start() - 24):m.start()]
            cue_end = re.search(rf"\b{_HS_CUE}\s*$", before)
            if cue_end is not None:
                s, _ = text.orig_span(m.start() - len(before) + cue_end.start(), m.start())
                if not re.search(r"[,;:]", text.original[s:text.orig_span(m.start(),
                                                                          m.end())[0]]):
                    continue  # "heading 2025" is a code; "by heading, 2025" a year
            add(m, self._year(int(m.group(1))))
        found.sort(key=lambda t: t[0])
        slots.periods = [p for _, p in found]
        if re.search(r"\b(?:year on year|yoy|same (?:period|time|months?) (?:last|a|the previous"
                     r"|of last) year|a year (?:earlier|before|ago)|previous year|year before)\b",
                     f):
            slots.yoy = True
        if re.search(r"\b(?:so far|to date|ytd|year to date|until now|like for like|"
                     r"(?:this|the same) (?:point|time|stage|date) (?:last|a) year)\b", f):
            slots.like_for_like = True

    def _relative(self, text: _Text, found: list[tuple[int, Period]]) -> None:
        latest = self.facts.latest_date
        y = latest.year
        month_start = latest.replace(day=1)
        q_start = date(y, 3 * ((latest.month - 1) // 3) + 1, 1)
        rules: list[tuple[str, Any]] = [
            (r"\b(?:this|current) year(?: so far| to date)?\b|\byear to date\b|\bytd\b|"
             r"\bso far this year\b",
             lambda m: self._make(date(y, 1, 1), date(y + 1, 1, 1), f"{y} to date",
                                  f"in {y} to date", "ytd")),
            (r"\b(?:the )?year before last\b|\btwo years ago\b",
             lambda m: self._year(y - 2)),
            (r"\b(?:last|previous|prior) (?:calendar |full )?year\b|\ba year ago\b",
             lambda m: self._year(y - 1)),
            (r"\b(?:this|current) month\b",
             lambda m: self._month(month_start.month, month_start.year)),
            (r"\b(?:last|previous|prior) month\b",
             lambda m: self._month(add_months(month_start, -1).month,
                                   add_months(month_start, -1).year)),
            (r"\b(?:this|current) quarter\b",
             lambda m: self._quarter((q_start.month - 1) // 3 + 1, y)),
            (r"\b(?:last|previous|prior) quarter\b",
             lambda m: self._quarter((add_months(q_start, -3).month - 1) // 3 + 1,
                                     add_months(q_start, -3).year)),
            (rf"\b(?:in |over |during |for )?(?:the )?(?:last|past|previous|recent|latest) {_N} "
             r"(months?|weeks?|days?|years?|quarters?)\b",
             lambda m: self._rolling(_number(m.group(1)), m.group(2))),
            (r"\b(?:in |over |during )?(?:the )?(?:past|last) (year|twelve months|12 months)\b",
             lambda m: self._rolling(12, "months")),
            (r"\b(?:in |over |during )?(?:the )?(?:last|past) (week|fortnight)\b",
             lambda m: self._rolling(7 if m.group(1) == "week" else 14, "days")),
        ]
        for pattern, build in rules:
            for m in text.finditer(re.compile(pattern)):
                period = build(m)
                if period is not None:
                    found.append((m.start(), period))
                    text.claim(m.start(), m.end(), "period")

    def _make(self, start: date, end: date, name: str, label: str, kind: str) -> Period:
        latest_end = self.facts.latest_date + timedelta(days=1)
        partial = start < latest_end < end
        if partial:
            end = latest_end
            note = f" (data to {self.facts.latest_date.isoformat()})"
            if kind not in ("ytd", "since", "rolling"):
                label += note
        return Period(start, end, kind, name=name, label=label, partial=partial)

    def _year(self, year: int) -> Period:
        return self._make(date(year, 1, 1), date(year + 1, 1, 1), str(year), f"in {year}", "year")

    def _quarter(self, q: int, year: int | None) -> Period:
        latest = self.facts.latest_date
        if year is None:
            year = latest.year if date(latest.year, 3 * q - 2, 1) <= latest else latest.year - 1
        start = date(year, 3 * q - 2, 1)
        return self._make(start, add_months(start, 3), f"Q{q} {year}", f"in Q{q} {year}", "quarter")

    def _half(self, h: int, year: int | None) -> Period:
        latest = self.facts.latest_date
        if year is None:
            year = latest.year if date(latest.year, 6 * h - 5, 1) <= latest else latest.year - 1
        start = date(year, 6 * h - 5, 1)
        which = "first" if h == 1 else "second"
        return self._make(start, add_months(start, 6), f"H{h} {year}",
                          f"in the {which} half of {year}", "half")

    def _month(self, month: int, year: int | None) -> Period:
        latest = self.facts.latest_date
        if year is None:
            year = latest.year if month <= latest.month else latest.year - 1
        start = date(year, month, 1)
        return self._make(start, add_months(start, 1), month_name(start),
                          f"in {month_name(start)}", "month")

    def _month_range(self, m1: str, y1: str | None, m2: str, y2: str | None) -> Period | None:
        a, b = MONTHS[m1], MONTHS[m2]
        latest = self.facts.latest_date
        end_year = int(y2) if y2 else (latest.year if b <= latest.month else latest.year - 1)
        start_year = int(y1) if y1 and y2 and y1 != y2 else (end_year if a <= b else end_year - 1)
        if y1 and not y2:
            start_year = int(y1)
            end_year = start_year if a <= b else start_year + 1
        start = date(start_year, a, 1)
        end = add_months(date(end_year, b, 1), 1)
        if end <= start:
            return None
        if start_year == end_year:
            words = f"{calendar.month_name[a]} to {calendar.month_name[b]} {end_year}"
            name = f"{calendar.month_abbr[a]}-{calendar.month_abbr[b]} {end_year}"
        else:
            words = f"{month_name(start)} to {month_name(date(end_year, b, 1))}"
            name = f"{short_month_name(start)}-{short_month_name(date(end_year, b, 1))}"
        return self._make(start, end, name, f"from {words}", "range")

    def _rolling(self, n: int | None, unit: str) -> Period | None:
        if not n or n < 1 or n > 240:
            return None
        latest = self.facts.latest_date
        end = latest + timedelta(days=1)
        unit = unit.rstrip("s")
        if unit in ("month", "quarter", "year"):
            months = n * {"month": 1, "quarter": 3, "year": 12}[unit]
            start = add_months(latest.replace(day=1), -(months - 1))
            label = (f"in the last {n} {unit}{'s' if n > 1 else ''} "
                     f"({short_month_name(start)} to {short_month_name(latest)})")
        else:
            days = n * (7 if unit == "week" else 1)
            start = end - timedelta(days=days)
            label = f"in the last {n} {unit}{'s' if n > 1 else ''} ({start} to {latest})"
        name = f"last {n} {unit}{'s' if n > 1 else ''}"
        return Period(start, end, "rolling", name=name, label=label)

    def all_data(self) -> Period:
        """The whole span of the data, as a period."""
        f = self.facts
        return Period(f.first_date, f.latest_date + timedelta(days=1), "all", name="all data",
                      label=f"over all the data ({f.first_date} to {f.latest_date})")

    def year_period(self, year: int) -> Period:
        """One calendar year (cut at the end of the data)."""
        return self._year(year)

    def previous(self, period: Period, yoy: bool = False) -> Period:
        """The period just before `period`, of the same kind (the same period a year earlier
        when `yoy`)."""
        start = period.start
        if period.kind in ("year", "ytd"):
            return self._year(start.year - 1)
        if period.kind == "quarter":
            prev = add_months(start, -12 if yoy else -3)
            return self._quarter((prev.month - 1) // 3 + 1, prev.year)
        if period.kind == "half":
            prev = add_months(start, -12 if yoy else -6)
            return self._half(1 if prev.month < 7 else 2, prev.year)
        if period.kind == "month":
            prev = add_months(start, -12 if yoy else -1)
            return self._month(prev.month, prev.year)
        if yoy:
            new_start, new_end = add_months(start, -12), add_months(period.end, -12)
            name = f"{period.name}, a year earlier"
        else:
            new_start, new_end = start - (period.end - start), start
            name = f"before {period.name}"
        return Period(new_start, new_end, "range", name=name,
                      label=f"in {name} ({new_start} to {new_end - timedelta(days=1)})")

    def like_for_like(self, earlier: Period, later: Period) -> Period:
        """`earlier` cut to the same length as a `later` period that the data cuts short."""
        if not later.partial:
            return earlier
        offset = ((later.start.year * 12 + later.start.month)
                  - (earlier.start.year * 12 + earlier.start.month))
        end = add_months(later.end, -offset)
        if end >= earlier.end:
            return earlier
        last = end - timedelta(days=1)
        name = f"{earlier.name} to {last.day} {calendar.month_abbr[last.month]}"
        return Period(earlier.start, end, earlier.kind, name=name, label=f"in {name}")

    # -- goods, countries, offices ----------------------------------------------------------------

    def _hs_codes(self, text: _Text, slots: Slots) -> None:
        hs = self.facts.hs
        patterns = [
            (re.compile(r"\bchapters?\s+(\d{1,2})\b"), 2),
            (re.compile(r"\bheadings?\s+(\d{4})\b"), 4),
            (re.compile(r"\bsub\s?headings?\s+(\d{6})\b"), 6),
            (re.compile(rf"\b{_HS_CUE}\s*(?:number\s+)?(\d{{2,10}})\b"), 0),
            (re.compile(r"\b(\d{4}|\d{6}|\d{8}|\d{10})\b"), -1),
        ]
        for pattern, level in patterns:
            for m in text.finditer(pattern):
                digits = m.group(1)
                if level == 2:
                    digits = digits.zfill(2)
                if level == -1 and (re.fullmatch(r"(19|20)\d\d", digits) or (digits[:6] not in hs
                                    and digits[:4] not in hs)):
                    continue
                s, e = text.orig_span(m.start(), m.end())
                if level != -1 and re.search(r"[,;:]", text.original[s:e]):
                    continue  # "by heading, 2025": a list, not a code after its cue
                if level == 0 and re.search(r"\b(?:procedure|preference|preferential|cpc)\s*$",
                                            text.original[:s].lower()):
                    continue  # "procedure code 7100", "preference code 300" are not goods
                ref = self._hs_ref(digits, "code")
                if ref is None:
                    if level >= 0:
                        slots.problems.append(f"HS code {digits} is not in the nomenclature.")
                        text.claim(m.start(), m.end(), "hs")
                    continue
                text.claim(m.start(), m.end(), "hs")
                if slots.hs is None:
                    slots.hs = ref
            if slots.hs is not None:
                return

    def _hs_ref(self, digits: str, via: str, words: str = "") -> HsRef | None:
        hs = self.facts.hs
        digits = re.sub(r"\D", "", digits)
        if len(digits) < 2 or len(digits) > 10 or len(digits) % 2:
            return None
        key = digits if len(digits) <= 6 else digits[:6]
        if key not in hs:
            return None
        _, desc = hs[key]
        return HsRef(digits, len(digits), desc, via, words)

    def _goods_words(self, text: _Text, slots: Slots) -> None:
        if slots.hs is not None:
            return
        for m in text.finditer(self._goods_re):
            ref = self._hs_ref(self.goods[m.group(1)], "goods", m.group(1))
            if ref:
                slots.hs = ref
                text.claim(m.start(), m.end(), "hs")
                return
        # leftover content words: look them up in the nomenclature descriptions
        for m in text.finditer(re.compile(
                r"(?:\b(?:importing|imported|imports|import|exporting|exported|exports|export|buy|"
                r"buys|bought|buying|sell|sells|selling|sold|supply|supplies|ship|ships)\s+"
                r"(?:(?:of|in|for)\s+)?(?:the\s+|our\s+|any\s+|most\s+)?([a-z]{4,})\b)|"
                r"(?:\b([a-z]{4,})\s+(?:imports|exports|goods|products|shipments|trade|importers|"
                r"exporters|suppliers|prices|declarations)\b)")):
            word = m.group(1) or m.group(2)
            if word in self.common_words:
                continue
            group = 1 if m.group(1) else 2
            ref = self._describe(word)
            if ref is not None:
                slots.hs = ref
                text.claim(m.start(group), m.end(group), "hs")
                slots.notes.append(
                    f'I read "{word}" as {ref.label}; name an HS code to be exact.')
                return

    def _describe(self, word: str) -> HsRef | None:
        hs = self.facts.hs
        forms = [word]
        if word.endswith("ies"):
            forms.append(word[:-3] + "y")
        if word.endswith("es"):
            forms.append(word[:-2])
        if word.endswith("s"):
            forms.append(word[:-1])
        for form in forms:
            codes = self.hs_words.get(form)
            if not codes or len(codes) > 60:
                continue
            ranked = []
            for code in codes:
                level, desc = hs[code]
                head = fold_plain(re.split(r"[;:,(]", desc, maxsplit=1)[0]).split()
                if form not in head[:3]:
                    continue  # only where the word names the goods, not in passing
                ranked.append((level, code))
            if ranked:
                _, code = min(ranked)
                return self._hs_ref(code, "description", word)
        return None

    def _countries(self, text: _Text, slots: Slots) -> None:
        found: list[tuple[int, str]] = []
        for m in text.finditer(self._country_re):
            text.claim(m.start(1), m.end(1), "country")
            found.append((text.where[m.start(1)], self.country_names[m.group(1)]))
        original = text.original
        shouting = original.upper() == original
        for m in re.finditer(r"(?<![\w-])([A-Z]{2,3})(?:(?![\w-])|(?=-(?:origin|made)\b))",
                             original):
            token = m.group(1)
            if shouting or any(not (m.end() <= s or m.start() >= e) for s, e, _ in text.claimed):
                continue
            if re.match(r"\s*\$|\s+dollars?\b", original[m.end():], re.IGNORECASE):
                continue  # "US dollars", "US$": a currency, not the country
            code: str | None = None
            # a code word is a code where a country is named ("dispatch country CO")
            if len(token) == 2 and token in self.facts.countries and (
                    token not in _CODE_WORDS or _NAMES_A_COUNTRY.search(original[:m.start(1)])
                    or _COUNTRY_FOLLOWS.match(original[m.end(1):])):
                code = token
            elif token == "UK":
                code = "GB"
            elif len(token) == 3 and token not in _ALPHA3_WORDS:
                code = self._alpha3(token)
            if code:
                text.claim_orig(m.start(1), m.end(1), "country")
                found.append((m.start(1), code))
        found.sort()
        seen: list[str] = []
        for _, found_code in found:
            if found_code not in seen:
                seen.append(found_code)
        slots.countries = [CountryRef(c, self.facts.countries.get(c, c)) for c in seen]

    def _alpha3(self, token: str) -> str | None:
        import pycountry

        country = pycountry.countries.get(alpha_3=token)
        if country is None or country.alpha_2 not in self.facts.countries:
            return None
        return str(country.alpha_2)

    def _office(self, text: _Text, slots: Slots, full_only: bool) -> None:
        if slots.office is not None:
            return
        for m in text.finditer(self._office_re):
            gram = " ".join(re.split(_NAME_GAP, m.group(1)))
            office = self.office_full.get(gram)
            if office is None and not full_only:
                office = self.office_words.get(gram)
            if office is None:
                continue
            slots.office = office
            text.claim(m.start(), m.end(), "office")
            return

    # -- small slots ------------------------------------------------------------------------------

    def _simple(self, text: _Text, slots: Slots) -> None:
        f = text.free_folded()
        exports = re.search(r"\bexport(?:s|ed|er|ers|ing)?\b", f)
        imports = re.search(r"\bimport(?:s|ed|er|ers|ing)?\b", f)
        if exports and imports:
            slots.flow = "both" if re.search(r"\b(?:and|or|plus|both)\b", f) else (
                "export" if exports.start() < imports.start() else "import")
        elif exports:
            slots.flow = "export"
        elif imports:
            slots.flow = "import"
        if re.search(r"\b(?:number of declarations|most declarations|declarations count|count of "
                     r"declarations|by count|most entries|most shipments|by number|(?:lodged|filed|"
                     r"submitted) the most)\b", f):
            slots.metric = "count"
        elif (re.search(r"\b(?:weight|mass|tonnes?|tons|tonnage|kilos|kilograms?|kg)\b", f)
              and not re.search(r"\bper (?:kg|kilo|kilogram|unit)\b", f)):
            slots.metric = "mass"
        elif re.search(r"\bdut(?:y|ies)\b|\btariff revenue\b", f):
            slots.metric = "duty"
        elif re.search(r"\bvalue\b", f):
            slots.metric = "value"
        for m in text.finditer(re.compile(
                rf"\b(?:top|first|latest|last|biggest|largest|leading|main|best|highest)\s+{_N}\b|"
                rf"\b{_N}\s+(?:biggest|largest|main|leading|top|most|highest|best|first|latest|"
                r"last|newest|recent)\b")):
            n = _number(m.group(1) or m.group(2))
            word = m.group(1) or m.group(2)
            if n and 1 <= n <= MAX_TOP_N and not re.fullmatch(r"(19|20)\d\d", word):
                slots.top_n = n
                break
        if re.search(r"\b(?:monthly|by month|per month|each month|every month|month by month|"
                     r"month on month|month to month|months)\b", f):
            slots.grain = "month"
        elif re.search(r"\b(?:quarterly|by quarter|per quarter|each quarter|quarters)\b", f):
            slots.grain = "quarter"
        elif re.search(r"\b(?:yearly|annual|annually|by year|per year|each year|every year|"
                       r"year by year|year on year|years)\b", f):
            slots.grain = "year"
        channel = re.search(r"\b(red|yellow|green)s?\b", f)
        if channel:
            slots.channel = channel.group(1)
        if re.search(r"\b(?:chart|graph|plot|visuali[sz]e|diagram|picture)\b", f):
            slots.chart = True
        if re.search(r"\b(?:they|their|them|theirs|its|(?:this|that) (?:trader|company|importer|"
                     r"exporter|firm|one)|the (?:same )?(?:trader|company|importer|exporter|firm)|"
                     r"same trader|he|she|his|her)\b", f):
            slots.pronoun = True

    def _unknown_name(self, text: _Text, slots: Slots) -> None:
        """Capitalised words that look like a company name no trader has ("Acme Corp"), or
        that stand where a question names a trader ("What did Zenith Paper import?")."""
        if slots.trader or slots.trader_candidates:
            return
        original = self._unclaimed(text)
        legal = "|".join(re.escape(f) for f in sorted(
            {"S.A.", "SA", "S.A", "Corp", "Corp.", "Inc", "Inc.", "Ltd", "Ltd.", "LLC", "GmbH",
             "PLC", "Co.", "S. de R.L.", "Ltda", "SRL", "Company", "Group", "Trading"},
            key=len, reverse=True))
        m = re.search(rf"((?:[A-Z][\w&'-]+\s+){{1,4}}(?:{legal})(?!\w))", original)
        if m is None:
            m = re.search(r"\b(?:trader|company|importer|exporter|firm)\s+"
                          r"((?:[A-Z][\w&'-]+\s*){1,4})", original)
        if m:
            name = m.group(1).strip()
            if any(w.lower() not in self.common_words for w in re.findall(r"[A-Za-z]+", name)):
                slots.unknown_name = name
                slots.unknown_is_trader = True
                text.claim_orig(m.start(1), m.start(1) + len(name), "name")
                return
        self._name_in_trader_position(text, slots)

    def _name_in_trader_position(self, text: _Text, slots: Slots) -> None:
        """A capitalised name where questions put a trader ("What did X import", "Brief me on
        X", "X's imports", "profile of X") that no trader of this scope has. Goods words
        inside it ("Zenith Paper") belong to the name, not to an HS filter."""
        for pattern in _TRADER_POSITIONS:
            for m in pattern.finditer(text.original):
                start, end = m.span("name")
                name = text.original[start:end].strip()
                words = re.findall(r"[A-Za-z]+", name)
                if not words or not name[:1].isupper():
                    continue
                blocked = [k for cs, ce, k in text.claimed if cs < end and ce > start
                           and k not in ("hs", "name")]
                if blocked:
                    continue
                if all(w.lower() in self.common_words or w.lower() in self.country_names
                       for w in words):
                    continue
                slots.unknown_name = name
                slots.unknown_is_trader = True
                goods = [(cs, ce) for cs, ce, k in text.claimed
                         if k == "hs" and cs < end and ce > start]
                if goods:
                    slots.hs = None
                    text.claimed = [c for c in text.claimed if (c[0], c[1]) not in goods]
                text.claim_orig(start, start + len(name), "name")
                return


# Where a question names a trader: the name is group "name" (capitalised words).
_NAME = r"(?P<name>[A-Z][\w&'.-]*(?:\s+(?:[A-Z][\w&'.-]*|&|and|de|del|y)){0,4})"
_TRADER_POSITIONS = tuple(re.compile(p) for p in (
    rf"\b(?i:did|does|has|have|do)\s+{_NAME}\s+"
    rf"(?i:import|export|declare|bring|ship|pay|trade)",
    rf"\b(?i:brief(?:ing)?\s+(?:me\s+)?on|profile\s+of|history\s+of|score\s+of|risk\s+of|"
    rf"audits?\s+of|declarations\s+of|imports\s+of|exports\s+of)\s+{_NAME}",
    rf"{_NAME}['’]s\s+(?i:imports|exports|declarations|audits?|risk|profile|trade|suppliers)",
))


def _number(word: str | None) -> int | None:
    if not word:
        return None
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


_POSSESSIVE = re.compile(r"'[sS](?![A-Za-z0-9])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


#: What may stand between the words of an office name as typed ("Terminal, Colón").
_NAME_GAP = r"[\s,;:.()/-]+"


def fold_plain(text: str) -> str:
    """Folded text with single spaces: 'Colón Free Zone' -> 'colon free zone'.

    Same result as tools.traders.fold_text; ASCII text (most HS descriptions) takes a fast
    path with regular expressions instead of a loop over characters."""
    if text.isascii():
        plain = _POSSESSIVE.sub("", text).replace(".", "").lower()
        return " ".join(_NOT_ALNUM.sub(" ", plain).split())
    return " ".join(fold_text(text)[0].split())
