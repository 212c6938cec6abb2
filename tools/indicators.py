"""Risk indicators that need no inspection labels, computed in SQL over the trade data model.

Each indicator is one guarded query (tools/sql.py) that returns the import lines it flags,
with a numeric strength in [0, 1], an estimate of the duty at stake on the line and a reason
sentence that quotes the figures it rests on. Peers (medians, usual codes, rate changes) are
computed over the whole database; only lines declared in the requested period are flagged.

    runner = analysis_runner(Path("trade.duckdb"))
    flags = run_indicators(runner, Period(...))          # all indicators, strongest first
    flags = unit_value_outliers(runner, start, end, trader_id="T000012")

Indicators:
- ``unit_value``: unit value (money per kg) far below the robust peer median of the same 6-digit
  subheading and origin (log distance in MAD units), with enough lines and traders as peers.
- ``origin_switch``: a trader whose origin for an HS chapter moves away from a country right
  after the duty on that chapter from that country rose.
- ``split_consignment``: several declarations of the same trader and goods within a few days,
  each just under the low-value threshold.
- ``misclassification``: a goods description that other traders declare under another,
  higher-duty subheading.
- ``related_party``: related-party lines priced well below unrelated sellers of the same
  subheading and origin.
- ``pattern_change``: a month in which a trader's import value jumps far above its own history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tamga.errors import SqlFailed
from tamga.formatting import fmt_money
from tools.runner import reporting_currency
from tools.sql import SqlRunner

if TYPE_CHECKING:
    from tools.backends import Backend
    from tools.runner import Runner
    from tools.sql import QueryResult

INDICATORS = (
    "unit_value", "origin_switch", "split_consignment", "misclassification", "related_party",
    "pattern_change",
)
# Which planted demo anomaly each indicator is meant to find (used by the benchmark only).
PLANTED_TYPE = {
    "unit_value": "undervaluation",
    "origin_switch": "origin_switching",
    "split_consignment": "split_consignment",
    "misclassification": "misclassification",
    "related_party": "related_party_pricing",
}
LABELS = {
    "unit_value": "unit value far below peers",
    "origin_switch": "origin switch after a duty rise",
    "split_consignment": "split consignment under the low-value threshold",
    "misclassification": "possible misclassification",
    "related_party": "related-party price gap",
    "pattern_change": "sudden change in trade pattern",
}
FAR_PAST = date(1900, 1, 1)
FAR_FUTURE = date(2999, 12, 31)

# Thresholds (chosen on the seed-3 demo, never on the seed-7 benchmark database).
UV_MIN_PEERS = 15          # peer lines of the same subheading (and origin)
UV_MIN_TRADERS = 3         # distinct traders among the peers
UV_MAX_RATIO = 0.35        # flag when unit value < 35 % of the peer median ...
UV_MIN_ROBUST_Z = 2.0        # ... and more than 2 robust standard deviations below it
SWITCH_MIN_RISE = 5.0      # duty rise, percentage points, that counts as a rate change
SWITCH_SHARE_BEFORE = 0.6  # the trader's share from the country before the rise ...
SWITCH_SHARE_AFTER = 0.15  # ... and at most this share after it
SPLIT_LOW = 0.85           # declarations worth 85-100 % of the threshold
SPLIT_WINDOW_DAYS = 3      # neighbours within +/- 3 days
SPLIT_MIN_CLUSTER = 4      # at least 4 such declarations of the same trader and goods
MISC_MIN_TRADERS = 2       # other traders using the usual code for the description
MISC_MIN_RATE_GAP = 2.0    # usual code's duty rate higher by at least 2 points
RP_MAX_RATIO = 0.7         # related lines' median below 70 % of unrelated sellers' median
RP_MIN_LINES = 5           # related lines per trader, subheading and origin
RP_MIN_PEERS = 10          # unrelated peer lines
JUMP_MIN_RATIO = 4.0       # month value at least 4x the trader's trailing median
JUMP_MIN_MONTHS = 6        # months of history before the jump
JUMP_MIN_VALUE = 50_000.0  # and worth at least 50,000 in the reporting currency


@dataclass
class Flag:
    """One import line (or, for pattern_change, one trader-month) flagged by an indicator."""

    indicator: str
    trader_id: str
    declaration_id: str | None
    item_no: int | None
    declaration_date: str | None
    hs6: str | None
    origin: str | None
    customs_value: float
    duty_gap: float        # estimated duty not paid if the suspicion is right (reporting currency)
    strength: float        # 0..1, how far from normal
    reason: str
    key: str               # what the flag is about (goods / origin / month), for grouping

    def to_json(self) -> dict[str, Any]:
        """The flag as plain JSON data."""
        return asdict(self)


def analysis_runner(db_path: Path, timeout_s: float = 300.0,
                    backend: Backend | None = None) -> SqlRunner:
    """A guarded read-only runner for analytics: long time limit, large row cap (on
    `backend` when given, else its own DuckDB connection to `db_path`)."""
    return SqlRunner(db_path, timeout_s=timeout_s, row_cap=2_000_000, backend=backend)


def _money(x: float, currency: str) -> str:
    return fmt_money(x, currency, cents_below=100)


def _uv(x: float) -> str:
    return f"{x:,.2f}" if x >= 1 else f"{x:.3f}"


def _clip(x: float) -> float:
    return max(0.0, min(1.0, float(x)))


def _bounds(start: date | None, end: date | None) -> dict[str, Any]:
    return {"start": start or FAR_PAST, "end": end or FAR_FUTURE}


def _trader_filter(trader_id: str | None, params: dict[str, Any], col: str = "trader_id") -> str:
    if trader_id is None:
        return ""
    params["trader"] = trader_id
    return f" AND {col} = $trader"


# Join conditions are single equalities (the SQL guard refuses AND inside JOIN ... ON);
# the other conditions go to WHERE.
# Import lines with what every indicator needs. Unit value is customs value per kg.
_LINES = """
lines AS (
    SELECT d.declaration_id, i.item_no, d.declaration_date, d.trader_id,
           left(i.hs_code, 6) AS hs6, i.origin_country AS origin, i.goods_description,
           i.related_party, i.seller_id, i.customs_value, i.net_mass_kg, i.duty_rate_pct,
           i.duty_amount, i.customs_value / nullif(i.net_mass_kg, 0) AS uv
    FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id
    WHERE d.flow = 'import'
)"""

UNIT_VALUE_SQL = f"""
WITH {_LINES},
valued AS (SELECT *, ln(uv) AS luv FROM lines WHERE uv > 0),
by_origin AS (
    SELECT hs6, origin, count(*) AS n, count(DISTINCT trader_id) AS traders,
           median(luv) AS med FROM valued GROUP BY ALL),
by_origin_mad AS (
    SELECT v.hs6, v.origin, any_value(b.n) AS n, any_value(b.traders) AS traders,
           any_value(b.med) AS med, median(abs(v.luv - b.med)) AS mad
    FROM valued v JOIN by_origin b USING (hs6, origin) GROUP BY ALL),
by_hs AS (
    SELECT hs6, count(*) AS n, count(DISTINCT trader_id) AS traders, median(luv) AS med
    FROM valued GROUP BY ALL),
by_hs_mad AS (
    SELECT v.hs6, any_value(b.n) AS n, any_value(b.traders) AS traders,
           any_value(b.med) AS med, median(abs(v.luv - b.med)) AS mad
    FROM valued v JOIN by_hs b USING (hs6) GROUP BY ALL),
scored AS (
    SELECT v.*,
           CASE WHEN o.n >= $min_peers AND o.traders >= $min_traders THEN 'origin'
                ELSE 'subheading' END AS peer_group,
           CASE WHEN o.n >= $min_peers AND o.traders >= $min_traders THEN o.med ELSE h.med END
               AS med,
           CASE WHEN o.n >= $min_peers AND o.traders >= $min_traders THEN o.mad ELSE h.mad END
               AS mad,
           CASE WHEN o.n >= $min_peers AND o.traders >= $min_traders THEN o.n ELSE h.n END
               AS peers
    FROM valued v
    LEFT JOIN by_origin_mad o USING (hs6, origin)
    JOIN by_hs_mad h USING (hs6)
    WHERE v.declaration_date >= $start AND v.declaration_date < $end {{trader}}
      AND (o.n >= $min_peers AND o.traders >= $min_traders
           OR h.n >= $min_peers AND h.traders >= $min_traders)
)
SELECT declaration_id, item_no, declaration_date, trader_id, hs6, origin, customs_value,
       net_mass_kg, duty_rate_pct, uv, exp(med) AS peer_median_uv, peers, peer_group,
       (luv - med) / greatest(1.4826 * mad, 0.05) AS robust_z
FROM scored
WHERE uv < $max_ratio * exp(med)
  AND (luv - med) / greatest(1.4826 * mad, 0.05) < -$min_z
ORDER BY robust_z
"""


def unit_value_outliers(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, currency: str | None = None,
) -> list[Flag]:
    """Lines whose unit value is far below the median of the same subheading (and origin)."""
    cur = currency or reporting_currency(runner)
    params = _bounds(start, end) | {
        "min_peers": UV_MIN_PEERS, "min_traders": UV_MIN_TRADERS,
        "max_ratio": UV_MAX_RATIO, "min_z": UV_MIN_ROBUST_Z,
    }
    sql = UNIT_VALUE_SQL.replace("{trader}", _trader_filter(trader_id, params, "v.trader_id"))
    flags = []
    for r in _records(runner.run(sql, params)):
        ratio = r["uv"] / r["peer_median_uv"]
        below = 100 * (1 - ratio)
        gap = max(0.0, r["peer_median_uv"] * r["net_mass_kg"] - r["customs_value"])
        peers = f"{r['hs6']} from {r['origin']}" if r["peer_group"] == "origin" else r["hs6"]
        flags.append(Flag(
            "unit_value", r["trader_id"], r["declaration_id"], r["item_no"],
            r["declaration_date"], r["hs6"], r["origin"], r["customs_value"],
            gap * (r["duty_rate_pct"] or 0) / 100,
            _clip(0.5 * (1 - ratio) + 0.5 * min(1.0, -r["robust_z"] / 10)),
            f"unit value {_uv(r['uv'])} {cur}/kg is {below:.0f}% below the median "
            f"{_uv(r['peer_median_uv'])} {cur}/kg of {r['peers']:,} lines of {peers}",
            f"{r['hs6']} from {r['origin']}",
        ))
    return flags


ORIGIN_SWITCH_SQL = f"""
WITH {_LINES},
rates AS (
    SELECT left(hs6, 2) AS ch, origin, date_trunc('month', declaration_date) AS m,
           sum(duty_rate_pct) AS s, count(*) AS n
    FROM lines GROUP BY ALL),
cand AS (
    SELECT r.ch, r.origin, c.m AS since,
           sum(r.s) FILTER (WHERE r.m < c.m) / sum(r.n) FILTER (WHERE r.m < c.m) AS rate_before,
           sum(r.s) FILTER (WHERE r.m >= c.m) / sum(r.n) FILTER (WHERE r.m >= c.m) AS rate_after,
           sum(r.s) FILTER (WHERE r.m = c.m) / sum(r.n) FILTER (WHERE r.m = c.m) AS rate_month,
           sum(r.n) FILTER (WHERE r.m < c.m) AS n_before,
           sum(r.n) FILTER (WHERE r.m >= c.m) AS n_after
    FROM rates r JOIN (SELECT DISTINCT ch, origin, m FROM rates) c USING (ch, origin)
    GROUP BY ALL),
-- the first month whose own rate, and the average rate from then on, is clearly above before
events AS (
    SELECT ch, origin AS old_origin, since, rate_before, rate_after FROM cand
    WHERE n_before >= 5 AND n_after >= 5 AND rate_after - rate_before >= $min_rise
      AND rate_month - rate_before >= $min_rise
    QUALIFY row_number() OVER (PARTITION BY ch, origin
                               ORDER BY since) = 1),
shares AS (
    SELECT l.trader_id, e.ch, e.old_origin, e.since, e.rate_before, e.rate_after,
           sum(l.customs_value) FILTER (WHERE l.declaration_date < e.since) AS v_before,
           sum(CASE WHEN l.declaration_date < e.since AND l.origin = e.old_origin
                    THEN l.customs_value END) AS v_old_before,
           sum(l.customs_value) FILTER (WHERE l.declaration_date >= e.since) AS v_after,
           sum(CASE WHEN l.declaration_date >= e.since AND l.origin = e.old_origin
                    THEN l.customs_value END) AS v_old_after,
           count(*) FILTER (WHERE l.declaration_date < e.since) AS n_before,
           count(*) FILTER (WHERE l.declaration_date >= e.since) AS n_after
    FROM lines l JOIN events e ON left(l.hs6, 2) = e.ch
    GROUP BY ALL),
switchers AS (
    SELECT *, v_old_before / v_before AS share_before,
           coalesce(v_old_after, 0) / v_after AS share_after
    FROM shares
    WHERE n_before >= 3 AND n_after >= 3
      AND v_old_before / v_before >= $share_before
      AND coalesce(v_old_after, 0) / v_after <= $share_after)
SELECT l.declaration_id, l.item_no, l.declaration_date, l.trader_id, l.hs6, l.origin,
       l.customs_value, s.ch, s.old_origin, s.since, s.rate_before, s.rate_after,
       s.share_before, s.share_after,
       sum(l.customs_value) OVER (PARTITION BY l.trader_id, s.ch, l.origin)
           / s.v_after AS new_share
FROM lines l JOIN switchers s ON l.trader_id = s.trader_id
WHERE left(l.hs6, 2) = s.ch AND l.declaration_date >= s.since AND l.origin <> s.old_origin
  AND l.declaration_date >= $start AND l.declaration_date < $end {{trader}}
ORDER BY l.trader_id, l.declaration_date
"""


def origin_switches(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, currency: str | None = None,
) -> list[Flag]:
    """Lines of traders whose origin for an HS chapter moved away after the duty on it rose."""
    params = _bounds(start, end) | {
        "min_rise": SWITCH_MIN_RISE, "share_before": SWITCH_SHARE_BEFORE,
        "share_after": SWITCH_SHARE_AFTER,
    }
    sql = ORIGIN_SWITCH_SQL.replace("{trader}", _trader_filter(trader_id, params, "l.trader_id"))
    flags = []
    for r in _records(runner.run(sql, params)):
        rise = r["rate_after"] - r["rate_before"]
        since = str(r["since"])[:7]
        flags.append(Flag(
            "origin_switch", r["trader_id"], r["declaration_id"], r["item_no"],
            r["declaration_date"], r["hs6"], r["origin"], r["customs_value"],
            r["customs_value"] * rise / 100,
            _clip(0.4 + 0.6 * (r["share_before"] - r["share_after"])),
            f"origin of chapter {r['ch']} goods moved from {r['old_origin']} "
            f"({100 * r['share_before']:.0f}% of value before {since}, "
            f"{100 * r['share_after']:.0f}% after) to {r['origin']} "
            f"({100 * r['new_share']:.0f}% after) when the duty on {r['old_origin']} rose from "
            f"{r['rate_before']:.1f}% to {r['rate_after']:.1f}% in {since}",
            f"chapter {r['ch']}: {r['old_origin']} -> {r['origin']} after {since}",
        ))
    return flags


SPLIT_SQL = f"""
WITH {_LINES},
threshold AS (
    SELECT coalesce(max(TRY_CAST(value AS DOUBLE)), 1000.0) AS t FROM dataset_info
    WHERE key = 'low_value_threshold_usd'),
decl AS (
    SELECT declaration_id, any_value(declaration_date) AS declaration_date,
           any_value(trader_id) AS trader_id, min(hs6) AS hs6, any_value(origin) AS origin,
           sum(customs_value) AS value, max(duty_rate_pct) AS rate, count(*) AS items
    FROM lines GROUP BY declaration_id),
near AS (
    SELECT d.*, t.t AS threshold FROM decl d, threshold t
    WHERE d.value >= $low * t.t AND d.value < t.t),
clustered AS (
    SELECT *, count(*) OVER (PARTITION BY trader_id, hs6 ORDER BY declaration_date
               RANGE BETWEEN INTERVAL {SPLIT_WINDOW_DAYS} DAYS PRECEDING
                         AND INTERVAL {SPLIT_WINDOW_DAYS} DAYS FOLLOWING) AS cluster
    FROM near)
SELECT c.declaration_id, l.item_no, c.declaration_date, c.trader_id, c.hs6, l.origin,
       l.customs_value, c.value AS declaration_value, c.threshold, c.cluster, c.rate
FROM clustered c JOIN lines l USING (declaration_id)
WHERE c.cluster >= $min_cluster
  AND c.declaration_date >= $start AND c.declaration_date < $end {{trader}}
ORDER BY c.trader_id, c.declaration_date
"""


def split_consignments(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, currency: str | None = None,
) -> list[Flag]:
    """Lines of declarations just under the low-value threshold, clustered in a few days."""
    cur = currency or reporting_currency(runner)
    params = _bounds(start, end) | {"low": SPLIT_LOW, "min_cluster": SPLIT_MIN_CLUSTER}
    sql = SPLIT_SQL.replace("{trader}", _trader_filter(trader_id, params, "c.trader_id"))
    flags = []
    for r in _records(runner.run(sql, params)):
        flags.append(Flag(
            "split_consignment", r["trader_id"], r["declaration_id"], r["item_no"],
            r["declaration_date"], r["hs6"], r["origin"], r["customs_value"],
            r["customs_value"] * (r["rate"] or 0) / 100,
            _clip(0.3 + 0.07 * r["cluster"]),
            f"declaration worth {_money(r['declaration_value'], cur)}, just under the "
            f"{_money(r['threshold'], cur)} low-value threshold, one of {r['cluster']} such "
            f"declarations of {r['hs6']} within {SPLIT_WINDOW_DAYS} days",
            f"{r['hs6']} split under {_money(r['threshold'], cur)}",
        ))
    return flags


MISCLASSIFICATION_SQL = f"""
WITH {_LINES},
usage AS (
    SELECT lower(trim(goods_description)) AS descr, hs6, count(DISTINCT trader_id) AS traders,
           count(*) AS n, avg(duty_rate_pct) AS rate
    FROM lines WHERE goods_description IS NOT NULL GROUP BY ALL),
usual AS (
    SELECT descr, hs6 AS usual_hs6, traders AS usual_traders, rate AS usual_rate FROM usage
    QUALIFY row_number() OVER (PARTITION BY descr ORDER BY traders DESC, n DESC, hs6) = 1),
code_rate AS (
    SELECT hs6, avg(duty_rate_pct) AS rate FROM lines GROUP BY hs6)
SELECT l.declaration_id, l.item_no, l.declaration_date, l.trader_id, l.hs6, l.origin,
       l.customs_value, l.goods_description, l.duty_rate_pct, u.usual_hs6, u.usual_traders,
       c.rate AS usual_rate, s.traders AS same_code_traders
FROM lines l
JOIN usual u ON u.descr = lower(trim(l.goods_description))
JOIN usage s ON s.descr = u.descr
JOIN code_rate c ON c.hs6 = u.usual_hs6
WHERE s.hs6 = l.hs6 AND l.hs6 <> u.usual_hs6 AND u.usual_traders >= $min_traders
  AND u.usual_traders > s.traders
  AND c.rate - l.duty_rate_pct >= $min_gap
  AND l.declaration_date >= $start AND l.declaration_date < $end {{trader}}
ORDER BY l.trader_id, l.declaration_date
"""


def misclassification_hints(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, currency: str | None = None,
) -> list[Flag]:
    """Lines whose description other traders declare under another, higher-duty subheading."""
    params = _bounds(start, end) | {"min_traders": MISC_MIN_TRADERS, "min_gap": MISC_MIN_RATE_GAP}
    sql = MISCLASSIFICATION_SQL.replace(
        "{trader}", _trader_filter(trader_id, params, "l.trader_id"))
    flags = []
    for r in _records(runner.run(sql, params)):
        gap = r["usual_rate"] - (r["duty_rate_pct"] or 0)
        flags.append(Flag(
            "misclassification", r["trader_id"], r["declaration_id"], r["item_no"],
            r["declaration_date"], r["hs6"], r["origin"], r["customs_value"],
            r["customs_value"] * gap / 100,
            _clip(0.3 + 0.02 * gap + 0.05 * r["usual_traders"]),
            f"'{r['goods_description']}' declared under {r['hs6']} at "
            f"{r['duty_rate_pct']:.1f}% duty, while {r['usual_traders']} other traders declare "
            f"it under {r['usual_hs6']} (average duty {r['usual_rate']:.1f}%)",
            f"'{r['goods_description']}' under {r['hs6']} instead of {r['usual_hs6']}",
        ))
    return flags


RELATED_PARTY_SQL = f"""
WITH {_LINES},
valued AS (SELECT * FROM lines WHERE uv > 0),
arm AS (
    SELECT hs6, origin, median(uv) AS arm_uv, count(*) AS peers FROM valued
    WHERE NOT related_party GROUP BY ALL HAVING count(*) >= $min_peers),
rel AS (
    SELECT trader_id, hs6, origin, median(uv) AS rel_uv, count(*) AS n FROM valued
    WHERE related_party GROUP BY ALL HAVING count(*) >= $min_lines)
SELECT v.declaration_id, v.item_no, v.declaration_date, v.trader_id, v.hs6, v.origin,
       v.customs_value, v.net_mass_kg, v.duty_rate_pct, v.uv, v.seller_id, r.rel_uv, r.n,
       a.arm_uv, a.peers
FROM valued v
JOIN rel r USING (trader_id, hs6, origin)
JOIN arm a USING (hs6, origin)
WHERE v.related_party AND r.rel_uv < $max_ratio * a.arm_uv
  AND v.declaration_date >= $start AND v.declaration_date < $end {{trader}}
ORDER BY v.trader_id, v.declaration_date
"""


def related_party_gaps(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, currency: str | None = None,
) -> list[Flag]:
    """Related-party lines priced well below unrelated sellers of the same goods and origin."""
    cur = currency or reporting_currency(runner)
    params = _bounds(start, end) | {
        "min_peers": RP_MIN_PEERS, "min_lines": RP_MIN_LINES, "max_ratio": RP_MAX_RATIO,
    }
    sql = RELATED_PARTY_SQL.replace("{trader}", _trader_filter(trader_id, params, "v.trader_id"))
    flags = []
    for r in _records(runner.run(sql, params)):
        ratio = r["rel_uv"] / r["arm_uv"]
        gap = max(0.0, r["arm_uv"] * r["net_mass_kg"] - r["customs_value"])
        flags.append(Flag(
            "related_party", r["trader_id"], r["declaration_id"], r["item_no"],
            r["declaration_date"], r["hs6"], r["origin"], r["customs_value"],
            gap * (r["duty_rate_pct"] or 0) / 100,
            _clip(0.2 + (1 - ratio)),
            f"bought from related seller {r['seller_id']} at {_uv(r['uv'])} {cur}/kg; the "
            f"median of its {r['n']} related-party lines of {r['hs6']} from {r['origin']} "
            f"({_uv(r['rel_uv'])} {cur}/kg) is {100 * (1 - ratio):.0f}% below the "
            f"{_uv(r['arm_uv'])} {cur}/kg of {r['peers']} lines from unrelated sellers",
            f"{r['hs6']} from related seller {r['seller_id']}",
        ))
    return flags


PATTERN_SQL = """
WITH monthly AS (
    SELECT d.trader_id, date_trunc('month', d.declaration_date) AS m,
           sum(i.customs_value) AS value, sum(i.duty_amount) AS duty,
           count(DISTINCT d.declaration_id) AS declarations
    FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id
    WHERE d.flow = 'import' GROUP BY ALL),
history AS (
    SELECT *, median(value) OVER w AS usual, count(*) OVER w AS months
    FROM monthly
    WINDOW w AS (PARTITION BY trader_id ORDER BY m ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING))
SELECT trader_id, strftime(m, '%Y-%m') AS month, m AS month_start, value, usual, months,
       declarations, duty
FROM history
WHERE months >= $min_months AND value >= $min_ratio * usual AND value >= $min_value
  AND m >= date_trunc('month', $start::DATE) AND m < $end {trader}
ORDER BY value / usual DESC
"""


def pattern_changes(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, currency: str | None = None,
) -> list[Flag]:
    """Trader-months whose import value jumps far above the trader's own trailing median."""
    cur = currency or reporting_currency(runner)
    params = _bounds(start, end) | {
        "min_months": JUMP_MIN_MONTHS, "min_ratio": JUMP_MIN_RATIO, "min_value": JUMP_MIN_VALUE,
    }
    sql = PATTERN_SQL.replace("{trader}", _trader_filter(trader_id, params))
    flags = []
    for r in _records(runner.run(sql, params)):
        ratio = r["value"] / r["usual"]
        flags.append(Flag(
            "pattern_change", r["trader_id"], None, None, r["month_start"], None, None,
            r["value"], 0.0, _clip(0.2 + 0.05 * math.log2(ratio)),
            f"imports of {_money(r['value'], cur)} in {r['month']} ({r['declarations']} "
            f"declarations), {ratio:.1f} times its usual monthly {_money(r['usual'], cur)} "
            f"over the previous {r['months']} months",
            f"jump in {r['month']}",
        ))
    return flags


IndicatorFn = Callable[..., list[Flag]]
FUNCTIONS: dict[str, IndicatorFn] = {
    "unit_value": unit_value_outliers,
    "origin_switch": origin_switches,
    "split_consignment": split_consignments,
    "misclassification": misclassification_hints,
    "related_party": related_party_gaps,
    "pattern_change": pattern_changes,
}


def run_indicators(
    runner: Runner, start: date | None = None, end: date | None = None,
    trader_id: str | None = None, which: Sequence[str] = INDICATORS,
    progress: Callable[[str], None] | None = None, currency: str | None = None,
) -> list[Flag]:
    """All (or `which`) indicators for lines declared in [start, end), strongest first.

    Reasons quote money in `currency` (default: the data set's reporting currency)."""
    currency = currency or reporting_currency(runner)
    flags: list[Flag] = []
    for name in which:
        if name not in FUNCTIONS:
            raise ValueError(f"unknown indicator {name!r}; choose from {', '.join(INDICATORS)}")
        if progress:
            progress(f"Indicator: {LABELS[name]}")
        flags.extend(FUNCTIONS[name](runner, start, end, trader_id, currency=currency))
    flags.sort(key=lambda f: (-f.strength, -f.duty_gap))
    return flags


def indicator_sql() -> dict[str, str]:
    """The SQL of every indicator, by name (for appendices and audits of the method)."""
    return {
        "unit_value": UNIT_VALUE_SQL, "origin_switch": ORIGIN_SWITCH_SQL,
        "split_consignment": SPLIT_SQL, "misclassification": MISCLASSIFICATION_SQL,
        "related_party": RELATED_PARTY_SQL, "pattern_change": PATTERN_SQL,
    }


def _records(result: QueryResult) -> list[dict[str, Any]]:
    if result.truncated:
        raise SqlFailed(
            f"An indicator returned more than {len(result.rows):,} rows; use a runner with a "
            "larger row cap (tools.indicators.analysis_runner) or a shorter period."
        )
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]
