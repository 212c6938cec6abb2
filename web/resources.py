"""Heavy objects built once per server process (st.cache_resource), keyed by their paths."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from tamga.scope import Scope
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
_FIRST_ANSWER = threading.Event()  # set once any session has drawn an answer
REGULATIONS_WARM_AFTER_S = 15.0  # ... or after this long, whichever comes first


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
            # what the first page shows (data panel, examples, the data at a glance drawn from
            # a data frame) before the models
            assistant.context_for(Scope.everything()).overview  # noqa: B018
            import pandas  # noqa: F401

            assistant.warm()
            logging.getLogger("tamga.app").info(
                "assistant warm in %.2f s", time.perf_counter() - started)
        except Exception:  # the first question reports any real problem to the user
            logging.getLogger("tamga.app").warning("warm-up failed", exc_info=True)
            return
        finally:
            ready.set()
        # The regulations index takes a second or more to load, holding the interpreter most of
        # that time: wait until the first answer is drawn (or the page is left idle), so that
        # it does not slow the first page and the first data answer. A rule question asked
        # before then opens the index itself.
        _FIRST_ANSWER.wait(REGULATIONS_WARM_AFTER_S)
        try:  # the regulations searcher: its index, keyword table and a first query
            assistant.regulations.search("warm up", k=1)
        except Exception:  # no index yet: rule questions will say so
            logging.getLogger("tamga.app").info("regulations index not warmed", exc_info=True)

    threading.Thread(target=warm, name="tamga-warm-up", daemon=True).start()


def answer_drawn() -> None:
    """Tell the warm-up that an answer has been drawn: it may now load the regulations."""
    _FIRST_ANSWER.set()


def wait_for_warm_up(timeout: float = 600) -> None:
    """Wait until the assistant has warmed up (when that is still running), so that a question
    does not compete with it for the CPU and the encoder. The regulations index may still be
    warming: a data question does not wait for it."""
    settings = get_settings()
    ready = _ASSISTANT_READY.get(f"{settings.database}|{settings.index}")
    if ready is not None:
        ready.wait(timeout)


def dataset_info() -> dict[str, Any]:
    """Source, row counts, date range and reporting currency of the trade database, as the
    signed-in user sees it (kept with the user's data context, on disk between restarts)."""
    return get_context().overview


def largest_importer() -> str | None:
    """The name of the trader with the largest customs value (for the example questions)."""
    name = get_context().overview.get("largest_importer")
    return str(name) if name else None


def reporting_currency() -> str:
    """The currency of money columns (dataset_info.reporting_currency), USD by default."""
    try:
        return str(dataset_info().get("reporting_currency") or "USD")
    except Exception:
        return "USD"
