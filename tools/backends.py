"""Execution backends: where a guarded, scoped statement finally runs.

The SQL runner (tools/sql.py) owns the guard; scoping (tools/scoping.py) wraps the runner. Both
work on DuckDB-dialect text, so whatever a backend receives has already been checked and
restricted. A backend only translates the statement to its engine's dialect (refusing what it
cannot run with the same result), runs it with a time limit and a row cap, and describes the
tables it serves:

    DuckDBBackend(path)                          # the default: a read-only, locked DuckDB file
    SparkBackend(remote, token, parquet_dir)     # Spark Connect over `tamga export parquet`

`open_backend(settings, database)` picks one from the settings (TAMGA_SPARK_REMOTE).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import duckdb

from tamga.errors import SqlFailed, SqlRefused, SqlTimeout
from tools.sql_guard import TRADE_TABLES
from tradedata import db

if TYPE_CHECKING:
    from tamga.settings import Settings

__all__ = ["Backend", "DuckDBBackend", "Params", "open_backend", "timeout_message"]

Params = list[Any] | dict[str, Any] | None


@runtime_checkable
class Backend(Protocol):
    """One engine holding the trade tables, reached read-only."""

    @property
    def name(self) -> str:
        """Short engine name shown to users ('duckdb', 'spark')."""
        ...

    @property
    def location(self) -> str:
        """The data the engine reads: the DuckDB file, or the exported Parquet folder."""
        ...

    def tables(self) -> tuple[str, ...]:
        """The trade tables this engine serves (the only ones a query may read)."""
        ...

    def execute(self, statement: str, params: Params, row_cap: int,
                timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one guarded DuckDB-dialect statement; return its column names and at most
        `row_cap + 1` rows. Raises SqlRefused, SqlFailed or SqlTimeout."""
        ...

    def describe_schema(self) -> str:
        """The served tables with their columns, one line per table."""
        ...

    def close(self) -> None:
        """Release the connection (the next query opens it again)."""
        ...


def timeout_message(timeout_s: float) -> str:
    """What an officer reads when a query ran out of time."""
    return (
        f"Stopped: the query ran past the {timeout_s:g} s limit (setting TAMGA_SQL_TIMEOUT_S). "
        "Narrow it: filter by trader or period, aggregate, or add LIMIT."
    )


def engine_message(exc: BaseException) -> str:
    """An engine exception as one line of text."""
    return str(exc).strip() or type(exc).__name__


class DuckDBBackend:
    """A DuckDB trade file opened read-only, with file and network access off and its
    configuration locked; each query runs on its own cursor. Safe to share between threads."""

    name = "duckdb"

    def __init__(self, path: Path) -> None:
        """Open `path` read-only; raises DatabaseMissing when it does not exist."""
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: tuple[str, ...] = ()
        self._connection()

    @property
    def location(self) -> str:
        """The DuckDB file."""
        return str(self.path)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = self._open()
            return self._con

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            con = db.connect(self.path, read_only=True)
        except duckdb.Error as exc:
            raise SqlFailed(
                f"Cannot open the trade database at {self.path}: {engine_message(exc)} "
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
                    f"The connection to {self.path} is not locked down (settings {settings}); "
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

    def tables(self) -> tuple[str, ...]:
        """The trade tables present in the file."""
        self._connection()
        return self._tables

    def execute(self, statement: str, params: Params, row_cap: int,
                timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run on a fresh cursor; the query is interrupted after `timeout_s`."""
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

        timer = threading.Timer(timeout_s, stop)
        timer.daemon = True
        timer.start()
        try:
            cursor.execute(statement, params)
            columns = [str(d[0]) for d in cursor.description or []]
            raw = cursor.fetchmany(row_cap + 1)
        except duckdb.Error as exc:
            if timed_out or isinstance(exc, duckdb.InterruptException):
                raise SqlTimeout(timeout_message(timeout_s)) from exc
            if isinstance(exc, duckdb.PermissionException):
                raise SqlRefused(f"Refused by the database: {engine_message(exc)}") from exc
            raise SqlFailed(engine_message(exc)) from exc
        except (TypeError, ValueError) as exc:  # parameters DuckDB cannot bind
            raise SqlFailed(f"Bad query parameters: {exc}") from exc
        finally:
            with state:
                finished = True
            timer.cancel()
            cursor.close()
        return columns, raw

    def describe_schema(self) -> str:
        """The tables with row counts, columns, types and keys, one line per table."""
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

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __repr__(self) -> str:
        return f"DuckDBBackend({str(self.path)!r})"


def open_backend(settings: Settings, database: Path) -> Backend:
    """The backend the settings ask for: Spark Connect when TAMGA_SPARK_REMOTE is set (over
    the Parquet export in TAMGA_SPARK_DATA), else the DuckDB file `database`."""
    if settings.spark_remote:
        from tools.spark import SparkBackend

        return SparkBackend(settings.spark_remote, settings.spark_token,
                            settings.resolved_spark_data())
    return DuckDBBackend(database)
