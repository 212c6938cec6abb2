"""Briefings for audit planning (one trader) and for supervisors (one period), as Markdown or PDF.

A briefing is built once as a list of sections (paragraphs, tables, bar charts), then rendered
to Markdown or to a PDF with fpdf2 (charts drawn with its primitives). Every figure comes from
a query through the guarded runner; the queries are listed in an appendix. The rules that
matter for the flags found are cited from the regulations index; without an index the
briefing says so instead of failing.

    b = trader_briefing(runner, "T000012", parse_period("2025"), retriever)
    b.markdown(); b.pdf()
    period_briefing(runner, parse_period("2025-10"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from tamga.formatting import fmt_money, format_cell
from tamga.pdf import PdfDocument
from tamga.period import Period
from tools.dashboard import change_pct, key_figures, monthly_trend, top_movers
from tools.indicators import LABELS, indicator_sql
from tools.regulations import Passage, Retriever, as_citation
from tools.runner import reporting_currency
from tools.trader_risk import _trader_name, audit_candidates, trader_score

if TYPE_CHECKING:
    from tamga.answer import Citation
    from tools.runner import Runner
    from tools.sql import QueryResult


# What to search in the knowledge base for each kind of flag, and what an auditor should check.
RULE_QUERIES = {
    "unit_value": "undervaluation indicators unit value below market price transaction value",
    "origin_switch": "origin fraud transshipment change of origin after duty increase",
    "split_consignment": "splitting consignments low value threshold de minimis",
    "misclassification": "misclassification tariff classification lower duty heading",
    "related_party": "related party transactions transaction value influenced by relationship",
    "pattern_change": "post-clearance audit selection risk indicators",
}
FOCUS = {
    "unit_value": "Valuation: obtain contracts, invoices and payment records for the flagged "
                  "goods; compare with the prices other buyers paid; check for extra payments.",
    "origin_switch": "Origin: ask for certificates of origin and production records of the new "
                     "suppliers; check the shipping route for transshipment.",
    "split_consignment": "Splitting: reconcile orders and payments with the small declarations; "
                         "check whether one order was cut under the low-value threshold.",
    "misclassification": "Classification: inspect product specifications and catalogues of the "
                         "flagged goods against the declared subheading.",
    "related_party": "Related-party pricing: request the transfer-pricing documentation and the "
                     "circumstances of sale; test against arm's-length values.",
    "pattern_change": "Volume jump: explain the jump in imports (new contracts, new goods, "
                      "stock building) and check the first declarations of the new pattern.",
}


@dataclass
class Chart:
    """A horizontal bar chart: one label and one value per bar."""

    title: str
    labels: list[str]
    values: list[float]


@dataclass
class Section:
    """One titled part of a briefing."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)


@dataclass
class Briefing:
    """A briefing: title, subtitle, sections and the SQL behind every figure."""

    title: str
    subtitle: str
    sections: list[Section]
    sql: list[str]
    facts: dict[str, Any] = field(default_factory=dict)  # key figures, for a summary sentence

    def markdown(self) -> str:
        """The briefing as Markdown, with the SQL appendix."""
        out = [f"# {self.title}", "", f"*{self.subtitle}*", ""]
        for s in self.sections:
            out += [f"## {s.title}", ""]
            for p in s.paragraphs:
                out += [p, ""]
            for columns, rows in s.tables:
                out += [_md_table(columns, rows), ""]
            for b in s.bullets:
                out.append(f"- {b}")
            if s.bullets:
                out.append("")
        out += ["## Appendix: SQL behind the figures", ""]
        for n, q in enumerate(self.sql, 1):
            out += [f"{n}.", "", "```sql", _squash(q), "```", ""]
        return "\n".join(out)

    def pdf(self) -> bytes:
        """The briefing as an A4 PDF, charts included, SQL appendix on the last pages."""
        return _render_pdf(self)


def _squash(sql: str) -> str:
    return "\n".join(line.rstrip() for line in sql.strip().splitlines() if line.strip())


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(format_cell(v).replace("|", "/") for v in row) + " |"
            for row in rows]
    return "\n".join([head, sep, *body])


def _money(x: Any, currency: str) -> str:
    return fmt_money(x or 0, currency, cents_below=0)


def _change(cur: float, prev: float) -> str:
    pct = change_pct(cur, prev)
    return "n/a" if pct is None else f"{pct:+.1f}%"


class _Recorder:
    """Runs queries and keeps the SQL (with parameters spelled out) for the appendix."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.sql: list[str] = []

    def run(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        result = self.runner.run(sql, params)
        self.note(result.sql, params)
        return result

    def note(self, sql: str, params: dict[str, Any] | None = None) -> None:
        text = _squash(sql)
        if params:
            text += "\n-- parameters: " + ", ".join(f"${k} = {v!s}" for k, v in params.items())
        self.sql.append(text)


def _records(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


_ITEMS = ("FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
          "WHERE d.trader_id = $trader AND d.flow = 'import' "
          "AND d.declaration_date >= $start AND d.declaration_date < $end")

TRADER_SQL = {
    "identity": "SELECT trader_id, name, tin, country, region, sector, aeo_status, registered_on "
                "FROM traders WHERE trader_id = $trader",
    "summary": (
        "SELECT count(DISTINCT d.declaration_id) AS declarations, count(*) AS lines, "
        "round(coalesce(sum(i.customs_value), 0), 2) AS customs_value, "
        "round(coalesce(sum(i.duty_amount), 0), 2) AS duty, "
        "count(DISTINCT d.declaration_id) FILTER (WHERE d.control_channel = 'red') AS red, "
        f"min(d.declaration_date) AS first_date, max(d.declaration_date) AS last_date {_ITEMS}"
    ),
    "monthly": (
        "SELECT strftime(date_trunc('month', d.declaration_date), '%Y-%m') AS month, "
        f"round(sum(i.customs_value), 2) AS customs_value {_ITEMS} GROUP BY 1 ORDER BY 1"
    ),
    "goods": (
        "SELECT left(i.hs_code, 6) AS hs6, any_value(h.description) AS description, "
        "count(*) AS lines, round(sum(i.customs_value), 2) AS customs_value, "
        "round(sum(i.duty_amount), 2) AS duty "
        "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        "LEFT JOIN hs_nomenclature h ON h.code = left(i.hs_code, 6) "
        "WHERE d.trader_id = $trader AND d.flow = 'import' "
        "AND d.declaration_date >= $start AND d.declaration_date < $end "
        "GROUP BY 1 ORDER BY customs_value DESC LIMIT 8"
    ),
    "origins": (
        "SELECT i.origin_country AS origin, round(sum(i.customs_value), 2) AS customs_value, "
        f"count(*) AS lines {_ITEMS} GROUP BY 1 ORDER BY customs_value DESC LIMIT 8"
    ),
    "suppliers": (
        "SELECT i.seller_id AS supplier, bool_or(i.related_party) AS related_party, "
        f"round(sum(i.customs_value), 2) AS customs_value, count(*) AS lines {_ITEMS} "
        "GROUP BY 1 ORDER BY customs_value DESC LIMIT 8"
    ),
    "audits": (
        "SELECT audit_id, opened_on, closed_on, audit_type, outcome, additional_duty, "
        "penalty_amount FROM audits WHERE trader_id = $trader ORDER BY opened_on DESC LIMIT 8"
    ),
}


def _data_period(runner: Runner) -> tuple[date, date]:
    result = runner.run("SELECT min(declaration_date), max(declaration_date) FROM declarations")
    first, last = result.rows[0]
    if first is None:
        return date(1900, 1, 1), date(1900, 1, 2)
    last_d = date.fromisoformat(str(last))
    return date.fromisoformat(str(first)), date.fromordinal(last_d.toordinal() + 1)


def rule_bullet(indicator: str, source: str, locator: str, text: str) -> str:
    """One 'rules that matter' bullet: the passage (cut to 300 characters) and where it is."""
    text = " ".join(text.split())
    text = text if len(text) <= 300 else text[:297].rsplit(" ", 1)[0] + "..."
    return f"[{LABELS[indicator]}] {text} — {locator} (`{source}`)"


RulesFinder = Callable[[Sequence[str]], tuple[list[str], str | None]]
NO_INDEX = "The regulations index was not found, so no rules are cited."


def rule_passages(search: Callable[[str], Sequence[Passage]],
                  indicators: Sequence[str]) -> list[tuple[str, Passage]]:
    """(indicator, passage) pairs for the flags found: `search(query)` on each indicator's
    rule query, every passage (source, locator) kept once, in indicator order."""
    pairs: list[tuple[str, Passage]] = []
    seen: set[tuple[str, str]] = set()
    for ind in indicators:
        for p in search(RULE_QUERIES[ind]):
            if (p.source, p.locator) not in seen:
                seen.add((p.source, p.locator))
                pairs.append((ind, p))
    return pairs


def rules_for(indicators: Sequence[str], retriever: Retriever | None,
              cited: list[Citation] | None = None) -> tuple[list[str], str | None]:
    """Rule bullets from the regulations for the indicators found: (bullets, problem).

    The passages used are appended to `cited` when given. Without a retriever, or when the
    search fails, the problem says so and no rules are cited (the briefing still works)."""
    if not indicators:
        return [], None
    if retriever is None:
        return [], NO_INDEX
    try:
        pairs = rule_passages(lambda query: retriever.search(query, k=2), indicators)
    except Exception as exc:  # a broken index must not break the briefing
        return [], f"The regulations index could not be searched ({exc}); no rules are cited."
    if cited is not None:
        cited.extend(as_citation(p) for _ind, p in pairs)
    return [rule_bullet(ind, p.source, p.locator, p.text) for ind, p in pairs], None


def findings_section(findings: Sequence[dict[str, Any]], currency: str) -> Section:
    """The document verification findings of a trader (kept reports, `tools.verify`), as a
    briefing section: one row per discrepancy with its size and rule."""
    section = Section("Document verification findings")
    if not findings:
        section.paragraphs.append("No document of this trader has been checked yet "
                                  "(`tamga verify`, or the document check on the profile page).")
        return section
    n = sum(len(f.get("discrepancies") or []) for f in findings)
    clean = sum(1 for f in findings if not f.get("discrepancies"))
    section.paragraphs.append(
        f"{len(findings)} document(s) checked against their declarations: {n} discrepanc"
        f"{'y' if n == 1 else 'ies'}; {clean} document(s) matched. Money in the invoice "
        f"currency unless marked {currency} (customs value).")
    rows = []
    for f in findings:
        for d in f.get("discrepancies") or []:
            diff = d.get("difference")
            if isinstance(diff, int | float) and not isinstance(diff, bool):
                diff = f"{diff:+,.2f} {d.get('unit') or ''}".strip()
            rule = d.get("rule") or {}
            rows.append([str(f.get("checked_at", ""))[:10], f.get("document"),
                         f.get("declaration_id"), d.get("field"), d.get("line") or "",
                         d.get("document_value"), d.get("declared_value"), diff,
                         rule.get("provision", "")])
    if rows:
        section.tables.append((["checked", "document", "declaration", "field", "line",
                                "document", "declared", "difference", "rule"], rows[:60]))
    seen: set[tuple[str, str]] = set()
    for f in findings:
        for d in f.get("discrepancies") or []:
            rule = d.get("rule") or {}
            key = (str(rule.get("source")), str(rule.get("locator")))
            if key not in seen:
                seen.add(key)
                section.bullets.append(f"{rule.get('provision')}: {rule.get('locator')} "
                                       f"(`{rule.get('source')}`)")
    return section


def trader_briefing(
    runner: Runner, trader_id: str, period: Period | None = None,
    retriever: Retriever | None = None, progress: Callable[[str], None] | None = None,
    *, rules: RulesFinder | None = None, findings: Sequence[dict[str, Any]] | None = None,
) -> Briefing:
    """The audit-planning briefing of one trader over `period` (all data when None).

    `rules` finds the rule passages for the flags found (default: search with `retriever`);
    `findings` (kept verification reports) adds a document findings section."""
    _trader_name(runner, trader_id)  # UnknownTrader for a wrong ID
    say = progress or (lambda _m: None)
    rec = _Recorder(runner)
    start, end = (period.start, period.end) if period else _data_period(runner)
    label = period.name if period else f"{start} to {date.fromordinal(end.toordinal() - 1)}"
    currency = reporting_currency(runner)
    p = {"trader": trader_id, "start": start, "end": end}
    say("Trade figures")
    ident = _records(rec.run(TRADER_SQL["identity"], {"trader": trader_id}))[0]
    summ = _records(rec.run(TRADER_SQL["summary"], p))[0]
    monthly = rec.run(TRADER_SQL["monthly"], p)
    goods = rec.run(TRADER_SQL["goods"], p)
    origins = rec.run(TRADER_SQL["origins"], p)
    suppliers = rec.run(TRADER_SQL["suppliers"], p)
    audits = rec.run(TRADER_SQL["audits"], {"trader": trader_id})
    say("Risk indicators")
    score = trader_score(runner, trader_id, period)
    for name in score.flag_counts:
        rec.note(indicator_sql()[name], {"trader": trader_id, "start": start, "end": end})

    sections = []
    sections.append(Section("Identity", bullets=[
        f"Name: {ident['name']} ({ident['trader_id']}), TIN {ident['tin']}",
        f"Established in {ident['country']}, region {ident['region']}; sector {ident['sector']}",
        f"AEO status: {ident['aeo_status'] or 'none'}; registered on {ident['registered_on']}",
    ]))
    decl = summ["declarations"] or 0
    red = 100.0 * (summ["red"] or 0) / decl if decl else 0.0
    trend = Section("Trade summary and trends", paragraphs=[
        f"Period {label}: {decl:,} import declarations ({summ['lines']:,} lines), customs value "
        f"{_money(summ['customs_value'], currency)}, duty paid {_money(summ['duty'], currency)}, "
        f"{red:.1f}% of declarations in the red channel"
        + (f"; first {summ['first_date']}, last {summ['last_date']}." if decl else ".")
    ])
    if monthly.rows:
        rows = monthly.rows[-18:]
        trend.charts.append(Chart(f"Import customs value by month ({currency})",
                                  [str(r[0]) for r in rows], [float(r[1] or 0) for r in rows]))
    sections.append(trend)
    sections.append(Section("Top goods", tables=[(goods.columns, goods.rows)], charts=[
        Chart(f"Customs value by subheading ({currency})", [str(r[0]) for r in goods.rows],
              [float(r[3] or 0) for r in goods.rows])] if goods.rows else []))
    sections.append(Section("Origins and suppliers", tables=[
        (origins.columns, origins.rows), (suppliers.columns, suppliers.rows)]))
    risk = Section("Risk flags", paragraphs=[
        f"Risk score {score.score:.2f} (0 to 1); estimated duty at stake "
        f"{_money(score.duty_at_stake, currency)}; expected revenue (score x duty at stake) "
        f"{_money(score.expected_revenue, currency)}." if score.flags else
        "No indicator flags this trader in the period."
    ], bullets=score.reasons[:8])
    if score.flag_counts:
        risk.tables.append((["indicator", "flags"],
                            [[LABELS[k], v] for k, v in score.flag_counts.items()]))
    sections.append(risk)
    sections.append(Section("Past audits", tables=[(audits.columns, audits.rows)]
                            if audits.rows else [],
                            paragraphs=[] if audits.rows else ["No audits on record."]))
    if findings is not None:
        sections.append(findings_section(findings, currency))
    say("Rules for the flags")
    found = list(score.flag_counts)
    bullets, problem = rules(found) if rules is not None else rules_for(found, retriever)
    sections.append(Section(
        "Rules that matter",
        paragraphs=[problem] if problem else
        ([] if found else ["No flags, so no rules are singled out."]),
        bullets=bullets))
    focus = [FOCUS[k] for k in found]
    if not focus:
        focus = ["No indicator fired: a routine desk review of the largest goods lines is enough."]
    sections.append(Section("Suggested audit focus", bullets=focus))
    return Briefing(
        title=f"Audit briefing: {ident['name']} ({trader_id})",
        subtitle=f"Period {label}. Prepared {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by Tamga; "
                 "every figure comes from the SQL in the appendix.",
        sections=sections, sql=rec.sql,
        facts={**ident, **summ, "period": label, "red_share_pct": round(red, 1),
               "score": score.score, "duty_at_stake": score.duty_at_stake,
               "expected_revenue": score.expected_revenue, "flags": len(score.flags),
               "reasons": score.reasons[:3]},
    )


def period_briefing(
    runner: Runner, period: Period, n_risks: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Briefing:
    """The supervisors' briefing for one period: key figures vs the previous period, monthly
    trend, top movers and the top audit candidates."""
    say = progress or (lambda _m: None)
    rec = _Recorder(runner)
    currency = reporting_currency(runner)
    say("Key figures")
    prev = period.previous()
    cur_k, cur_r = key_figures(runner, period)
    prev_k, prev_r = key_figures(runner, prev)
    rec.note(cur_r.sql, {"start": period.start, "end": period.end})
    rec.note(prev_r.sql, {"start": prev.start, "end": prev.end})
    figures = [
        ["import declarations", f"{cur_k.declarations:,}", f"{prev_k.declarations:,}",
         _change(cur_k.declarations, prev_k.declarations)],
        [f"customs value ({currency})", f"{cur_k.customs_value:,.0f}",
         f"{prev_k.customs_value:,.0f}",
         _change(cur_k.customs_value, prev_k.customs_value)],
        [f"duty ({currency})", f"{cur_k.duty:,.0f}", f"{prev_k.duty:,.0f}",
         _change(cur_k.duty, prev_k.duty)],
        ["red channel share", f"{cur_k.red_share_pct:.1f}%", f"{prev_k.red_share_pct:.1f}%",
         f"{cur_k.red_share_pct - prev_k.red_share_pct:+.1f} pt"],
    ]
    trend_start = date(period.end.year - 1, period.end.month, 1)
    trend = monthly_trend(runner, min(trend_start, period.start), period.end)
    rec.note(trend.sql, {"start": min(trend_start, period.start), "end": period.end})
    movers_t = top_movers(runner, period, "trader", 8)
    movers_c = top_movers(runner, period, "chapter", 8)
    for m in (movers_t, movers_c):
        rec.note(m.sql, {"start": period.start, "end": period.end,
                         "prev_start": prev.start, "limit": 8})
    say("Risk indicators")
    candidates = audit_candidates(runner, period, None, n_risks)
    for sql in indicator_sql().values():
        rec.note(sql, {"start": period.start, "end": period.end})
    sections = [
        Section("Key figures", tables=[(["figure", period.name, prev.name, "change"], figures)]),
        Section("Monthly trend", tables=[(trend.columns, trend.rows)], charts=[Chart(
            f"Import customs value by month ({currency})", [str(r[0]) for r in trend.rows],
            [float(r[1] or 0) for r in trend.rows])] if trend.rows else []),
        Section("Top movers: traders", tables=[(movers_t.columns, movers_t.rows)]),
        Section("Top movers: HS chapters", tables=[(movers_c.columns, movers_c.rows)]),
        Section("Top risks: who to audit next",
                paragraphs=["Ranked by expected revenue at stake (risk score x estimated duty "
                            "gap of the flagged lines of the period)." if candidates else
                            "No indicator flags any trader in this period."],
                tables=[(["rank", "trader", "score", "duty at stake", "expected revenue"],
                         [[c.rank, f"{c.name} ({c.trader_id})", f"{c.score:.2f}",
                           _money(c.duty_at_stake, currency), _money(c.expected_revenue, currency)]
                          for c in candidates])] if candidates else [],
                bullets=[f"{c.trader_id}: {c.reasons[0]}" for c in candidates if c.reasons]),
    ]
    return Briefing(
        title=f"Period briefing: {period.name}",
        subtitle=f"Imports of {period.name} against {prev.name}. Prepared "
                 f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} by Tamga; every figure comes from "
                 "the SQL in the appendix.",
        sections=sections, sql=rec.sql,
        facts={"period": period.name, "previous": prev.name,
               "declarations": cur_k.declarations, "customs_value": cur_k.customs_value,
               "duty": cur_k.duty, "red_share_pct": cur_k.red_share_pct,
               "previous_declarations": prev_k.declarations,
               "previous_customs_value": prev_k.customs_value,
               "customs_value_change_pct": change_pct(cur_k.customs_value, prev_k.customs_value),
               "candidates": [c.to_json() for c in candidates]},
    )


# --------------------------------------------------------------------------- PDF


def _render_pdf(b: Briefing) -> bytes:
    doc = PdfDocument()
    pdf, body, mono, clean, unicode_ok = doc.pdf, doc.body, doc.mono, doc.clean, doc.unicode_ok

    def para(text: str, size: float = 9.5, style: str = "", font: str = body) -> None:
        doc.para(text, size, style, font, gap=0.8)

    pdf.add_page()
    para(b.title, 15, "B")
    para(b.subtitle, 8.5)
    for s in b.sections:
        pdf.ln(1.5)
        para(s.title, 12, "B")
        for p in s.paragraphs:
            para(p)
        for bullet in s.bullets:
            para(f"• {bullet}" if unicode_ok else f"- {bullet}", 8.5)
        for columns, rows in s.tables:
            if not rows:
                continue
            pdf.set_font(body, "", 7.5)
            with pdf.table(text_align="LEFT", first_row_as_headings=True,
                           line_height=3.8) as table:
                table.row([clean(str(c)) for c in columns])
                for row in rows:
                    table.row([clean(format_cell(v))[:60] for v in row])
            pdf.ln(1)
        for chart in s.charts:
            _bar_chart(pdf, chart, body, clean)
    pdf.add_page()
    para("Appendix: SQL behind the figures", 12, "B")
    for n, q in enumerate(b.sql, 1):
        para(f"{n}. {q}", 6.5, font=mono)
    return doc.output()


def _bar_chart(pdf: Any, chart: Chart, font: str, clean: Callable[[str], str]) -> None:
    """Horizontal bars with labels and values, drawn with fpdf2 rectangles."""
    if not chart.values:
        return
    bar_h, gap, label_w, value_w = 3.6, 0.9, 32.0, 26.0
    height = 6 + len(chart.values) * (bar_h + gap)
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.set_font(font, "B", 8.5)
    pdf.cell(0, 5, clean(chart.title), new_x="LMARGIN", new_y="NEXT")
    x0 = pdf.l_margin
    width = pdf.w - pdf.l_margin - pdf.r_margin - label_w - value_w
    top = max(chart.values) or 1.0
    pdf.set_font(font, "", 7)
    pdf.set_fill_color(52, 101, 164)
    y = pdf.get_y()
    for lab, val in zip(chart.labels, chart.values, strict=True):
        pdf.set_xy(x0, y)
        pdf.cell(label_w, bar_h, clean(lab)[:22])
        w = max(0.3, width * max(val, 0.0) / top)
        pdf.rect(x0 + label_w, y + 0.4, w, bar_h - 0.8, style="F")
        pdf.set_xy(x0 + label_w + w + 1, y)
        pdf.cell(value_w, bar_h, f"{val:,.0f}")
        y += bar_h + gap
    pdf.set_xy(x0, y + 2)
