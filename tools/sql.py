"""The guarded SQL runner: the only way any part of Tamga runs SQL on the trade data.

Two locks on the door: `check_sql` (tools/sql_guard.py) refuses anything but one read-only query
over the trade tables, and the DuckDB connection itself is read-only, has file and network
access switched off and its configuration locked, so even a statement that slipped past the
guard could not read or write a file. Each query runs on its own cursor with a time limit
(the query is interrupted) and a row cap.

    runner = SqlRunner(Path("trade.duckdb"))
    result = runner.run("SELECT count(*) AS n FROM declarations")
    result.to_json()  # {"columns": ["n"], "rows": [[200000]], "truncated": false, ...}
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tamga.errors import SqlFailed, SqlRefused, SqlTimeout
from tamga.scope import Scope
from tools.sql_guard import TRADE_TABLES, check_sql
from tradedata import db

if TYPE_CHECKING:
    import pandas as pd

    from tamga.settings import Settings

__all__ = ["QueryResult", "SqlRunner", "check_sql"]

Params = list[Any] | dict[str, Any] | None


@dataclass
class QueryResult:
    """What a query returned: column names, JSON-friendly rows, whether rows were cut off."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    sql: str

    def to_json(self) -> dict[str, Any]:
        """The `tamga sql --json` object: columns, rows, truncated, elapsed_ms."""
        return {
            "columns": self.columns,
            "rows": self.rows,
            "truncated": self.truncated,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }

    def to_dataframe(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (pandas is imported only when this is called)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


def to_jsonable(value: Any) -> Any:
    """One DuckDB value as plain JSON data: dates as ISO text, Decimal as float, NaN as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return str(value)


def _engine_message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


class SqlRunner:
    """Runs guarded read-only queries on one trade database; safe to share between threads."""

    def __init__(self, db_path: Path, timeout_s: float = 10.0, row_cap: int = 5000) -> None:
        """Open `db_path` read-only; raises DatabaseMissing when it does not exist."""
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if row_cap < 1:
            raise ValueError("row_cap must be at least 1")
        self.db_path = Path(db_path).expanduser()
        self.timeout_s = float(timeout_s)
        self.row_cap = int(row_cap)
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: tuple[str, ...] = ()
        self._connection()

    @classmethod
    def from_settings(cls, settings: Settings, db_path: Path | None = None) -> SqlRunner:
        """A runner with the settings' time limit and row cap, on `db_path` or their database."""
        return cls(
            db_path or settings.database,
            timeout_s=settings.sql_timeout_s,
            row_cap=settings.sql_row_cap,
        )

    @property
    def scope(self) -> Scope:
        """A plain runner sees every office (wrap it in a ScopedRunner to restrict it)."""
        return Scope.everything()

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = self._open()
            return self._con

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            con = db.connect(self.db_path, read_only=True)
        except duckdb.Error as exc:
            raise SqlFailed(
                f"Cannot open the trade database at {self.db_path}: {_engine_message(exc)} "
                "(is another program writing to it, or is it not a DuckDB file?)"
            ) from exc
        try:
            # Python replacement scans (a query naming a DataFrame variable) are off by config
            # where tradedata.db sets it; table names are allow-listed by the guard anyway.
            for statement in ("SET python_enable_replacements = false",
                              "SET lock_configuration = true"):
                # fails when another runner in this process already locked the shared instance
                with contextlib.suppress(duckdb.InvalidInputException):
                    con.execute(statement)
            settings = con.execute(
                "SELECT current_setting('lock_configuration'), "
                "current_setting('enable_external_access'), "
                "current_setting('access_mode')"
            ).fetchone()
            if settings is None or tuple(settings) != (True, False, "read_only"):
                raise SqlFailed(
                    f"The connection to {self.db_path} is not locked down (settings {settings}); "
                    "refusing to run queries on it."
                )
            present = {
                row[0].lower()
                for row in con.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'main' AND table_catalog = current_database()"
                ).fetchall()
            }
        except BaseException:
            con.close()
            raise
        self._tables = tuple(t for t in TRADE_TABLES if t in present)
        return con

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = self._open()
            return self._con.cursor()

    def close(self) -> None:
        """Close the connection (the next query opens it again)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> SqlRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ------------------------------------------------------------------------------

    def tables(self) -> list[str]:
        """The trade tables present in the database (the only ones a query may read)."""
        self._connection()
        return list(self._tables)

    def check(self, sql: str) -> str:
        """The normalised statement if the guard accepts `sql` for this database, else raise."""
        return check_sql(sql, self.tables())

    def run(self, sql: str, params: Params = None) -> QueryResult:
        """Check and run one read-only query; raises SqlRefused, SqlFailed or SqlTimeout."""
        statement = self.check(sql)
        cursor = self._cursor()
        state = threading.Lock()
        finished = False
        timed_out = False

        def stop() -> None:
            nonlocal timed_out
            with state:
                if finished:
                    return
                timed_out = True
                with contextlib.suppress(duckdb.Error):
                    cursor.interrupt()

        timer = threading.Timer(self.timeout_s, stop)
        timer.daemon = True
        start = time.perf_counter()
        timer.start()
        try:
            cursor.execute(statement, params)
            columns = [str(d[0]) for d in cursor.description or []]
            raw = cursor.fetchmany(self.row_cap + 1)
        except duckdb.Error as exc:
            if timed_out or isinstance(exc, duckdb.InterruptException):
                raise SqlTimeout(
                    f"Stopped: the query ran past the {self.timeout_s:g} s limit "
                    "(setting TAMGA_SQL_TIMEOUT_S). Narrow it: filter by trader or period, "
                    "aggregate, or add LIMIT."
                ) from exc
            if isinstance(exc, duckdb.PermissionException):
                raise SqlRefused(f"Refused by the database: {_engine_message(exc)}") from exc
            raise SqlFailed(_engine_message(exc)) from exc
        except (TypeError, ValueError) as exc:  # parameters DuckDB cannot bind
            raise SqlFailed(f"Bad query parameters: {exc}") from exc
        finally:
            with state:
                finished = True
            timer.cancel()
            cursor.close()
        elapsed_ms = (time.perf_counter() - start) * 1000
        truncated = len(raw) > self.row_cap
        rows = [[to_jsonable(v) for v in row] for row in raw[: self.row_cap]]
        return QueryResult(columns, rows, truncated, elapsed_ms, statement)

    def describe_schema(self) -> str:
        """The queryable tables with row counts, columns, types and keys, one line per table."""
        cursor = self._cursor()
        try:
            columns = cursor.execute(
                "SELECT table_name, column_name, data_type, is_nullable "
                "FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_catalog = current_database() "
                "ORDER BY table_name, ordinal_position"
            ).fetchall()
            keys = cursor.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY' AND database_name = current_database()"
            ).fetchall()
            sizes = dict(cursor.execute(
                "SELECT table_name, estimated_size FROM duckdb_tables() "
                "WHERE database_name = current_database() AND schema_name = 'main'"
            ).fetchall())
        finally:
            cursor.close()
        primary = {(t.lower(), c.lower()) for t, cols in keys for c in cols}
        by_table: dict[str, list[str]] = {}
        for table, column, dtype, nullable in columns:
            flags = " PK" if (table.lower(), column.lower()) in primary else ""
            if not flags and nullable == "NO":
                flags = " NOT NULL"
            by_table.setdefault(table.lower(), []).append(f"{column} {dtype}{flags}")
        lines = []
        for table in self.tables():
            rows = sizes.get(table)
            count = f" ~{rows:,} rows" if isinstance(rows, int) else ""
            lines.append(f"{table}({', '.join(by_table.get(table, []))}){count}")
        return "\n".join(lines)
