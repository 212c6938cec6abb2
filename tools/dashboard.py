"""Supervisor dashboard figures: key figures for a period, change against the previous one,
monthly trend, and top movers by trader and HS chapter. All through the guarded SQL runner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from tamga.period import Period, add_months
from tamga.sqltext import bind_known

if TYPE_CHECKING:
    from tools.runner import Runner
    from tools.sql import QueryResult

def data_range(runner: Runner) -> tuple[date, date] | None:
    """First and last declaration date in the database, or None when it is empty."""
    result = runner.run("SELECT min(declaration_date), max(declaration_date) FROM declarations")
    first, last = result.rows[0]
    if first is None:
        return None
    return date.fromisoformat(str(first)), date.fromisoformat(str(last))


def data_overview(runner: Runner) -> dict[str, Any]:
    """What the data holds, as plain JSON data: the `dataset_info` entries (source, reporting
    currency...), row counts of traders, declarations and items, the first and last declaration
    date, the name of the largest importer by customs value (for example questions), and the
    monthly import trend of the data's last 12 months with the SQL that produced it."""
    info: dict[str, Any] = {
        str(k): v for k, v in runner.run("SELECT key, value FROM dataset_info").rows}
    counts = runner.run(
        "SELECT (SELECT count(*) FROM traders), (SELECT count(*) FROM declarations), "
        "(SELECT count(*) FROM declaration_items), "
        "(SELECT min(declaration_date) FROM declarations), "
        "(SELECT max(declaration_date) FROM declarations)"
    ).rows[0]
    largest = runner.run(
        "SELECT t.name FROM declarations d JOIN declaration_items i USING (declaration_id) "
        "JOIN traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import' GROUP BY t.name "
        "ORDER BY sum(i.customs_value) DESC, t.name LIMIT 1"
    ).rows
    info.update(
        traders=int(counts[0]), declarations=int(counts[1]), items=int(counts[2]),
        date_from=None if counts[3] is None else str(counts[3]),
        date_to=None if counts[4] is None else str(counts[4]),
        largest_importer=str(largest[0][0]) if largest else None,
        recent_months=None,
    )
    if counts[4] is not None:
        last = date.fromisoformat(str(counts[4]))
        end = add_months(last.replace(day=1), 1)
        start = add_months(end, -RECENT_MONTHS)
        trend = monthly_trend(runner, start, end)
        info["recent_months"] = {
            "sql": bind_known(trend.sql, {"start": start, "end": end}),
            "columns": list(trend.columns), "rows": [list(r) for r in trend.rows]}
    return info


RECENT_MONTHS = 12  # the overview's monthly trend: the last year of the data


KEY_FIGURES_SQL = """
SELECT count(DISTINCT d.declaration_id) AS declarations,
       coalesce(sum(i.customs_value), 0) AS customs_value,
       coalesce(sum(i.duty_amount), 0) AS duty,
       count(DISTINCT d.declaration_id) FILTER (WHERE d.control_channel = 'red') AS red
FROM declarations d JOIN declaration_items i USING (declaration_id)
WHERE d.flow = 'import' AND d.declaration_date >= $start AND d.declaration_date < $end
"""


@dataclass
class KeyFigures:
    """Import key figures for one period."""

    declarations: int
    customs_value: float
    duty: float
    red_share_pct: float


def key_figures(runner: Runner, period: Period) -> tuple[KeyFigures, QueryResult]:
    """Declarations, customs value, duty and red-channel share of imports in `period`."""
    result = runner.run(KEY_FIGURES_SQL, {"start": period.start, "end": period.end})
    declarations, value, duty, red = result.rows[0]
    share = 100.0 * red / declarations if declarations else 0.0
    return KeyFigures(int(declarations), float(value), float(duty), share), result


def change_pct(current: float, previous: float) -> float | None:
    """Relative change in percent, None when there is nothing to compare with."""
    if not previous:
        return None
    return 100.0 * (current - previous) / previous


MONTHLY_TREND_SQL = """
SELECT strftime(date_trunc('month', d.declaration_date), '%Y-%m') AS month,
       sum(i.customs_value) AS customs_value,
       sum(i.duty_amount) AS duty,
       count(DISTINCT d.declaration_id) AS declarations
FROM declarations d JOIN declaration_items i USING (declaration_id)
WHERE d.flow = 'import' AND d.declaration_date >= $start AND d.declaration_date < $end
GROUP BY 1 ORDER BY 1
"""


def monthly_trend(runner: Runner, start: date, end: date) -> QueryResult:
    """Monthly import value, duty and declaration count between two dates."""
    return runner.run(MONTHLY_TREND_SQL, {"start": start, "end": end})


_MOVERS_SQL = """
WITH cur AS (
    SELECT {key} AS key, sum(i.customs_value) AS value
    FROM declarations d JOIN declaration_items i USING (declaration_id)
    WHERE d.flow = 'import' AND d.declaration_date >= $start AND d.declaration_date < $end
    GROUP BY 1),
prev AS (
    SELECT {key} AS key, sum(i.customs_value) AS value
    FROM declarations d JOIN declaration_items i USING (declaration_id)
    WHERE d.flow = 'import' AND d.declaration_date >= $prev_start
      AND d.declaration_date < $start
    GROUP BY 1)
SELECT {label} AS {label_name}, coalesce(cur.value, 0) AS current_value,
       coalesce(prev.value, 0) AS previous_value,
       coalesce(cur.value, 0) - coalesce(prev.value, 0) AS change
FROM cur FULL OUTER JOIN prev USING (key)
{join}
ORDER BY abs(coalesce(cur.value, 0) - coalesce(prev.value, 0)) DESC
LIMIT $limit
"""

_MOVER_KINDS: dict[str, dict[str, str]] = {
    "trader": {
        "key": "d.trader_id",
        "label": "coalesce(t.name, key) || ' (' || key || ')'",
        "label_name": "trader",
        "join": "LEFT JOIN traders t ON t.trader_id = key",
    },
    "chapter": {
        "key": "substr(i.hs_code, 1, 2)",
        "label": "key || ' ' || coalesce(h.description, '')",
        "label_name": "hs_chapter",
        "join": "LEFT JOIN hs_nomenclature h ON h.code = key",
    },
}


def top_movers(
    runner: Runner, period: Period, by: Literal["trader", "chapter"], limit: int = 10
) -> QueryResult:
    """Traders or HS chapters whose import value changed most against the previous period."""
    sql = _MOVERS_SQL.format(**_MOVER_KINDS[by])
    params: dict[str, Any] = {
        "start": period.start,
        "end": period.end,
        "prev_start": period.previous().start,
        "limit": limit,
    }
    return runner.run(sql, params)
