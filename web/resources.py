"""Heavy objects built once per server process (st.cache_resource), keyed by their paths."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from tamga.settings import get_settings
from web.login import current_scope

if TYPE_CHECKING:
    from assistant.context import DataContext
    from assistant.core import Assistant
    from tools.runner import Runner


@st.cache_resource(show_spinner="Loading the assistant…")
def _assistant(db_path: str, index_dir: str) -> Assistant:
    from assistant.core import Assistant

    return Assistant(get_settings(), db_path=Path(db_path), index_dir=Path(index_dir))


def get_assistant() -> Assistant:
    """The assistant (engines, intent library, embeddings, data contexts) shared by all
    sessions; each signed-in user gets the data context of their own scope from it."""
    settings = get_settings()
    return _assistant(str(settings.database), str(settings.index))


def get_context() -> DataContext:
    """The data context of the signed-in user: the trade data as their offices see it."""
    return get_assistant().context_for(current_scope())


def get_runner() -> Runner:
    """The guarded SQL runner on the configured trade database, scoped to the signed-in user."""
    return get_context().runner


def get_analysis_runner() -> Runner:
    """A guarded runner with a long time limit and large row cap, for risk indicators
    (scoped to the signed-in user like get_runner)."""
    return get_context().analysis_runner


_WARMING = threading.Lock()
_WARMED: set[str] = set()
# Set once the assistant itself is warm (encoder, intent vectors, data look-ups): a data
# question waits for this only, not for the regulations index, which warms afterwards.
_ASSISTANT_READY: dict[str, threading.Event] = {}


def warm_up_in_background() -> None:
    """Build the assistant and load its models in a background thread, once per process, so
    that the first page shows at once and the first question finds everything ready."""
    settings = get_settings()
    key = f"{settings.database}|{settings.index}"
    with _WARMING:
        if key in _WARMED or not settings.database.exists():
            return
        _WARMED.add(key)

    ready = _ASSISTANT_READY.setdefault(key, threading.Event())

    def warm() -> None:
        started = time.perf_counter()
        try:
            assistant = _assistant(str(settings.database), str(settings.index))
            assistant.warm()
            logging.getLogger("tamga.app").info(
                "assistant warm in %.2f s", time.perf_counter() - started)
        except Exception:  # the first question reports any real problem to the user
            logging.getLogger("tamga.app").warning("warm-up failed", exc_info=True)
            return
        finally:
            ready.set()
        import altair  # noqa: F401  (the first answer with a table draws with these)
        import pandas  # noqa: F401

        try:  # the regulations searcher: its index, keyword table and a first query
            assistant.regulations.search("warm up", k=1)
        except Exception:  # no index yet: rule questions will say so
            logging.getLogger("tamga.app").info("regulations index not warmed", exc_info=True)

    threading.Thread(target=warm, name="tamga-warm-up", daemon=True).start()


def wait_for_warm_up(timeout: float = 600) -> None:
    """Wait until the assistant has warmed up (when that is still running), so that a question
    does not compete with it for the CPU and the encoder. The regulations index may still be
    warming: a data question does not wait for it."""
    settings = get_settings()
    ready = _ASSISTANT_READY.get(f"{settings.database}|{settings.index}")
    if ready is not None:
        ready.wait(timeout)


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
    return _dataset_info(str(get_settings().database), current_scope().key)


@st.cache_data(show_spinner=False, ttl=300)
def _largest_importer(db_path: str, scope_key: str) -> str | None:
    rows = (
        get_runner()
        .run(
            "SELECT t.name FROM declarations d JOIN declaration_items i USING (declaration_id) "
            "JOIN traders t ON t.trader_id = d.trader_id GROUP BY t.name "
            "ORDER BY sum(i.customs_value) DESC LIMIT 1"
        )
        .rows
    )
    return str(rows[0][0]) if rows else None


def largest_importer() -> str | None:
    """The name of the trader with the largest customs value (for the example questions)."""
    return _largest_importer(str(get_settings().database), current_scope().key)


def reporting_currency() -> str:
    """The currency of money columns (dataset_info.reporting_currency), USD by default."""
    try:
        return str(dataset_info().get("reporting_currency") or "USD")
    except Exception:
        return "USD"
