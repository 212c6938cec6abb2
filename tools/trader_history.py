"""A trader's trade history for the profile page: monthly value, top headings, suppliers,
latest declarations. Parameterised queries through the guarded runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.runner import Runner
    from tools.sql import QueryResult

_FROM = (
    "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
    "WHERE d.trader_id = $trader AND d.flow = 'import'"
)

HISTORY_SQL = {
    "monthly_value": (
        "SELECT strftime(date_trunc('month', d.declaration_date), '%Y-%m') AS month, "
        "round(sum(i.customs_value), 2) AS customs_value, "
        "round(sum(i.duty_amount), 2) AS duty_amount "
        f"{_FROM} GROUP BY 1 ORDER BY 1"
    ),
    "top_headings": (
        "SELECT left(i.hs_code, 4) AS heading, any_value(h.description) AS description, "
        "round(sum(i.customs_value), 2) AS customs_value, count(*) AS items "
        "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        "LEFT JOIN hs_nomenclature h ON h.code = left(i.hs_code, 4) "
        "WHERE d.trader_id = $trader AND d.flow = 'import' "
        "GROUP BY 1 ORDER BY customs_value DESC LIMIT 10"
    ),
    "top_origins": (
        "SELECT i.origin_country AS origin, any_value(c.name) AS country, "
        "round(sum(i.customs_value), 2) AS customs_value "
        "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        "LEFT JOIN countries c ON c.iso2 = i.origin_country "
        "WHERE d.trader_id = $trader AND d.flow = 'import' "
        "GROUP BY 1 ORDER BY customs_value DESC LIMIT 10"
    ),
    "top_suppliers": (
        "SELECT i.seller_id AS supplier, bool_or(i.related_party) AS related_party, "
        "round(sum(i.customs_value), 2) AS customs_value, count(*) AS items "
        f"{_FROM} GROUP BY 1 ORDER BY customs_value DESC LIMIT 10"
    ),
    "latest_declarations": (
        "SELECT d.declaration_id, d.declaration_date, d.customs_office, d.control_channel, "
        "count(*) AS items, round(sum(i.customs_value), 2) AS customs_value, "
        "round(sum(i.duty_amount), 2) AS duty_amount "
        "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        "WHERE d.trader_id = $trader "
        "GROUP BY ALL ORDER BY d.declaration_date DESC, d.declaration_id DESC LIMIT 20"
    ),
}


def trader_history(runner: Runner, trader_id: str) -> dict[str, QueryResult]:
    """Every history query of HISTORY_SQL for one trader, by name."""
    return {name: runner.run(sql, {"trader": trader_id}) for name, sql in HISTORY_SQL.items()}
