"""`tamga ingest`: index files and folders of documents, incrementally and safely.

For each supported file (Markdown, text, HTML, PDF, DOCX) under the paths given: skip it when
its content hash and the chunker version are unchanged, otherwise load, chunk, embed (in
batches) and index it. Bad files are skipped with a reason; the rest goes on.

Crash safety: vectors are written to Chroma first, then the manifest rows naming them are
committed (one transaction per batch, whole files only), then old vectors are deleted; the BM25
keyword index is rebuilt from the manifest at the end and swapped in atomically. A new run
starts by removing vectors the manifest does not know (left by an interrupted run).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.chunking import DEFAULT_CONFIG, ChunkingConfig, chunk_document
from retrieval.index import ChunkRecord, FileRecord, IndexStore, read_generation, require_index
from retrieval.loaders import is_supported, load_document
from retrieval.questions import ChatFn, fill_question_vectors, generate_questions
from tamga.errors import IngestError, TamgaError

CHUNKER_VERSION = "4"
EMBED_BATCH = 128
DEFAULT_MAX_FILE_MB = 50.0

Progress = Callable[[str], None]


@dataclass
class IngestSummary:
    """What one ingest run did."""

    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    elapsed_s: float = 0.0
    files_removed: int = 0
    files_ignored: int = 0
    index_dir: str = ""
    total_chunks: int = 0

    @property
    def chunks_per_s(self) -> float:
        """Indexing throughput of this run."""
        return self.chunks_added / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        """A short human summary, one fact per line."""
        lines = [
            f"Indexed {self.files_indexed:,} of {self.files_seen:,} files "
            f"({self.chunks_added:,} chunks added, {self.chunks_removed:,} removed) "
            f"in {self.elapsed_s:,.1f} s"
            + (f" ({self.chunks_per_s:,.1f} chunks/s)." if self.chunks_added else "."),
            f"Unchanged: {self.files_unchanged:,} files.",
        ]
        if self.files_removed:
            lines.append(f"Removed {self.files_removed:,} files that are gone (--prune).")
        if self.files_ignored:
            lines.append(f"Ignored {self.files_ignored:,} files of unsupported types.")
        if self.files_skipped:
            lines.append(f"Skipped {len(self.files_skipped):,} files:")
            lines.extend(f"  {source}: {reason}" for source, reason in self.files_skipped)
        if self.index_dir:
            lines.append(f"Index {self.index_dir} now holds {self.total_chunks:,} chunks.")
        return "\n".join(lines)


def index_exists(index_dir: Path) -> bool:
    """True when `index_dir` holds an index with at least one indexed file."""
    index_dir = Path(index_dir).expanduser()
    if read_generation(index_dir) is None:
        return False
    import sqlite3

    from retrieval.index import manifest_path

    try:
        con = sqlite3.connect(f"file:{manifest_path(index_dir)}?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM files").fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:
        return False


@dataclass
class _Candidate:
    path: Path
    root: Path
    source: str


def _walk(paths: list[Path], summary: IngestSummary) -> tuple[list[_Candidate], list[Path]]:
    """Supported files under `paths` (hidden files and folders skipped), and the folders given."""
    found: dict[Path, _Candidate] = {}
    folders: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise IngestError(f"No such file or folder: {given}")
        path = path.resolve()
        if path.is_dir():
            folders.append(path)
            for file in sorted(_iter_files(path)):
                rel = file.relative_to(path)
                if not is_supported(file):
                    summary.files_ignored += 1
                    continue
                found.setdefault(file, _Candidate(file, path, rel.as_posix()))
        elif path.is_file():
            if not is_supported(path):
                summary.files_skipped.append(
                    (path.name, f"unsupported file type '{path.suffix or '(none)'}'")
                )
                continue
            found.setdefault(path, _Candidate(path, path.parent, path.name))
        else:
            raise IngestError(f"Not a regular file or folder: {given}")
    return list(found.values()), folders


def _iter_files(folder: Path) -> Iterator[Path]:
    for item in folder.iterdir():
        if item.name.startswith("."):
            continue
        if item.is_dir() and not item.is_symlink():
            yield from _iter_files(item)
        elif item.is_file():
            yield item


def _chunk_id(path: str, sha: str, ordinal: int) -> str:
    key = hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
    return f"{key}-{sha[:12]}-v{CHUNKER_VERSION}-{ordinal:05d}"


def _max_file_bytes(max_file_mb: float | None) -> int:
    return int((DEFAULT_MAX_FILE_MB if max_file_mb is None else max_file_mb) * 1024 * 1024)


def ingest_paths(
    paths: list[Path],
    index_dir: Path,
    prune: bool = False,
    progress: Progress | None = None,
    *,
    max_file_mb: float | None = None,
    batch_size: int = EMBED_BATCH,
    config: ChunkingConfig = DEFAULT_CONFIG,
    chroma_url: str | None = None,
) -> IngestSummary:
    """Index the documents under `paths` into `index_dir` (see the module docstring).

    Raises IngestError when a path does not exist or indexing stops part-way (the index is
    then still consistent and a re-run finishes the job).
    """
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    index_dir = Path(index_dir).expanduser()
    summary = IngestSummary(index_dir=str(index_dir))
    if not paths:
        raise IngestError("Nothing to ingest: give at least one file or folder.")
    candidates, folders = _walk(paths, summary)
    summary.files_seen = len(candidates) + len(summary.files_skipped)
    max_bytes = _max_file_bytes(max_file_mb)

    index_dir.mkdir(parents=True, exist_ok=True)
    with _ingest_lock(index_dir):
        store = IndexStore(index_dir, chroma_url=chroma_url, create=True)
        try:
            _run(store, candidates, folders, prune, max_bytes, batch_size, config, summary, say)
            summary.total_chunks = store.count_chunks()
        finally:
            store.close()
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _run(
    store: IndexStore,
    candidates: list[_Candidate],
    folders: list[Path],
    prune: bool,
    max_bytes: int,
    batch_size: int,
    config: ChunkingConfig,
    summary: IngestSummary,
    say: Progress,
) -> None:
    orphans, dropped = store.reconcile()
    if orphans or dropped:
        plural = "" if orphans == 1 else "s"
        say(f"Repaired the index after an interrupted run: removed {orphans:,} stray vector{plural}"
            + (f"; {dropped:,} incomplete files will be indexed again." if dropped else "."))
    _fill_multilingual(store, batch_size, say)
    known = store.files()
    say(f"Scanning {len(candidates):,} files...")

    work: list[tuple[FileRecord, list[ChunkRecord]]] = []
    for cand in candidates:
        key = str(cand.path)
        try:
            size = cand.path.stat().st_size
            if size > max_bytes:
                raise IngestError(
                    f"too large ({size / 1048576:,.1f} MB; "
                    f"the limit is {max_bytes / 1048576:,.0f} MB)"
                )
            data = cand.path.read_bytes()
        except IngestError as exc:
            _skip(summary, say, cand.source, str(exc))
            continue
        except OSError as exc:
            _skip(summary, say, cand.source, f"cannot read file: {exc.strerror or exc}")
            continue
        sha = hashlib.sha256(data).hexdigest()
        old = known.get(key)
        same = old is not None and (old.sha256, old.chunker, old.source) == (
            sha, CHUNKER_VERSION, cand.source
        )
        if same:
            summary.files_unchanged += 1
            continue
        try:
            doc = load_document(cand.path, data)
            chunks = chunk_document(doc, cand.source, config)
        except IngestError as exc:
            _skip(summary, say, cand.source, str(exc))
            continue
        except Exception as exc:  # a parser bug on one odd file must not stop the run
            _skip(summary, say, cand.source, f"could not be read ({type(exc).__name__}: {exc})")
            continue
        if not chunks:
            _skip(summary, say, cand.source, "no text to index (only headings)")
            continue
        title = chunks[0].title
        record = FileRecord(key, str(cand.root), cand.source, sha, CHUNKER_VERSION, size,
                            title, len(chunks))
        records = [
            ChunkRecord(_chunk_id(key, sha, c.ordinal), key, c.ordinal, cand.source, c.title,
                        c.locator, c.text, c.index_text, c.embed_text)
            for c in chunks
        ]
        work.append((record, records))

    total_chunks = sum(len(r) for _, r in work)
    if work:
        say(f"Indexing {len(work):,} new or changed files ({total_chunks:,} chunks); "
            f"{summary.files_unchanged:,} unchanged.")
    try:
        _index_work(store, work, batch_size, summary, say)
    except TamgaError:
        _safe_rebuild(store)
        raise
    except Exception as exc:
        _safe_rebuild(store)
        raise IngestError(
            f"Indexing stopped after {summary.files_indexed:,} of {len(work):,} files "
            f"({type(exc).__name__}: {exc}). The index is consistent; run the same command "
            "again to finish."
        ) from exc

    if prune:
        seen = {str(c.path) for c in candidates}
        gone = [
            path for path, rec in store.files().items()
            if path not in seen and any(_is_under(Path(path), folder) for folder in folders)
        ]
        if gone:
            removed_ids = store.remove_files(gone)
            store.delete_vectors(removed_ids)
            summary.files_removed = len(gone)
            summary.chunks_removed += len(removed_ids)
            say(f"Pruned {len(gone):,} files that are gone ({len(removed_ids):,} chunks).")
    changed = bool(work) or summary.files_removed or orphans or dropped
    if changed or read_keyword_generation(store.index_dir) != store.generation:
        say(f"Building the keyword index ({store.count_chunks():,} chunks)...")
        store.rebuild_keyword_index()
    fill_question_vectors(store, say)


def read_keyword_generation(index_dir: Path) -> int | None:
    """Generation the saved keyword index was built at (None when there is none)."""
    import json

    try:
        return int(json.loads((index_dir / "bm25.json").read_text())["generation"])
    except (OSError, ValueError, KeyError):
        return None


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _skip(summary: IngestSummary, say: Progress, source: str, reason: str) -> None:
    summary.files_skipped.append((source, reason))
    say(f"Skipped {source}: {reason}")


def update_multilingual_vectors(
    index_dir: Path, progress: Progress | None = None, chroma_url: str | None = None
) -> int:
    """Give every chunk of an existing index its multilingual vector (an index made before
    Tamga stored them, or with another version of the model). Returns how many were made."""
    index_dir = Path(index_dir).expanduser()
    require_index(index_dir)
    with _ingest_lock(index_dir):
        store = IndexStore(index_dir, chroma_url=chroma_url)
        try:
            return _fill_multilingual(store, EMBED_BATCH, progress or (lambda _msg: None))
        finally:
            store.close()


def update_question_vectors(
    index_dir: Path, progress: Progress | None = None, chroma_url: str | None = None
) -> int:
    """Embed the stored questions (retrieval/questions.py) of an existing index's chunks that
    have none yet (an index made before Tamga shipped them). Returns how many were made."""
    index_dir = Path(index_dir).expanduser()
    require_index(index_dir)
    with _ingest_lock(index_dir):
        store = IndexStore(index_dir, chroma_url=chroma_url)
        try:
            return fill_question_vectors(store, progress)
        finally:
            store.close()


def write_questions(
    index_dir: Path,
    chat: ChatFn,
    progress: Progress | None = None,
    limit: int | None = None,
    chroma_url: str | None = None,
    model_name: str = "local",
) -> int:
    """Have the local model (`chat`) write the questions of the index's chunks that have
    none, then embed them for search. Resumable; search works throughout. Returns how many
    chunks got questions."""
    index_dir = Path(index_dir).expanduser()
    require_index(index_dir)
    with _ingest_lock(index_dir):
        store = IndexStore(index_dir, chroma_url=chroma_url)
        try:
            made = generate_questions(store, chat, progress, limit=limit, model_name=model_name)
            fill_question_vectors(store, progress)
            return made
        finally:
            store.close()


@contextlib.contextmanager
def _ingest_lock(index_dir: Path) -> Iterator[None]:
    """Hold the folder's ingest lock (IngestError at once when another ingest has it)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(index_dir / ".ingest.lock"))
    try:
        lock.acquire(timeout=1)
    except Timeout as exc:
        raise IngestError(
            f"Another ingest is already writing to {index_dir}; try again later."
        ) from exc
    try:
        yield
    finally:
        lock.release()


def needs_multilingual_vectors(index_dir: Path, chroma_url: str | None = None) -> bool:
    """True when the index records no multilingual model, or another version than installed."""
    from retrieval.multilingual import multilingual_version

    store = IndexStore(Path(index_dir).expanduser(), chroma_url=chroma_url)
    try:
        return store.multilingual_model != multilingual_version()
    finally:
        store.close()


def _fill_multilingual(store: IndexStore, batch_size: int, say: Progress) -> int:
    """Record the installed multilingual model and embed the chunks that lack its vector."""
    from retrieval.multilingual import embed_passages, multilingual_version

    if store.start_multilingual(multilingual_version()):
        say("The index's multilingual vectors came from another model version; "
            "making them again.")
    missing = store.chunks_without_multilingual()
    if not missing:
        return 0
    say(f"Adding multilingual vectors to {len(missing):,} chunks already in the index...")
    for start in range(0, len(missing), batch_size):
        batch = missing[start:start + batch_size]
        store.add_multilingual_vectors(
            batch, embed_passages([c.multilingual_input() for c in batch])
        )
        say(f"  {start + len(batch):,}/{len(missing):,} chunks")
    return len(missing)


def _safe_rebuild(store: IndexStore) -> None:
    """After a failure, bring the keyword index in line with what was committed."""
    # on failure the searcher rebuilds it in memory when it is behind the manifest
    with contextlib.suppress(Exception):
        store.rebuild_keyword_index()


def _index_work(
    store: IndexStore,
    work: list[tuple[FileRecord, list[ChunkRecord]]],
    batch_size: int,
    summary: IngestSummary,
    say: Progress,
) -> None:
    """Embed and write chunks batch by batch; commit each file once all its vectors are in."""
    from retrieval import embedding
    from retrieval.multilingual import embed_passages

    total = sum(len(r) for _, r in work)
    done_chunks = 0
    pending: list[tuple[FileRecord, list[ChunkRecord]]] = []
    remaining: dict[str, int] = {}
    batch: list[ChunkRecord] = []

    def flush_batch() -> None:
        nonlocal done_chunks
        if not batch:
            return
        store.add_vectors(batch, embedding.embed([c.embedding_input() for c in batch]),
                          multilingual=embed_passages([c.multilingual_input() for c in batch]))
        for c in batch:
            remaining[c.path] -= 1
        done_chunks += len(batch)
        batch.clear()
        ready = [(rec, chunks) for rec, chunks in pending if remaining[rec.path] == 0]
        if ready:
            replaced = store.commit_files(ready)
            store.delete_vectors(replaced)
            summary.files_indexed += len(ready)
            summary.chunks_added += sum(len(c) for _, c in ready)
            summary.chunks_removed += len(replaced)
            pending[:] = [(r, c) for r, c in pending if remaining[r.path] > 0]
        say(f"  {done_chunks:,}/{total:,} chunks embedded, "
            f"{summary.files_indexed:,}/{len(work):,} files done")

    for record, chunks in work:
        pending.append((record, chunks))
        remaining[record.path] = len(chunks)
        for chunk in chunks:
            batch.append(chunk)
            if len(batch) >= batch_size:
                flush_batch()
    flush_batch()
