"""`tamga search`: hybrid (meaning + keyword) search over the regulations index, with citations.

A `Searcher` keeps everything it needs open: the chunk table from the manifest, the BM25
keyword index and the two Chroma collections (all-MiniLM-L6-v2 and multilingual-e5-small
vectors). The query is expanded with the legal terms of the plain words it uses
(retrieval/synonyms.py) for MiniLM and BM25, and embedded as asked by the multilingual model;
the three rankings' candidates are pooled, MiniLM and BM25 fused by weighted score fusion, and
the pool re-ordered by a small fitted model over signals from all three (`rerank`); overlapping
chunks of the same passage are de-duplicated; results can be restricted to documents whose
source path contains a string.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from retrieval.crosslingual import english_terms
from retrieval.index import (
    IndexStore,
    KeywordIndex,
    missing_index_message,
    read_generation,
    tokenize,
)
from retrieval.synonyms import expand_query, expansion_terms
from tamga.errors import TamgaError

Mode = Literal["hybrid", "vector", "keyword"]

# Hybrid = weighted fusion of both scores over the union of both candidate lists:
#   VECTOR_SHARE * cosine (min-max scaled over the candidates) + (1 - VECTOR_SHARE) * BM25 / max.
# Unlike rank fusion it keeps the margins: a passage that only BM25 finds, far ahead of the
# rest, is not buried under the vector ranking's top ("audit-based control" -> Kyoto 6.6),
# and a vector first place survives mediocre keyword scores ("How long do I keep records?"
# -> § 1508(c)). Tuned on my own 26 checks (not the evaluation set): shares 0.4-0.6 gave
# recall@5 0.88 (weighted RRF 0.85); 0.6 is the one that keeps both examples above.
# `fuse` (weighted reciprocal rank fusion) is kept for comparison.
VECTOR_SHARE = 0.6
RRF_K = 10
VECTOR_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.25
CANDIDATES = 50  # how deep each ranking is read before fusing
# Query expansion (retrieval/synonyms.py): the legal terms for an officer's plain words are
# appended to the query that is embedded, and scored by BM25 separately at this weight (a
# plain word keeps more weight than the terms it suggests).
EXPANSION_WEIGHT = 0.6
# Re-ranking of the pooled candidates (see `rerank`): a logistic model over nine signals per
# candidate (`RERANK_FEATURES`), fitted on the two development question sets (104 questions:
# benchmarks/retrieval_dev_questions.yaml and retrieval_dev_questions2.yaml) by
# `benchmarks/retrieval_variants.py --fit --C 0.3`, never on the evaluation set. The
# intercept is shifted back from the equal-weight fit by the log odds of the class sizes, so
# that the score reads as a rough chance of answering (docs/retrieval.md). Fewer words rank
# higher at equal evidence: a long passage shares some words with almost any question. The
# text coverage term is negative because BM25 and the fused score already count shared words;
# given those, a passage that repeats the question's words is more often a near miss.
RERANK_FEATURES = (
    "fused score",                  # MiniLM and BM25, score fusion (VECTOR_SHARE)
    "log(1 + rank by MiniLM)",      # ranks count from 0 among the pool
    "log(1 + rank by BM25)",
    "log(1 + words)",
    "log(1 + rank by multilingual)",
    "multilingual cosine, min-max scaled over the pool",
    "share of the question's keywords in the passage",
    "share of the question's keywords in its heading",
    "statute section (a US Code locator)",
)
RERANK_WEIGHTS = (4.7526, -0.3728, -0.1933, -0.1828, -0.3119, 1.9989, -0.2969, 0.0458, -0.6284)
RERANK_INTERCEPT = -3.9322
# Two more terms when passages have stored questions (retrieval/questions.py): the question's
# best MiniLM cosine with a passage's questions (scaled over the pool) and BM25 over them (over
# the pool's best). Chosen on the development questions over the WTO and Kyoto texts, all of
# whose passages have questions (docs/retrieval-eval.md, round 7).
QUESTION_WEIGHTS = (3.0, 2.0)


# A question in which fewer than this share of words are English function words ("the", "how",
# "must", "of"...) and most keywords are unknown to the index is treated as not English
# (`Searcher.reads_as_foreign`). In the English development questions the share is 7-45 %;
# the two under 15 % have known keywords.
FOREIGN_FUNCTION_SHARE = 0.15
_WORD = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def _english_function_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@dataclass
class Passage:
    """One search result: where it comes from, how to cite it, its text and score."""

    source: str
    locator: str
    text: str
    score: float
    title: str = ""
    doc_id: str = ""
    chunk_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON contract (docs/architecture.md): source, locator, text, score."""
        return {
            "source": self.source,
            "locator": self.locator,
            "text": self.text,
            "score": round(float(self.score), 6),
        }


def open_searcher(index_dir: Path, chroma_url: str | None = None) -> Searcher:
    """A new searcher on `index_dir` (TamgaError when there is no index there). To keep one open
    and reopen it when the index changes, use `RegulationsIndex`."""
    key = Path(index_dir).expanduser().resolve()
    if read_generation(key) is None:
        raise TamgaError(missing_index_message(index_dir))
    return Searcher(key, chroma_url=chroma_url)


class RegulationsIndex:
    """One regulations index folder: its searcher, opened on first use and reopened when an
    ingest changes the index or new question vectors are written. A `Retriever` for the
    tools; safe to share between threads.

    The owner (an Assistant, the CLI, the web app) keeps it; nothing is cached per process.
    """

    def __init__(self, index_dir: Path, chroma_url: str | None = None) -> None:
        self.index_dir = Path(index_dir).expanduser()
        self.chroma_url = chroma_url
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()

    def exists(self) -> bool:
        """True when an index has been built in the folder."""
        return read_generation(self.index_dir.resolve()) is not None

    def searcher(self) -> Searcher:
        """The open searcher (TamgaError when there is no index yet)."""
        key = self.index_dir.resolve()
        generation = read_generation(key)
        if generation is None:
            raise TamgaError(missing_index_message(self.index_dir))
        with self._lock:
            from retrieval.questions import vectors_stamp

            if self._searcher is None or self._searcher.generation != generation or \
                    self._searcher.questions_stamp != vectors_stamp(key):
                self._searcher = Searcher(key, chroma_url=self.chroma_url)
            return self._searcher

    def search(self, query: str, k: int = 5, source_filter: str | None = None) -> list[Passage]:
        """The best `k` passages for `query` (see Searcher.search)."""
        return self.searcher().search(query, k=k, source_filter=source_filter)

    def __repr__(self) -> str:
        return f"RegulationsIndex({str(self.index_dir)!r})"


class Searcher:
    """Search one index folder. Use `open_searcher` rather than building it directly."""

    def __init__(self, index_dir: Path, chroma_url: str | None = None, warm: bool = True) -> None:
        self.index_dir = index_dir
        self.chroma_url = chroma_url
        from retrieval.multilingual import multilingual_version

        store = IndexStore(index_dir, chroma_url=chroma_url)
        try:
            self.generation = store.generation
            chunks = store.all_chunks()
            made_with = store.multilingual_model
            if chunks and made_with != multilingual_version():
                raise TamgaError(outdated_index_message(index_dir, made_with))
            self.collection = store.collection if chunks else None
            self.multilingual = store.multilingual_collection if chunks else None
        finally:
            store.close()
        self.ids = [c.chunk_id for c in chunks]
        self.sources = [c.source for c in chunks]
        self.titles = [c.title for c in chunks]
        self.locators = [c.locator for c in chunks]
        self.texts = [c.text for c in chunks]
        self.words = [len(t.split()) for t in self.texts]
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        self.index_texts = [c.index_text for c in chunks]
        self._terms: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        keyword = KeywordIndex.load(index_dir)
        if keyword is None or keyword.generation != self.generation or keyword.ids != self.ids:
            # behind the manifest (e.g. an interrupted ingest): rebuild in memory
            keyword = KeywordIndex.build(self.ids, [c.index_text for c in chunks], self.generation)
        self.keyword = keyword
        from retrieval.questions import QuestionIndex, vectors_stamp

        self.questions_stamp = vectors_stamp(index_dir)
        self.questions = QuestionIndex.load(index_dir, self.ids, self.texts)
        self._lock = threading.Lock()
        if warm and chunks:
            self.search("customs value of imported goods", k=1)  # load the model, warm Chroma

    def __len__(self) -> int:
        return len(self.ids)

    # -- the two rankings

    def _allowed(self, source_filter: str | None) -> list[int] | None:
        if not source_filter:
            return None
        needle = source_filter.lower()
        return [i for i, s in enumerate(self.sources) if needle in s.lower()]

    def vector_ranking(
        self, query_vector: Any, n: int, allowed: list[int] | None = None,
        multilingual: bool = False,
    ) -> list[tuple[int, float]]:
        """(chunk position, cosine similarity), best first, from Chroma (the MiniLM collection,
        or the multilingual one)."""
        collection = self.multilingual if multilingual else self.collection
        if collection is None or not self.ids:
            return []
        embedding = [list(map(float, query_vector))]
        n = max(1, min(n, len(self.ids)))
        if allowed is not None:
            if not allowed:
                return []
            share = len(allowed) / len(self.ids)
            if share >= 0.25:
                # a broad filter (e.g. "us-19-usc"): a long $in list is slow in Chroma, so read
                # deeper without it and keep the allowed chunks
                keep = set(allowed)
                deep = min(len(self.ids), int(n / share * 2) + 10)
                ranked = [
                    r for r in self._query(collection, embedding, deep, None) if r[0] in keep
                ]
                if len(ranked) >= min(n, len(allowed)) or deep == len(self.ids):
                    return ranked[:n]
            sources = sorted({self.sources[i] for i in allowed})
            where = {"source": sources[0]} if len(sources) == 1 else {"source": {"$in": sources}}
            return self._query(collection, embedding, min(n, len(allowed)), where)
        return self._query(collection, embedding, n, None)

    def _query(
        self, collection: Any, embedding: list[list[float]], n: int, where: dict[str, Any] | None
    ) -> list[tuple[int, float]]:
        with self._lock:
            result = collection.query(
                query_embeddings=embedding, n_results=n, where=where, include=["distances"]
            )
        ranked: list[tuple[int, float]] = []
        for cid, dist in zip(result["ids"][0], result["distances"][0], strict=False):
            pos = self.position.get(cid)
            if pos is not None:  # ignore vectors the manifest does not know (interrupted ingest)
                ranked.append((pos, 1.0 - float(dist)))
        return ranked

    def keyword_ranking(
        self, query: str, n: int, allowed: list[int] | None = None, scores: Any = None
    ) -> list[tuple[int, float]]:
        """(chunk position, BM25 score), best first; only chunks sharing a word with the query.

        `scores`: the query's `keyword_scores`, when already computed.
        """
        import numpy as np

        if scores is None:
            scores = self.keyword_scores(query)
        if allowed is not None:
            mask = np.zeros(len(scores), dtype=bool)
            mask[allowed] = True
            scores = np.where(mask, scores, 0.0)
        positive = int((scores > 0).sum())
        n = min(n, positive)
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]

    def keyword_scores(self, query: str) -> Any:
        """BM25 of every chunk for `query`, plus the weighted score of its expansion terms."""
        scores = self.keyword.scores(query)
        extra = expansion_terms(query)
        if extra and EXPANSION_WEIGHT > 0:
            scores = scores + EXPANSION_WEIGHT * self.keyword.scores(extra)
        return scores

    # -- search

    def search(
        self,
        query: str,
        k: int = 5,
        source_filter: str | None = None,
        mode: Mode = "hybrid",
    ) -> list[Passage]:
        """The `k` best passages for `query`, best first, de-duplicated.

        mode: "hybrid" (weighted fusion of scaled cosine and BM25, then `rerank`; score in
        (0, 1)),
        "vector" (score = cosine similarity) or "keyword" (score = BM25). `source_filter`
        keeps documents whose source path contains it (case-insensitive).
        """
        query = (query or "").strip()
        if not query:
            raise TamgaError("The search query is empty.")
        if k < 1:
            raise TamgaError("--k must be at least 1.")
        if mode not in ("hybrid", "vector", "keyword"):
            raise TamgaError(f"Unknown search mode {mode!r}: use hybrid, vector or keyword.")
        allowed = self._allowed(source_filter)
        if allowed is not None and not allowed:
            return []
        depth = max(CANDIDATES, k * 4)
        if mode == "keyword":
            return self._passages(self.keyword_ranking(query, depth, allowed), k)
        if mode == "vector":
            query_vector = embed_query(expand_query(query))
            return self._passages(self.vector_ranking(query_vector, depth, allowed), k)
        if not self.reads_as_foreign(query):
            return self._passages(rerank(self.candidates(query, depth, allowed)), k)
        # MiniLM and BM25 read English only: they get the English terms of the question's
        # Spanish customs words (retrieval/crosslingual.py), the multilingual model the
        # question as asked; with no known word, the multilingual cosine alone orders the pool
        english = english_terms(query)
        if english:
            return self._passages(rerank(self.candidates(english, depth, allowed, query)), k)
        pool = self.candidates(query, depth, allowed)
        ranked = sorted(pool.multilingual.items(), key=lambda item: (-item[1], item[0]))
        return self._passages(ranked, k)

    def reads_as_foreign(self, query: str) -> bool:
        """True for a question not in English: under 15 % of its words are English function
        words and under half of its keywords occur in the indexed texts. (A terse English
        query such as "audit-based control" has no function words but known keywords.)"""
        words = _WORD.findall(query.lower())
        if not words:
            return False
        function_words = sum(1 for w in words if w in _english_function_words())
        if function_words / len(words) >= FOREIGN_FUNCTION_SHARE:
            return False
        keywords = tokenize(query)
        known = sum(1 for t in keywords if t in self.keyword.vocab)
        return not keywords or known / len(keywords) < 0.5

    def candidates(
        self, query: str, depth: int = CANDIDATES, allowed: list[int] | None = None,
        asked: str | None = None,
    ) -> Candidates:
        """The pool the hybrid search re-orders: the first `depth` of the MiniLM, multilingual
        and BM25 rankings, with every signal `rerank_features` reads. `asked`: the question
        as asked, for the multilingual model, when `query` is its English terms."""
        from retrieval.multilingual import embed_question

        query_vector = embed_query(expand_query(query))
        vector = self.vector_ranking(query_vector, depth, allowed)
        question_vector = embed_question(asked or query)
        multilingual = self.vector_ranking(question_vector, depth, allowed, multilingual=True)
        keyword_all = self.keyword_scores(query)
        keyword = self.keyword_ranking(query, depth, allowed, scores=keyword_all)
        cosine = dict(vector)
        cosine.update(self._cosines(
            query_vector, [p for p, _ in keyword + multilingual if p not in cosine]
        ))
        other = dict(multilingual)
        other.update(self._cosines(
            question_vector, [p for p in cosine if p not in other], multilingual=True
        ))
        fused = fuse_scores(cosine, dict(keyword), VECTOR_SHARE)
        terms = set(tokenize(query))
        coverage: dict[int, float] = {}
        heading: dict[int, float] = {}
        for pos, _ in fused:
            in_text, in_heading = self._chunk_terms(pos)
            coverage[pos] = len(terms & in_text) / len(terms) if terms else 0.0
            heading[pos] = len(terms & in_heading) / len(terms) if terms else 0.0
        statute = {pos: float("U.S.C." in self.locators[pos]) for pos, _ in fused}
        pool = Candidates(fused, cosine, other, keyword_all, self.words, coverage, heading,
                          statute)
        if self.questions is not None and asked is None:
            # the officer's question against the questions each passage answers
            # (retrieval/questions.py), as asked: the legal terms of the expansion are for
            # passages. Not for a question in another language: the stored questions are
            # English, and its English terms are a list of words, not a question (on the
            # Spanish sets the terms cost three passages in the top 5)
            expanded = expand_query(query)
            plain = query_vector if expanded == query else embed_query(query)
            positions = [pos for pos, _ in fused]
            pool.question_cosine = self.questions.cosines(plain, positions)
            pool.question_bm25 = self.questions.keyword_scores(query, positions)
        return pool

    def _chunk_terms(self, pos: int) -> tuple[frozenset[str], frozenset[str]]:
        """The keywords of a chunk's index text and of its heading (the header line)."""
        terms = self._terms.get(pos)
        if terms is None:
            text = self.index_texts[pos]
            terms = (frozenset(tokenize(text)), frozenset(tokenize(text.split("\n\n", 1)[0])))
            self._terms[pos] = terms
        return terms

    def _cosines(
        self, query_vector: Any, positions: list[int], multilingual: bool = False
    ) -> dict[int, float]:
        """Cosine similarity of the query with chunks a vector ranking did not return."""
        import numpy as np

        collection = self.multilingual if multilingual else self.collection
        if not positions or collection is None:
            return {}
        with self._lock:
            got = collection.get(
                ids=[self.ids[p] for p in sorted(set(positions))], include=["embeddings"]
            )
        query = np.asarray(query_vector, dtype=np.float32)
        out: dict[int, float] = {}
        for cid, emb in zip(got["ids"], got["embeddings"], strict=False):
            pos = self.position.get(cid)
            if pos is not None:
                out[pos] = float(np.dot(np.asarray(emb, dtype=np.float32), query))
        return out

    def _passages(self, ranked: list[tuple[int, float]], k: int) -> list[Passage]:
        kept: list[int] = []
        out: list[Passage] = []
        for pos, score in ranked:
            if any(self._duplicate(pos, other) for other in kept):
                continue
            kept.append(pos)
            cid = self.ids[pos]
            out.append(Passage(
                source=self.sources[pos],
                locator=self.locators[pos],
                text=self.texts[pos],
                score=score,
                title=self.titles[pos],
                doc_id=cid.split("-", 1)[0],
                chunk_id=cid,
            ))
            if len(out) >= k:
                break
        return out

    def _duplicate(self, a: int, b: int) -> bool:
        """Same passage twice: same locator in the same document, or heavily overlapping text."""
        same_doc = self.sources[a] == self.sources[b] or self.titles[a] == self.titles[b]
        if not same_doc:
            return False
        if normalize_locator(self.locators[a]) == normalize_locator(self.locators[b]):
            return True
        return _overlap(self.texts[a], self.texts[b]) >= 0.6


def embed_query(query: str) -> Any:
    """The query's embedding, computed on one CPU thread (see retrieval.embedding.embed).

    One short text gains nothing from parallel threads, and on a busy machine the thread
    hand-offs cost far more than the work (measured: 550 ms with 2 threads, 70 ms with 1).
    """
    from retrieval.embedding import embed

    return embed([query])[0]


def fuse_scores(
    cosine: dict[int, float], bm25: dict[int, float], vector_share: float = VECTOR_SHARE
) -> list[tuple[int, float]]:
    """Weighted score fusion over the union of candidates (both dicts: position -> score).

    Cosine is min-max scaled over the candidates, BM25 divided by its maximum (0 when absent);
    the result is in [0, 1], best first.
    """
    positions = sorted(set(cosine) | set(bm25))
    if not positions:
        return []
    known = [cosine[p] for p in positions if p in cosine]
    low = min(known) if known else 0.0
    high = max(known) if known else 0.0
    top_bm25 = max(bm25.values(), default=0.0)
    fused: list[tuple[int, float]] = []
    for pos in positions:
        vec = (cosine.get(pos, low) - low) / (high - low) if high > low else (1.0 if known else 0.0)
        key = bm25.get(pos, 0.0) / top_bm25 if top_bm25 > 0 else 0.0
        fused.append((pos, vector_share * vec + (1.0 - vector_share) * key))
    fused.sort(key=lambda item: (-item[1], item[0]))
    return fused


@dataclass
class Candidates:
    """The hybrid search's pool for one query: (position, fused score) best first, and per
    candidate its MiniLM cosine, multilingual cosine, the share of the question's keywords in
    the passage and in its heading, and 1.0 for a statute section; BM25 and words are given
    for every chunk."""

    fused: list[tuple[int, float]]
    cosine: dict[int, float]
    multilingual: dict[int, float]
    bm25: Any
    words: list[int]
    coverage: dict[int, float]
    heading: dict[int, float]
    statute: dict[int, float]
    question_cosine: dict[int, float] | None = None  # chunks with stored questions only
    question_bm25: dict[int, float] | None = None


def _ranks(values: Any) -> Any:
    """0 for the highest value, 1 for the next... (ties keep their order)."""
    import numpy as np

    order = np.argsort(-values, kind="stable")
    out = np.empty(len(values), dtype=np.float64)
    out[order] = np.arange(len(values))
    return out


def rerank_features(pool: Candidates) -> Any:
    """One row per candidate, in `RERANK_FEATURES` order (ranks count from 0 among the pool;
    a candidate without a stored vector counts as the lowest cosine)."""
    import numpy as np

    positions = np.array([pos for pos, _ in pool.fused], dtype=np.int64)
    lowest = min(pool.cosine.values(), default=0.0)
    cos = np.array([pool.cosine.get(pos, lowest) for pos, _ in pool.fused], dtype=np.float64)
    low_ml = min(pool.multilingual.values(), default=0.0)
    other = np.array([pool.multilingual.get(pos, low_ml) for pos, _ in pool.fused],
                     dtype=np.float64)
    spread = float(other.max() - other.min()) if len(other) else 0.0
    scaled = (other - other.min()) / spread if spread > 0 else np.zeros(len(other))
    key = np.asarray(pool.bm25, dtype=np.float64)[positions]
    return np.column_stack([
        np.array([score for _, score in pool.fused], dtype=np.float64),
        np.log1p(_ranks(cos)),
        np.log1p(_ranks(key)),
        np.log1p(np.array(pool.words, dtype=np.float64)[positions]),
        np.log1p(_ranks(other)),
        scaled,
        np.array([pool.coverage.get(pos, 0.0) for pos, _ in pool.fused], dtype=np.float64),
        np.array([pool.heading.get(pos, 0.0) for pos, _ in pool.fused], dtype=np.float64),
        np.array([pool.statute.get(pos, 0.0) for pos, _ in pool.fused], dtype=np.float64),
    ])


def question_signals(pool: Candidates) -> Any:
    """Two columns per candidate, or None unless every candidate has stored questions: the
    best cosine with its questions, min-max scaled over the pool, and BM25 over its questions
    divided by the pool's best. With questions for part of a corpus, the passages that have
    them would be favoured over those that have none (measured: three US Code first places
    lost to WTO passages), so the terms wait until the whole pool has them."""
    import numpy as np

    cosine, bm25 = pool.question_cosine, pool.question_bm25
    if not cosine or bm25 is None or any(pos not in cosine for pos, _ in pool.fused):
        return None
    cos = np.array([cosine[pos] for pos, _ in pool.fused], dtype=np.float64)
    key = np.array([bm25.get(pos, 0.0) for pos, _ in pool.fused], dtype=np.float64)
    spread = float(cos.max() - cos.min())
    scaled = (cos - cos.min()) / spread if spread > 0 else np.zeros(len(cos))
    top = float(key.max())
    return np.column_stack([scaled, key / top if top > 0 else np.zeros(len(key))])


def rerank(pool: Candidates) -> list[tuple[int, float]]:
    """Re-order the pool by the fitted logistic model (RERANK_WEIGHTS), best first.

    The score is the model's output in (0, 1): a rough, over-confident chance that the passage
    is the one that answers.
    """
    import numpy as np

    if not pool.fused:
        return []
    logits = rerank_features(pool) @ np.array(RERANK_WEIGHTS)
    signals = question_signals(pool)
    if signals is not None:
        logits = logits + signals @ np.array(QUESTION_WEIGHTS)
    scores = 1.0 / (1.0 + np.exp(-(logits + RERANK_INTERCEPT)))
    out = [(pos, float(score)) for (pos, _), score in zip(pool.fused, scores, strict=True)]
    out.sort(key=lambda item: (-item[1], item[0]))
    return out


def outdated_index_message(index_dir: Path, made_with: str | None) -> str:
    """What to tell a person whose index lacks this installation's multilingual vectors."""
    what = ("was built before Tamga stored multilingual vectors" if made_with is None
            else f"holds multilingual vectors of another model ({made_with})")
    return (
        f"The regulations index at {index_dir} {what}. Add them with "
        f"`tamga ingest --update-vectors --index {index_dir}` (nothing is re-read; "
        "`tamga demo` does it for the demo index)."
    )


def fuse(
    vector: list[tuple[int, float]],
    keyword: list[tuple[int, float]],
    k: int = RRF_K,
    vector_weight: float = VECTOR_WEIGHT,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of two rankings of chunk positions."""
    scores: dict[int, float] = {}
    for weight, ranking in ((vector_weight, vector), (keyword_weight, keyword)):
        for rank, (pos, _score) in enumerate(ranking, 1):
            scores[pos] = scores.get(pos, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _overlap(a: str, b: str) -> float:
    """Share of the smaller text's 5-word shingles found in the other."""
    sa, sb = _shingles(a), _shingles(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))


# ---------------------------------------------------------------- locators


def normalize_locator(locator: str) -> str:
    """Lower case, plain spaces (the US Code data has U+202F after §), single spaces."""
    locator = re.sub(r"[\u00a0\u202f\u2009\u2007]", " ", locator)
    return re.sub(r"\s+", " ", locator).strip().lower()


def _is_prefix(a: str, b: str) -> bool:
    return b.startswith(a) and (len(b) == len(a) or b[len(a)] in " (>")


def _label_key(label: str) -> tuple[tuple[int, Any], ...]:
    parts = re.findall(r"\d+|[a-z]+", label.lower())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _range_ends(first: str, last: str) -> list[str]:
    """Readings of a shortened range end: '2(a)-(c)' -> 2(c); 'Note 1-3' -> Note 3."""
    ends = [last]
    groups = re.findall(r"\([^()]*\)", last)
    if groups and "".join(groups) == last:
        m = re.match(r"^(.*?)((?:\([^()]*\))+)$", first)
        if m:
            base, tail = m.groups()
            first_groups = re.findall(r"\([^()]*\)", tail)
            for n in range(len(groups), len(first_groups) + 1):
                ends.append(base + "".join(first_groups[: len(first_groups) - n]) + last)
    else:
        m = re.match(r"^(\D*?)\d", first)  # keep a word prefix such as "Note " or "Heading "
        if m:
            ends.append(m.group(1) + last)
    return ends


def _in_range(range_label: str, label: str) -> bool:
    if "-" not in range_label:
        return False
    first, last = range_label.rsplit("-", 1)
    a, e = _label_key(first), _label_key(label)
    if not a or not e:
        return False
    for end in _range_ends(first, last):
        b = _label_key(end)
        if b and a <= b and a <= e and (e <= b or e[: len(b)] == b):
            return True
    return False


def locator_matches(found: str, expected: str) -> bool:
    """Does a passage cited as `found` contain the provision cited as `expected`?

    True for the same locator, a parent of it (`Article 1` contains `Article 1 > 2(a)`,
    `19 U.S.C. § 1592(c)` contains `19 U.S.C. § 1592(c)(4)`), a part of it, or a range that
    includes it (`Chapter 6 > 6.1-6.8` contains `Chapter 6 > 6.6`).
    """
    f, e = normalize_locator(found), normalize_locator(expected)
    if f == e or _is_prefix(f, e) or _is_prefix(e, f):
        return True
    fp, ep = f.split(" > "), e.split(" > ")
    if len(ep) < len(fp) or fp[:-1] != ep[: len(fp) - 1]:
        return False
    return _in_range(fp[-1], ep[len(fp) - 1])
