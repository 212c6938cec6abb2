"""The regulations index on disk: a Chroma collection, a BM25 keyword index and a manifest.

Layout of an index folder:

    manifest.sqlite   files -> content hash -> chunks (text, locator...), and a generation number
    chroma/           the persistent Chroma collections (absent when TAMGA_CHROMA_URL is set):
                      all-MiniLM-L6-v2 vectors, and multilingual-e5-small vectors in a second
                      collection whose model version the manifest records (meta 'multilingual')
    bm25-<gen>/       the keyword index built from the manifest at generation <gen>
    bm25.json         which bm25-<gen>/ is current (replaced atomically)

The manifest is the source of truth. Vectors (both models) are written to Chroma before the
manifest row that names them is committed, so a crash leaves at most orphan vectors (removed by
`reconcile`). The keyword index is derived from the manifest; when its generation is behind,
it is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tamga.errors import IngestError, TamgaError

if TYPE_CHECKING:
    import numpy as np

MANIFEST = "manifest.sqlite"
CHROMA_DIR = "chroma"
BM25_POINTER = "bm25.json"
LOCAL_COLLECTION = "regulations"
EMBEDDING_NAME = "tamga-all-minilm-l6-v2"
MULTILINGUAL_NAME = "tamga-multilingual-e5-small"
MULTILINGUAL_SUFFIX = "-e5"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,       -- absolute path of the file when ingested
    root TEXT NOT NULL,          -- the folder it was ingested from (or its own folder)
    source TEXT NOT NULL,        -- path relative to root, shown in citations
    sha256 TEXT NOT NULL,
    chunker TEXT NOT NULL,       -- chunking version: a new version re-indexes the file
    size INTEGER NOT NULL,
    title TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    path TEXT NOT NULL REFERENCES files(path),
    ordinal INTEGER NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    locator TEXT NOT NULL,
    text TEXT NOT NULL,
    index_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks(path, ordinal);
"""


@dataclass
class FileRecord:
    """One indexed file as the manifest knows it."""

    path: str
    root: str
    source: str
    sha256: str
    chunker: str
    size: int
    title: str
    n_chunks: int


@dataclass
class ChunkRecord:
    """One chunk as stored in the manifest (and, by id, in Chroma)."""

    chunk_id: str
    path: str
    ordinal: int
    source: str
    title: str
    locator: str
    text: str
    index_text: str
    embed_text: str = ""  # what is embedded when it differs from index_text (not stored)

    def embedding_input(self) -> str:
        """The text given to the embedding model for this chunk."""
        return self.embed_text or self.index_text

    def multilingual_input(self) -> str:
        """The text given to the multilingual model: the header and the passage, for every
        kind of document (the header names the section; the model reads up to 512 tokens)."""
        return self.index_text


def manifest_path(index_dir: Path) -> Path:
    """Where the manifest of `index_dir` lives."""
    return index_dir / MANIFEST


# ---------------------------------------------------------------- embedding function for Chroma


def _chroma_embedding_function(model_name: str, embed: Callable[[list[str]], Any]) -> Any:
    """A Chroma embedding function named `model_name` that embeds with `embed` (offline, unit
    length, cosine space): Chroma's own default model is never used."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class TamgaEmbeddingFunction(EmbeddingFunction[Documents]):
        """Embeds with one of Tamga's packaged encoders."""

        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            return list(embed(list(input)))

        @staticmethod
        def name() -> str:
            return model_name

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> TamgaEmbeddingFunction:
            return TamgaEmbeddingFunction()

        def default_space(self) -> str:  # type: ignore[override]
            return "cosine"

        def supported_spaces(self) -> list[str]:  # type: ignore[override]
            return ["cosine"]

    return TamgaEmbeddingFunction()


@lru_cache(maxsize=1)
def embedding_function() -> Any:
    """A Chroma embedding function backed by the packaged all-MiniLM-L6-v2 (never Chroma's own)."""
    from retrieval.embedding import embed

    return _chroma_embedding_function(EMBEDDING_NAME, embed)


@lru_cache(maxsize=1)
def multilingual_embedding_function() -> Any:
    """A Chroma embedding function for the second collection (passages, multilingual-e5-small).

    Tamga always passes vectors itself; this only tells Chroma which model the collection uses.
    """
    from retrieval.multilingual import embed_passages

    return _chroma_embedding_function(MULTILINGUAL_NAME, embed_passages)


# ---------------------------------------------------------------- Chroma client


def _chroma_settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """'http://host:8000' -> ('host', 8000, False); https gives ssl=True."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise TamgaError(f"TAMGA_CHROMA_URL is not a URL: {url!r} (expected http://host:port)")
    ssl = parsed.scheme == "https"
    port = parsed.port or (443 if ssl else 8000)
    return parsed.hostname, port, ssl


def chroma_client(index_dir: Path, chroma_url: str | None) -> Any:
    """An HttpClient when `chroma_url` is set, else a PersistentClient inside index_dir."""
    import chromadb

    if chroma_url:
        host, port, ssl = parse_chroma_url(chroma_url)
        try:
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=_chroma_settings())
            client.heartbeat()
        except Exception as exc:
            raise TamgaError(f"Cannot reach the Chroma server at {chroma_url}: {exc}") from exc
        return client
    return chromadb.PersistentClient(path=str(index_dir / CHROMA_DIR), settings=_chroma_settings())


def collection_name(index_dir: Path, chroma_url: str | None) -> str:
    """One collection per index folder: fixed locally, derived from the folder on a server."""
    if not chroma_url:
        return LOCAL_COLLECTION
    digest = hashlib.sha1(str(index_dir.resolve()).encode()).hexdigest()[:12]
    return f"tamga-{digest}"


# ---------------------------------------------------------------- keyword index (BM25)

_TOKEN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN) - {"not", "no", "nor"}


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    try:
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a declared dependency
        return None


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without English stopwords, stemmed when PyStemmer is installed."""
    stop = _stopwords()
    words = [w.strip(".'") for w in _TOKEN.findall(text.lower())]
    words = [w for w in words if w and w not in stop and (len(w) > 1 or w.isdigit())]
    stemmer = _stemmer()
    return list(stemmer.stemWords(words)) if stemmer is not None and words else words


def stemming_enabled() -> bool:
    """Whether keyword search stems words (PyStemmer installed)."""
    return _stemmer() is not None


class KeywordIndex:
    """A bm25s index over chunk index texts, aligned with a list of chunk ids."""

    def __init__(self, retriever: Any, ids: list[str], generation: int) -> None:
        self.retriever = retriever
        self.ids = ids
        self.generation = generation
        self.vocab: dict[str, int] = dict(getattr(retriever, "vocab_dict", {}) or {})

    @classmethod
    def build(cls, ids: list[str], texts: Sequence[str], generation: int) -> KeywordIndex:
        """Index `texts` (one per chunk id)."""
        import bm25s

        retriever = bm25s.BM25(k1=1.2, b=0.75)
        corpus = [tokenize(t) or ["_empty_"] for t in texts]
        if corpus:
            retriever.index(corpus, show_progress=False)
        return cls(retriever, list(ids), generation)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for `query` (zeros when no query word is known)."""
        import numpy as np

        tokens = [t for t in tokenize(query) if t in self.vocab]
        if not tokens or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)

    def save(self, index_dir: Path) -> None:
        """Write to bm25-<generation>/ then point bm25.json at it (atomic replace)."""
        folder = index_dir / f"bm25-{self.generation}"
        tmp = index_dir / f".bm25-{self.generation}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.ids:
            self.retriever.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps(
            {"generation": self.generation, "ids": self.ids, "stemmed": stemming_enabled()}
        ))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        pointer_tmp = index_dir / f".{BM25_POINTER}.tmp-{os.getpid()}"
        pointer_tmp.write_text(json.dumps({"generation": self.generation, "dir": folder.name}))
        os.replace(pointer_tmp, index_dir / BM25_POINTER)
        for old in index_dir.glob("bm25-*"):
            if old.is_dir() and old.name != folder.name:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, index_dir: Path) -> KeywordIndex | None:
        """The saved keyword index, or None when missing or unreadable."""
        import bm25s

        try:
            pointer = json.loads((index_dir / BM25_POINTER).read_text())
            folder = index_dir / pointer["dir"]
            meta = json.loads((folder / "ids.json").read_text())
            if meta.get("stemmed") != stemming_enabled():
                return None
            ids = list(meta["ids"])
            if not ids:
                return cls.build([], [], int(meta["generation"]))
            retriever = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
            return cls(retriever, ids, int(meta["generation"]))
        except (OSError, ValueError, KeyError):
            return None


# ---------------------------------------------------------------- the store


class IndexStore:
    """Read and write access to one index folder (manifest + Chroma + BM25)."""

    def __init__(
        self, index_dir: Path, chroma_url: str | None = None, create: bool = False
    ) -> None:
        self.index_dir = index_dir
        self.chroma_url = chroma_url
        if create:
            index_dir.mkdir(parents=True, exist_ok=True)
        elif not manifest_path(index_dir).exists():
            raise TamgaError(missing_index_message(index_dir))
        self.db = sqlite3.connect(manifest_path(index_dir), timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(_SCHEMA)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.commit()
        name = self._meta("collection")
        if name is None:
            name = collection_name(index_dir, chroma_url)
            with self.db:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('collection', ?)", (name,))
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('embedding', ?)", (EMBEDDING_NAME,)
                )
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('created_at', ?)",
                    (time.strftime("%Y-%m-%dT%H:%M:%S"),),
                )
        self.collection_name = name
        self._collection: Any = None
        self._multilingual: Any = None

    # -- meta

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def generation(self) -> int:
        """Bumped by every manifest change; the keyword index records the one it was built at."""
        return int(self._meta("generation") or 0)

    def close(self) -> None:
        """Close the manifest connection."""
        self.db.close()

    # -- Chroma

    def _open_collection(self, name: str, embedding: Any) -> Any:
        """Open or create a Chroma collection of this index (cosine space)."""
        client = chroma_client(self.index_dir, self.chroma_url)
        try:
            return client.get_or_create_collection(
                name, embedding_function=embedding, metadata={"hnsw:space": "cosine"}
            )
        except Exception as exc:
            raise TamgaError(f"Cannot open the Chroma collection {name!r}: {exc}") from exc

    @property
    def collection(self) -> Any:
        """The Chroma collection (created on first use, cosine space, our embedding function)."""
        if self._collection is None:
            self._collection = self._open_collection(self.collection_name, embedding_function())
        return self._collection

    @property
    def multilingual_collection(self) -> Any:
        """The second Chroma collection: multilingual-e5-small vectors under the same ids."""
        if self._multilingual is None:
            self._multilingual = self._open_collection(
                self.collection_name + MULTILINGUAL_SUFFIX, multilingual_embedding_function()
            )
        return self._multilingual

    def vector_ids(self, multilingual: bool = False) -> set[str]:
        """Every id in the Chroma collection (or in the multilingual one)."""
        collection = self.multilingual_collection if multilingual else self.collection
        ids: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = collection.get(include=[], limit=page, offset=offset)
            batch = got["ids"]
            ids.update(batch)
            if len(batch) < page:
                return ids
            offset += page

    def add_vectors(
        self,
        records: Sequence[ChunkRecord],
        embeddings: np.ndarray,
        multilingual: np.ndarray | None = None,
    ) -> None:
        """Write chunks and their embeddings to Chroma (upsert: safe to repeat); `multilingual`
        holds the same chunks' multilingual-e5-small vectors, written first."""
        if not records:
            return
        if multilingual is not None:
            self.add_multilingual_vectors(records, multilingual)
        self.collection.upsert(
            ids=[r.chunk_id for r in records],
            embeddings=embeddings,
            documents=[r.text for r in records],
            metadatas=[
                {"source": r.source, "title": r.title, "locator": r.locator,
                 "ordinal": r.ordinal, "path": r.path}
                for r in records
            ],
        )

    def add_multilingual_vectors(
        self, records: Sequence[ChunkRecord], vectors: np.ndarray
    ) -> None:
        """Write the chunks' multilingual-e5-small vectors (upsert; no documents kept twice)."""
        if records:
            self.multilingual_collection.upsert(
                ids=[r.chunk_id for r in records], embeddings=vectors,
                metadatas=[{"source": r.source} for r in records],
            )

    def delete_vectors(self, ids: Iterable[str]) -> None:
        """Remove vectors by id from both collections (missing ids are ignored)."""
        ids = list(ids)
        for start in range(0, len(ids), 5000):
            self.collection.delete(ids=ids[start : start + 5000])
            self.multilingual_collection.delete(ids=ids[start : start + 5000])

    # -- the multilingual vectors' model

    @property
    def multilingual_model(self) -> str | None:
        """The model version the multilingual vectors were made with (None: none yet)."""
        return self._meta("multilingual")

    def start_multilingual(self, version: str) -> bool:
        """Record `version` as the multilingual model. When the index holds vectors of another
        version, they are all deleted first (they cannot be compared); returns True then."""
        old = self.multilingual_model
        if old == version:
            return False
        dropped = False
        if old is not None:
            client = chroma_client(self.index_dir, self.chroma_url)
            with contextlib.suppress(Exception):
                client.delete_collection(self.collection_name + MULTILINGUAL_SUFFIX)
            self._multilingual = None
            dropped = True
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('multilingual', ?)", (version,))
        return dropped

    def chunks_without_multilingual(self) -> list[ChunkRecord]:
        """Manifest chunks that have no multilingual vector yet (an index made before them)."""
        have = self.vector_ids(multilingual=True)
        return [c for c in self.all_chunks() if c.chunk_id not in have]

    # -- manifest

    def files(self) -> dict[str, FileRecord]:
        """All indexed files by absolute path."""
        rows = self.db.execute(
            "SELECT path, root, source, sha256, chunker, size, title, n_chunks FROM files"
        ).fetchall()
        return {r["path"]: FileRecord(**dict(r)) for r in rows}

    def chunk_ids(self, path: str | None = None) -> list[str]:
        """Chunk ids of one file, or of the whole index."""
        if path is None:
            rows = self.db.execute("SELECT chunk_id FROM chunks ORDER BY path, ordinal")
        else:
            rows = self.db.execute(
                "SELECT chunk_id FROM chunks WHERE path = ? ORDER BY ordinal", (path,)
            )
        return [r[0] for r in rows]

    def all_chunks(self) -> list[ChunkRecord]:
        """Every chunk, in a stable order (file path, then position in the file)."""
        rows = self.db.execute(
            "SELECT chunk_id, path, ordinal, source, title, locator, text, index_text "
            "FROM chunks ORDER BY path, ordinal"
        ).fetchall()
        return [ChunkRecord(**dict(r)) for r in rows]

    def count_chunks(self) -> int:
        """Number of chunks in the manifest."""
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def commit_files(self, files: Sequence[tuple[FileRecord, Sequence[ChunkRecord]]]) -> list[str]:
        """Replace these files' rows and chunks in one transaction; returns the replaced ids."""
        replaced: list[str] = []
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self.db:
            for record, chunks in files:
                replaced.extend(
                    r[0] for r in self.db.execute(
                        "SELECT chunk_id FROM chunks WHERE path = ?", (record.path,)
                    )
                )
                self.db.execute("DELETE FROM chunks WHERE path = ?", (record.path,))
                self.db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)",
                    (record.path, record.root, record.source, record.sha256, record.chunker,
                     record.size, record.title, record.n_chunks, now),
                )
                self.db.executemany(
                    "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?,?,?)",
                    [(c.chunk_id, c.path, c.ordinal, c.source, c.title, c.locator, c.text,
                      c.index_text) for c in chunks],
                )
            self._bump()
        keep = {c.chunk_id for _, chunks in files for c in chunks}
        return [cid for cid in replaced if cid not in keep]

    def remove_files(self, paths: Iterable[str]) -> list[str]:
        """Drop files from the manifest; returns their chunk ids (to delete from Chroma)."""
        removed: list[str] = []
        with self.db:
            for path in paths:
                removed.extend(
                    r[0] for r in self.db.execute(
                        "SELECT chunk_id FROM chunks WHERE path = ?", (path,)
                    )
                )
                self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
                self.db.execute("DELETE FROM files WHERE path = ?", (path,))
            self._bump()
        return removed

    def _bump(self) -> None:
        self.db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE key = 'generation'"
        )

    # -- consistency

    def reconcile(self) -> tuple[int, int]:
        """Make Chroma and the manifest agree after an interrupted run.

        Vectors the manifest does not name are deleted; files whose vectors are missing are
        dropped from the manifest (so they are indexed again). Returns (orphans, files_dropped).
        """
        in_chroma = self.vector_ids()
        known = set(self.chunk_ids())
        orphans = in_chroma - known
        if orphans:
            self.delete_vectors(orphans)
        stray = self.vector_ids(multilingual=True) - known - orphans
        if stray:  # multilingual vectors written just before a crash
            self.delete_vectors(stray)
        missing = known - in_chroma
        dropped = 0
        if missing:
            paths = {
                r[0] for r in self.db.execute("SELECT path, chunk_id FROM chunks").fetchall()
                if r[1] in missing
            }
            self.remove_files(paths)
            dropped = len(paths)
        return len(orphans), dropped

    def rebuild_keyword_index(self) -> KeywordIndex:
        """Build the BM25 index from the manifest and save it (atomically replacing the old)."""
        generation = self.generation
        chunks = self.all_chunks()
        keyword = KeywordIndex.build([c.chunk_id for c in chunks],
                                     [c.index_text for c in chunks], generation)
        keyword.save(self.index_dir)
        return keyword


def read_generation(index_dir: Path) -> int | None:
    """The manifest generation of an index folder, or None when there is no index."""
    path = manifest_path(index_dir)
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def require_index(index_dir: Path) -> None:
    """Raise a helpful error when `index_dir` holds no index."""
    if read_generation(index_dir) is None:
        raise TamgaError(missing_index_message(index_dir))


def missing_index_message(index_dir: Path) -> str:
    """What to tell a person who searches an index that does not exist."""
    return (
        f"No regulations index at {index_dir}. "
        "Build it with `tamga demo` or `tamga ingest PATH`."
    )


__all__ = [
    "ChunkRecord",
    "FileRecord",
    "IndexStore",
    "IngestError",
    "KeywordIndex",
    "embedding_function",
    "read_generation",
    "require_index",
    "tokenize",
]
