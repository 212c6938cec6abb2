"""Do the questions each passage answers (retrieval/questions.py) help search? A controlled trial.

Questions exist for part of the shared corpus only (writing them costs about 4 s a passage
with the local model on 2 cores), and search uses them only when every candidate has them. So
the trial searches the documents whose passages all have questions (`--sources`, prefixes of
source paths), asks the questions whose expected passages lie there, and ranks each one with
and without the two question terms of `retrieval.search.rerank`. It also reports the weights
chosen for each question on the others (leave one out) over a small grid, the figure that says
how much of the gain survives choosing them.

    .venv/bin/python benchmarks/retrieval_questions_trial.py --index /tmp/r17-index \\
        --questions benchmarks/retrieval_dev_questions.yaml \\
        benchmarks/retrieval_dev_questions2.yaml

The index must have the question vectors (`tamga ingest` makes them for the shipped
questions). Use the development sets; the evaluation set is for the end of a round.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_retrieval import first_hit_rank, load_question_set, rank_figures

from retrieval import search as search_module
from retrieval.crosslingual import english_terms
from retrieval.search import Searcher, rerank

GRID = list(itertools.product([0.0, 0.5, 1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.0, 2.0]))


def _ranks(searcher: Searcher, pools: list[tuple[Any, Any, tuple[str, ...]]],
           weights: tuple[float, float]) -> list[int | None]:
    """First-hit rank of each question with these question weights."""
    saved = search_module.QUESTION_WEIGHTS
    search_module.QUESTION_WEIGHTS = weights
    try:
        return [first_hit_rank(searcher._passages(rerank(pool), 10), question, source_only)
                for question, pool, source_only in pools]
    finally:
        search_module.QUESTION_WEIGHTS = saved


def _pool(searcher: Searcher, question: str, allowed: list[int]) -> Any:
    """The pool `Searcher.search` re-ranks for `question` (a question read as not English is
    searched by its English terms, as there)."""
    if not searcher.reads_as_foreign(question):
        return searcher.candidates(question, 50, allowed)
    english = english_terms(question)
    if not english:
        raise SystemExit("A question with no known word is ordered without the re-ranker; "
                         "leave it out of the trial.")
    return searcher.candidates(english, 50, allowed, question)


def main(argv: list[str] | None = None) -> int:
    """Print recall@1, recall@5 and MRR with and without the question terms."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, nargs="+", required=True)
    parser.add_argument("--sources", nargs="+", default=["wto/", "wco/revised_kyoto"],
                        help="source path prefixes whose passages all have questions")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    searcher = Searcher(args.index, warm=False)
    prefixes = tuple(args.sources)
    allowed = [i for i, s in enumerate(searcher.sources) if s.startswith(prefixes)]
    if searcher.questions is None:
        print("The index has no question vectors: run `tamga ingest` on it first.")
        return 2
    covered = sum(1 for i in allowed if i in set(searcher.questions.owners.tolist()))
    print(f"{len(allowed):,} passages under {', '.join(prefixes)}; {covered:,} have questions.")
    pools = []
    for path in args.questions:
        questions, source_only, _ = load_question_set(path)
        for question in questions:
            if all(t.source.startswith(prefixes) for t in question.targets):
                pools.append((question, _pool(searcher, question.question, allowed),
                              source_only))
    print(f"{len(pools)} questions expect passages there.\n")
    print("weights (cosine, BM25)      recall@1  recall@5  MRR")
    rows = [("without questions", (0.0, 0.0)),
            ("with, as shipped", tuple(search_module.QUESTION_WEIGHTS))]
    for label, weights in rows:
        figures = rank_figures(_ranks(searcher, pools, weights))  # type: ignore[arg-type]
        print(f"{label:<26} " + "  ".join(f"{v:.3f}   " for v in figures))
    by_weights = {w: _ranks(searcher, pools, w) for w in GRID}
    left_out: list[int | None] = []
    for i in range(len(pools)):
        def mrr_without(w: tuple[float, float], i: int = i) -> tuple[float, float]:
            others = by_weights[w][:i] + by_weights[w][i + 1:]
            _r1, r5, mrr = rank_figures(others)
            return mrr, r5
        best = max(GRID, key=mrr_without)
        left_out.append(by_weights[best][i])
    print(f"{'chosen on the others':<26} "
          + "  ".join(f"{v:.3f}   " for v in rank_figures(left_out)))
    best_in = max(GRID, key=lambda w: rank_figures(by_weights[w])[2])
    print(f"\nBest in sample: {best_in} -> "
          + " / ".join(f"{v:.3f}" for v in rank_figures(by_weights[best_in])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
