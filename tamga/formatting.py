"""Numbers and tables as an officer reads them; money always with the data set's currency.

    fmt_money(1234567.8, "KRW")             -> 'KRW 1,234,568'
    fmt_money(12.5, "USD")                  -> 'USD 12.50' (cents below 1,000 by default)
    fmt_money(512.0, "USD", cents_below=0)  -> 'USD 512'

The currency is always an argument: it is `dataset_info.reporting_currency` of the database
the figures come from (USD in the demo, KRW after a KCS import).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The currency assumed when a database does not say (dataset_info.reporting_currency).
DEFAULT_CURRENCY = "USD"


def fmt_money(value: Any, currency: str, *, cents_below: float = 1000.0) -> str:
    """'USD 1,234,567'; amounts smaller than `cents_below` show cents; None reads 'n/a'."""
    if value is None:
        return "n/a"
    v = float(value)
    return f"{currency} {v:,.2f}" if abs(v) < cents_below else f"{currency} {v:,.0f}"


def fmt_num(value: Any) -> str:
    """'1,234' or '12.34'."""
    if value is None:
        return "n/a"
    v = float(value)
    if v == int(v) and abs(v) >= 1:
        return f"{int(v):,}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"


def format_cell(value: Any) -> str:
    """A table cell as an officer reads it: thousands separators, two decimals for money."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int = 50) -> str:
    """A plain-text table with aligned columns; numbers right-aligned."""
    shown = [[format_cell(v) for v in row] for row in rows[:max_rows]]
    widths = [len(c) for c in columns]
    for row in shown:
        for i, cell in enumerate(row):
            widths[i] = min(max(widths[i], len(cell)), 60)
    numeric = [
        all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool)
            for r in rows[:max_rows]
            if r[i] is not None
        )
        for i in range(len(columns))
    ]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            cell = cell if len(cell) <= 60 else cell[:57] + "..."
            out.append(cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    parts = [line(list(columns)), line(["-" * w for w in widths])]
    parts += [line(r) for r in shown]
    if len(rows) > max_rows:
        parts.append(f"... {len(rows) - max_rows:,} more rows")
    return "\n".join(parts)
