"""Data contexts: one trade database as one scope sees it, built once and passed explicitly.

    contexts = DataContexts(settings.database, settings, regulations=RegulationsIndex(...))
    officer = contexts.get(Scope.offices_of("ana", ["Balboa Seaport"]))
    officer.runner.run("SELECT count(*) FROM declarations")    # only Balboa Seaport's rows
    officer.extractor.extract("What did Orion Textiles import?") # only traders ana can see

Everything an engine derives from the trade data (the trader index, the slot extractor with
its offices and dates, the LLM data card, example values) lives on the context of one
(database, scope) pair, so nothing computed for one officer can reach another. The contexts
of a database are owned by whoever owns the `DataContexts` (an Assistant), not by a module.
The regulations index is not scoped (rules are public) and is shared by every context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from assistant.lookup_cache import LookupCache, code_version
from assistant.prompts import DataCard, read_data_card
from assistant.slots import DataFacts, SlotExtractor, load_facts
from tamga.errors import TamgaError
from tamga.scope import Scope
from tools.backends import Backend, open_backend
from tools.dashboard import data_overview
from tools.indicators import analysis_runner
from tools.runner import Runner, try_run
from tools.scoping import ScopedRunner
from tools.sql import SqlRunner
from tools.traders import TraderIndex, load_trader_index

T = TypeVar("T")

if TYPE_CHECKING:
    from retrieval.search import RegulationsIndex, Searcher
    from tamga.settings import Settings


class DataContext:
    """One trade database as one scope sees it: its runners and what is derived from them.

    The look-ups are built on first use and kept; every one of them reads the data through
    `runner`, which carries the scope, so they only hold what the scope may see.
    """

    def __init__(self, database: Path, scope: Scope, runner: Runner,
                 analysis: Runner | Callable[[], Runner],
                 regulations: RegulationsIndex | None = None,
                 vocabulary: frozenset[str] = frozenset(),
                 cache: LookupCache | None = None) -> None:
        """`analysis` is the analysis runner, or a function that makes it on first use;
        `cache` keeps the look-ups on disk between processes (None: built in memory only)."""
        if runner.scope.key != scope.key:
            raise ValueError("the runners of a data context must carry its scope")
        self.database = database
        self.scope = scope
        self.runner = runner
        self._analysis = analysis
        self.regulations = regulations
        self.vocabulary = vocabulary
        self.cache = cache
        self._lock = threading.RLock()
        self._derived: dict[str, Any] = {}
        self._extractor: SlotExtractor | None = None
        self._card: DataCard | None = None

    @classmethod
    def open(cls, database: Path, scope: Scope | None = None, *,
             regulations: RegulationsIndex | None = None, timeout_s: float = 10.0,
             row_cap: int = 5000) -> DataContext:
        """A stand-alone context with runners of its own (scripts, tests, benchmarks)."""
        return DataContexts(database, regulations=regulations, timeout_s=timeout_s,
                            row_cap=row_cap).get(scope or Scope.everything())

    @property
    def analysis_runner(self) -> Runner:
        """The runner of the risk and briefing tools: this scope, long time limit, large cap."""
        with self._lock:
            if callable(self._analysis) and not isinstance(self._analysis, Runner):
                made = self._analysis()
                if made.scope.key != self.scope.key:
                    raise ValueError("the runners of a data context must carry its scope")
                self._analysis = made
            return self._analysis

    # -- derived look-ups, built once --------------------------------------------------------------

    def derived(self, name: str, build: Callable[[Runner], T],
                to_json: Callable[[T], Any] | None = None,
                from_json: Callable[[Any], T] | None = None) -> T:
        """The look-up `name`, built by `build(self.runner)` on first use and kept on this
        context (and in its disk cache, when it has one, as `to_json(value)`; default: the
        value itself, which must then be plain JSON data)."""
        with self._lock:
            if name in self._derived:
                return cast(T, self._derived[name])
            part = f"{name}@{code_version(build, to_json, from_json)}"
            stored = self.cache.get(part) if self.cache else None
            if stored is not None:
                value = from_json(stored) if from_json else cast(T, stored)
            else:
                value = build(self.runner)
                if self.cache:
                    self.cache.put(part, to_json(value) if to_json else value)
            self._derived[name] = value
            return value

    @property
    def traders(self) -> TraderIndex:
        """The traders this scope can see, for names, TINs and IDs in questions."""
        return self.derived("traders", load_trader_index, TraderIndex.to_json,
                            TraderIndex.from_json)

    @property
    def facts(self) -> DataFacts:
        """Date range, currency, offices, countries and HS codes, as this scope sees them."""
        return self.derived("facts", load_facts, DataFacts.to_json, DataFacts.from_json)

    @property
    def currency(self) -> str:
        """The reporting currency of the money columns."""
        return self.facts.currency

    @property
    def overview(self) -> dict[str, Any]:
        """What this scope's data holds: source, row counts, date range, reporting currency
        and the largest importer (tools.dashboard.data_overview; the web app's data panel)."""
        return self.derived("overview", data_overview)

    @property
    def extractor(self) -> SlotExtractor:
        """Slot extraction over what this scope can see."""
        with self._lock:
            if self._extractor is None:
                self._extractor = SlotExtractor(self.runner, self.traders, self.facts,
                                                set(self.vocabulary))
            return self._extractor

    @property
    def data_card(self) -> DataCard:
        """The facts every LLM prompt carries (schema, typical values, dates, currency)."""
        with self._lock:
            if self._card is None:
                self._card = read_data_card(self.runner)
            return self._card

    @property
    def coded_values(self) -> dict[str, list[str]]:
        """The values of coded columns this scope's data holds (transport modes, incoterms,
        sectors...), by query-plan dimension: the planner filters only on values that exist."""
        return self.derived("coded_values", load_coded_values)

    def searcher(self) -> Searcher:
        """The regulations searcher (TamgaError when no index is configured or built)."""
        if self.regulations is None:
            raise TamgaError("No regulations index is configured (setting TAMGA_INDEX_DIR).")
        return self.regulations.searcher()

    def warm(self) -> None:
        """Build the look-ups now instead of on the first question."""
        self.extractor  # noqa: B018
        self.coded_values  # noqa: B018
        self.overview  # noqa: B018

    def __repr__(self) -> str:
        return f"DataContext({str(self.database)!r}, {self.scope.describe()})"


CODED_COLUMNS = {
    "transport_mode": ("declarations", "transport_mode"),
    "incoterm": ("declarations", "incoterm"),
    "procedure": ("declarations", "procedure_code"),
    "channel": ("declarations", "control_channel"),
    "currency": ("declarations", "currency"),
    "preference": ("declaration_items", "preference_code"),
    "sector": ("traders", "sector"),
    "region": ("traders", "region"),
    "aeo_status": ("traders", "aeo_status"),
    "audit_outcome": ("audits", "outcome"),
    "audit_type": ("audits", "audit_type"),
}


def load_coded_values(runner: Runner) -> dict[str, list[str]]:
    """Distinct values of the coded columns (at most 200 each) that `runner` can see."""
    out: dict[str, list[str]] = {}
    for dim, (table, column) in CODED_COLUMNS.items():
        found = try_run(runner, f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT "
                                f"NULL ORDER BY 1 LIMIT 200")
        out[dim] = [] if isinstance(found, dict) else [str(r[0]) for r in found.rows]
    return out


class DataContexts:
    """The data contexts of one trade database, one per scope, built on first use.

    Holds the database's two unscoped runners (the assistant's, and the analysis runner with a
    long time limit for risk and briefings); every context wraps them in a ScopedRunner for its
    scope. A context is rebuilt when the database file changes (a new import or demo).
    """

    def __init__(self, database: Path, settings: Settings | None = None, *,
                 regulations: RegulationsIndex | None = None,
                 vocabulary: frozenset[str] = frozenset(),
                 timeout_s: float | None = None, row_cap: int | None = None,
                 cache_dir: Path | None = None) -> None:
        """`cache_dir` keeps each scope's look-ups on disk (default: <home>/cache when
        `settings` are given and the data is the DuckDB file; None keeps them in memory)."""
        self.database = Path(database).expanduser()
        if cache_dir is None and settings is not None and not settings.spark_remote:
            cache_dir = settings.resolved_home() / "cache"
        self.cache_dir = cache_dir
        self.settings = settings
        self.regulations = regulations
        self.vocabulary = vocabulary
        self.timeout_s = timeout_s if timeout_s is not None else (
            settings.sql_timeout_s if settings is not None else 10.0)
        self.row_cap = row_cap if row_cap is not None else (
            settings.sql_row_cap if settings is not None else 5000)
        self._lock = threading.Lock()
        self._runner: SqlRunner | None = None
        self._analysis: SqlRunner | None = None
        self._shared: Backend | None = None
        self._contexts: dict[str, tuple[float, DataContext]] = {}

    def _backend(self) -> Backend | None:
        """The one remote backend both runners share (Spark Connect when the settings ask
        for it); None for DuckDB, where each runner opens its own read-only connection."""
        if self.settings is None or not self.settings.spark_remote:
            return None
        if self._shared is None:
            self._shared = open_backend(self.settings, self.database)
        return self._shared

    @property
    def runner(self) -> SqlRunner:
        """The database's unscoped runner (DatabaseMissing when there is no database)."""
        with self._lock:
            if self._runner is None:
                self._runner = SqlRunner(self.database, timeout_s=self.timeout_s,
                                         row_cap=self.row_cap, backend=self._backend())
            return self._runner

    @property
    def analysis_runner(self) -> SqlRunner:
        """The database's unscoped analysis runner (long time limit, large row cap)."""
        with self._lock:
            if self._analysis is None:
                self._analysis = analysis_runner(self.database, backend=self._backend())
            return self._analysis

    def _version(self) -> float:
        try:
            return self.database.stat().st_mtime
        except OSError:
            return 0.0

    def get(self, scope: Scope) -> DataContext:
        """The context of `scope` (built on first use, rebuilt when the database changed)."""
        version = self._version()
        with self._lock:
            found = self._contexts.get(scope.key)
        if found is not None and found[0] == version:
            return found[1]
        base = self.runner
        runner: Runner = base if scope.unrestricted else ScopedRunner(base, scope)

        def wide() -> Runner:
            analysis = self.analysis_runner
            return analysis if scope.unrestricted else ScopedRunner(analysis, scope)

        cache = LookupCache(self.cache_dir, self.database, scope) if self.cache_dir else None
        context = DataContext(self.database, scope, runner, wide, self.regulations,
                              self.vocabulary, cache)
        with self._lock:
            found = self._contexts.get(scope.key)
            if found is not None and found[0] == version:
                return found[1]
            self._contexts[scope.key] = (version, context)
        return context

    def close(self) -> None:
        """Close the database connections (the next query opens them again)."""
        with self._lock:
            for runner in (self._runner, self._analysis):
                if runner is not None:
                    runner.close()
            if self._shared is not None:
                self._shared.close()
            self._runner = self._analysis = self._shared = None
            self._contexts.clear()
