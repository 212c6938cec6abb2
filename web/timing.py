"""Server-side timing of each Streamlit script run, to tell the app's time from the browser's.

Set TAMGA_WEB_TIMINGS to a file path and every script run appends one JSON line to it: when it
started and ended (epoch seconds), the page, how it ended (done, rerun, stop, error) and the
milliseconds spent in each timed section. benchmarks/bench_webapp.py reads it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "TAMGA_WEB_TIMINGS"
_local = threading.local()
_write_lock = threading.Lock()
log = logging.getLogger("tamga.web.timing")


@contextmanager
def timed_run() -> Iterator[dict[str, str]]:
    """Time one script run (wrap the whole script in it); set the yielded dict's "page"."""
    _local.sections = {}
    started_at, started = time.time(), time.perf_counter()
    outcome = "done"
    info = {"page": ""}
    try:
        yield info
    except BaseException as exc:  # st.rerun() and st.stop() end a run with an exception
        name = type(exc).__name__
        outcome = "rerun" if "Rerun" in name else "stop" if "Stop" in name else "error"
        raise
    finally:
        total_ms = (time.perf_counter() - started) * 1000
        sections: dict[str, float] = getattr(_local, "sections", {})
        _local.sections = {}
        page = info["page"]
        log.debug("script run %s (%s) %.0f ms %s", page, outcome, total_ms, sections)
        _write(
            {
                "start": started_at,
                "end": time.time(),
                "page": page,
                "outcome": outcome,
                "total_ms": round(total_ms, 1),
                **{k: round(v, 1) for k, v in sections.items()},
            }
        )


@contextmanager
def section(name: str) -> Iterator[None]:
    """Add the time spent in this block to the current run's `name_ms` figure."""
    started = time.perf_counter()
    try:
        yield
    finally:
        sections = getattr(_local, "sections", None)
        if sections is not None:
            key = f"{name}_ms"
            sections[key] = sections.get(key, 0.0) + (time.perf_counter() - started) * 1000


def _write(record: dict[str, object]) -> None:
    target = os.environ.get(ENV)
    if not target:
        return
    line = json.dumps(record) + "\n"
    with _write_lock, Path(target).open("a", encoding="utf-8") as fh:
        fh.write(line)


def read_runs(path: Path) -> list[dict[str, float | str]]:
    """The script runs recorded in `path` (empty when the file does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
