"""TAMGA_CHROMA_URL: the index's vectors live in a real `chroma run` server started by the test."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.index import CHROMA_DIR, IndexStore, collection_name
from retrieval.ingest import ingest_paths
from retrieval.search import open_searcher
from tamga.errors import TamgaError
from tamga.settings import get_settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_cli() -> str:
    candidate = Path(sys.executable).with_name("chroma")
    if not candidate.exists():
        pytest.fail(f"the chroma CLI is missing next to {sys.executable}")
    return str(candidate)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [chroma_cli(), "run", "--path", str(data / "db"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}: "
                            f"{(data / 'server.log').read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def use_server(chroma_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TAMGA_CHROMA_URL", chroma_server)
    get_settings.cache_clear()
    yield chroma_server
    monkeypatch.delenv("TAMGA_CHROMA_URL")
    get_settings.cache_clear()


def test_ingest_and_search_through_a_chroma_server(use_server: str, tmp_path: Path):
    import chromadb
    from chromadb.config import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "seals.md").write_text(
        "# Customs seals\n\n## Affixing seals\n\n"
        "Customs seals are affixed to containers in transit so that any opening of the load "
        "compartment leaves visible traces. The officer notes the seal numbers on the transit "
        "declaration and checks them again at the office of destination.\n",
        encoding="utf-8",
    )
    (docs / "samples.md").write_text(
        "# Samples\n\n## Taking samples\n\n"
        "Samples of goods may be taken for laboratory analysis when the description or tariff "
        "classification is in doubt. Samples are kept to the smallest quantity needed.\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    url = get_settings().chroma_url  # TAMGA_CHROMA_URL, as the CLI and the app read it
    assert url == use_server
    summary = ingest_paths([docs], index, chroma_url=url)
    assert summary.files_indexed == 2
    # vectors are on the server; the manifest and BM25 stay in the index folder
    assert not (index / CHROMA_DIR).exists()
    assert (index / "manifest.sqlite").exists() and (index / "bm25.json").exists()
    host, port = use_server.rsplit(":", 1)
    client = chromadb.HttpClient(host=host.split("//")[1], port=int(port),
                                 settings=Settings(anonymized_telemetry=False))
    remote = client.get_collection(collection_name(index, use_server))
    assert remote.count() == summary.chunks_added

    searcher = open_searcher(index, chroma_url=url)
    results = searcher.search("seal numbers checked at destination", k=2)
    assert results[0].source == "seals.md"
    assert results[0].locator == "Customs seals > Affixing seals"
    vector_only = open_searcher(index, chroma_url=url).search("laboratory analysis of goods", k=1,
                                                              mode="vector")
    assert vector_only[0].source == "samples.md"

    again = ingest_paths([docs], index, chroma_url=url)
    assert again.chunks_added == 0 and remote.count() == summary.chunks_added


def test_unreachable_server_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TAMGA_CHROMA_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        with pytest.raises(TamgaError, match="Cannot reach the Chroma server"):
            url = get_settings().chroma_url
            store = IndexStore(tmp_path / "index", chroma_url=url, create=True)
            store.vector_ids()
    finally:
        get_settings.cache_clear()
