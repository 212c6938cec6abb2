"""Tool intents: verified questions answered by the risk and briefing tools, not by one query.

An intent of `kind: tool` in assistant/intents.yaml names one function of `TOOLS`:

    audit_candidates   "Who should we audit next quarter?"     tools.trader_risk.audit_candidates
    trader_score       "What is the risk score of X?"          tools.trader_risk.trader_score
    trader_briefing    "Brief me on X"                         tools.briefing.trader_briefing
    period_briefing    "Brief me on October 2025"              tools.briefing.period_briefing

The slots come from the usual extraction (trader, period, office, top-N). The tool runs on the
engine's analysis runner, which carries the user's scope (an officer's runner sees only the
officer's offices), wrapped in a `RecordingRunner` so that the answer lists every statement
that ran, with its parameters written in. Each function writes an Answer: a sentence with the
key figures, the tables, follow-ups and, for a trader briefing, the rule passages it cites.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from tamga.answer import Answer, Citation, Table
from tamga.formatting import fmt_money
from tamga.period import Period, period_containing
from tools.briefing import period_briefing, rules_for, trader_briefing
from tools.indicators import LABELS
from tools.regulations import Retriever
from tools.runner import RecordingRunner
from tools.trader_risk import audit_candidates, trader_score

if TYPE_CHECKING:
    from assistant.intents import Intent
    from assistant.slots import SlotExtractor, Slots

_NEXT = re.compile(r"\b(?:next|coming|upcoming|following)\s+(?:quarter|month|year|period|round)\b",
                   re.IGNORECASE)


@dataclass
class ToolRequest:
    """What a tool intent gets: the question, its slots and where to run."""

    question: str
    intent: Intent
    slots: Slots
    runner: RecordingRunner
    extractor: SlotExtractor
    currency: str
    retriever: Retriever | None = None
    citations: list[Citation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def money(self, value: Any) -> str:
        """An amount in the reporting currency."""
        return fmt_money(value, self.currency)


def _top_n(req: ToolRequest) -> int:
    if req.slots.top_n and req.intent.accepts("top_n"):
        return int(req.slots.top_n)
    return int(req.intent.defaults.get("top_n", 10))


# -- audit selection ---------------------------------------------------------------------------


def run_audit_candidates(req: ToolRequest) -> Answer:
    """'Who should we audit next quarter?': traders ranked by expected revenue at stake."""
    slots, n = req.slots, _top_n(req)
    period = slots.period
    planning = ""
    if period is None:
        period = req.extractor.extract("in the last 12 months").periods[0]
        if _NEXT.search(req.question):
            planning = "To plan the coming audits I ranked the traders on their declarations " \
                       f"{period.label}" + (f" at {slots.office}" if slots.office else "") + ". "
    office = slots.office if req.intent.accepts("office") else None
    found = audit_candidates(req.runner, period, office, n)
    where = f" at {office}" if office else ""
    columns = ["rank", "trader_id", "name", "score", "duty_at_stake", "expected_revenue",
               "last_audit", "main_reason"]
    rows = [[c.rank, c.trader_id, c.name, round(c.score, 3), round(c.duty_at_stake, 2),
             round(c.expected_revenue, 2), c.last_audit, c.reasons[0] if c.reasons else ""]
            for c in found]
    if not found:
        text = (f"{planning}No indicator flags any trader for declarations {period.label}{where}, "
                "so nothing stands out for audit selection. Try a longer period.")
        return Answer(text, engine="offline", tables=[Table(columns, [], title="Who to audit")])
    first = found[0]
    lead = f"{planning}I would start with" if planning else \
        f"For declarations {period.label}{where}, I would start with"
    text = (f"{lead} {first.name} "
            f"({first.trader_id}): risk score {first.score:.2f}, about "
            f"{req.money(first.duty_at_stake)} duty at stake, expected revenue "
            f"{req.money(first.expected_revenue)}")
    text += f" (last audit opened {first.last_audit})." if first.last_audit else \
        " (no audit on record)."
    if len(found) > 1:
        others = ", ".join(f"{c.name} ({req.money(c.expected_revenue)})" for c in found[1:3])
        text += f" Next come {others}."
    total = sum(c.expected_revenue for c in found)
    text += (f" The {len(found)} traders listed add up to {req.money(total)} of expected revenue "
             "(risk score x estimated duty gap of the flagged lines).")
    if first.reasons:
        text += f" Main reason for {first.name}: {first.reasons[0]}."
    reasons = [[c.rank, c.trader_id, r] for c in found for r in c.reasons]
    tables = [Table(columns, rows, title="Who to audit next"),
              Table(["rank", "trader_id", "reason"], reasons, title="Reasons")]
    chart = {"kind": "bar", "x": "name", "y": "expected_revenue", "color": None,
             "title": "Expected revenue at stake"} if len(found) > 1 else None
    suggestions = [f"Brief me on {first.name}", f"What is the risk score of {first.name}?",
                   "only the top 5"]
    return Answer(text, engine="offline", tables=tables, chart=chart, suggestions=suggestions)


# -- one trader's score ------------------------------------------------------------------------


def run_trader_score(req: ToolRequest) -> Answer:
    """'What is the risk score of X?': score, duty at stake and reasons."""
    trader = req.slots.trader
    assert trader is not None
    period = req.slots.period
    score = trader_score(req.runner, trader.trader_id, period)
    when = period.label if period is not None else req.extractor.all_data().label
    summary = Table(["field", "value"], [
        ["trader_id", score.trader_id], ["name", score.name],
        ["period", period.name if period is not None else "all data"],
        ["score", round(score.score, 3)], ["duty_at_stake", round(score.duty_at_stake, 2)],
        ["expected_revenue", round(score.expected_revenue, 2)], ["flags", len(score.flags)],
    ], title="Risk score")
    if not score.flags:
        text = (f"No indicator flags {score.name} ({score.trader_id}) {when}: risk score 0.00 "
                "and no duty at stake.")
        return Answer(text, engine="offline", tables=[summary])
    text = (f"{score.name} ({score.trader_id}) has a risk score of {score.score:.2f} (0 to 1) "
            f"{when}, with about {req.money(score.duty_at_stake)} duty at stake and an expected "
            f"revenue of {req.money(score.expected_revenue)}. {len(score.flags):,} flags; the "
            f"main reason: {score.reasons[0]}.")
    tables = [summary,
              Table(["n", "reason"], [[k, r] for k, r in enumerate(score.reasons, 1)],
                    title="Reasons, largest duty at stake first"),
              Table(["indicator", "flags"], [[LABELS[k], v] for k, v in score.flag_counts.items()],
                    title="Flags by indicator")]
    return Answer(text, engine="offline", tables=tables)


# -- briefings ---------------------------------------------------------------------------------


def _rules_finder(req: ToolRequest) -> Callable[[Sequence[str]], tuple[list[str], str | None]]:
    """Finds the rule passages for the flags of a briefing and keeps them as citations."""
    return lambda indicators: rules_for(indicators, req.retriever, cited=req.citations)


def _section_tables(briefing: Any) -> list[Table]:
    return [Table(list(columns), [list(r) for r in rows], title=section.title)
            for section in briefing.sections for columns, rows in section.tables]


def run_trader_briefing(req: ToolRequest) -> Answer:
    """'Brief me on X': the audit-planning briefing, as Markdown, with its key facts."""
    trader = req.slots.trader
    assert trader is not None
    briefing = trader_briefing(req.runner, trader.trader_id, req.slots.period, req.retriever,
                               rules=_rules_finder(req))
    audits = req.runner.run(
        "SELECT count(*) AS audits, max(opened_on) AS last_audit FROM audits "
        "WHERE trader_id = $trader", {"trader": trader.trader_id}).rows[0]
    f = briefing.facts
    facts = Table(["field", "value"], [
        ["trader_id", f["trader_id"]], ["name", f["name"]], ["tin", f["tin"]],
        ["sector", f["sector"]], ["aeo_status", f["aeo_status"]], ["period", f["period"]],
        ["import_declarations", f["declarations"]], ["customs_value", f["customs_value"]],
        ["duty", f["duty"]], ["red_share_pct", f["red_share_pct"]],
        ["risk_score", round(f["score"], 3)], ["duty_at_stake", round(f["duty_at_stake"], 2)],
        ["expected_revenue", round(f["expected_revenue"], 2)], ["audits", audits[0]],
        ["last_audit", audits[1]],
    ], title="Key facts")
    risk = (f"risk score {f['score']:.2f} with about {req.money(f['duty_at_stake'])} duty at "
            f"stake" if f["flags"] else "no risk indicator fires")
    summary = (f"Briefing on {f['name']} ({f['trader_id']}) for {f['period']}: "
               f"{int(f['declarations'] or 0):,} import declarations worth "
               f"{req.money(f['customs_value'])}, duty {req.money(f['duty'])}; {risk}; "
               f"{int(audits[0]):,} audits on record.")
    tables = [facts, *_section_tables(briefing)]
    return Answer(summary + "\n\n" + briefing.markdown(), engine="offline", tables=tables,
                  citations=list(req.citations),
                  suggestions=[f"What is the risk score of {f['name']}?",
                               f"Which declarations of {f['name']} look undervalued?",
                               "Who should we audit next quarter?"])


_BRIEFING_KINDS = {"year": "year", "ytd": "year", "quarter": "quarter", "month": "month"}


def _calendar_period(period: Period) -> Period | None:
    """The whole calendar month, quarter or year of a slot period (None for other spans)."""
    kind = _BRIEFING_KINDS.get(period.kind)
    if kind is None:
        return None
    return period_containing(period.start, kind)  # type: ignore[arg-type]


def run_period_briefing(req: ToolRequest) -> Answer:
    """'Brief me on October 2025': the supervisors' briefing for one month, quarter or year."""
    latest: date = req.extractor.facts.latest_date
    slot = req.slots.period
    if slot is None:
        period = period_containing(latest, "month")
    else:
        found = _calendar_period(slot)
        if found is None:
            return Answer(f"A supervisor briefing covers one month, quarter or year; "
                          f"{slot.name} is none of these. Ask for example \"Brief me on "
                          f"{latest:%B %Y}\" or \"briefing for Q{(latest.month - 1) // 3 + 1} "
                          f"{latest.year}\".", engine="offline",
                          suggestions=[f"Brief me on {latest:%B %Y}",
                                       f"Supervisor briefing for {latest.year}"])
        period = found
    if period.start > latest:
        return Answer(f"The data ends on {latest.isoformat()}, so there is nothing to brief on "
                      f"for {period.name} yet.", engine="offline",
                      suggestions=[f"Brief me on {latest:%B %Y}"])
    if period.end > date.fromordinal(latest.toordinal() + 1):
        req.notes.append(f"The data ends on {latest.isoformat()}: {period.name} is not complete "
                         f"and is compared with the whole of {period.previous().name}.")
    briefing = period_briefing(req.runner, period, n_risks=_top_n(req))
    f = briefing.facts
    change = f["customs_value_change_pct"]
    moved = f" ({change:+.1f}% against {f['previous']})" if change is not None else ""
    text = (f"In {f['period']}: {f['declarations']:,} import declarations worth "
            f"{req.money(f['customs_value'])}{moved}, duty {req.money(f['duty'])}, "
            f"{f['red_share_pct']:.1f}% of declarations in the red channel.")
    cands = f["candidates"]
    if cands:
        top = cands[0]
        text += (f" Top audit candidate: {top['name']} ({top['trader_id']}), expected revenue "
                 f"{req.money(top['expected_revenue'])}.")
    else:
        text += " No indicator flags any trader in the period."
    return Answer(text + "\n\n" + briefing.markdown(), engine="offline",
                  tables=_section_tables(briefing),
                  suggestions=["Who should we audit next quarter?",
                               f"Brief me on {cands[0]['name']}" if cands else
                               "Top importers last month"])


TOOLS: dict[str, Callable[[ToolRequest], Answer]] = {
    "audit_candidates": run_audit_candidates,
    "trader_score": run_trader_score,
    "trader_briefing": run_trader_briefing,
    "period_briefing": run_period_briefing,
}
