"""What may leave the machine: query results filtered for a remote language model.

The setting TAMGA_LLM_DATA_POLICY decides what a REMOTE endpoint may receive from a tool result:

- ``schema``: column names and value types only, no rows;
- ``aggregates`` (the default): rows only when the query aggregates (GROUP BY or aggregate
  functions), and even then trader names, TINs and trader IDs are replaced by pseudonyms
  (``TRADER-001``) that only this machine can map back;
- ``rows``: the result as it is.

A local endpoint (loopback address), the packaged local model and the offline engine send
nothing anywhere, so no filter applies to them. Every payload handed to a remote model can be
recorded in an EgressLog, which the app shows ("what was sent").

    masker = Masker()
    payload = redact_for_llm(result, "aggregates", masker=masker, log=egress_log)
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast
from urllib.parse import urlparse

import sqlglot
from sqlglot import exp

from tools.sql import QueryResult
from tools.sql_guard import DIALECT

DataPolicy = Literal["schema", "aggregates", "rows"]
POLICIES: tuple[DataPolicy, ...] = ("schema", "aggregates", "rows")

#: Output column names that identify a trader; their values are masked under `aggregates`.
TRADER_COLUMNS = frozenset({
    "name", "trader", "trader_name", "trader_id", "tin", "trader_tin", "declarant_id",
    "declarant", "seller_id", "seller", "company", "company_name", "importer", "exporter",
})


def is_remote(base_url: str | None) -> bool:
    """True when `base_url` points off this machine (not unset, not localhost/loopback)."""
    if not base_url:
        return False
    host = (urlparse(base_url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def effective_policy(base_url: str | None, policy: str) -> DataPolicy:
    """The policy to apply for an endpoint: `policy` when remote, ``rows`` when local."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown data policy {policy!r}: use schema, aggregates or rows.")
    return cast(DataPolicy, policy) if is_remote(base_url) else "rows"


def _branches(node: exp.Expr) -> list[exp.Select]:
    if isinstance(node, exp.Subquery):
        return _branches(node.this)
    if isinstance(node, exp.SetOperation):
        return _branches(node.left) + _branches(node.right)
    return [node] if isinstance(node, exp.Select) else []


def _has_aggregate(select: exp.Select) -> bool:
    """An aggregate function of this SELECT itself (not windowed, not in a subquery)."""
    for projection in select.expressions:
        for agg in projection.find_all(exp.AggFunc):
            if agg.find_ancestor(exp.Window, exp.Select) is select:
                return True
    return False


def _select_aggregates(select: exp.Select, ctes: dict[str, exp.Expr], depth: int = 0) -> bool:
    if select.args.get("group") or _has_aggregate(select):
        return True
    source = select.args.get("from_") or select.args.get("from")
    if depth > 8 or select.args.get("joins") or not isinstance(source, exp.From):
        return False
    inner = source.this
    if isinstance(inner, exp.Table) and inner.name.lower() in ctes and not inner.db:
        inner = ctes[inner.name.lower()]
    branches = _branches(inner)
    return bool(branches) and all(_select_aggregates(b, ctes, depth + 1) for b in branches)


def is_aggregate_query(sql: str) -> bool:
    """True when every row the query returns is an aggregate (GROUP BY / aggregate functions).

    Window functions do not count: they return one row per input row.
    """
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return False
    ctes = {cte.alias_or_name.lower(): cte.this for cte in tree.find_all(exp.CTE)}
    branches = _branches(tree)
    return bool(branches) and all(_select_aggregates(b, ctes) for b in branches)


def _value_type(values: list[Any]) -> str:
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int | float):
            return "number"
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", value):
            return "date"
        return "text"
    return "unknown"


class Masker:
    """Stable pseudonyms for trader identities (TRADER-001...), kept on this machine.

    Use one per conversation so the model can refer to the same trader across turns; call
    unmask() on the model's answer to put the real names back locally.
    """

    def __init__(self, sensitive: Collection[str] = ()) -> None:
        """`sensitive`: known names/TINs/IDs masked wherever they appear as a whole value."""
        self._lock = threading.Lock()
        self._forward: dict[str, str] = {}
        self._backward: dict[str, str] = {}
        self._sensitive = {s.strip().lower() for s in sensitive if s and s.strip()}

    def pseudonym(self, value: str) -> str:
        """The pseudonym of one real value (the same value always gets the same pseudonym)."""
        key = value.strip().lower()
        with self._lock:
            if key not in self._forward:
                alias = f"TRADER-{len(self._forward) + 1:03d}"
                self._forward[key] = alias
                self._backward[alias] = value
            return self._forward[key]

    def is_sensitive(self, value: object) -> bool:
        """True when `value` is one of the known trader names/TINs/IDs."""
        return isinstance(value, str) and value.strip().lower() in self._sensitive

    def unmask(self, text: str) -> str:
        """`text` with every pseudonym replaced by the real value (for local display only)."""
        with self._lock:
            mapping = dict(self._backward)
        return re.sub(r"TRADER-\d{3,}", lambda m: mapping.get(m.group(0), m.group(0)), text)


@dataclass
class EgressRecord:
    """One payload handed to a remote model: when, under which policy, what exactly."""

    at: str
    policy: DataPolicy
    sql: str
    payload: dict[str, Any]
    rows_sent: int
    rows_withheld: int
    masked_columns: list[str]


@dataclass
class EgressLog:
    """What was sent to a remote model during one conversation (for the app to show)."""

    records: list[EgressRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: EgressRecord) -> None:
        """Append one record."""
        with self._lock:
            self.records.append(record)

    def summary(self) -> str:
        """One line: how many results went out, with how many rows."""
        with self._lock:
            sent = sum(r.rows_sent for r in self.records)
            held = sum(r.rows_withheld for r in self.records)
            count = len(self.records)
        return f"{count} results sent to the remote model: {sent} rows sent, {held} withheld."


def redact_for_llm(
    result: QueryResult,
    policy: str,
    *,
    masker: Masker | None = None,
    log: EgressLog | None = None,
) -> dict[str, Any]:
    """The part of `result` that `policy` lets a remote model see, as a JSON-able dict.

    Keys: policy, columns ([{"name", "type"}]), rows (absent when withheld), row_count,
    truncated, withheld (why rows were held back, or None), masked_columns.
    """
    if policy not in POLICIES:
        raise ValueError(f"Unknown data policy {policy!r}: use schema, aggregates or rows.")
    columns = [
        {"name": name, "type": _value_type([row[i] for row in result.rows])}
        for i, name in enumerate(result.columns)
    ]
    payload: dict[str, Any] = {
        "policy": policy, "columns": columns, "row_count": len(result.rows),
        "truncated": result.truncated, "withheld": None, "masked_columns": [],
    }
    rows_sent = 0
    if policy == "rows":
        payload["rows"] = result.rows
        rows_sent = len(result.rows)
    elif policy == "schema":
        payload["withheld"] = "The data policy 'schema' sends column names and types only."
    elif not is_aggregate_query(result.sql):
        payload["withheld"] = (
            "The data policy 'aggregates' sends only aggregated results (GROUP BY or aggregate "
            "functions); this query returns individual rows. Ask for totals or counts instead."
        )
    else:
        masker = masker or Masker()
        masked = {i for i, name in enumerate(result.columns) if name.lower() in TRADER_COLUMNS}
        rows = []
        for row in result.rows:
            new = []
            for i, value in enumerate(row):
                if value is not None and (i in masked or masker.is_sensitive(value)):
                    masked.add(i)
                    new.append(masker.pseudonym(str(value)))
                else:
                    new.append(value)
            rows.append(new)
        payload["rows"] = rows
        payload["masked_columns"] = [result.columns[i] for i in sorted(masked)]
        rows_sent = len(rows)
    if log is not None:
        log.add(EgressRecord(
            at=datetime.now(UTC).isoformat(timespec="seconds"), policy=cast(DataPolicy, policy),
            sql=result.sql, payload=payload, rows_sent=rows_sent,
            rows_withheld=len(result.rows) - rows_sent,
            masked_columns=list(payload["masked_columns"]),
        ))
    return payload
