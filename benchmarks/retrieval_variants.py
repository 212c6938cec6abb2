"""Try ranking variants on an existing index without re-ingesting: recall@1, recall@5 and MRR.

Reads every chunk vector of the index once, then scores each variant with exact cosine and the
index's own BM25, the same fusion and de-duplication as `retrieval/search.py`. The first line
("current") reproduces `bench_retrieval.py` on the same index; compare the others with it. Meant
for the development set (`retrieval_dev_questions.yaml`): do not tune on the evaluation set.

    .venv/bin/python benchmarks/retrieval_variants.py --index DIR \
        --questions benchmarks/retrieval_dev_questions.yaml \
        benchmarks/retrieval_dev_questions2.yaml [--sentences CACHE.npz]

`--sentences` adds sentence-level variants; it embeds every sentence of the index once (about
20,000 for the shared corpus, ~10 minutes on one core) and keeps them in CACHE.npz.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_retrieval import (
    RANK_DEPTH,
    Question,
    first_hit_rank,
    is_hit,
    load_question_set,
    rank_figures,
)

from retrieval.embedding import EMBEDDING_DIM
from retrieval.search import (
    CANDIDATES,
    RERANK_FEATURES,
    VECTOR_SHARE,
    Searcher,
    embed_query,
    fuse_scores,
    rerank,
    rerank_features,
)
from retrieval.synonyms import expand_query

Ranking = list[tuple[int, float]]


class Prepared:
    """One question with its query vectors and BM25 scores over every chunk."""

    def __init__(self, searcher: Searcher, question: Question) -> None:
        self.question = question
        self.vector = np.asarray(embed_query(expand_query(question.question)), dtype=np.float32)
        self.plain = np.asarray(embed_query(question.question), dtype=np.float32)
        self.bm25 = np.asarray(searcher.keyword_scores(question.question), dtype=np.float64)
        self.pool = searcher.candidates(question.question)  # what `tamga search` re-orders


def chunk_vectors(searcher: Searcher) -> np.ndarray:
    """Every stored chunk vector, in the searcher's chunk order."""
    matrix = np.zeros((len(searcher.ids), EMBEDDING_DIM), dtype=np.float32)
    assert searcher.collection is not None
    for start in range(0, len(searcher.ids), 500):
        got = searcher.collection.get(ids=searcher.ids[start:start + 500], include=["embeddings"])
        for cid, emb in zip(got["ids"], got["embeddings"], strict=False):
            matrix[searcher.position[cid]] = emb
    return matrix


def hybrid(cosine: np.ndarray, bm25: np.ndarray, share: float = VECTOR_SHARE,
           depth: int = CANDIDATES) -> Ranking:
    """The candidates of `Searcher.search` (the `depth` best by exact cosine and by BM25),
    fused by its own `fuse_scores`."""
    vector_top = np.argpartition(-cosine, depth)[:depth]
    n = min(depth, int((bm25 > 0).sum()))
    keyword_top = np.argpartition(-bm25, n - 1)[:n] if n > 0 else np.array([], dtype=int)
    candidates = set(vector_top.tolist()) | set(keyword_top.tolist())
    return fuse_scores({int(pos): float(cosine[pos]) for pos in candidates},
                       {int(pos): float(bm25[pos]) for pos in keyword_top}, share)


def section_groups(searcher: Searcher) -> np.ndarray:
    """Group id per chunk: its US Code section, or its parent locator in other documents."""
    keys: list[str] = []
    for source, locator in zip(searcher.sources, searcher.locators, strict=True):
        plain = locator.replace("\u202f", " ")
        match = re.match(r"(19 U\.S\.C\. § [^(\s]+)", plain)
        keys.append(match.group(1) if match else source + "|" + plain.rsplit(" > ", 1)[0])
    ids = {key: n for n, key in enumerate(dict.fromkeys(keys))}
    return np.array([ids[k] for k in keys])


def sentences_of(text: str) -> list[str]:
    """A chunk cut into sentences (runs of more than 60 words into 60-word windows)."""
    pieces: list[str] = []
    for part in re.split(r"(?<=[.;:])\s+(?=[A-Z(\d])", re.sub(r"\s+", " ", text)):
        words = part.split()
        if len(words) < 4 and pieces:
            pieces[-1] += " " + part
            continue
        pieces += [" ".join(words[a:a + 60]) for a in range(0, max(len(words), 1), 50)]
    return pieces


def sentence_vectors(searcher: Searcher, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(owner chunk per sentence, sentence vectors), embedded once and cached in `cache`."""
    if cache.exists():
        data = np.load(cache)
        return data["owner"], data["vectors"]
    from retrieval.embedding import embed

    owner: list[int] = []
    texts: list[str] = []
    for pos, text in enumerate(searcher.texts):
        for sentence in sentences_of(text):
            owner.append(pos)
            texts.append(sentence)
    print(f"embedding {len(texts):,} sentences ...", file=sys.stderr)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    np.savez(cache, owner=np.array(owner), vectors=vectors)
    return np.array(owner), vectors


def score(searcher: Searcher, prepared: Sequence[Prepared], source_only: Sequence[str],
          rank: Callable[[Prepared], Ranking]) -> tuple[float, float, float]:
    """(recall@1, recall@5, MRR@10) of a ranking function, after the searcher's de-duplication."""
    return rank_figures([
        first_hit_rank(searcher._passages(rank(p), RANK_DEPTH), p.question, source_only)
        for p in prepared
    ])


def pool_recall(searcher: Searcher, prepared: Sequence[Prepared], source_only: Sequence[str],
                vectors: np.ndarray, depth: int) -> tuple[float, float]:
    """(share of questions whose answer is among the fused candidates, mean candidate count).

    The ceiling for any re-ranker that re-orders these candidates.
    """
    hits, sizes = 0, []
    for p in prepared:
        ranked = hybrid(vectors @ p.vector, p.bm25, depth=depth)
        sizes.append(len(ranked))
        passages = searcher._passages(ranked, len(ranked))
        hits += first_hit_rank(passages, p.question, source_only) is not None
    return hits / len(prepared), sum(sizes) / len(sizes)


def variants(searcher: Searcher, vectors: np.ndarray,
             sentences: tuple[np.ndarray, np.ndarray] | None
             ) -> dict[str, Callable[[Prepared], Ranking]]:
    """Name -> ranking function; "current" is what `tamga search` does."""
    groups = section_groups(searcher)

    def reranked(p: Prepared) -> Ranking:
        return rerank(p.pool)

    def pooled(p: Prepared, beta: float) -> Ranking:
        cosine = vectors @ p.vector
        best = np.full(int(groups.max()) + 1, -1.0)
        np.maximum.at(best, groups, cosine)
        return hybrid(cosine + beta * best[groups], p.bm25)

    def rocchio(p: Prepared, beta: float) -> Ranking:
        first = [pos for pos, _ in hybrid(vectors @ p.vector, p.bm25)[:3]]
        query = p.vector + beta * vectors[first].mean(axis=0)
        return hybrid(vectors @ (query / np.linalg.norm(query)), p.bm25)

    def one_per_text(p: Prepared, keep: int) -> Ranking:
        """The first `keep` results, then the best of each text (folder) not yet among them."""
        ranked = hybrid(vectors @ p.vector, p.bm25)
        head = ranked[:keep]
        seen = {searcher.sources[pos].split("/")[0] for pos, _ in head}
        for item in ranked[keep:30]:
            folder = searcher.sources[item[0]].split("/")[0]
            if folder not in seen and len(head) < 5:
                head.append(item)
                seen.add(folder)
        chosen = {pos for pos, _ in head}
        return head + [item for item in ranked if item[0] not in chosen]

    out: dict[str, Callable[[Prepared], Ranking]] = {
        "current (fusion, then re-ranking)": lambda p: reranked(p),
        "fusion only, no re-ranking": lambda p: hybrid(vectors @ p.vector, p.bm25),
        "pool by the multilingual cosine alone": lambda p: sorted(
            p.pool.multilingual.items(), key=lambda item: (-item[1], item[0])),
        "pool by MiniLM + multilingual cosine": lambda p: sorted(
            ((pos, p.pool.cosine.get(pos, 0.0) + p.pool.multilingual.get(pos, 0.0))
             for pos, _ in p.pool.fused), key=lambda item: (-item[1], item[0])),
        "vector share 0.5": lambda p: hybrid(vectors @ p.vector, p.bm25, share=0.5),
        "vector share 0.7": lambda p: hybrid(vectors @ p.vector, p.bm25, share=0.7),
        "candidates 30": lambda p: hybrid(vectors @ p.vector, p.bm25, depth=30),
        "candidates 100": lambda p: hybrid(vectors @ p.vector, p.bm25, depth=100),
        "query: half unexpanded": lambda p: hybrid(vectors @ (0.5 * p.vector + 0.5 * p.plain),
                                                   p.bm25),
        "query: max(expanded, plain)": lambda p: hybrid(
            np.maximum(vectors @ p.vector, vectors @ p.plain), p.bm25),
        "pseudo-relevance feedback 0.3": lambda p: rocchio(p, 0.3),
        "pseudo-relevance feedback 0.6": lambda p: rocchio(p, 0.6),
        "section pooling 0.1": lambda p: pooled(p, 0.1),
        "section pooling 0.3": lambda p: pooled(p, 0.3),
        "each text in the top 5 (keep 2)": lambda p: one_per_text(p, 2),
        "each text in the top 5 (keep 3)": lambda p: one_per_text(p, 3),
    }
    if sentences is not None:
        owner, sentence_matrix = sentences

        def best_sentence(query: np.ndarray) -> np.ndarray:
            best = np.full(len(searcher.ids), -1.0, dtype=np.float32)
            np.maximum.at(best, owner, sentence_matrix @ query)
            return best

        out["best sentence only"] = lambda p: hybrid(best_sentence(p.vector), p.bm25)
        out["chunk + best sentence, half each"] = lambda p: hybrid(
            0.5 * (vectors @ p.vector) + 0.5 * best_sentence(p.vector), p.bm25)
        out["max(chunk, best sentence)"] = lambda p: hybrid(
            np.maximum(vectors @ p.vector, best_sentence(p.vector)), p.bm25)
    return out


def reranker_table(
    searcher: Searcher, prepared: Sequence[Prepared], source_only: Sequence[str],
) -> list[tuple[Ranking, np.ndarray, np.ndarray]]:
    """Per question: the search's candidate pool, its `rerank_features` and which answer it."""
    tables = []
    for p in prepared:
        fused = p.pool.fused
        answers = np.array([
            any(is_hit(searcher.sources[pos], searcher.locators[pos], t, source_only)
                for t in p.question.targets)
            for pos, _ in fused
        ])
        tables.append((fused, rerank_features(p.pool), answers))
    return tables


def fit_reranker(tables: Sequence[tuple[Ranking, np.ndarray, np.ndarray]], c: float = 0.1) -> Any:
    """The logistic model behind RERANK_WEIGHTS, fitted on these questions' candidates
    (`c`: inverse strength of the L2 penalty)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    model.fit(np.vstack([t[1] for t in tables]), np.concatenate([t[2] for t in tables]))
    return model


def reranker_left_out(
    searcher: Searcher, prepared: Sequence[Prepared], source_only: Sequence[str],
    tables: Sequence[tuple[Ranking, np.ndarray, np.ndarray]], c: float = 0.1,
) -> tuple[float, float, float]:
    """Each question ranked by a re-ranker fitted on all the other questions."""
    ranks = []
    for left_out, p in enumerate(prepared):
        model = fit_reranker([t for n, t in enumerate(tables) if n != left_out], c)
        fused, features, _answers = tables[left_out]
        scores = model.decision_function(features)
        order = sorted(((pos, float(sc)) for (pos, _), sc in zip(fused, scores, strict=True)),
                       key=lambda item: (-item[1], item[0]))
        ranks.append(first_hit_rank(searcher._passages(order, RANK_DEPTH), p.question,
                                    source_only))
    return rank_figures(ranks)


def main(argv: Sequence[str] | None = None) -> int:
    """Print recall@1, recall@5 and MRR of every variant on a question set."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index built by tamga ingest")
    parser.add_argument("--questions", type=Path, required=True, nargs="+",
                        help="question sets (YAML), read together")
    parser.add_argument("--sentences", type=Path, help="also try sentence vectors, cached here")
    parser.add_argument("--fit", action="store_true",
                        help="fit the re-ranker on these questions and print its constants "
                             "for retrieval/search.py (development set only)")
    parser.add_argument("--C", type=float, default=0.1, dest="c",
                        help="inverse L2 penalty of the fit (default 0.1)")
    parser.add_argument("--use", default="",
                        help="fit only these features, by index in RERANK_FEATURES (e.g. 0,1,2,3); "
                             "the others get weight 0")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    questions: list[Question] = []
    source_only: tuple[str, ...] = ()
    for path in args.questions:
        more, only, _corpus = load_question_set(path)
        questions += more
        source_only = tuple(dict.fromkeys(source_only + tuple(only)))
    searcher = Searcher(args.index.expanduser().resolve(), warm=False)
    vectors = chunk_vectors(searcher)
    prepared = [Prepared(searcher, q) for q in questions]
    sentences = sentence_vectors(searcher, args.sentences) if args.sentences else None
    print(f"{len(questions)} questions, {len(searcher):,} chunks")
    if args.fit:
        use = [int(n) for n in args.use.split(",")] if args.use else list(
            range(len(RERANK_FEATURES)))
        tables = [(fused, features[:, use], answers)
                  for fused, features, answers in reranker_table(searcher, prepared, source_only)]
        model = fit_reranker(tables, args.c)
        # the fit weighs both classes equally; move the intercept back by the log odds of the
        # real class sizes, so that the score reads as a chance of answering (order unchanged)
        answers = np.concatenate([t[2] for t in tables])
        prior = float(np.log((~answers).sum() / answers.sum()))
        full = np.zeros(len(RERANK_FEATURES))
        full[use] = model.coef_[0]
        weights = ", ".join(f"{w:.4f}" for w in full)
        r1, r5, mrr = reranker_left_out(searcher, prepared, source_only, tables, args.c)
        print(f"features {use}, C={args.c}; fitted leaving each question out: "
              f"recall@1 {r1:.3f}, recall@5 {r5:.3f}, MRR {mrr:.3f}")
        print(f"RERANK_WEIGHTS = ({weights})\n"
              f"RERANK_INTERCEPT = {model.intercept_[0] - prior:.4f}")
        return 0
    print(f"{'variant':36} recall@1 recall@5  MRR@10")
    for name, rank in variants(searcher, vectors, sentences).items():
        r1, r5, mrr = score(searcher, prepared, source_only, rank)
        print(f"{name:36} {r1:8.3f} {r5:8.3f} {mrr:7.3f}")
    tables = reranker_table(searcher, prepared, source_only)
    r1, r5, mrr = reranker_left_out(searcher, prepared, source_only, tables)
    print(f"{'re-ranker fitted leaving each out':36} {r1:8.3f} {r5:8.3f} {mrr:7.3f}")
    for depth in (CANDIDATES, 100):
        share, size = pool_recall(searcher, prepared, source_only, vectors, depth)
        print(f"answer among the fused candidates ({depth} per ranking, {size:.0f} on average): "
              f"{share:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
