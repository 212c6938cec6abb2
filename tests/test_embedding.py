"""The packaged sentence encoder: ONNX and torch give the same vectors; one thread for a
question, every core for a batch; the ONNX file is made from installed files only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedding import (
    BATCH_FOR_ALL_CORES,
    EMBEDDING_DIM,
    OnnxEncoder,
    TorchEncoder,
    _cores,
    embed,
    export_onnx,
    get_encoder,
    onnx_path,
)
from retrieval.search import embed_query

TEXTS = [
    "Customs may require security for the payment of duties.",
    "What did Zenith Paper import in 2024, by HS chapter?",
    "Wie lange muss ein Einführer Unterlagen aufbewahren? Ñandú, São Paulo, Łódź.",
    "transaction value " * 200,  # longer than the model's 256 tokens: truncated alike
    "",
]


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The environment's exported encoder, or one exported here from the packaged model."""
    path = onnx_path()
    if path.exists():
        return path
    return export_onnx(tmp_path_factory.mktemp("onnx") / "encoder.onnx")


def test_onnx_and_torch_give_the_same_vectors(onnx_file: Path) -> None:
    fast = OnnxEncoder(onnx_file).encode(TEXTS, threads=1)
    slow = TorchEncoder().encode(TEXTS, threads=1)
    assert fast.shape == slow.shape == (len(TEXTS), EMBEDDING_DIM)
    assert fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosines = (fast * slow).sum(axis=1)
    assert cosines.min() > 0.9999, cosines


def test_batch_and_single_embeddings_agree() -> None:
    texts = [f"Customs may require security for the payment of duties, case {n}."
             for n in range(BATCH_FOR_ALL_CORES + 4)]
    batch = embed(texts)  # large enough to run on every core
    assert batch.shape == (len(texts), EMBEDDING_DIM) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for n in (0, len(texts) - 1):
        alone = embed([texts[n]])[0]  # one thread
        assert float(alone @ batch[n]) > 0.9999
    query = embed_query(texts[0])
    assert float(query @ batch[0]) > 0.9999
    assert 1 <= _cores() <= 4


def test_torch_threads_are_restored_after_a_batch() -> None:
    import torch

    encoder = TorchEncoder()
    before = torch.get_num_threads()
    encoder.encode(["a batch"] * BATCH_FOR_ALL_CORES, threads=2)
    assert torch.get_num_threads() == before


def test_the_installed_environment_uses_onnx() -> None:
    """`make install` exports the encoder, so questions never wait for torch."""
    if not onnx_path().exists():
        pytest.skip(f"no exported encoder at {onnx_path()} (run `tamga model export-encoder`)")
    assert get_encoder().runtime == "onnx"
    assert get_encoder("torch").runtime == "torch"


def test_a_data_question_from_the_cli_imports_no_torch(demo_db: Path, tmp_path: Path) -> None:
    if not onnx_path().exists():
        pytest.skip(f"no exported encoder at {onnx_path()} (run `tamga model export-encoder`)")
    code = (
        "import sys, runpy; sys.argv = ['tamga', 'ask', 'Top 10 importers in 2025', '--json',"
        f" '--db', {str(demo_db)!r}, '--index', {str(tmp_path / 'no-index')!r}];"
        "import cli.main as m\n"
        "try:\n    m.app()\nexcept SystemExit:\n    pass\n"
        "heavy = [n for n in ('torch', 'sentence_transformers', 'langchain', 'chromadb',"
        " 'transformers', 'lightgbm') if n in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={"TAMGA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
                                            "HOME": str(tmp_path)})
    assert '"engine": "offline"' in done.stdout, done.stderr[-2000:]
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]
