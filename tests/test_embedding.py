"""The packaged sentence encoder: one thread for a question, every core for a batch."""

from __future__ import annotations

import numpy as np
import torch

from retrieval.embedding import BATCH_FOR_ALL_CORES, EMBEDDING_DIM, _cores, embed
from retrieval.search import embed_query


def test_batch_and_single_embeddings_agree_and_threads_are_restored():
    texts = [f"Customs may require security for the payment of duties, case {n}."
             for n in range(BATCH_FOR_ALL_CORES + 4)]
    embed(["load the encoder"])  # loading it sets the process default (one thread)
    before = torch.get_num_threads()
    batch = embed(texts)  # large enough to run on every core
    assert torch.get_num_threads() == before
    assert batch.shape == (len(texts), EMBEDDING_DIM) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for n in (0, len(texts) - 1):
        alone = embed([texts[n]])[0]  # one thread
        assert float(alone @ batch[n]) > 0.9999
    assert torch.get_num_threads() == before
    query = embed_query(texts[0])
    assert float(query @ batch[0]) > 0.9999
    assert 1 <= _cores() <= 4
