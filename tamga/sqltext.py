"""SQL text from values: the one way a value (never user text as such) is written into SQL.

    sql_literal("O'Brien")                        -> "'O''Brien'"
    bind("WHERE t.trader_id = $trader", {"trader": "T000002"})
                                                  -> "WHERE t.trader_id = 'T000002'"
    parameter_names("... $date_from ... $date_to") -> {"date_from", "date_to"}

`bind` writes validated values as literals (strings quoted, control characters refused);
`bind_known` does the same but leaves names it has no value for, so that a statement run with
bound parameters can be shown in a form `tamga sql` runs as it is.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

#: A `$name` parameter in SQL text.
PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def sql_literal(value: Any) -> str:
    """A SQL literal for a value: str, int, float, bool, date, None, or a list/tuple of them."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return repr(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("control character in a SQL value")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def parameter_names(sql: str) -> set[str]:
    """The `$name` parameters a statement uses."""
    return set(PARAMETER.findall(sql))


def bind(sql: str, params: Mapping[str, Any]) -> str:
    """`sql` with every $name replaced by the literal of params[name] (KeyError if missing)."""
    return PARAMETER.sub(lambda m: sql_literal(params[m.group(1)]), sql)


def bind_known(sql: str, params: Mapping[str, Any] | list[Any] | None) -> str:
    """`sql` with the $name parameters it has values for written as literals (for display)."""
    if not params or not isinstance(params, Mapping):
        return sql
    return PARAMETER.sub(
        lambda m: sql_literal(params[m.group(1)]) if m.group(1) in params else m.group(0), sql)
