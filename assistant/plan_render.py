"""A query plan in words: the "I understood: ..." sentence, and the answer written from the rows.

Every figure in an answer's text is a value of the result table, formatted with the data set's
currency; nothing is computed here that the SQL did not compute.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tamga.formatting import fmt_money, fmt_num
from tamga.plan import AUDIT_MEASURES, TIME_DIMENSIONS, Filter, QueryPlan
from tools.plan_sql import MEASURES, column_of, share_ranks_by_rate

MEASURE_WORDS = {
    "customs_value": "customs value", "invoice_value": "invoice value", "duty": "duty",
    "vat": "VAT", "declarations": "number of declarations", "items": "number of items",
    "traders": "number of traders", "sellers": "number of sellers",
    "origins": "number of origin countries", "net_mass": "net mass", "quantity": "quantity",
    "value_per_kg": "customs value per kg", "value_per_unit": "customs value per unit",
    "effective_duty_rate": "effective duty rate (duty / customs value)",
    "red_share": "share of declarations sent to the red channel",
    "yellow_share": "share of declarations sent to the yellow channel",
    "checked_share": "share of declarations checked (red or yellow channel)",
    "related_party_share": "share of customs value bought from related parties",
    "audits": "number of audits", "audit_recoveries": "audit recoveries (additional duty "
    "and penalties)", "audit_penalties": "penalties from audits",
    "audit_additional_duty": "additional duty from audits",
    "value_per_declaration": "average customs value per declaration",
}
DIMENSION_WORDS = {
    "trader": ("trader", "traders"), "seller": ("seller", "sellers"),
    "hs_chapter": ("HS chapter", "HS chapters"), "hs_heading": ("HS heading", "HS headings"),
    "hs_subheading": ("HS subheading", "HS subheadings"),
    "origin": ("origin country", "origin countries"),
    "dispatch_country": ("dispatch country", "dispatch countries"),
    "office": ("customs office", "customs offices"),
    "transport_mode": ("transport mode", "transport modes"),
    "incoterm": ("incoterm", "incoterms"), "procedure": ("procedure", "procedures"),
    "channel": ("control channel", "control channels"),
    "preference": ("preference code", "preference codes"),
    "aeo_status": ("AEO status", "AEO statuses"), "aeo": ("AEO or not", "AEO or not"),
    "currency": ("invoice currency", "invoice currencies"), "sector": ("sector", "sectors"),
    "region": ("region", "regions"), "flow": ("flow", "flows"), "day": ("day", "days"),
    "month": ("month", "months"),
    "quarter": ("quarter", "quarters"), "year": ("year", "years"),
    "declaration": ("declaration", "declarations"),
    "audit_outcome": ("audit outcome", "audit outcomes"),
    "audit_type": ("audit type", "audit types"),
}
FLOW_WORDS = {"import": "imports", "export": "exports", "both": "imports and exports"}
COMPARISON_WORDS = {"gt": "above", "ge": "of at least", "lt": "below", "le": "of at most"}


def filter_words(flt: Filter) -> str:
    """A filter as a phrase: 'from China', 'at Balboa Seaport', 'of HS chapter 85'."""
    what = flt.words()
    negate = flt.op == "not_in"
    lead = {
        "origin": "originating in", "dispatch_country": "dispatched from",
        "office": "declared at", "trader": "of", "seller": "sold by",
        "hs_chapter": "of HS chapter", "hs_heading": "of HS heading",
        "hs_subheading": "of HS subheading", "transport_mode": "by",
        "channel": "in the channel", "incoterm": "under incoterm",
        "procedure": "under procedure", "preference": "with preference code",
        "aeo_status": "by traders with AEO status", "aeo": "by traders who are",
        "currency": "invoiced in", "sector": "by traders of the sector",
        "region": "by traders of the region", "audit_outcome": "with outcome",
        "audit_type": "of type",
    }.get(flt.dimension, f"with {DIMENSION_WORDS[flt.dimension][0]}")
    if flt.dimension == "channel":
        return ("not " if negate else "") + f"in the {what} channel"
    if flt.dimension == "aeo_status" and not negate and flt.labels and flt.values == ["none"]:
        return "by traders without AEO status"
    if flt.dimension == "aeo_status" and not negate and what == "any AEO status":
        return "by traders with any AEO status"
    if flt.op == "prefix" and flt.dimension.startswith("hs_"):
        lead = "of HS"
    return ("not " if negate else "") + f"{lead} {what}"


def _measures_words(plan: QueryPlan) -> str:
    words = [MEASURE_WORDS[m] for m in plan.measures]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _scope_words(plan: QueryPlan, *, period: bool = True) -> str:
    audits = plan.measures[0] in AUDIT_MEASURES
    parts = [] if audits else [FLOW_WORDS[plan.flow]]
    parts += [filter_words(f) for f in plan.filters]
    if plan.related_party is not None:
        parts.append("bought from related parties" if plan.related_party
                     else "bought from unrelated sellers")
    if period and plan.period is not None and plan.shape not in (
            "compare", "change_ranking", "set_difference", "first_seen"):
        parts.append(("opened " if audits else "") + f"in {plan.period.label()}")
    return " ".join(parts)


def _of(scope: str) -> str:
    """'of imports in 2025', or 'opened in 2025' for audits (which have no flow)."""
    return scope if scope.startswith(("opened", "all audits", "with ", "of ", "by ", "not ")) \
        else f"of {scope}"


def understood(plan: QueryPlan) -> str:
    """The plan read back in one sentence, starting 'I understood:'."""
    m = _measures_words(plan)
    scope = _scope_words(plan) or "all audits"
    dims = [DIMENSION_WORDS[d] for d in plan.dimensions]
    one = dims[0][0] if dims else "trader"
    many = dims[0][1] if dims else "traders"
    by = " and ".join(d[0] for d in dims)
    n = plan.n
    shape = plan.shape
    if shape == "total":
        text = f"the {m} {_of(scope)}"
    elif shape == "breakdown" and plan.count_only:
        text = f"how many different {many} {scope}"
    elif shape == "breakdown":
        text = f"the {m} {_of(scope)}, by {by}"
    elif shape in ("top", "bottom"):
        high = "highest" if shape == "top" and plan.order == "desc" else "lowest"
        text = f"the {n or 10} {many} with the {high} {m}, {scope}"
    elif shape in ("argmax", "argmin"):
        high = "highest" if shape == "argmax" else "lowest"
        text = f"the {one} with the {high} {m}, {scope}"
    elif shape == "compare":
        assert plan.period is not None and plan.compare_to is not None
        text = (f"the {m} {_of(scope)} in {plan.period.label()} compared with "
                f"{plan.compare_to.label()}" + (f", by {by}" if dims else ""))
    elif shape == "change_ranking":
        assert plan.period is not None and plan.compare_to is not None
        way = "rose the most" if plan.order == "desc" else "fell the most"
        text = (f"the {n or 10} {many} whose {m} {way} from {plan.compare_to.label()} to "
                f"{plan.period.label()}, {scope}")
    elif share_ranks_by_rate(plan):
        text = f"the {m} of each {one}, {scope}, highest first (a rate has no share of a total)"
    elif shape == "share":
        part = filter_words(plan.share_of) if plan.share_of is not None else f"each {one}"
        text = f"the share {part} in the {m} of {scope}" + (
            f", by {by}" if dims and plan.share_of is not None else "")
    elif shape == "vs_peers":
        assert plan.entity is not None
        text = (f"the {m} of {plan.entity.words()} compared with the other traders, {scope}")
    elif shape == "set_difference":
        assert plan.period is not None and plan.compare_to is not None
        what = "how many " + many if plan.count_only else f"the {many}"
        text = (f"{what} with {scope} in {plan.period.label()} but none in "
                f"{plan.compare_to.label()}")
    elif shape == "first_seen":
        assert plan.period is not None
        what = "how many " + many if plan.count_only else f"the {many}"
        text = f"{what} whose first {scope} fall in {plan.period.label()}"
        if len(dims) > 1:  # "new importers per sector"
            text += f", by {dims[1][0]}"
    else:  # threshold
        assert plan.threshold is not None
        t = plan.threshold
        what = "how many " + many if plan.count_only else f"the {many}"
        text = (f"{what} with a {MEASURE_WORDS[t.measure]} {COMPARISON_WORDS[t.op]} "
                f"{fmt_num(t.value)}, {scope}")
    return "I understood: " + " ".join(text.split()).rstrip(", ") + "."


def _reading(plan: QueryPlan) -> str:
    """The understood sentence without its lead words and full stop, to quote in an answer."""
    return understood(plan).removeprefix("I understood: ").removesuffix(".")


def fmt_measure(measure: str, value: Any, currency: str) -> str:
    """One figure of `measure` as an officer reads it (money with the currency)."""
    if value is None:
        return "n/a"
    spec = MEASURES[measure]
    if spec.percent:
        return f"{float(value):.1f}%"
    if spec.money:
        text = fmt_money(value, currency)
        return f"{text} {spec.unit}" if spec.unit else text
    if spec.unit == "kg":
        return f"{fmt_num(value)} kg"
    if spec.unit:
        return f"{fmt_num(value)} ({spec.unit})" if spec.unit.startswith("invoice") else \
            f"{fmt_num(value)} {spec.unit}"
    return fmt_num(value)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("-inf")


def _label(row: dict[str, Any], plan: QueryPlan) -> str:
    """A result row's group in words ('Inversiones Ros, Inc. (T000100)', 'China (CN)')."""
    parts = []
    for d in plan.dimensions or ["trader"]:
        code = row.get(column_of(d))
        name = row.get("name") if d == "trader" else row.get("country") if d in (
            "origin", "dispatch_country") else row.get("description") if d.startswith("hs_") \
            else None
        parts.append(f"{name} ({code})" if name else str(code))
    return ", ".join(parts)


def answer_text(plan: QueryPlan, columns: list[str], rows: list[list[Any]],
                currency: str) -> str:
    """The answer's sentences, quoting the result's figures."""
    records = [dict(zip(columns, r, strict=True)) for r in rows]
    m = plan.measures[0]
    col = column_of(m)
    words = MEASURE_WORDS[m]
    scope = _scope_words(plan) or "all audits"
    if not records and plan.shape in ("first_seen", "set_difference", "threshold"):
        # the data holds imports; none fits the condition ("no sector is new in 2025")
        many = DIMENSION_WORDS[(plan.dimensions or ["trader"])[0]][1]
        return (f"None: I found no {many} that fit "
                f"({_reading(plan)}).")
    if not records:
        return f"Nothing matches: no {scope} were found." if scope else "Nothing matches."
    first = records[0]
    shape = plan.shape
    if shape == "total":
        figures = "; ".join(
            f"{MEASURE_WORDS[x]} {fmt_measure(x, first.get(column_of(x)), currency)}"
            for x in plan.measures)
        return f"For {scope}: {figures}." if not scope.startswith(("opened", "all audits")) \
            else f"Audits {scope}: {figures}."
    if shape == "breakdown" and plan.count_only:
        one, many = DIMENSION_WORDS[plan.dimensions[0]]
        count = first.get(columns[0])
        return f"{fmt_num(count)} different {one if count == 1 else many} ({scope})."
    if shape in ("breakdown", "top", "bottom", "argmax", "argmin", "share") and \
            plan.share_of is None:
        if plan.dimensions and all(d in TIME_DIMENSIONS for d in plan.dimensions) \
                and shape == "breakdown":
            peak = max(records, key=lambda r: _number(r.get(col)))
            return (f"{words.capitalize()} {_of(scope)} by "
                    f"{DIMENSION_WORDS[plan.dimensions[0]][0]}"
                    f": {len(records):,} {DIMENSION_WORDS[plan.dimensions[0]][1]}; the highest "
                    f"is {_label(peak, plan)} with "
                    f"{fmt_measure(m, peak.get(col), currency)}.")
        lead = _label(first, plan)
        share = f" ({first['share_pct']:.1f}% of the total)" if first.get("share_pct") \
            is not None else ""
        if shape in ("argmax", "argmin"):
            word = "highest" if shape == "argmax" else "lowest"
            return (f"The {DIMENSION_WORDS[plan.dimensions[0]][0]} with the {word} {words} "
                    f"({scope}) is {lead}: {fmt_measure(m, first.get(col), currency)}.")
        one, what = DIMENSION_WORDS[(plan.dimensions or ["trader"])[0]]
        if len(plan.dimensions) > 1:  # "by customs office and month": rows, not offices
            one = " and ".join(DIMENSION_WORDS[d][0] for d in plan.dimensions)
            what = "rows"
        return (f"{words.capitalize()} {_of(scope)} by {one}: "
                f"{lead} comes first with {fmt_measure(m, first.get(col), currency)}{share}; "
                f"{len(records):,} {what} shown.")
    if shape == "share" and plan.share_of is not None:
        if plan.dimensions:
            return (f"The share {filter_words(plan.share_of)} in the {words} of {scope} is "
                    f"highest for {_label(first, plan)}: {first.get('share_pct')}%; "
                    f"{len(records):,} rows shown.")
        return (f"Of the {words} of {scope} ({fmt_measure(m, first.get(col + '_total'), currency)}"
                f"), {fmt_measure(m, first.get(col + '_part'), currency)} is "
                f"{filter_words(plan.share_of)}: {first.get('share_pct')}%.")
    if shape in ("compare", "change_ranking"):
        assert plan.period is not None and plan.compare_to is not None
        a = [c for c in columns if c.startswith(col + "_") and c not in (
            col + "_change", col + "_change_pct")]
        before, after = (first.get(a[0]), first.get(a[1])) if len(a) >= 2 else (None, None)
        change, pct = first.get(col + "_change"), first.get(col + "_change_pct")
        pct_text = f" ({pct:+.1f}%)" if isinstance(pct, int | float) else ""
        change_text = fmt_measure(m, change, currency)
        if change is not None and float(change) > 0 and not change_text.startswith("+"):
            change_text = "+" + change_text
        if shape == "compare" and not plan.dimensions:
            return (f"{words.capitalize()} of {scope}: {plan.compare_to.label()} "
                    f"{fmt_measure(m, before, currency)}, {plan.period.label()} "
                    f"{fmt_measure(m, after, currency)}; change {change_text}{pct_text}.")
        lead = _label(first, plan)
        if shape == "compare":
            return (f"{words.capitalize()} of {scope} by "
                    f"{DIMENSION_WORDS[plan.dimensions[0]][0]}, {plan.compare_to.label()} "
                    f"against {plan.period.label()}: {lead} has {fmt_measure(m, after, currency)}"
                    f" in {plan.period.label()} ({fmt_measure(m, before, currency)} before); "
                    f"{len(records):,} rows shown.")
        way = "rose the most" if plan.order == "desc" else "fell the most"
        return (f"From {plan.compare_to.label()} to {plan.period.label()}, the {words} of "
                f"{lead} {way}: {fmt_measure(m, before, currency)} to "
                f"{fmt_measure(m, after, currency)}, {change_text}{pct_text}; "
                f"{len(records):,} shown.")
    if shape == "vs_peers":
        assert plan.entity is not None
        ratio = first.get(col + "_ratio")
        ratio_text = f" ({ratio:.2f} times the peers)" if isinstance(ratio, int | float) else ""
        peers_word = "the pooled" if m in MEASURES and (MEASURES[m].percent or m.startswith(
            "value_per")) else "the average per trader of the"
        return (f"{words.capitalize()} of {plan.entity.words()}: "
                f"{fmt_measure(m, first.get(col + '_entity'), currency)}; {peers_word} "
                f"{first.get('peer_traders'):,} other traders: "
                f"{fmt_measure(m, first.get(col + '_peers'), currency)}{ratio_text}.")
    many = DIMENSION_WORDS[(plan.dimensions or ["trader"])[0]][1]
    if plan.count_only and shape == "first_seen" and len(plan.dimensions) > 1:
        one_group, groups = DIMENSION_WORDS[plan.dimensions[1]]
        total = sum(int(_number(r.get(columns[1]))) for r in records)
        return (f"{fmt_num(total)} new {many} ({_reading(plan)}); "
                f"by {one_group}, {first.get(columns[0])} has the most: "
                f"{fmt_num(first.get(columns[1]))}; {len(records):,} {groups} shown.")
    if plan.count_only:
        count = first.get(columns[0])
        extra = ""
        if shape == "threshold" and col in first:
            extra = f", together {fmt_measure(m, first.get(col), currency)}"
        return f"{fmt_num(count)} {many}{extra} ({_reading(plan)})."
    lead = _label(first, plan)
    return (f"{len(records):,} {many} match ({_reading(plan)}); "
            f"the first is {lead} with {fmt_measure(m, first.get(col), currency)}.")


def chart_for(plan: QueryPlan, columns: list[str], rows: list[list[Any]]) -> dict[str, Any] | None:
    """A bar or line chart of the first measure by the first dimension, when it helps."""
    if len(rows) < 2 or not plan.dimensions or plan.count_only:
        return None
    x = column_of(plan.dimensions[0])
    if plan.dimensions[0] == "trader" and "name" in columns:
        x = "name"
    m = column_of(plan.measures[0])
    y = next((c for c in (m, f"{m}_change", "share_pct") if c in columns), None)
    if plan.shape == "compare":
        y = next((c for c in columns if c.startswith(m + "_") and not c.endswith(
            ("_change", "_change_pct"))), None)
    if y is None or x not in columns:
        return None
    kind = "line" if plan.dimensions[0] in TIME_DIMENSIONS else "bar"
    return {"kind": kind, "x": x, "y": y, "color": None, "title": understood(plan)[14:-1]}


def suggestions(plan: QueryPlan) -> list[str]:
    """Follow-ups that change one part of the plan (they work as typed follow-up questions)."""
    out = []
    if plan.period is not None and plan.shape not in ("compare", "change_ranking",
                                                      "set_difference"):
        out.append(f"and in {plan.period.start.year - 1}?")
    if not any(d in TIME_DIMENSIONS for d in plan.dimensions) and plan.shape in (
            "total", "breakdown", "top"):
        out.append("by month")
    if plan.shape in ("top", "bottom", "change_ranking"):
        out.append("only the top 5")
    return out[:3]


def plan_variants(plan: QueryPlan) -> list[tuple[str, QueryPlan]]:
    """One-click changes of an answered plan: another period, measure or grouping (each one
    validated; those that would not hold are left out)."""
    from datetime import date

    out: list[tuple[str, QueryPlan]] = []

    def add(label: str, **changes: Any) -> None:
        with contextlib.suppress(ValueError):  # a change that would not hold is not offered
            out.append((label, plan.with_changes(**changes)))

    if plan.period is not None and plan.shape not in ("compare", "change_ranking",
                                                      "set_difference"):
        p = plan.period
        try:
            start = date(p.start.year - 1, p.start.month, p.start.day)
            end = date(p.end.year - 1, p.end.month, p.end.day)
        except ValueError:  # 29 February
            start = end = None  # type: ignore[assignment]
        if start is not None:
            name = p.name.replace(str(p.start.year), str(p.start.year - 1)) \
                if str(p.start.year) in p.name else f"{start} to {end}"
            add(f"Same for {name}", period={"start": start, "end": end, "name": name})
    if plan.shape not in ("threshold", "vs_peers") and plan.measures[0] not in AUDIT_MEASURES:
        for m in ("customs_value", "duty", "declarations"):
            if m not in plan.measures:
                add(f"Show {MEASURE_WORDS[m]}", measures=[m])
    if plan.shape in ("total", "breakdown", "share") and plan.measures[0] not in AUDIT_MEASURES:
        for grain in ("month", "quarter", "year"):
            if grain not in plan.dimensions:
                others = [d for d in plan.dimensions if d not in TIME_DIMENSIONS]
                shape = "share" if plan.shape == "share" and plan.share_of else "breakdown"
                add(f"By {grain}", shape=shape, dimensions=[grain, *others][:2])
    return out[:6]
