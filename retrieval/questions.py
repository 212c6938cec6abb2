"""Questions a passage answers ("doc2query"), written once by the local model, for search.

An officer asks in plain words; the legal passage that answers uses other ones. For each
chunk, the local model writes three short questions the passage answers, and search compares
the officer's question with them as well as with the passage (`retrieval/search.py`: two more
signals for the re-ranker, the best MiniLM cosine with a chunk's questions and BM25 over them).

Questions are data, keyed by the SHA-256 of the chunk's text (so they follow the text, not the
file's path):

    retrieval/questions_data/*.jsonl  shipped with Tamga (written by the local model on this
                                  project's machine; see docs/retrieval.md)
    <index>/questions.jsonl       written by `tamga ingest --questions` for other documents

One JSON object per line: {"sha": ..., "source": ..., "locator": ..., "model": ...,
"questions": [...]}. The MiniLM vectors of the questions are kept next to the index
(`questions-vectors.npy` and `.json`), made at ingest for the chunks that have questions.
Search works the same before any question exists; the two signals count only for a search
whose candidates all have questions (a whole corpus, or a source filter over the documents
that have them), since passages with questions would otherwise be favoured over the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from retrieval.index import IndexStore

SHIPPED_DIR = Path(__file__).parent / "questions_data"
LOCAL_FILE = "questions.jsonl"
VECTORS_KEYS = "questions-vectors.json"
QUESTIONS_PER_CHUNK = 3
MAX_PASSAGE_CHARS = 1600
MAX_REPLY_TOKENS = 90

#: What the local model is told; the reply is one question per line.
GENERATION_PROMPT = (
    "A customs officer, a trader or a member of the public who has not read this text asks "
    "questions that the passage answers. Write 3 such questions in plain everyday words, one "
    "per line, without numbering, each ending with a question mark. Do not copy the "
    "passage's phrases and do not mention article, section or paragraph numbers."
)

#: Added to the passage when the first reply held no question.
RETRY_HINT = "Reply with three questions only, each on its own line and ending with '?'."

ChatFn = Callable[[list[dict[str, str]], int], str]
Progress = Callable[[str], None]


def text_key(text: str) -> str:
    """The key questions are stored under: the SHA-256 of the chunk's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_file(path: Path, into: dict[str, list[str]]) -> None:
    """Add one questions file to `into` (lines that do not parse are skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for line in lines:
        try:
            row = json.loads(line)
            key, questions = str(row["sha"]), [str(q) for q in row["questions"] if str(q).strip()]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by an interrupted run
        if questions:
            into[key] = questions


def load_questions(index_dir: Path | None = None) -> dict[str, list[str]]:
    """Every stored question by chunk-text key: the shipped files, then the index's own."""
    out: dict[str, list[str]] = {}
    if SHIPPED_DIR.is_dir():
        for path in sorted(SHIPPED_DIR.glob("*.jsonl")):
            _read_file(path, out)
    if index_dir is not None:
        _read_file(Path(index_dir) / LOCAL_FILE, out)
    return out


def parse_questions(reply: str) -> list[str]:
    """The questions in a model reply: one per line, numbering and bullets removed; a line
    that is not a question (an answer, a heading, a question cut short) is left out."""
    out: list[str] = []
    for line in reply.splitlines():
        for part in re.split(r"(?<=\?)\s+", line):  # "When ...? How ...?" on one line
            text = part.strip().lstrip("0123456789.-)*• ").strip()
            if len(text) >= 8 and text.endswith("?") and text not in out:
                out.append(text)
    return out[:5]


def generate_questions(
    store: IndexStore,
    chat: ChatFn,
    progress: Progress | None = None,
    limit: int | None = None,
    cancelled: threading.Event | None = None,
    model_name: str = "local",
) -> int:
    """Write questions for the index's chunks that have none yet, with `chat` (the local
    model), appending each chunk's line to <index>/questions.jsonl as soon as it is made (an
    interrupted run loses at most one chunk and resumes where it stopped). Returns how many
    chunks got questions."""
    say = progress or (lambda _msg: None)
    have = load_questions(store.index_dir)
    todo, seen = [], set()
    for chunk in store.all_chunks():
        key = text_key(chunk.text)
        if key not in have and key not in seen:
            seen.add(key)
            todo.append((key, chunk))
    if limit is not None:
        todo = todo[: max(0, limit)]
    if not todo:
        say("Every chunk already has its questions.")
        return 0
    say(f"Writing questions for {len(todo):,} chunks with the local model "
        "(a few seconds each; stop at any time, the next run goes on)...")
    made = 0
    path = store.index_dir / LOCAL_FILE
    with path.open("a", encoding="utf-8") as out:
        for n, (key, chunk) in enumerate(todo, 1):
            if cancelled is not None and cancelled.is_set():
                break
            messages = [
                {"role": "system", "content": GENERATION_PROMPT},
                {"role": "user", "content": f"From: {chunk.title}, {chunk.locator}\n\n"
                                            f"{chunk.text[:MAX_PASSAGE_CHARS]}"},
            ]
            questions = parse_questions(chat(messages, MAX_REPLY_TOKENS))
            if not questions:  # answers or statements instead of questions: ask once more
                messages[-1]["content"] += f"\n\n{RETRY_HINT}"
                questions = parse_questions(chat(messages, MAX_REPLY_TOKENS))
            if questions:
                out.write(json.dumps({"sha": key, "source": chunk.source,
                                      "locator": chunk.locator, "model": model_name,
                                      "questions": questions}, ensure_ascii=False) + "\n")
                out.flush()
                made += 1
            if n % 20 == 0 or n == len(todo):
                say(f"  {n:,}/{len(todo):,} chunks")
    return made


def _embedding_name() -> str:
    from retrieval.embedding import model_version

    return model_version()


def vectors_stamp(index_dir: Path) -> int:
    """Changes whenever the question vectors are written again (0 when there are none)."""
    try:
        return (Path(index_dir) / VECTORS_KEYS).stat().st_mtime_ns
    except OSError:
        return 0


def read_vectors(index_dir: Path) -> tuple[list[tuple[str, str]], np.ndarray] | None:
    """The stored question vectors: ([(chunk key, question)], matrix), or None when there are
    none or they were made with another embedding model."""
    import numpy as np

    try:
        meta = json.loads((Path(index_dir) / VECTORS_KEYS).read_text(encoding="utf-8"))
        if meta.get("model") != _embedding_name():
            return None
        vectors = np.load(Path(index_dir) / meta["file"], allow_pickle=False)
        keys = [(str(k), str(q)) for k, q in meta["keys"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(keys) != len(vectors):
        return None
    return keys, vectors


def fill_question_vectors(store: IndexStore, progress: Progress | None = None) -> int:
    """Embed the questions of the index's chunks that have no vector yet, keep the vectors of
    the rest, drop those of chunks no longer indexed. Returns how many were embedded."""
    import numpy as np

    from retrieval.embedding import EMBEDDING_DIM, embed

    say = progress or (lambda _msg: None)
    questions = load_questions(store.index_dir)
    wanted = [
        (key, q) for key in dict.fromkeys(text_key(c.text) for c in store.all_chunks())
        if key in questions for q in questions[key]
    ]
    old = read_vectors(store.index_dir)
    known: dict[tuple[str, str], Any] = {}
    if old is not None:
        known = dict(zip(old[0], old[1], strict=True))
    if old is not None and set(known) == set(wanted):
        return 0
    missing = [pair for pair in wanted if pair not in known]
    if missing:
        say(f"Embedding {len(missing):,} questions of {len({k for k, _ in missing}):,} chunks...")
        made = embed([q for _, q in missing]) if missing else np.zeros((0, EMBEDDING_DIM))
        known.update(zip(missing, np.asarray(made, dtype=np.float32), strict=True))
    matrix = (np.stack([known[pair] for pair in wanted]).astype(np.float32) if wanted
              else np.zeros((0, EMBEDDING_DIM), dtype=np.float32))
    _write_vectors(store.index_dir, wanted, matrix)
    return len(missing)


def _write_vectors(index_dir: Path, keys: Iterable[tuple[str, str]], matrix: Any) -> None:
    """Write the vectors under a new name, then the keys file that names it (atomic)."""
    import numpy as np

    name = f"questions-vectors-{os.getpid()}-{len(matrix)}.npy"
    tmp = index_dir / (name + ".tmp")
    with tmp.open("wb") as f:
        np.save(f, matrix, allow_pickle=False)
    os.replace(tmp, index_dir / name)
    meta_tmp = index_dir / (VECTORS_KEYS + f".tmp-{os.getpid()}")
    meta_tmp.write_text(json.dumps({"model": _embedding_name(), "file": name,
                                    "keys": [list(k) for k in keys]}), encoding="utf-8")
    os.replace(meta_tmp, index_dir / VECTORS_KEYS)
    for stale in index_dir.glob("questions-vectors-*.npy"):
        if stale.name != name:
            stale.unlink(missing_ok=True)



class QuestionIndex:
    """The stored questions of one index's chunks, for search: their MiniLM vectors (which
    chunk each belongs to) and a BM25 index over each chunk's questions."""

    def __init__(self, owners: Any, vectors: Any, keyword: Any, with_questions: int) -> None:
        self.owners = owners
        self.vectors = vectors
        self.keyword = keyword
        self.with_questions = with_questions

    @classmethod
    def load(cls, index_dir: Path, ids: list[str], texts: list[str]) -> QuestionIndex | None:
        """For the chunks (`ids`, `texts`, in search order) that have stored questions and
        question vectors; None when none has."""
        import numpy as np

        from retrieval.index import KeywordIndex

        stored = read_vectors(index_dir)
        if stored is None or not len(stored[1]):
            return None
        keys, matrix = stored
        positions: dict[str, list[int]] = {}
        for pos, text in enumerate(texts):
            positions.setdefault(text_key(text), []).append(pos)
        owners: list[int] = []
        rows: list[int] = []
        asked: dict[int, list[str]] = {}
        for row, (key, question) in enumerate(keys):
            for pos in positions.get(key, []):
                owners.append(pos)
                rows.append(row)
                asked.setdefault(pos, []).append(question)
        if not owners:
            return None
        keyword = KeywordIndex.build(ids, [" ".join(asked.get(p, [])) for p in range(len(ids))], 0)
        return cls(np.array(owners, dtype=np.int64), np.asarray(matrix[rows], dtype=np.float32),
                   keyword, len(asked))

    def cosines(self, query_vector: Any, positions: Iterable[int]) -> dict[int, float]:
        """The best cosine of the query with each chunk's questions (chunks with questions)."""
        import numpy as np

        wanted = set(positions)
        sims = self.vectors @ np.asarray(query_vector, dtype=np.float32)
        best: dict[int, float] = {}
        for pos, sim in zip(self.owners.tolist(), sims.tolist(), strict=True):
            if pos in wanted and sim > best.get(pos, -2.0):
                best[pos] = float(sim)
        return best

    def keyword_scores(self, query: str, positions: Iterable[int]) -> dict[int, float]:
        """BM25 of each chunk's questions for `query` (chunks with questions only)."""
        scores = self.keyword.scores(query)
        have = set(self.owners.tolist())
        return {p: float(scores[p]) for p in positions if p in have}
