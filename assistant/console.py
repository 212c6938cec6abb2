"""Terminal output helpers shared by the CLI commands: progress lines, tables, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def progress(message: str) -> None:
    """Print one progress line to stderr (so --json output on stdout stays clean)."""
    print(message, file=sys.stderr, flush=True)


def print_json(obj: Any) -> None:
    """Print `obj` as indented JSON on stdout; dates and decimals become strings."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


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
