"""A trade document checked against its declaration: which declaration, and what differs.

    doc = extract(read_path(Path("invoice.pdf")))
    report = verify_document(doc, runner)                  # finds the declaration
    report = verify_document(doc, runner, declaration_id="2025-402-IM-0000982")
    report.to_json()   # {"document", "declaration_id", "fields", "discrepancies", ...}

The declaration is the one given (looked up through the user's scoped runner, so an officer
cannot check a document against another office's declaration), or found among the buyer's
import declarations dated on or after the document by the goods, quantities, mass, value and
date. Each document line is paired with a declared item, then compared:

- value: the line amounts against the declared invoice values, and the document's total
  converted at the reference rate and raised by the usual freight and insurance of its
  Incoterm against the declared customs value (WTO Valuation Agreement Articles 1, 8.2, 9);
- quantity and net mass (and, when the document covers several small declarations, the
  declarations that add up to it: a split consignment);
- origin, the HS code against the declared one and the description against the subheading
  other traders declare it under;
- currency, Incoterm, the seller/buyer relationship (Article 15.4), the buyer, the date.

Every discrepancy carries its size and a rule: a passage of Tamga's guidance notes (the file
and heading path the regulations index cites it by) and the provision it rests on. Nothing is
written to the trade database; all SQL goes through the runner it is given.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tamga.errors import DeclarationNotFound, TamgaError
from tamga.formatting import fmt_money
from tools.documents import DOC_TYPE_LABELS, ExtractedDocument, LineItem
from tools.runner import RecordingRunner, reporting_currency

if TYPE_CHECKING:
    from tools.runner import Runner
    from tools.traders import TraderIndex


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """Where a check comes from: a guidance-note passage (source file and heading path, as
    the regulations index cites it) and the provision behind it."""

    source: str
    locator: str
    provision: str

    def to_json(self) -> dict[str, str]:
        """`{"source", "locator", "provision"}`."""
        return {"source": self.source, "locator": self.locator, "provision": self.provision}


_TV = "When can the declared transaction value be accepted? The conditions of Article 1"
_FI = "Freight and insurance in customs value: CIF, FOB and what Article 8.2 leaves to each member"
_CC = "Converting foreign-currency prices into customs value (Article 9)"
_RP = "Related buyer and seller: when can customs reject the declared price?"
_OF = "Indicators of origin fraud and illegal transshipment"
_MC = "Indicators of misclassification"
_SC = "Split consignments: splitting shipments to stay under de minimis and other thresholds"
_EX = "Customs control and physical examination of goods"
_CR = "Clearance and release basics: declarant, goods declaration, checking and release"

RULES: dict[str, Rule] = {
    "invoice_value": Rule("transaction-value-conditions.md",
                          f'{_TV} > What "price actually paid or payable" means',
                          "WTO Customs Valuation Agreement, Article 1"),
    "customs_value": Rule("transport-insurance-cif-fob.md",
                          f"{_FI} > Practical rules for a CIF administration",
                          "WTO Customs Valuation Agreement, Articles 1 and 8.2"),
    "incoterm": Rule("transport-insurance-cif-fob.md",
                     f"{_FI} > Practical rules for a CIF administration",
                     "WTO Customs Valuation Agreement, Article 8.2"),
    "currency": Rule("currency-conversion.md", f"{_CC} > The rule",
                     "WTO Customs Valuation Agreement, Article 9"),
    "exchange_rate": Rule("currency-conversion.md", f"{_CC} > The rule",
                          "WTO Customs Valuation Agreement, Article 9"),
    "relationship": Rule("related-party-transactions.md",
                         f"{_RP} > Who counts as related (Article 15.4)",
                         "WTO Customs Valuation Agreement, Articles 1.2 and 15.4"),
    "origin": Rule("origin-fraud-transshipment-indicators.md", f"{_OF} > Indicators in documents",
                   "WTO Agreement on Rules of Origin, Articles 3(b) and 9.1(b)"),
    "hs_code": Rule("misclassification-indicators.md", f"{_MC} > Indicators in the data",
                    "HS Convention, General Interpretative Rule 1"),
    "quantity": Rule("customs-control-examination.md", f"{_EX} > During the examination",
                     "Revised Kyoto Convention, General Annex, Chapter 3"),
    "net_mass_kg": Rule("customs-control-examination.md", f"{_EX} > During the examination",
                        "Revised Kyoto Convention, General Annex, Chapter 3"),
    "goods": Rule("customs-control-examination.md", f"{_EX} > During the examination",
                  "Revised Kyoto Convention, General Annex, Chapter 3"),
    "split": Rule("split-consignments-de-minimis.md", f"{_SC} > Indicators",
                  "National low-value relief rules; Revised Kyoto Convention, Chapter 3"),
    "buyer": Rule("clearance-and-release-basics.md", f"{_CR} > The goods declaration",
                  "Revised Kyoto Convention, General Annex, Standards 3.11-3.16"),
    "document_date": Rule("clearance-and-release-basics.md", f"{_CR} > The goods declaration",
                          "Revised Kyoto Convention, General Annex, Standards 3.11-3.16"),
}

# Tolerances: rounding on documents, and estimated freight for E and F terms.
QTY_TOL = 0.005
MASS_TOL = 0.01
VALUE_TOL = 0.005
CONVERTED_TOL = 0.02
CUSTOMS_TOL = {"paid": 0.02, "estimated": 0.05}
RATE_TOL = 0.03
HS_OTHER_MIN_LINES = 5
HS_DECLARED_MAX_SHARE = 0.2
HS_TOP_MIN_SHARE = 0.6
MATCH_DAYS_BEFORE = 2  # a document dated after its declaration
MATCH_DAYS_AFTER = 120
SPLIT_DAYS = 3
INCLUDED = ("CIF", "CIP", "DAP", "DPU", "DDP", "DAT", "DDU")  # freight and insurance paid


# --------------------------------------------------------------------------- results


@dataclass
class Discrepancy:
    """One thing the document and the declaration disagree on."""

    field: str
    document_value: Any
    declared_value: Any
    difference: Any
    rule: Rule
    explanation: str
    line: int | None = None
    item_no: int | None = None
    where: str = ""
    difference_pct: float | None = None
    unit: str = ""

    def to_json(self) -> dict[str, Any]:
        """The contract's keys, plus the line, the declared item, where and a sentence."""
        return {"field": self.field, "document_value": _plain(self.document_value),
                "declared_value": _plain(self.declared_value),
                "difference": _plain(self.difference), "rule": self.rule.to_json(),
                "line": self.line, "item_no": self.item_no, "where": self.where,
                "difference_pct": self.difference_pct, "unit": self.unit,
                "explanation": self.explanation}


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    return value


@dataclass
class VerificationReport:
    """A document checked against a declaration."""

    document: str
    doc_type: str | None
    declaration_id: str
    trader_id: str
    trader_name: str
    declaration_date: date
    customs_office: str
    fields: list[dict[str, Any]]
    discrepancies: list[Discrepancy]
    match: dict[str, Any]
    currency: str
    warnings: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    checked_at: str = ""

    @property
    def clean(self) -> bool:
        """True when nothing differs."""
        return not self.discrepancies

    def to_json(self) -> dict[str, Any]:
        """The `tamga verify --json` object (contract keys first)."""
        return {
            "document": self.document, "declaration_id": self.declaration_id,
            "fields": self.fields,
            "discrepancies": [d.to_json() for d in self.discrepancies],
            "doc_type": self.doc_type, "trader_id": self.trader_id, "trader": self.trader_name,
            "declaration_date": self.declaration_date.isoformat(),
            "customs_office": self.customs_office, "match": self.match,
            "reporting_currency": self.currency, "warnings": self.warnings, "sql": self.sql,
            "elapsed_ms": round(self.elapsed_ms, 1), "checked_at": self.checked_at,
        }

    def summary(self) -> str:
        """One or two sentences for a person."""
        kind = DOC_TYPE_LABELS.get(self.doc_type or "", "document")
        how = "given" if self.match.get("how") == "given" else "found by trader, date and goods"
        head = (f"{self.document} ({kind}) checked against declaration {self.declaration_id} "
                f"of {self.declaration_date} ({how}), {self.trader_name} ({self.trader_id}).")
        if not self.discrepancies:
            return head + " No discrepancy found."
        counts: dict[str, int] = {}
        for d in self.discrepancies:
            counts[d.field] = counts.get(d.field, 0) + 1
        listed = ", ".join(f"{k.replace('_', ' ')}" + (f" ({v} lines)" if v > 1 else "")
                           for k, v in counts.items())
        n = len(self.discrepancies)
        return head + f" {n} discrepanc{'y' if n == 1 else 'ies'}: {listed}."

    def rows(self) -> list[list[Any]]:
        """The discrepancies as table rows: field, line, document, declared, difference, rule."""
        return [[d.field, d.line or "", _show(d.document_value), _show(d.declared_value),
                 _show_diff(d), f"{d.rule.provision} — {d.rule.locator} ({d.rule.source})"]
                for d in self.discrepancies]


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "related" if value else "not related"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.2f}"
    return str(value)


def _show_diff(d: Discrepancy) -> str:
    if isinstance(d.difference, int | float) and not isinstance(d.difference, bool):
        text = f"{d.difference:+,.2f}"
        if d.unit:
            text = f"{text} {d.unit}"
        if d.difference_pct is not None:
            text += f" ({d.difference_pct:+.1f}%)"
        return text
    return str(d.difference)


# --------------------------------------------------------------------------- SQL


DECLARATION_SQL = (
    "SELECT d.declaration_id, d.declaration_date, d.flow, d.trader_id, t.name, t.tin, "
    "d.customs_office, d.incoterm, d.currency, d.dispatch_country "
    "FROM declarations d LEFT JOIN traders t ON t.trader_id = d.trader_id "
    "WHERE d.declaration_id = $id")
ITEMS_SQL = (
    "SELECT item_no, hs_code, goods_description, origin_country, seller_id, related_party, "
    "net_mass_kg, quantity, quantity_unit, invoice_value, customs_value "
    "FROM declaration_items WHERE declaration_id = $id ORDER BY item_no")
CANDIDATES_SQL = (
    "SELECT d.declaration_id, d.declaration_date, d.currency, count(*) AS items, "
    "sum(i.quantity) AS quantity, sum(i.net_mass_kg) AS mass, "
    "sum(i.invoice_value) AS invoice_value, list(DISTINCT left(i.hs_code, 6)) AS hs6, "
    "list(DISTINCT lower(i.goods_description)) AS descriptions "
    "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
    "WHERE d.trader_id = $trader AND d.flow = 'import' "
    "AND d.declaration_date >= $start AND d.declaration_date <= $end "
    "GROUP BY d.declaration_id, d.declaration_date, d.currency "
    "ORDER BY d.declaration_date, d.declaration_id LIMIT 1000")
RATE_SQL = (
    "SELECT d.incoterm, median(i.invoice_value / i.customs_value) AS ratio, count(*) AS n "
    "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
    "WHERE d.flow = 'import' AND d.currency = $currency AND i.customs_value > 0 "
    "AND i.invoice_value > 0 AND d.declaration_date >= $start AND d.declaration_date < $end "
    "GROUP BY 1")
UPLIFT_SQL = (
    "SELECT d.incoterm, median(i.customs_value / i.invoice_value) AS factor, count(*) AS n "
    "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
    "WHERE d.flow = 'import' AND d.currency = $currency AND i.invoice_value > 0 "
    "GROUP BY 1")
HS_BY_DESCRIPTION_SQL = (
    "SELECT lower(goods_description) AS description, left(hs_code, 6) AS hs6, count(*) AS n "
    "FROM declaration_items WHERE flow = 'import' AND trader_id <> $trader "
    "AND list_contains($descriptions, lower(goods_description)) GROUP BY 1, 2")
HS_TEXT_SQL = "SELECT code, description FROM hs_nomenclature WHERE list_contains($codes, code)"
SIBLINGS_SQL = (
    "SELECT d.declaration_id, d.declaration_date, sum(i.quantity) AS quantity, "
    "sum(i.net_mass_kg) AS mass, sum(i.invoice_value) AS invoice_value "
    "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
    "WHERE d.trader_id = $trader AND d.flow = 'import' AND left(i.hs_code, 6) = $hs6 "
    "AND d.declaration_date >= $start AND d.declaration_date <= $end "
    "GROUP BY d.declaration_id, d.declaration_date ORDER BY d.declaration_date, "
    "d.declaration_id")
FINDINGS_VISIBLE_SQL = (
    "SELECT declaration_id FROM declarations WHERE list_contains($ids, declaration_id)")


# --------------------------------------------------------------------------- reference values


class References:
    """Reference exchange rates and freight/insurance factors read from the data itself, kept
    for one runner (reuse one object for many documents of the same database and scope).
    The methods take the runner to run through (e.g. a RecordingRunner over the same one)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.currency = reporting_currency(runner)
        self._uplift: dict[str, tuple[float, int]] | None = None
        self._rates: dict[tuple[str, str], tuple[float | None, str]] = {}

    def uplift(self, incoterm: str | None, runner: Runner | None = None
               ) -> tuple[float | None, str]:
        """(customs value / invoice value, how) for an Incoterm: 1 when freight and insurance
        are in the price; else the median of the data's lines invoiced in the reporting
        currency under that Incoterm (None when the data has none)."""
        if self._uplift is None:
            rows = (runner or self.runner).run(UPLIFT_SQL, {"currency": self.currency}).rows
            self._uplift = {str(r[0]): (float(r[1]), int(r[2])) for r in rows
                            if r[0] is not None and r[1] is not None}
        term = (incoterm or "").upper()
        found = self._uplift.get(term)
        if found and found[1] >= 5:
            return found[0], f"{(found[0] - 1) * 100:.1f}% freight and insurance typical of " \
                             f"{term} lines in the data ({found[1]:,} lines)"
        if term in INCLUDED:
            return 1.0, f"{term} prices include freight and insurance"
        return None, f"no lines with {term or 'this Incoterm'} to estimate freight from"

    def rate(self, currency: str | None, day: date, runner: Runner | None = None
             ) -> tuple[float | None, str]:
        """(units of `currency` per unit of the reporting currency, how) around `day`."""
        cur = (currency or "").upper()
        if not cur:
            return None, "no currency"
        if cur == self.currency:
            return 1.0, "reporting currency"
        key = (cur, day.strftime("%Y-%m"))
        if key in self._rates:
            return self._rates[key]
        month = date(day.year, day.month, 1)
        nxt = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        windows = [(month, nxt, f"{day:%B %Y}"),
                   (day - timedelta(days=90), day + timedelta(days=90), "within 90 days"),
                   (date(1900, 1, 1), date(9999, 1, 1), "over all the data")]
        result: tuple[float | None, str] = (None, f"no {cur} declarations in the data")
        for start, end, label in windows:
            rows = (runner or self.runner).run(
                RATE_SQL, {"currency": cur, "start": start, "end": end}).rows
            estimates: list[float] = []
            for term, ratio, n in rows:
                factor, _ = self.uplift(term, runner)
                if factor is not None and ratio is not None:
                    estimates += [float(ratio) * factor] * int(n)
            if len(estimates) >= 3:
                result = (statistics.median(estimates),
                          f"median rate of {len(estimates):,} {cur} lines declared {label}")
                break
        self._rates[key] = result
        return result


# --------------------------------------------------------------------------- verification


def verify_document(
    doc: ExtractedDocument, runner: Runner, *, declaration_id: str | None = None,
    traders: TraderIndex | None = None, references: References | None = None,
) -> VerificationReport:
    """Check an extracted document against a declaration (given, or found in the data).

    DeclarationNotFound when the declaration given is unknown or outside the user's offices,
    or when no declaration of the document's buyer matches it."""
    started = time.perf_counter()
    rec = RecordingRunner(runner)
    refs = references or References(runner)
    if declaration_id:
        decl = _declaration(rec, declaration_id.strip())
        match: dict[str, Any] = {"how": "given"}
    else:
        decl, match = _find(rec, doc, traders)
    items = [dict(zip(["item_no", "hs_code", "description", "origin", "seller", "related",
                       "mass", "quantity", "unit", "invoice_value", "customs_value"],
                      row, strict=True))
             for row in rec.run(ITEMS_SQL, {"id": decl["declaration_id"]}).rows]
    checker = _Checker(doc, decl, items, rec, refs, traders)
    checker.run()
    return VerificationReport(
        document=doc.name, doc_type=doc.doc_type, declaration_id=decl["declaration_id"],
        trader_id=decl["trader_id"], trader_name=decl["name"] or decl["trader_id"],
        declaration_date=decl["date"], customs_office=decl["office"] or "",
        fields=[f.to_json() for f in doc.fields()], discrepancies=checker.found,
        match=match | {"pairs": checker.pairs_json()}, currency=refs.currency,
        warnings=checker.warnings, sql=rec.statements,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"))


def _declaration(runner: Runner, declaration_id: str) -> dict[str, Any]:
    rows = runner.run(DECLARATION_SQL, {"id": declaration_id}).rows
    if not rows:
        raise DeclarationNotFound(
            f"Declaration {declaration_id} was not found, or it is not in your customs offices.")
    (did, day, flow, trader, name, tin, office, inco, cur, dispatch) = rows[0]
    return {"declaration_id": did, "date": date.fromisoformat(str(day)), "flow": flow,
            "trader_id": trader, "name": name, "tin": tin, "office": office,
            "incoterm": inco, "currency": cur, "dispatch": dispatch}


def _buyer(doc: ExtractedDocument, traders: TraderIndex | None, runner: Runner
           ) -> tuple[str | None, str]:
    """(trader_id, how) of the document's buyer: TIN first, then the name."""
    from tools.traders import load_trader_index

    index = traders if traders is not None else load_trader_index(runner)
    tin = doc.value("buyer_tin")
    if tin:
        found = [m for m in index.find(str(tin), limit=2) if m.how == "tin"]
        if len(found) == 1:
            return found[0].trader_id, f"buyer TIN {tin}"
    name = doc.value("buyer")
    if name:
        found = index.find(str(name), limit=2)
        if found and found[0].score >= 90 and (len(found) == 1 or found[1].score < found[0].score):
            return found[0].trader_id, f"buyer name '{found[0].name}'"
    return None, ""


def _find(runner: Runner, doc: ExtractedDocument, traders: TraderIndex | None
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The best matching declaration of the document's buyer, and how it was chosen."""
    trader, how = _buyer(doc, traders, runner)
    if trader is None:
        who = doc.value("buyer") or doc.value("buyer_tin") or "not named"
        raise DeclarationNotFound(
            f"No declaration matches {doc.name}: its buyer ({who}) is not a trader in the data "
            "you can see. Give the declaration ID (--declaration) to check it anyway.")
    day = doc.value("document_date")
    start = day - timedelta(days=MATCH_DAYS_BEFORE) if day else date(1900, 1, 1)
    end = day + timedelta(days=MATCH_DAYS_AFTER) if day else date(9999, 1, 1)
    rows = runner.run(CANDIDATES_SQL, {"trader": trader, "start": start, "end": end}).rows
    groups = _split_groups(rows)
    scored = sorted(((_candidate_score(doc, r, groups[n]), r) for n, r in enumerate(rows)),
                    key=lambda s: -s[0])
    if not scored or scored[0][0] < 2.0:
        raise DeclarationNotFound(
            f"No import declaration of {trader} ({how}) dated around {day or 'the document'} "
            f"matches the goods of {doc.name}. Give the declaration ID (--declaration) to "
            "check it anyway.")
    best_score, best = scored[0]
    decl = _declaration(runner, str(best[0]))
    match = {"how": "matched", "by": how, "score": round(best_score, 2),
             "candidates": len(rows),
             "runner_up": ({"declaration_id": scored[1][1][0], "score": round(scored[1][0], 2)}
                           if len(scored) > 1 else None)}
    return decl, match


def _closeness(a: float | None, b: float | None) -> float:
    if a is None or b is None or a <= 0 or b <= 0:
        return 0.0
    return max(0.0, 1.0 - abs(a - b) / max(a, b))


def _split_groups(rows: Sequence[Sequence[Any]]) -> list[tuple[float, float, float]]:
    """For each candidate: the quantity, mass and value of all candidates with the same goods
    declared within SPLIT_DAYS of it (itself included): what a document covering a split
    consignment adds up to."""
    days = [date.fromisoformat(str(r[1])) for r in rows]
    out = []
    for n, row in enumerate(rows):
        goods = set(row[7] or [])
        members = [r for k, r in enumerate(rows)
                   if abs((days[k] - days[n]).days) <= SPLIT_DAYS and set(r[7] or []) == goods]
        out.append((sum(float(r[4] or 0) for r in members),
                    sum(float(r[5] or 0) for r in members),
                    sum(float(r[6] or 0) for r in members)))
    return out


def _agreement(a: float | None, b: float | None) -> float:
    """1 when two amounts agree (to rounding), falling fast as they part: 0.37 at 3 % apart,
    0.07 at 8 %. Documents copy their figures into the declaration, so near is not enough."""
    if a is None or b is None or a <= 0 or b <= 0:
        return 0.0
    return math.exp(-abs(a - b) / max(a, b) / 0.03)


def _candidate_score(doc: ExtractedDocument, row: Sequence[Any],
                     group: tuple[float, float, float] | None = None) -> float:
    """How well a candidate declaration fits the document (higher is better). `group` is the
    candidate with its same-goods neighbours (see _split_groups), scored a little lower."""
    _, day, currency, n_items, qty, mass, value, hs6, descriptions = row
    if group is not None and group != (float(qty or 0), float(mass or 0), float(value or 0)):
        alone = _candidate_score(doc, row)
        together = _candidate_score(doc, (*row[:4], *group, *row[7:])) - 0.5
        return max(alone, together)
    descs = {str(d) for d in descriptions or []}
    codes = {str(c) for c in hs6 or []}
    lines = doc.lines
    goods = sum(1.0 if (ln.get("description") or "").lower() in descs else
                0.5 if (ln.get("hs_code") or "")[:6] in codes else 0.0
                for ln in lines) / max(len(lines), 1)
    doc_mass = sum(ln.get("net_mass_kg") or 0 for ln in lines) or None
    doc_qty = sum(ln.get("quantity") or 0 for ln in lines) or None
    doc_value = doc.total_value
    score = 3.0 * goods
    score += 2.0 * _agreement(doc_mass, float(mass or 0))
    score += 1.0 * _agreement(doc_qty, float(qty or 0))
    if doc_value and (doc.value("currency") or currency) == currency:
        score += 1.0 * _agreement(doc_value, float(value or 0))
    score += 0.5 * (1.0 if int(n_items) == len(lines) else 0.0)
    doc_day = doc.value("document_date")
    if doc_day:
        days = (date.fromisoformat(str(day)) - doc_day).days
        score += -2.0 if days < 0 else 2.0 ** (-days / 20)
    return score


class _Checker:
    """Pairs document lines with declared items and records what differs."""

    def __init__(self, doc: ExtractedDocument, decl: dict[str, Any], items: list[dict[str, Any]],
                 runner: Runner, refs: References, traders: TraderIndex | None) -> None:
        self.doc, self.decl, self.items, self.runner, self.refs = doc, decl, items, runner, refs
        self.traders = traders
        self.found: list[Discrepancy] = []
        self.warnings: list[str] = []
        self.pairs: list[tuple[LineItem, dict[str, Any]]] = []
        self.unpaired_lines: list[LineItem] = []
        self.unpaired_items: list[dict[str, Any]] = []
        self.split_note: dict[int, str] = {}

    def pairs_json(self) -> list[dict[str, int]]:
        return [{"line": ln.no, "item_no": int(it["item_no"])} for ln, it in self.pairs]

    def add(self, name: str, doc_value: Any, declared: Any, difference: Any, explanation: str,
            line: LineItem | None = None, item: dict[str, Any] | None = None,
            pct: float | None = None, unit: str = "", rule: str | None = None,
            where: str = "") -> None:
        self.found.append(Discrepancy(
            field=name, document_value=doc_value, declared_value=declared,
            difference=difference, rule=RULES[rule or name], explanation=explanation,
            line=line.no if line else None, item_no=int(item["item_no"]) if item else None,
            where=where or (line.where.get(_WHERE_KEY.get(name, name), "") if line else ""),
            difference_pct=None if pct is None else round(pct, 2), unit=unit))

    def run(self) -> None:
        if self.decl["flow"] != "import":
            self.warnings.append(f"Declaration {self.decl['declaration_id']} is an export "
                                 "declaration; values are compared as declared.")
        self._pair()
        self._header()
        for line, item in self.pairs:
            self._line(line, item)
        self._hs_by_description()
        self._value()
        self._goods()

    # -- pairing --------------------------------------------------------------------------------

    def _pair(self) -> None:
        from rapidfuzz import fuzz

        scores = []
        for line in self.doc.lines:
            desc = (line.get("description") or "").lower()
            for k, item in enumerate(self.items):
                s = 0.0
                declared = str(item["description"] or "").lower()
                s += 3.0 if desc and desc == declared else 1.5 * fuzz.ratio(desc, declared) / 100
                hs = line.get("hs_code")
                if hs and str(item["hs_code"]).startswith(hs[:6]):
                    s += 1.0
                s += _closeness(line.get("quantity"), _f(item["quantity"]))
                s += _closeness(line.get("net_mass_kg"), _f(item["mass"]))
                s += 0.5 if line.no == k + 1 else 0.0
                scores.append((s, line.no, k))
        taken_lines: set[int] = set()
        taken_items: set[int] = set()
        by_no = {ln.no: ln for ln in self.doc.lines}
        pairs = []
        for s, no, k in sorted(scores, key=lambda x: (-x[0], x[1], x[2])):
            if s < 1.5 or no in taken_lines or k in taken_items:
                continue
            taken_lines.add(no)
            taken_items.add(k)
            pairs.append((by_no[no], self.items[k]))
        self.pairs = sorted(pairs, key=lambda p: p[0].no)
        self.unpaired_lines = [ln for ln in self.doc.lines if ln.no not in taken_lines]
        self.unpaired_items = [it for k, it in enumerate(self.items) if k not in taken_items]

    # -- header ---------------------------------------------------------------------------------

    def _header(self) -> None:
        doc, decl = self.doc, self.decl
        where = {name: f.where for name, f in doc.header.items()}
        cur, declared_cur = doc.value("currency"), decl["currency"]
        if cur and declared_cur and cur != declared_cur:
            self.add("currency", cur, declared_cur, f"{cur} on the document, {declared_cur} "
                     "declared", f"The document is in {cur} but the declaration's invoice "
                     f"currency is {declared_cur}: the declared amounts are converted at the "
                     f"wrong rate.", where=where.get("currency", ""))
        term, declared_term = doc.value("incoterm"), decl["incoterm"]
        if term and declared_term and term != declared_term:
            self.add("incoterm", term, declared_term, f"{term} on the document, {declared_term} "
                     "declared", f"The delivery term decides which freight and insurance must "
                     f"be added; the document says {term}, the declaration {declared_term}.",
                     where=where.get("incoterm", ""))
        related = doc.value("relationship")
        declared_related = any(bool(it["related"]) for it in self.items)
        if related is True and not declared_related:
            self.add("relationship", True, False, "related on the document, declared unrelated",
                     "The document says seller and buyer are related; every item is declared "
                     "as bought from an unrelated seller. Examine whether the relationship "
                     "influenced the price.", where=where.get("relationship", ""))
        elif related is False and declared_related:
            self.add("relationship", False, True, "unrelated on the document, declared related",
                     "The declaration says the seller is related to the buyer; the document "
                     "says they are independent.", where=where.get("relationship", ""))
        self._buyer(where)
        day = doc.value("document_date")
        if day and day > decl["date"]:
            days = (day - decl["date"]).days
            self.add("document_date", day, decl["date"], f"{days} days after the declaration",
                     "The document is dated after the declaration it is supposed to support.",
                     where=where.get("document_date", ""))

    def _buyer(self, where: dict[str, str]) -> None:
        if not (self.doc.value("buyer") or self.doc.value("buyer_tin")):
            self.warnings.append("The document names no buyer or consignee.")
            return
        trader, how = _buyer(self.doc, self.traders, self.runner)
        name = self.doc.value("buyer") or self.doc.value("buyer_tin")
        if trader is None:
            self.warnings.append(f"The buyer on the document ({name}) is not a trader in the "
                                 "data you can see.")
        elif trader != self.decl["trader_id"]:
            self.add("buyer", f"{name} ({trader})",
                     f"{self.decl['name']} ({self.decl['trader_id']})", "another trader",
                     f"The document's buyer ({how}) is another trader than the declarant's "
                     "importer.", where=where.get("buyer_tin") or where.get("buyer", ""))

    # -- lines ----------------------------------------------------------------------------------

    def _line(self, line: LineItem, item: dict[str, Any]) -> None:
        n = f"line {line.no} (declared item {item['item_no']})"
        qty, declared_qty = line.get("quantity"), _f(item["quantity"])
        unit = line.get("unit") or item["unit"] or ""
        if qty is not None and declared_qty is not None and (
                line.get("unit") in (None, item["unit"])) and _differs(qty, declared_qty,
                                                                      QTY_TOL, 0.001):
            split = self._split(line, item, "quantity", qty)
            self.add("quantity", qty, declared_qty, round(qty - declared_qty, 3),
                     split or f"{n}: {_show(qty)} {unit} on the document, {_show(declared_qty)} "
                     "declared.", line, item, _pct(qty, declared_qty), str(unit),
                     rule="split" if split else None)
        mass, declared_mass = line.get("net_mass_kg"), _f(item["mass"])
        if mass is not None and declared_mass is not None and _differs(
                mass, declared_mass, MASS_TOL, 0.01):
            split = self.split_note.get(line.no, "")
            self.add("net_mass_kg", mass, declared_mass, round(mass - declared_mass, 3),
                     f"{n}: {_show(mass)} kg net on the document, {_show(declared_mass)} kg "
                     f"declared. {split}".strip(), line, item, _pct(mass, declared_mass), "kg",
                     rule="split" if split else None)
        origin, declared_origin = line.get("origin"), item["origin"]
        if origin and declared_origin and origin != declared_origin:
            self.add("origin", origin, declared_origin, f"{origin} on the document, "
                     f"{declared_origin} declared",
                     f"{n}: the document gives origin {origin}, the declaration "
                     f"{declared_origin}. A certificate or invoice showing another origin is an "
                     "indicator of origin fraud or transshipment; check the proof of origin "
                     "and the route.", line, item)
        hs = line.get("hs_code")
        declared_hs = str(item["hs_code"] or "")
        if hs and declared_hs and hs[:6] != declared_hs[:6]:
            texts = self._hs_texts([hs[:6], declared_hs[:6]])
            self.add("hs_code", hs, declared_hs, f"subheading {hs[:6]} vs {declared_hs[:6]}",
                     f"{n}: the document classifies the goods under {hs[:6]} "
                     f"({texts.get(hs[:6], 'unknown subheading')}); the declaration under "
                     f"{declared_hs[:6]} ({texts.get(declared_hs[:6], 'unknown subheading')}).",
                     line, item)

    def _split(self, line: LineItem, item: dict[str, Any], what: str, qty: float) -> str:
        """A sentence when the document's quantity is that of several declarations together."""
        declared = _f(item["quantity"]) or 0.0
        if qty <= declared * (1 + QTY_TOL):
            return ""
        day = self.decl["date"]
        rows = self.runner.run(SIBLINGS_SQL, {
            "trader": self.decl["trader_id"], "hs6": str(item["hs_code"])[:6],
            "start": day - timedelta(days=SPLIT_DAYS), "end": day + timedelta(days=SPLIT_DAYS),
        }).rows
        rows.sort(key=lambda r: (abs((date.fromisoformat(str(r[1])) - day).days), str(r[0])))
        total, ids = 0.0, []
        for did, _day, q, _m, _v in rows:
            total += float(q or 0)
            ids.append(str(did))
            if len(ids) > 1 and not _differs(qty, total, QTY_TOL, 0.001):
                note = (f"line {line.no}: the document covers {_show(qty)} "
                        f"{item['unit'] or ''} but declaration {self.decl['declaration_id']} "
                        f"only {_show(declared)}; {len(ids)} declarations of the same trader and "
                        f"goods within {SPLIT_DAYS} days add up to the document "
                        f"({', '.join(sorted(ids))}): a consignment split into small "
                        "declarations.")
                self.split_note[line.no] = (
                    f"line {line.no} is part of a consignment split over {len(ids)} "
                    "declarations (see the quantity).")
                return note
        return ""

    def _hs_texts(self, codes: list[str]) -> dict[str, str]:
        rows = self.runner.run(HS_TEXT_SQL, {"codes": codes}).rows
        return {str(c): str(d)[:80] for c, d in rows}

    def _hs_by_description(self) -> None:
        """Lines whose description other traders declare under another subheading."""
        flagged = {d.line for d in self.found if d.field == "hs_code"}
        todo = [(ln, it) for ln, it in self.pairs if ln.no not in flagged and it["description"]]
        if not todo:
            return
        descriptions = sorted({str(it["description"]).lower() for _, it in todo})
        rows = self.runner.run(HS_BY_DESCRIPTION_SQL, {
            "trader": self.decl["trader_id"], "descriptions": descriptions}).rows
        usage: dict[str, dict[str, int]] = {}
        for desc, hs6, n in rows:
            usage.setdefault(str(desc), {})[str(hs6)] = int(n)
        for line, item in todo:
            counts = usage.get(str(item["description"]).lower(), {})
            total = sum(counts.values())
            declared = str(item["hs_code"])[:6]
            if total < HS_OTHER_MIN_LINES:
                continue
            top, top_n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
            share = counts.get(declared, 0) / total
            if top != declared and share <= HS_DECLARED_MAX_SHARE and \
                    top_n / total >= HS_TOP_MIN_SHARE:
                texts = self._hs_texts([top, declared])
                self.add("hs_code", f"{item['description']} (other traders: {top})", declared,
                         f"subheading {top} vs {declared}",
                         f"line {line.no}: goods described as '{item['description']}' are "
                         f"declared by other traders under {top} "
                         f"({texts.get(top, 'unknown')}) in {top_n:,} of {total:,} lines; this "
                         f"declaration uses {declared} ({texts.get(declared, 'unknown')}).",
                         line, item, where=line.where.get("description", ""))

    # -- value ----------------------------------------------------------------------------------

    def _value(self) -> None:
        doc, decl = self.doc, self.decl
        if not any(ln.get("value") is not None for ln, _ in self.pairs):
            return
        doc_cur = doc.value("currency") or decl["currency"]
        declared_cur = decl["currency"]
        day = decl["date"]
        rate_doc, how_doc = self.refs.rate(doc_cur, day, self.runner)
        rate_decl, how_decl = self.refs.rate(declared_cur, day, self.runner)
        same = doc_cur == declared_cur
        if not same and (rate_doc is None or rate_decl is None):
            missing = doc_cur if rate_doc is None else declared_cur
            self.warnings.append(f"No reference rate for {missing} "
                                 f"({how_doc if rate_doc is None else how_decl}); the values "
                                 "were not compared.")
        for line, item in self.pairs:
            value, declared = line.get("value"), _f(item["invoice_value"])
            if value is None or declared is None:
                continue
            if same:
                if _differs(value, declared, VALUE_TOL, 1.0):
                    split = self.split_note.get(line.no, "")
                    why = split or ("the declared price is not the price actually paid or "
                                    "payable.")
                    self.add("invoice_value", value, declared, round(value - declared, 2),
                             f"line {line.no}: {fmt_money(value, doc_cur)} on the document, "
                             f"{fmt_money(declared, declared_cur)} declared; {why}",
                             line, item, _pct(value, declared), doc_cur,
                             rule="split" if split else None)
            elif rate_doc and rate_decl:
                converted = value / rate_doc * rate_decl
                if _differs(converted, declared, CONVERTED_TOL, 1.0):
                    self.add("invoice_value", f"{fmt_money(value, doc_cur)}",
                             declared, round(converted - declared, 2),
                             f"line {line.no}: {fmt_money(value, doc_cur)} on the document is "
                             f"{fmt_money(converted, declared_cur)} at the reference rate "
                             f"({how_doc}); {fmt_money(declared, declared_cur)} declared.",
                             line, item, _pct(converted, declared), declared_cur)
        self._customs_value(doc_cur, rate_doc, how_doc)
        self._exchange_rate(rate_decl, how_decl)

    def _customs_value(self, doc_cur: str, rate: float | None, how: str) -> None:
        paired = [(ln, it) for ln, it in self.pairs if ln.get("value") is not None]
        term = self.doc.value("incoterm") or self.decl["incoterm"]
        factor, how_factor = self.refs.uplift(term, self.runner)
        if rate is None or factor is None:
            self.warnings.append("The customs value was not recomputed: "
                                 + (how if rate is None else how_factor) + ".")
            return
        doc_total = sum(ln.get("value") for ln, _ in paired)
        declared = sum(_f(it["customs_value"]) or 0.0 for _, it in paired)
        expected = doc_total / rate * factor
        tol = CUSTOMS_TOL["paid" if (term or "").upper() in INCLUDED else "estimated"]
        if declared > 0 and _differs(expected, declared, tol, 1.0):
            cur = self.refs.currency
            split = next(iter(self.split_note.values()), "")
            self.add("customs_value", round(expected, 2), round(declared, 2),
                     round(expected - declared, 2),
                     f"The document's {fmt_money(doc_total, doc_cur)} {term or ''} gives a customs "
                     f"value of about {fmt_money(expected, cur)} ({how}; {how_factor}); "
                     f"{fmt_money(declared, cur)} was declared for these lines. {split}".strip(),
                     None, None, _pct(expected, declared), cur,
                     rule="split" if split else None,
                     where=self.doc.header["total_value"].where
                     if "total_value" in self.doc.header else "")

    def _exchange_rate(self, rate: float | None, how: str) -> None:
        term = self.decl["incoterm"]
        factor, _ = self.refs.uplift(term, self.runner)
        invoice = sum(_f(it["invoice_value"]) or 0.0 for it in self.items)
        customs = sum(_f(it["customs_value"]) or 0.0 for it in self.items)
        if rate is None or factor is None or invoice <= 0 or customs <= 0:
            return
        implied = invoice * factor / customs
        if _differs(implied, rate, RATE_TOL, 0.0):
            cur, ref = self.decl["currency"], self.refs.currency
            self.add("exchange_rate", round(implied, 6), round(rate, 6),
                     round(implied - rate, 6),
                     f"The declaration converts {cur} to {ref} at about {implied:,.4f} {cur} per "
                     f"{ref}; the reference is {rate:,.4f} ({how}).", None, None,
                     _pct(implied, rate), f"{cur}/{ref}")

    def _goods(self) -> None:
        for line in self.unpaired_lines:
            self.add("goods", line.get("description") or f"line {line.no}", None,
                     "not declared", f"line {line.no} of the document matches no declared item.",
                     line, None, where=line.where.get("description", ""))
        if self.doc.doc_type in ("invoice", "packing_list"):
            for item in self.unpaired_items:
                self.add("goods", None, item["description"], "not on the document",
                         f"declared item {item['item_no']} ({item['description']}) is not on "
                         "the document.", None, item)


_WHERE_KEY = {"invoice_value": "value", "customs_value": "value"}


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _differs(a: float, b: float, rel: float, absolute: float) -> bool:
    diff = abs(a - b)
    return diff > absolute and diff > rel * max(abs(a), abs(b))


def _pct(a: float, b: float) -> float | None:
    return None if not b else (a - b) / abs(b) * 100.0


# --------------------------------------------------------------------------- findings


class FindingsStore:
    """Verification reports kept as JSON files under a folder (TAMGA_HOME/findings), one
    folder per trader; never in the trade database."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).expanduser()

    def save(self, report: VerificationReport, user: str = "") -> Path:
        """Keep a report; returns its file."""
        safe_trader = re.sub(r"[^A-Za-z0-9_.-]", "_", report.trader_id)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(report.document).name)[:80]
        target = self.folder / safe_trader / f"{stamp}-{name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        data = report.to_json() | {"user": user, "summary": report.summary()}
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str),
                       encoding="utf-8")
        tmp.replace(target)
        return target

    def for_trader(self, trader_id: str) -> list[dict[str, Any]]:
        """The kept reports of a trader, oldest first (damaged files are skipped)."""
        folder = self.folder / re.sub(r"[^A-Za-z0-9_.-]", "_", trader_id)
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out


def visible_findings(runner: Runner, findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings whose declaration the runner's scope can see (an officer's briefing must
    not show another office's declarations)."""
    ids = sorted({str(f.get("declaration_id")) for f in findings if f.get("declaration_id")})
    if not ids:
        return []
    try:
        seen = {str(r[0]) for r in runner.run(FINDINGS_VISIBLE_SQL, {"ids": ids}).rows}
    except TamgaError:
        return []
    return [f for f in findings if str(f.get("declaration_id")) in seen]
