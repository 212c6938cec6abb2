"""Trader risk scores and post-clearance audit selection from the label-free indicators.

A trader's score combines its strongest flag per indicator into one probability-like number
(``1 - prod(1 - weight x strength)``); its reasons are the flags grouped by indicator and
goods, in words, with the duty at stake. Audit selection ranks traders by the *expected
revenue at stake*: score x estimated duty gap of the flagged lines, as post-clearance audit
selection weighs both the likelihood and the amount.

    runner = analysis_runner(Path("trade.duckdb"))
    trader_score(runner, "T000012", parse_period("2025-Q3"))
    audit_candidates(runner, parse_period("2025"), office="Balboa", n=20)
    table, reasons = undervalued_declarations(runner, "T000012", None)
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from tamga.errors import TamgaError, UnknownTrader
from tamga.formatting import fmt_money
from tamga.period import Period
from tools.indicators import (
    INDICATORS,
    LABELS,
    UNIT_VALUE_SQL,
    Flag,
    related_party_gaps,
    run_indicators,
    unit_value_outliers,
)
from tools.runner import reporting_currency

if TYPE_CHECKING:
    from tools.runner import Runner
    from tools.sql import QueryResult

# How much a maximal flag of each kind counts towards the score (pattern changes alone are
# weak evidence: growth is not an irregularity).
WEIGHTS = {
    "unit_value": 0.9, "origin_switch": 0.85, "split_consignment": 0.8,
    "misclassification": 0.9, "related_party": 0.8, "pattern_change": 0.35,
}


def parse_period(text: str | None) -> Period | None:
    """'2025-10' (month), '2025-Q3' (quarter) or '2025' (year) as a Period; None for None."""
    if text is None or not text.strip():
        return None
    t = text.strip().upper().replace(" ", "-")
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})", t):
        year, month = int(m[1]), int(m[2])
        if 1 <= month <= 12:
            return Period.of_calendar("month", date(year, month, 1))
    if m := re.fullmatch(r"(\d{4})-?Q([1-4])", t):
        year, q = int(m[1]), int(m[2])
        return Period.of_calendar("quarter", date(year, 3 * q - 2, 1))
    if re.fullmatch(r"\d{4}", t):
        return Period.of_calendar("year", date(int(t), 1, 1))
    raise TamgaError(f"Cannot read the period {text!r}: use 2025-10, 2025-Q3 or 2025.")


def _bounds(period: Period | None) -> tuple[date | None, date | None]:
    return (period.start, period.end) if period else (None, None)


@dataclass
class TraderScore:
    """A trader's risk score (0..1), duty at stake and reasons in words."""

    trader_id: str
    name: str
    score: float
    duty_at_stake: float
    reasons: list[str]
    flag_counts: dict[str, int]
    flags: list[Flag] = field(default_factory=list, repr=False)

    @property
    def expected_revenue(self) -> float:
        """Score x duty at stake: what an audit of this trader is expected to recover."""
        return self.score * self.duty_at_stake

    def to_json(self, with_flags: bool = False) -> dict[str, Any]:
        """Plain JSON data; the flagged lines only when asked."""
        out: dict[str, Any] = {
            "trader_id": self.trader_id, "name": self.name, "score": round(self.score, 4),
            "duty_at_stake": round(self.duty_at_stake, 2),
            "expected_revenue": round(self.expected_revenue, 2),
            "reasons": self.reasons, "flag_counts": self.flag_counts,
        }
        if with_flags:
            out["flags"] = [f.to_json() for f in self.flags]
        return out


def _reason(indicator: str, key: str, group: list[Flag], currency: str) -> str:
    """One sentence for a group of flags of one kind about the same goods."""
    top = max(group, key=lambda f: f.strength)
    duty = sum(f.duty_gap for f in group)
    money = fmt_money(duty, currency, cents_below=0)
    at_stake = f"; about {money} duty at stake" if duty >= 1 else ""
    if indicator == "pattern_change":
        return f"Sudden change: {top.reason}"
    decls = len({f.declaration_id for f in group})
    lines = len(group)
    what = f"{decls} declaration{'s' if decls != 1 else ''}"
    if lines != decls:
        what += f" ({lines} lines)"
    return f"{LABELS[indicator].capitalize()} — {what}, {key}; e.g. {top.reason}{at_stake}"


def score_from_flags(trader_id: str, name: str, flags: Sequence[Flag], currency: str
                     ) -> TraderScore:
    """Aggregate one trader's flags into a score, duty at stake and reasons (strongest first);
    the reasons quote money in `currency`."""
    groups: dict[tuple[str, str], list[Flag]] = defaultdict(list)
    best: dict[str, float] = {}
    for f in flags:
        groups[(f.indicator, f.key)].append(f)
        best[f.indicator] = max(best.get(f.indicator, 0.0), f.strength)
    clean = 1.0
    for indicator, strength in best.items():
        clean *= 1 - WEIGHTS.get(indicator, 0.5) * strength
    ranked = sorted(groups.items(), key=lambda kv: (-sum(f.duty_gap for f in kv[1]),
                                                    -max(f.strength for f in kv[1])))
    counts = {ind: sum(1 for f in flags if f.indicator == ind) for ind in INDICATORS}
    return TraderScore(
        trader_id=trader_id, name=name, score=1 - clean,
        duty_at_stake=sum(f.duty_gap for f in flags),
        reasons=[_reason(ind, key, group, currency) for (ind, key), group in ranked],
        flag_counts={k: v for k, v in counts.items() if v}, flags=list(flags),
    )


def _trader_name(runner: Runner, trader_id: str) -> str:
    result = runner.run("SELECT name FROM traders WHERE trader_id = $t", {"t": trader_id})
    if not result.rows:
        raise UnknownTrader(f"No trader with ID {trader_id!r}. Look it up with `tamga ask`.")
    return str(result.rows[0][0])


def trader_score(
    runner: Runner, trader_id: str, period: Period | None = None,
) -> TraderScore:
    """The risk score of one trader over `period` (all data when None), with its reasons."""
    name = _trader_name(runner, trader_id)
    start, end = _bounds(period)
    currency = reporting_currency(runner)
    flags = run_indicators(runner, start, end, trader_id, currency=currency)
    return score_from_flags(trader_id, name, flags, currency)


def score_traders(
    runner: Runner, period: Period | None = None, office: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[TraderScore]:
    """Every flagged trader of the period (and office), highest expected revenue first."""
    start, end = _bounds(period)
    currency = reporting_currency(runner)
    flags = run_indicators(runner, start, end, progress=progress, currency=currency)
    if office is not None:
        flags = _in_office(runner, flags, office, start, end)
    by_trader: dict[str, list[Flag]] = defaultdict(list)
    for f in flags:
        by_trader[f.trader_id].append(f)
    if not by_trader:
        return []
    names = _names(runner, sorted(by_trader))
    scores = [score_from_flags(t, names.get(t, t), fl, currency) for t, fl in by_trader.items()]
    scores.sort(key=lambda s: (-s.expected_revenue, -s.score, s.trader_id))
    return scores


def _names(runner: Runner, ids: list[str]) -> dict[str, str]:
    result = runner.run("SELECT trader_id, name FROM traders WHERE list_contains($ids, trader_id)",
                        {"ids": ids})
    return {str(t): str(n) for t, n in result.rows}


def offices(runner: Runner) -> list[str]:
    """The customs offices that appear in the declarations."""
    result = runner.run("SELECT DISTINCT customs_office FROM declarations ORDER BY 1")
    return [str(r[0]) for r in result.rows if r[0] is not None]


def _in_office(runner: Runner, flags: list[Flag], office: str, start: date | None,
               end: date | None) -> list[Flag]:
    known = offices(runner)
    match = [o for o in known if o.lower() == office.lower()] or \
            [o for o in known if office.lower() in o.lower()]
    if not match:
        raise TamgaError(f"No customs office matches {office!r}; known: {', '.join(known)}.")
    params: dict[str, Any] = {"offices": match, "start": start or date(1900, 1, 1),
                              "end": end or date(2999, 12, 31)}
    result = runner.run(
        "SELECT DISTINCT declaration_id, trader_id FROM declarations "
        "WHERE list_contains($offices, customs_office) "
        "AND declaration_date >= $start AND declaration_date < $end", params)
    decls = {r[0] for r in result.rows}
    traders = {r[1] for r in result.rows}
    return [f for f in flags
            if (f.declaration_id in decls if f.declaration_id else f.trader_id in traders)]


@dataclass
class AuditCandidate:
    """One line of the 'who to audit next' list."""

    rank: int
    trader_id: str
    name: str
    score: float
    duty_at_stake: float
    expected_revenue: float
    reasons: list[str]
    last_audit: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "rank": self.rank, "trader_id": self.trader_id, "name": self.name,
            "score": round(self.score, 4), "duty_at_stake": round(self.duty_at_stake, 2),
            "expected_revenue": round(self.expected_revenue, 2), "reasons": self.reasons,
            "last_audit": self.last_audit,
        }


def audit_candidates(
    runner: Runner, period: Period | None = None, office: str | None = None, n: int = 20,
    progress: Callable[[str], None] | None = None,
) -> list[AuditCandidate]:
    """The `n` traders most worth auditing for lines of `period` (and `office`), ranked by
    expected revenue at stake (score x estimated duty gap)."""
    scores = score_traders(runner, period, office, progress)[: max(0, n)]
    last: dict[str, str] = {}
    if scores:
        result = runner.run(
            "SELECT trader_id, max(opened_on) AS last_audit FROM audits "
            "WHERE list_contains($ids, trader_id) GROUP BY trader_id",
            {"ids": [s.trader_id for s in scores]})
        last = {str(t): str(d) for t, d in result.rows if d is not None}
    return [
        AuditCandidate(i, s.trader_id, s.name, s.score, s.duty_at_stake, s.expected_revenue,
                       s.reasons[:3], last.get(s.trader_id))
        for i, s in enumerate(scores, 1)
    ]


UNDERVALUED_COLUMNS = [
    "declaration_id", "item_no", "declaration_date", "hs6", "origin", "customs_value",
    "duty_gap", "strength", "indicator", "reason",
]


def undervalued_declarations(
    runner: Runner, trader_id: str, period: Period | None = None,
) -> tuple[QueryResult, list[str]]:
    """The trader's lines that look undervalued (unit value far below peers, or related-party
    prices below arm's length), as a table, and the reasons in words."""
    from tools.sql import QueryResult

    name = _trader_name(runner, trader_id)
    start, end = _bounds(period)
    currency = reporting_currency(runner)
    flags = unit_value_outliers(runner, start, end, trader_id, currency=currency)
    flags += related_party_gaps(runner, start, end, trader_id, currency=currency)
    flags.sort(key=lambda f: (-f.duty_gap, -f.strength))
    rows = [[f.declaration_id, f.item_no, f.declaration_date, f.hs6, f.origin,
             round(f.customs_value, 2), round(f.duty_gap, 2), round(f.strength, 3), f.indicator,
             f.reason] for f in flags]
    table = QueryResult(UNDERVALUED_COLUMNS, rows, False, 0.0, UNIT_VALUE_SQL)
    reasons = score_from_flags(trader_id, name, flags, currency).reasons
    return table, reasons
