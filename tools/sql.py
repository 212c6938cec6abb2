"""The guarded SQL runner: the only way any part of Tamga runs SQL on the trade data.

Two locks on the door: `check_sql` (tools/sql_guard.py) refuses anything but one read-only query
over the trade tables, and the DuckDB connection itself is read-only, has file and network
access switched off and its configuration locked, so even a statement that slipped past the
guard could not read or write a file (tools/backends.py). Each query runs with a time limit
(the query is interrupted) and a row cap. With TAMGA_SPARK_REMOTE set, the checked statement
goes to the Spark backend instead (tools/spark.py), which translates it or refuses it.

    runner = SqlRunner(Path("trade.duckdb"))
    result = runner.run("SELECT count(*) AS n FROM declarations")
    result.to_json()  # {"columns": ["n"], "rows": [[200000]], "truncated": false, ...}
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tamga.scope import Scope
from tools.backends import Backend, DuckDBBackend, Params, open_backend
from tools.sql_guard import check_sql

if TYPE_CHECKING:
    import pandas as pd

    from tamga.settings import Settings

__all__ = ["Params", "QueryResult", "SqlRunner", "check_sql"]


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


class SqlRunner:
    """Runs guarded read-only queries on one trade database; safe to share between threads.

    The guard runs here, before the backend: DuckDB by default, or any other `Backend`
    (tools/backends.py) passed in, which only ever receives a checked statement."""

    def __init__(self, db_path: Path, timeout_s: float = 10.0, row_cap: int = 5000,
                 backend: Backend | None = None) -> None:
        """Open `db_path` read-only (or use `backend`); raises DatabaseMissing when the
        database does not exist."""
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if row_cap < 1:
            raise ValueError("row_cap must be at least 1")
        self.backend: Backend = backend if backend is not None else DuckDBBackend(db_path)
        self.db_path = Path(db_path).expanduser()
        self.timeout_s = float(timeout_s)
        self.row_cap = int(row_cap)

    @classmethod
    def from_settings(cls, settings: Settings, db_path: Path | None = None,
                      timeout_s: float | None = None, row_cap: int | None = None) -> SqlRunner:
        """A runner on the settings' backend (DuckDB file, or Spark Connect when
        TAMGA_SPARK_REMOTE is set) with their time limit and row cap unless given."""
        database = db_path or settings.database
        return cls(
            database,
            timeout_s=timeout_s if timeout_s is not None else settings.sql_timeout_s,
            row_cap=row_cap if row_cap is not None else settings.sql_row_cap,
            backend=open_backend(settings, database),
        )

    @property
    def scope(self) -> Scope:
        """A plain runner sees every office (wrap it in a ScopedRunner to restrict it)."""
        return Scope.everything()

    @property
    def engine(self) -> str:
        """The backend's name ('duckdb', 'spark')."""
        return self.backend.name

    def close(self) -> None:
        """Close the backend's connection (the next query opens it again)."""
        self.backend.close()

    def __enter__(self) -> SqlRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ------------------------------------------------------------------------------

    def tables(self) -> list[str]:
        """The trade tables the backend serves (the only ones a query may read)."""
        return list(self.backend.tables())

    def check(self, sql: str) -> str:
        """The normalised statement if the guard accepts `sql` for this database, else raise."""
        return check_sql(sql, self.tables())

    def run(self, sql: str, params: Params = None) -> QueryResult:
        """Check and run one read-only query; raises SqlRefused, SqlFailed or SqlTimeout."""
        statement = self.check(sql)
        start = time.perf_counter()
        columns, raw = self.backend.execute(statement, params, self.row_cap, self.timeout_s)
        elapsed_ms = (time.perf_counter() - start) * 1000
        truncated = len(raw) > self.row_cap
        rows = [[to_jsonable(v) for v in row] for row in raw[: self.row_cap]]
        return QueryResult(columns, rows, truncated, elapsed_ms, statement)

    def describe_schema(self) -> str:
        """The queryable tables with their columns, one line per table."""
        return self.backend.describe_schema()

    def __repr__(self) -> str:
        return f"SqlRunner({self.backend!r})"
