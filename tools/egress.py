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
import weakref
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
        self._pattern: re.Pattern[str] | None = None

    def pseudonym(self, value: str) -> str:
        """The pseudonym of one real value (the same value always gets the same pseudonym)."""
        key = value.strip().lower()
        with self._lock:
            if key not in self._forward:
                alias = f"TRADER-{len(self._forward) + 1:03d}"
                self._forward[key] = alias
                self._backward[alias] = value
            return self._forward[key]

    def add_sensitive(self, values: Collection[str]) -> None:
        """Learn more trader names/TINs/IDs to mask (e.g. the traders of the database)."""
        fresh = {s.strip().lower() for s in values if s and len(s.strip()) >= 3}
        with self._lock:
            if not fresh <= self._sensitive:
                self._sensitive |= fresh
                self._pattern = None

    def is_sensitive(self, value: object) -> bool:
        """True when `value` is one of the known trader names/TINs/IDs."""
        return isinstance(value, str) and value.strip().lower() in self._sensitive

    def mask_text(self, text: str) -> str:
        """`text` with every known trader name/TIN/ID in it replaced by its pseudonym."""
        if not text:
            return text
        with self._lock:
            if self._pattern is None and self._sensitive:
                words = sorted(self._sensitive, key=len, reverse=True)
                self._pattern = re.compile(
                    r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)",
                    re.IGNORECASE)
            pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(lambda m: self.pseudonym(m.group(0)), text)

    def alias(self, text: str, value: str) -> None:
        """Mask `text` (how a question names the trader `value`, e.g. "Puma") with the
        pseudonym of `value` from now on."""
        key = text.strip().lower()
        if len(key) < 3:
            return
        alias = self.pseudonym(value)
        with self._lock:
            self._forward.setdefault(key, alias)
            if key not in self._sensitive:
                self._sensitive.add(key)
                self._pattern = None

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
    tool: str = "run_sql"

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data (for the Answer, the app and the audit log)."""
        return {"at": self.at, "tool": self.tool, "policy": self.policy, "sql": self.sql,
                "rows_sent": self.rows_sent, "rows_withheld": self.rows_withheld,
                "masked_columns": list(self.masked_columns), "payload": self.payload}


@dataclass
class EgressLog:
    """What was sent to a remote model during one conversation (for the app to show)."""

    records: list[EgressRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: EgressRecord) -> None:
        """Append one record."""
        with self._lock:
            self.records.append(record)

    def mark(self) -> int:
        """A position in the log: records_since(mark) gives what was added after it."""
        with self._lock:
            return len(self.records)

    def records_since(self, mark: int) -> list[EgressRecord]:
        """The records added after `mark`."""
        with self._lock:
            return list(self.records[mark:])

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
    max_rows: int | None = None,
) -> dict[str, Any]:
    """The part of `result` that `policy` lets a remote model see, as a JSON-able dict.

    Keys: policy, columns ([{"name", "type"}]), rows (absent when withheld), row_count,
    truncated, withheld (why rows were held back, or None), masked_columns. At most
    `max_rows` rows are sent (the rest are cut, not counted as withheld).
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
    shown = result.rows if max_rows is None else result.rows[:max_rows]
    if policy != "schema" and len(shown) < len(result.rows):
        payload["note"] = (f"only the first {len(shown)} of {len(result.rows)} rows are sent "
                           "to the model; the officer sees the full table")
    if policy == "rows":
        payload["rows"] = shown
        rows_sent = len(shown)
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
        for row in shown:
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
            rows_withheld=0 if "rows" in payload else len(result.rows),
            masked_columns=list(payload["masked_columns"]),
        ))
    return payload


#: Keys of tool data (find_trader, trader_profile) that identify a trader.
_IDENTITY_KEYS = TRADER_COLUMNS | {"trader_ids"}
#: Keys of tool data that hold row-level records (not aggregates) about one trader.
_DETAIL_KEYS = frozenset({"audits"})


def _mask_data(data: Any, masker: Masker, masked: set[str], key: str = "") -> Any:
    if isinstance(data, dict):
        return {k: _mask_data(v, masker, masked, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_mask_data(v, masker, masked, key) for v in data]
    if isinstance(data, str):
        if key.lower() in _IDENTITY_KEYS or masker.is_sensitive(data):
            masked.add(key)
            return masker.pseudonym(data)
        text = masker.mask_text(data)
        if text != data:
            masked.add(key)
        return text
    return data


def _withhold_details(data: Any) -> tuple[Any, int]:
    """`data` with its lists of row-level records replaced by their count."""
    if not isinstance(data, dict):
        return data, 0
    out: dict[str, Any] = {}
    count = 0
    for key, value in data.items():
        if key in _DETAIL_KEYS and isinstance(value, list) and value:
            out[key] = {"count": len(value), "withheld": "individual records are not sent "
                        "under the data policy 'aggregates'"}
            count += len(value)
        else:
            out[key], n = _withhold_details(value)
            count += n
    return out, count


def _shape(data: Any) -> Any:
    """The keys and value types of `data`, without its values (the `schema` policy)."""
    if isinstance(data, dict):
        return {k: _shape(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_shape(data[0])] if data else []
    return _value_type([data])


def redact_data(
    data: Any,
    policy: str,
    *,
    tool: str,
    masker: Masker | None = None,
    log: EgressLog | None = None,
    public: bool = False,
) -> Any:
    """Tool data other than a query result (a trader profile, trader matches, passages, an
    error, the schema) as `policy` lets a remote model see it; recorded in `log`.

    `public` data (the schema, regulation passages, error messages) goes out under every
    policy, with known trader names/TINs/IDs in it masked unless the policy is ``rows``.
    Otherwise ``schema`` sends keys and value types only, and ``aggregates`` masks trader
    identities and withholds row-level records (a profile's individual audits).
    """
    if policy not in POLICIES:
        raise ValueError(f"Unknown data policy {policy!r}: use schema, aggregates or rows.")
    masker = masker or Masker()
    masked: set[str] = set()
    withheld = 0
    if policy == "rows":
        out = data
    elif public:
        out = masker.mask_text(data) if isinstance(data, str) else _mask_data(data, masker,
                                                                               masked)
    elif policy == "schema":
        out = {"policy": policy, "shape": _shape(data),
               "withheld": "The data policy 'schema' sends field names and types only."}
        withheld = 1
    else:
        out, withheld = _withhold_details(data)
        out = _mask_data(out, masker, masked)
    if log is not None:
        log.add(EgressRecord(
            at=datetime.now(UTC).isoformat(timespec="seconds"), policy=cast(DataPolicy, policy),
            sql="", payload=out if isinstance(out, dict) else {"text": out},
            rows_sent=0, rows_withheld=withheld, masked_columns=sorted(k for k in masked if k),
            tool=tool,
        ))
    return out


def _host(base_url: str | None) -> str:
    return (urlparse(base_url).hostname or base_url or "") if base_url else ""


@dataclass(frozen=True)
class Destination:
    """Where a model's prompts go: an endpoint (remote or on this machine) or this process."""

    endpoint: str | None = None  # the base URL; None for the in-process local model
    policy: DataPolicy = "aggregates"  # the setting; applies only when the endpoint is remote

    @classmethod
    def from_settings(cls, settings: Any, *, local_model: bool = False) -> Destination:
        """The destination the settings configure (the local model when `local_model`)."""
        if local_model:
            return cls(None, settings.llm_data_policy)
        return cls(settings.llm_base_url, settings.llm_data_policy)

    @property
    def remote(self) -> bool:
        """True when data handed to the model leaves this machine."""
        return is_remote(self.endpoint)

    @property
    def effective(self) -> DataPolicy:
        """The policy that applies: the setting for a remote endpoint, ``rows`` otherwise."""
        return effective_policy(self.endpoint, self.policy)

    def describe(self) -> str:
        """Where the data goes, in a few words."""
        if self.endpoint is None:
            return "a model on this machine"
        where = _host(self.endpoint)
        return f"{where} (remote)" if self.remote else f"{where} (this machine)"


def egress_summary(destination: Destination | None, records: list[EgressRecord]
                   ) -> dict[str, Any]:
    """What one answer sent out: destination, policy, counts and every payload (JSON data).

    `destination` None means no model was asked (the offline engine): nothing was sent.
    """
    if destination is None:
        return {"destination": "none", "remote": False, "policy": None, "results_sent": 0,
                "rows_sent": 0, "rows_withheld": 0, "records": []}
    return {
        "destination": destination.describe(), "remote": destination.remote,
        "policy": destination.effective if destination.remote else None,
        "results_sent": len(records),
        "rows_sent": sum(r.rows_sent for r in records),
        "rows_withheld": sum(r.rows_withheld for r in records),
        "records": [r.to_json() for r in records],
    }


@dataclass
class EgressSession:
    """One conversation's masker (pseudonyms stable across turns) and log of payloads sent."""

    masker: Masker = field(default_factory=Masker)
    log: EgressLog = field(default_factory=EgressLog)


_SESSIONS: weakref.WeakKeyDictionary[Any, EgressSession] = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()


def session_for(conversation: Any) -> EgressSession:
    """The EgressSession of a conversation (a fresh one when `conversation` is None)."""
    if conversation is None:
        return EgressSession()
    with _SESSIONS_LOCK:
        try:
            found = _SESSIONS.get(conversation)
            if found is None:
                found = _SESSIONS[conversation] = EgressSession()
            return found
        except TypeError:  # not weak-referenceable: no memory across turns
            return EgressSession()
