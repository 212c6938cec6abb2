"""Heavy objects built once per server process (st.cache_resource), keyed by their paths."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.settings import get_settings

if TYPE_CHECKING:
    from assistant.core import Assistant
    from tools.sql import SqlRunner


@st.cache_resource(show_spinner=False)
def _runner(db_path: str) -> SqlRunner:
    from tools.sql import SqlRunner

    settings = get_settings()
    return SqlRunner(Path(db_path), timeout_s=settings.sql_timeout_s, row_cap=settings.sql_row_cap)


def get_runner() -> SqlRunner:
    """The guarded SQL runner on the configured trade database, scoped to the signed-in user."""
    from assistant.web.login import current_scope
    from tools.scoping import ScopedRunner

    base = _runner(str(get_settings().database))
    scope = current_scope()
    return base if scope.unrestricted else ScopedRunner(base, scope)


@st.cache_resource(show_spinner=False)
def _analysis_runner(db_path: str) -> SqlRunner:
    from tools.indicators import analysis_runner

    return analysis_runner(Path(db_path))


def get_analysis_runner() -> SqlRunner:
    """A guarded runner with a long time limit and large row cap, for risk indicators
    (scoped to the signed-in user like get_runner)."""
    from assistant.web.login import current_scope
    from tools.scoping import ScopedRunner

    base = _analysis_runner(str(get_settings().database))
    scope = current_scope()
    return base if scope.unrestricted else ScopedRunner(base, scope)


@st.cache_resource(show_spinner="Loading the assistant…")
def _assistant(db_path: str, index_dir: str) -> Assistant:
    from assistant.core import Assistant

    return Assistant(db_path=Path(db_path), index_dir=Path(index_dir))


_WARMING = threading.Lock()
_WARMED: set[str] = set()


def warm_up_in_background() -> None:
    """Build the assistant and load its models in a background thread, once per process, so
    that the first page shows at once and the first question finds everything ready."""
    settings = get_settings()
    key = f"{settings.database}|{settings.index}"
    with _WARMING:
        if key in _WARMED or not settings.database.exists():
            return
        _WARMED.add(key)

    def warm() -> None:
        try:
            _assistant(str(settings.database), str(settings.index)).warm()
        except Exception:  # the first question reports any real problem to the user
            logging.getLogger("tamga.app").warning("warm-up failed", exc_info=True)

    threading.Thread(target=warm, name="tamga-warm-up", daemon=True).start()


def get_assistant() -> Assistant:
    """The assistant (engines, intent library, embeddings) shared by all sessions."""
    settings = get_settings()
    return _assistant(str(settings.database), str(settings.index))


@st.cache_data(show_spinner=False, ttl=300)
def _dataset_info(db_path: str, scope_key: str) -> dict[str, Any]:
    runner = get_runner()
    info = {str(k): v for k, v in runner.run("SELECT key, value FROM dataset_info").rows}
    counts = runner.run(
        "SELECT (SELECT count(*) FROM traders), (SELECT count(*) FROM declarations), "
        "(SELECT count(*) FROM declaration_items), "
        "(SELECT min(declaration_date) FROM declarations), "
        "(SELECT max(declaration_date) FROM declarations)"
    ).rows[0]
    info.update(
        traders=counts[0],
        declarations=counts[1],
        items=counts[2],
        date_from=counts[3],
        date_to=counts[4],
    )
    return info


def dataset_info() -> dict[str, Any]:
    """Source, row counts, date range and reporting currency of the trade database."""
    from assistant.web.login import current_scope

    return _dataset_info(str(get_settings().database), current_scope().key)


def reporting_currency() -> str:
    """The currency of money columns (dataset_info.reporting_currency), USD by default."""
    try:
        return str(dataset_info().get("reporting_currency") or "USD")
    except Exception:
        return "USD"
