"""The query plan compiled into one SELECT: code writes every fragment, values are literals.

    sql = compile_plan(plan)          # one statement the SQL guard accepts
    runner.run(sql)                   # guarded, then scoped to the user's offices

Declaration measures read `declarations d JOIN declaration_items i` (plus `traders t` when a
trader attribute is used); audit measures read `audits a`. Periods filter the declaration
date (audits: the date the audit was opened). Imports only unless the plan says otherwise.
Names for codes (trader names, HS descriptions, country names) are looked up after grouping,
so they never change what is counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tamga.plan import AUDIT_MEASURES, RATIO_MEASURES, TIME_DIMENSIONS, Filter, QueryPlan
from tamga.sqltext import sql_literal

BREAKDOWN_ROWS = 200  # most groups a breakdown lists (a ranking lists n)
#: Measures whose group values add up to the total (a share of the total makes sense).
ADDITIVE = frozenset({"customs_value", "invoice_value", "duty", "vat", "items", "net_mass",
                      "quantity", "audits", "audit_recoveries", "audit_penalties",
                      "audit_additional_duty"})

Agg = Callable[[str | None], str]


@dataclass(frozen=True)
class MeasureSql:
    """How one measure is computed: `sql(cond)` aggregates rows (those matching `cond`)."""

    sql: Agg
    money: bool = False
    percent: bool = False
    unit: str = ""


def _f(cond: str | None) -> str:
    return f" FILTER (WHERE {cond})" if cond else ""


def _sum(expr: str) -> Agg:
    return lambda c: f"sum({expr}){_f(c)}"


def _distinct(expr: str) -> Agg:
    return lambda c: f"count(DISTINCT {expr}){_f(c)}"


def _ratio(num: str, den: str, scale: str = "") -> Agg:
    return lambda c: f"{scale}sum({num}){_f(c)} / nullif(sum({den}){_f(c)}, 0)"


def _channel_share(channel: str) -> Agg:
    def sql(c: str | None) -> str:
        both = f"({c}) AND " if c else ""
        return (f"100.0 * count(DISTINCT d.declaration_id) FILTER (WHERE {both}"
                f"d.control_channel = '{channel}') / nullif(count(DISTINCT d.declaration_id)"
                f"{_f(c)}, 0)")
    return sql


def _checked_share(c: str | None) -> str:
    both = f"({c}) AND " if c else ""
    return (f"100.0 * count(DISTINCT d.declaration_id) FILTER (WHERE {both}"
            f"d.control_channel IN ('red', 'yellow')) / nullif(count(DISTINCT d.declaration_id)"
            f"{_f(c)}, 0)")


def _related_share(c: str | None) -> str:
    both = f"({c}) AND " if c else ""
    return (f"100.0 * sum(i.customs_value) FILTER (WHERE {both}i.related_party) / "
            f"nullif(sum(i.customs_value){_f(c)}, 0)")


MEASURES: dict[str, MeasureSql] = {
    "customs_value": MeasureSql(_sum("i.customs_value"), money=True),
    "invoice_value": MeasureSql(_sum("i.invoice_value"), unit="invoice currencies"),
    "duty": MeasureSql(_sum("i.duty_amount"), money=True),
    "vat": MeasureSql(_sum("i.vat_amount"), money=True),
    "declarations": MeasureSql(_distinct("d.declaration_id")),
    "items": MeasureSql(lambda c: f"count(*){_f(c)}"),
    "traders": MeasureSql(_distinct("d.trader_id")),
    "sellers": MeasureSql(_distinct("i.seller_id")),
    "origins": MeasureSql(_distinct("i.origin_country")),
    "net_mass": MeasureSql(_sum("i.net_mass_kg"), unit="kg"),
    "quantity": MeasureSql(_sum("i.quantity"), unit="units"),
    "value_per_kg": MeasureSql(_ratio("i.customs_value", "i.net_mass_kg"), money=True,
                               unit="per kg"),
    "value_per_unit": MeasureSql(_ratio("i.customs_value", "i.quantity"), money=True,
                                 unit="per unit"),
    "effective_duty_rate": MeasureSql(_ratio("i.duty_amount", "i.customs_value", "100.0 * "),
                                      percent=True),
    "red_share": MeasureSql(_channel_share("red"), percent=True),
    "yellow_share": MeasureSql(_channel_share("yellow"), percent=True),
    "checked_share": MeasureSql(_checked_share, percent=True),
    "related_party_share": MeasureSql(_related_share, percent=True),
    "value_per_declaration": MeasureSql(
        lambda c: f"sum(i.customs_value){_f(c)} / nullif(count(DISTINCT d.declaration_id)"
                  f"{_f(c)}, 0)", money=True, unit="per declaration"),
    "audits": MeasureSql(lambda c: f"count(*){_f(c)}"),
    "audit_recoveries": MeasureSql(
        _sum("coalesce(a.additional_duty, 0) + coalesce(a.penalty_amount, 0)"), money=True),
    "audit_penalties": MeasureSql(_sum("coalesce(a.penalty_amount, 0)"), money=True),
    "audit_additional_duty": MeasureSql(_sum("coalesce(a.additional_duty, 0)"), money=True),
}

# AEO holders against everybody else (no status recorded counts as not AEO).
_AEO_GROUP = ("CASE WHEN coalesce(t.aeo_status, 'none') = 'none' THEN 'not AEO' "
              "ELSE 'AEO' END")

# Dimension -> (expression over declarations, expression over audits or None, needs traders).
DIMENSIONS: dict[str, tuple[str, str | None, bool]] = {
    "trader": ("d.trader_id", "a.trader_id", False),
    "seller": ("i.seller_id", None, False),
    "hs_chapter": ("left(i.hs_code, 2)", None, False),
    "hs_heading": ("left(i.hs_code, 4)", None, False),
    "hs_subheading": ("left(i.hs_code, 6)", None, False),
    "origin": ("i.origin_country", None, False),
    "dispatch_country": ("d.dispatch_country", None, False),
    "office": ("d.customs_office", None, False),
    "transport_mode": ("d.transport_mode", None, False),
    "incoterm": ("d.incoterm", None, False),
    "procedure": ("d.procedure_code", None, False),
    "channel": ("d.control_channel", None, False),
    "preference": ("i.preference_code", None, False),
    "aeo_status": ("t.aeo_status", "t.aeo_status", True),
    "aeo": (_AEO_GROUP, _AEO_GROUP, True),
    "sector": ("t.sector", "t.sector", True),
    "region": ("t.region", "t.region", True),
    "flow": ("d.flow", None, False),
    "day": ("CAST({date} AS DATE)", "CAST({date} AS DATE)", False),
    "month": ("strftime({date}, '%Y-%m')", "strftime({date}, '%Y-%m')", False),
    "quarter": ("strftime({date}, '%Y') || '-Q' || quarter({date})",
                "strftime({date}, '%Y') || '-Q' || quarter({date})", False),
    "year": ("year({date})", "year({date})", False),
    "declaration": ("d.declaration_id", None, False),
    "audit_outcome": ("NULL", "a.outcome", False),
    "audit_type": ("NULL", "a.audit_type", False),
    "currency": ("d.currency", None, False),
}

# Names looked up after grouping: dimension -> SQL giving the name of `{col}`.
NAMES: dict[str, tuple[str, str]] = {
    "trader": ("name", "(SELECT name FROM traders WHERE trader_id = g.{col})"),
    "hs_chapter": ("description", "(SELECT description FROM hs_nomenclature WHERE code = g.{col})"),
    "hs_heading": ("description", "(SELECT description FROM hs_nomenclature WHERE code = g.{col})"),
    "hs_subheading": ("description",
                      "(SELECT description FROM hs_nomenclature WHERE code = g.{col})"),
    "origin": ("country", "(SELECT name FROM countries WHERE iso2 = g.{col})"),
    "dispatch_country": ("country", "(SELECT name FROM countries WHERE iso2 = g.{col})"),
}


def column_of(name: str) -> str:
    """A SQL column name made of a plan word or a period name ('2025 Q3' -> '2025_q3')."""
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "value"
    return text if text[0].isalpha() else f"p_{text}"


@dataclass
class _Source:
    audit: bool
    date: str
    needs_traders: bool

    def from_sql(self) -> str:
        if self.audit:
            join = " JOIN traders t ON t.trader_id = a.trader_id" if self.needs_traders else ""
            return f"FROM audits a{join}"
        join = " JOIN traders t ON t.trader_id = d.trader_id" if self.needs_traders else ""
        return ("FROM declarations d JOIN declaration_items i ON i.declaration_id = "
                f"d.declaration_id{join}")


def _dim_sql(dimension: str, source: _Source) -> str:
    decl, audit, _ = DIMENSIONS[dimension]
    expr = audit if source.audit else decl
    if expr is None or expr == "NULL":
        raise ValueError(f"{dimension} does not apply here")
    return expr.format(date=source.date)


def _filter_sql(flt: Filter, source: _Source) -> str:
    expr = _dim_sql(flt.dimension, source)
    values = ", ".join(sql_literal(v) for v in flt.values)
    if flt.op == "prefix":
        return "(" + " OR ".join(f"starts_with({expr}, {sql_literal(v)})"
                                 for v in flt.values) + ")"
    if flt.op == "not_in":
        return f"({expr} IS NULL OR {expr} NOT IN ({values}))"
    return f"{expr} IN ({values})"


def _between(source: _Source, start: object, end: object) -> str:
    return f"{source.date} >= {sql_literal(start)} AND {source.date} < {sql_literal(end)}"


def _source(plan: QueryPlan) -> _Source:
    audit = any(m in AUDIT_MEASURES for m in plan.measures)
    used = list(plan.dimensions) + [f.dimension for f in plan.filters]
    if plan.entity is not None:
        used.append(plan.entity.dimension)
    if plan.share_of is not None:
        used.append(plan.share_of.dimension)
    needs = any(DIMENSIONS[d][2] for d in used)
    return _Source(audit, "a.opened_on" if audit else "d.declaration_date", needs)


def _where(plan: QueryPlan, source: _Source, *, period: bool = True) -> list[str]:
    conds = [_filter_sql(f, source) for f in plan.filters]
    if not source.audit:
        if plan.flow != "both":
            conds.append(f"d.flow = {sql_literal(plan.flow)}")
        if plan.related_party is not None:
            conds.append(f"i.related_party = {sql_literal(plan.related_party)}")
    if period:
        spans = [p for p in (plan.period, plan.compare_to) if p is not None]
        if len(spans) == 1:
            conds.append(_between(source, spans[0].start, spans[0].end))
        elif spans:
            conds.append("(" + " OR ".join(f"({_between(source, p.start, p.end)})"
                                           for p in spans) + ")")
    return conds


def _where_sql(conds: list[str]) -> str:
    return ("\nWHERE " + "\n  AND ".join(conds)) if conds else ""


def _measure(name: str, cond: str | None = None) -> str:
    return MEASURES[name].sql(cond)


def _rounded(expr: str, name: str) -> str:
    return f"round({expr}, 2)" if name not in ("declarations", "items", "traders", "sellers",
                                               "origins", "audits") else expr


def _grouped(plan: QueryPlan, source: _Source, select: list[str], dims: Sequence[str],
             having: list[str], order: str, limit: int | None) -> str:
    """WITH g AS (grouped) SELECT g.*, names FROM g ORDER BY ... LIMIT ..."""
    dim_cols = [column_of(d) for d in dims]
    dim_select = [f"{_dim_sql(d, source)} AS {c}" for d, c in zip(dims, dim_cols, strict=True)]
    group = ", ".join(str(k + 1) for k in range(len(dims)))
    inner = (f"SELECT {', '.join(dim_select + select)}\n{source.from_sql()}"
             f"{_where_sql(_where(plan, source))}"
             + (f"\nGROUP BY {group}" if dims else "")
             + (f"\nHAVING {' AND '.join(having)}" if having else ""))
    names = []
    for d, c in zip(dims, dim_cols, strict=True):
        if d in NAMES:
            label, lookup = NAMES[d]
            names.append(f"{lookup.format(col=c)} AS {label}")
    outer = ", ".join(dim_cols[:1] + names + dim_cols[1:]) + ", g.* EXCLUDE (" + \
        ", ".join(dim_cols) + ")" if dims else "g.*"
    if order and dims and not order.startswith(dim_cols[0]):
        order += f", {dim_cols[0]}"  # ties in order of the first grouping's key
    tail = f"\nORDER BY {order}" if order else ""
    tail += f"\nLIMIT {int(limit)}" if limit else ""
    return f"WITH g AS (\n{inner}\n)\nSELECT {outer}\nFROM g{tail}"


def _order_by_measure(plan: QueryPlan, column: str) -> str:
    direction = "ASC" if plan.order == "asc" or plan.shape in ("bottom", "argmin") else "DESC"
    return f"{column} {direction} NULLS LAST"


def _period_cond(source: _Source, period: object) -> str:
    assert period is not None
    return _between(source, period.start, period.end)  # type: ignore[attr-defined]


def share_ranks_by_rate(plan: QueryPlan) -> bool:
    """A share of each group in a rate (red share, duty rate, unit value): the groups of a rate
    do not add up to a whole, so the plan ranks the groups by the rate itself."""
    return plan.shape == "share" and plan.share_of is None and plan.measures[0] not in ADDITIVE


def compile_plan(plan: QueryPlan) -> str:
    """One read-only SELECT answering `plan` (no parameters: values are written as literals)."""
    source = _source(plan)
    measures = list(plan.measures)
    first = column_of(measures[0])
    shape = plan.shape
    if shape == "total":
        select = [f"{_rounded(_measure(m), m)} AS {column_of(m)}" for m in measures]
        return f"SELECT {', '.join(select)}\n{source.from_sql()}" \
               f"{_where_sql(_where(plan, source))}"

    if shape in ("breakdown", "top", "bottom", "argmax", "argmin", "threshold"):
        dims = list(plan.dimensions) or ["declaration"]
        select = [f"{_rounded(_measure(m), m)} AS {column_of(m)}" for m in measures]
        having = []
        if plan.threshold is not None:
            t = plan.threshold
            op = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[t.op]
            having.append(f"{_measure(t.measure)} {op} {sql_literal(float(t.value))}")
            if t.measure not in measures:
                select.append(f"{_rounded(_measure(t.measure), t.measure)} AS "
                              f"{column_of(t.measure)}")
        additive = measures[0] in ADDITIVE
        if shape == "breakdown" and additive and len(dims) == 1 and \
                dims[0] not in TIME_DIMENSIONS:
            select.append(f"round(100.0 * {_measure(measures[0])} / "
                          f"nullif(sum({_measure(measures[0])}) OVER (), 0), 1) AS share_pct")
        if shape in ("argmax", "argmin"):
            limit: int | None = plan.n or 1
        elif shape in ("top", "bottom"):
            limit = plan.n or 10
        else:
            limit = plan.n or BREAKDOWN_ROWS
        time_only = all(d in TIME_DIMENSIONS for d in dims)
        if shape == "breakdown" and time_only:
            order = ", ".join(column_of(d) for d in dims)
        else:
            order = _order_by_measure(plan, first)
        if shape == "breakdown" and plan.count_only:  # "how many different subheadings"
            return (f"SELECT count(*) AS {column_of(dims[0])}s\n"
                    f"FROM ({_grouped(plan, source, select, dims, having, '', None)})")
        sql = _grouped(plan, source, select, dims, having, order, limit)
        if shape == "threshold" and plan.count_only:
            return (f"SELECT count(*) AS {column_of(dims[0])}s, round(sum({first}), 2) AS "
                    f"{first}\nFROM ({_grouped(plan, source, select, dims, having, '', None)})")
        return sql

    if shape in ("compare", "change_ranking"):
        assert plan.period is not None and plan.compare_to is not None
        before, after = plan.compare_to, plan.period
        a_cond, b_cond = _period_cond(source, before), _period_cond(source, after)
        a_name = column_of(before.name or "before").removeprefix("p_")
        b_name = column_of(after.name or "after").removeprefix("p_")
        if a_name == b_name:
            a_name, b_name = "before", "after"
        select = []
        for m in measures:
            col = column_of(m)
            a_sql, b_sql = _measure(m, a_cond), _measure(m, b_cond)
            if m not in RATIO_MEASURES:  # an entity absent from one period counts 0 there
                a_sql, b_sql = f"coalesce({a_sql}, 0)", f"coalesce({b_sql}, 0)"
            select += [f"{_rounded(a_sql, m)} AS {col}_{a_name}",
                       f"{_rounded(b_sql, m)} AS {col}_{b_name}",
                       f"{_rounded(f'({b_sql}) - ({a_sql})', m)} AS {col}_change"]
            if m not in RATIO_MEASURES:
                select.append(f"round(100.0 * (({b_sql}) - ({a_sql})) / nullif({a_sql}, 0), 1)"
                              f" AS {col}_change_pct")
        dims = list(plan.dimensions)
        if shape == "compare" and not dims:
            return f"SELECT {', '.join(select)}\n{source.from_sql()}" \
                   f"{_where_sql(_where(plan, source))}"
        order = _order_by_measure(plan, f"{first}_change")
        if shape == "compare":
            order = ", ".join(column_of(d) for d in dims) if all(
                d in TIME_DIMENSIONS for d in dims) else f"{first}_{b_name} DESC NULLS LAST"
        limit = plan.n or (10 if shape == "change_ranking" else BREAKDOWN_ROWS)
        return _grouped(plan, source, select, dims, [], order, limit)

    if shape == "share":
        m = measures[0]
        if plan.share_of is not None:
            part_cond = _filter_sql(plan.share_of, source)
            select = [f"{_rounded(_measure(m, part_cond), m)} AS {column_of(m)}_part",
                      f"{_rounded(_measure(m), m)} AS {column_of(m)}_total",
                      f"round(100.0 * {_measure(m, part_cond)} / nullif({_measure(m)}, 0), 1)"
                      " AS share_pct"]
            dims = list(plan.dimensions)
            if not dims:
                return f"SELECT {', '.join(select)}\n{source.from_sql()}" \
                       f"{_where_sql(_where(plan, source))}"
            order = ", ".join(column_of(d) for d in dims) if all(
                d in TIME_DIMENSIONS for d in dims) else "share_pct DESC NULLS LAST"
            return _grouped(plan, source, select, dims, [], order, plan.n or BREAKDOWN_ROWS)
        if share_ranks_by_rate(plan):
            select = [f"{_rounded(_measure(m), m)} AS {column_of(m)}"]
            return _grouped(plan, source, select, list(plan.dimensions), [],
                            _order_by_measure(plan, column_of(m)), plan.n or BREAKDOWN_ROWS)
        select = [f"{_rounded(_measure(m), m)} AS {column_of(m)}",
                  f"round(100.0 * {_measure(m)} / nullif(sum({_measure(m)}) OVER (), 0), 1)"
                  " AS share_pct"]
        return _grouped(plan, source, select, list(plan.dimensions), [],
                        "share_pct DESC NULLS LAST", plan.n or BREAKDOWN_ROWS)

    if shape == "vs_peers":
        assert plan.entity is not None
        entity = _filter_sql(plan.entity, source)
        peers = f"NOT ({entity})"
        select = []
        for m in measures:
            col = column_of(m)
            if m in RATIO_MEASURES:
                peer_sql = _measure(m, peers)
            else:
                peer_sql = f"({_measure(m, peers)}) / nullif(count(DISTINCT d.trader_id)" \
                           f"{_f(peers)}, 0)"
            select += [f"{_rounded(_measure(m, entity), m)} AS {col}_entity",
                       f"{_rounded(peer_sql, m)} AS {col}_peers",
                       f"round({_measure(m, entity)} / nullif({peer_sql}, 0), 2) AS "
                       f"{col}_ratio"]
        select.append(f"count(DISTINCT d.trader_id){_f(peers)} AS peer_traders")
        return f"SELECT {', '.join(select)}\n{source.from_sql()}" \
               f"{_where_sql(_where(plan, source))}"

    if shape == "set_difference":
        assert plan.period is not None and plan.compare_to is not None
        dims = list(plan.dimensions) or ["trader"]
        in_cond = _period_cond(source, plan.period)
        out_cond = _period_cond(source, plan.compare_to)
        select = [f"{_rounded(_measure(m, in_cond), m)} AS {column_of(m)}" for m in measures]
        having = [f"count(*) FILTER (WHERE {in_cond}) > 0",
                  f"count(*) FILTER (WHERE {out_cond}) = 0"]
        if plan.count_only:
            inner = _grouped(plan, source, select, dims, having, "", None)
            return f"SELECT count(*) AS {column_of(dims[0])}s\nFROM ({inner})"
        return _grouped(plan, source, select, dims, having,
                        _order_by_measure(plan, first), plan.n or BREAKDOWN_ROWS)

    if shape == "first_seen":
        assert plan.period is not None
        dims = list(plan.dimensions) or ["trader"]
        dim_expr = _dim_sql(dims[0], source)
        in_cond = _period_cond(source, plan.period)
        col = column_of(dims[0])
        select = [f"min({source.date}) AS first_date"] + [
            f"{_rounded(_measure(m, in_cond), m)} AS {column_of(m)}" for m in measures]
        group = ""  # new traders by what they are: "new importers per sector"
        if len(dims) == 2:
            group = f"{_dim_sql(dims[1], source)} AS {column_of(dims[1])}, "
        inner = (f"SELECT {dim_expr} AS {col}, {group}{', '.join(select)}\n{source.from_sql()}"
                 f"{_where_sql(_where(plan, source, period=False))}\n"
                 f"GROUP BY {'1, 2' if group else '1'}\n"
                 f"HAVING min({source.date}) >= {sql_literal(plan.period.start)} "
                 f"AND min({source.date}) < {sql_literal(plan.period.end)}")
        if plan.count_only and group:
            by = column_of(dims[1])
            total = f", round(sum({first}), 2) AS {first}" if measures[0] in ADDITIVE else ""
            return (f"SELECT {by}, count(*) AS {col}s{total}\n"
                    f"FROM ({inner})\nGROUP BY 1\nORDER BY {col}s DESC, 1")
        if plan.count_only:
            return f"SELECT count(*) AS {col}s\nFROM ({inner})"
        names = ""
        if dims[0] in NAMES:
            label, lookup = NAMES[dims[0]]
            names = f", {lookup.format(col=col)} AS {label}"
        limit = plan.n or BREAKDOWN_ROWS
        return (f"WITH g AS (\n{inner}\n)\nSELECT {col}{names}, g.* EXCLUDE ({col})\nFROM g\n"
                f"ORDER BY {_order_by_measure(plan, first)}\nLIMIT {limit}")
    raise ValueError(f"unknown shape {shape!r}")
