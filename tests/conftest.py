"""Shared fixtures: one small demo database built once per test session."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

DEMO_ITEMS = 20_000
DEMO_SEED = 7
DEMO_END_MONTH = date(2025, 10, 1)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo trade database (20,000 items, seed 7, ending October 2025).

    Built once per session; tests must open it read-only and never modify it.
    """
    from tradedata.demo import generate_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    generate_demo(path, items=DEMO_ITEMS, seed=DEMO_SEED, end_month=DEMO_END_MONTH)
    return path


@pytest.fixture(scope="session")
def demo_truth(demo_db: Path) -> Path:
    """The ground-truth CSV of the planted anomalies of `demo_db` (for evaluations only)."""
    from tradedata.demo import truth_path_for

    return truth_path_for(demo_db)


@pytest.fixture(scope="session")
def guidance_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regulations index of Tamga's own guidance notes, built once per session (real embeddings).

    Tests must only search it, never ingest into it.
    """
    from retrieval.ingest import ingest_paths

    repo = Path(__file__).resolve().parents[1]
    index_dir = tmp_path_factory.mktemp("guidance-index")
    ingest_paths([repo / "retrieval" / "guidance"], index_dir=index_dir)
    return index_dir


#: The shared reference data next to the repository (not part of a user's clone).
SHARED_DATA = (Path(__file__).resolve().parents[1].parent / "shared" / "data").resolve()
SHARED_REGULATIONS = SHARED_DATA / "regulations"
#: For tests that read the shared regulation texts: skipped, with the reason, in a clone.
needs_shared_regulations = pytest.mark.skipif(
    not SHARED_REGULATIONS.is_dir(),
    reason=f"needs the shared regulation texts at {SHARED_REGULATIONS} (not part of a clone)",
)


def require_shared_regulations() -> Path:
    """The shared regulations folder, or skip the calling test or fixture with the reason."""
    if not SHARED_REGULATIONS.is_dir():
        pytest.skip(f"needs the shared regulation texts at {SHARED_REGULATIONS} "
                    "(not part of a clone)")
    return SHARED_REGULATIONS


@pytest.fixture(scope="session")
def demo_documents(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo invoices, packing lists and certificates of origin for `demo_db` (with planted
    discrepancies; `truth.csv` and `fields.json` in the folder). Tests only read them."""
    from tradedata.demo_documents import generate_demo_documents

    folder = tmp_path_factory.mktemp("demo-documents") / "documents"
    generate_demo_documents(demo_db, folder, seed=DEMO_SEED)
    return folder
