"""The `Runner` protocol: what every part of Tamga needs to run SQL on the trade data.

Three implementations compose, none subclasses another:

    base = SqlRunner(path)                       # guard + read-only DuckDB connection
    officer = ScopedRunner(base, scope)          # + rewrite to the officer's offices
    recorder = RecordingRunner(officer)          # + keep every statement that ran

Code that runs SQL takes a `Runner`, so it cannot tell (and need not know) whether it is
scoped or recorded. A failure of the guard or of DuckDB raises a TamgaError; `try_run` turns it
into `{"error": message}` for callers that hand results to a language model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from tamga.errors import TamgaError
from tamga.formatting import DEFAULT_CURRENCY
from tamga.scope import Scope
from tamga.sqltext import bind_known
from tools.sql import Params, QueryResult

__all__ = ["RecordingRunner", "Runner", "reporting_currency", "try_run"]


@runtime_checkable
class Runner(Protocol):
    """Runs guarded, read-only queries on one trade database, as one scope sees it."""

    @property
    def db_path(self) -> Path:
        """The trade database the queries read."""
        ...

    @property
    def row_cap(self) -> int:
        """Most rows one query returns (more are cut off and flagged `truncated`)."""
        ...

    @property
    def scope(self) -> Scope:
        """What the queries may see."""
        ...

    def run(self, sql: str, params: Params = None) -> QueryResult:
        """Check and run one read-only query; raises SqlRefused, SqlFailed or SqlTimeout."""
        ...

    def check(self, sql: str) -> str:
        """The statement that would run for `sql` (guarded, scoped); raises when refused."""
        ...

    def tables(self) -> list[str]:
        """The trade tables present in the database."""
        ...

    def describe_schema(self) -> str:
        """The queryable tables with their columns, one line per table."""
        ...


def try_run(runner: Runner, sql: str, params: Params = None) -> QueryResult | dict[str, str]:
    """Like runner.run(), but a refusal or failure comes back as {"error": message}."""
    try:
        return runner.run(sql, params)
    except TamgaError as exc:
        return {"error": str(exc)}


def reporting_currency(runner: Runner) -> str:
    """The currency of the money columns (`dataset_info.reporting_currency`; USD if unset)."""
    found = try_run(runner, "SELECT value FROM dataset_info WHERE key = 'reporting_currency'")
    if isinstance(found, dict) or not found.rows or not found.rows[0][0]:
        return DEFAULT_CURRENCY
    return str(found.rows[0][0])


class RecordingRunner:
    """A runner that passes every query to `base` (guarded and scoped as `base` is) and keeps
    the statements that ran, parameters written in (runnable with `tamga sql`)."""

    def __init__(self, base: Runner) -> None:
        self.base = base
        self.statements: list[str] = []
        self.elapsed_ms = 0.0

    @property
    def db_path(self) -> Path:
        """The wrapped runner's database."""
        return self.base.db_path

    @property
    def row_cap(self) -> int:
        """The wrapped runner's row cap."""
        return self.base.row_cap

    @property
    def scope(self) -> Scope:
        """The wrapped runner's scope."""
        return self.base.scope

    def tables(self) -> list[str]:
        """The trade tables of the wrapped runner."""
        return self.base.tables()

    def check(self, sql: str) -> str:
        """What the wrapped runner would run."""
        return self.base.check(sql)

    def run(self, sql: str, params: Params = None) -> QueryResult:
        """Run through the wrapped runner and record the statement."""
        result = self.base.run(sql, params)
        try:
            text = bind_known(result.sql, params)
        except (TypeError, ValueError):
            text = result.sql
        self.statements.append(text)
        self.elapsed_ms += result.elapsed_ms
        return result

    def describe_schema(self) -> str:
        """The schema description of the wrapped runner."""
        return self.base.describe_schema()

    def __repr__(self) -> str:
        return f"RecordingRunner({self.base!r})"

