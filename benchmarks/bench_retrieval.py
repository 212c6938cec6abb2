"""Retrieval benchmark: recall@1, recall@5 and MRR per search mode, latency and ingest speed.

Ingests the whole shared regulations corpus (../shared/data/regulations) into a fresh
temporary index, or reuses `--index DIR`, then asks every question of
benchmarks/retrieval_questions.yaml in vector-only, keyword-only and hybrid mode.

    .venv/bin/python benchmarks/bench_retrieval.py [--index DIR] [--verbose] [--json FILE]
        [--questions FILE] [--no-ingest]

`--questions` picks the question set: benchmarks/retrieval_dev_questions.yaml is the
development set used for tuning; the default, retrieval_questions.yaml, is the evaluation set.
`--no-ingest` evaluates an existing index as it is (no ingest, no throughput figure).

A question counts as answered at rank r when the r-th passage has the expected source (and,
outside the US Code, a matching locator) or one of the `alt` pairs. This is a benchmark,
not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tamga.formatting import render_table

REPO_ROOT = Path(__file__).resolve().parents[1]
QUESTIONS_PATH = REPO_ROOT / "benchmarks" / "retrieval_questions.yaml"
MODES = ("vector", "keyword", "hybrid")
RANK_DEPTH = 10  # results fetched per question for recall and MRR


@dataclasses.dataclass(frozen=True)
class Target:
    """One acceptable answer: a document and a locator prefix within it."""

    source: str
    locator: str


@dataclasses.dataclass(frozen=True)
class Question:
    """One evaluation question with every passage that answers it."""

    id: str
    question: str
    targets: tuple[Target, ...]
    note: str


@dataclasses.dataclass
class ModeResult:
    """Quality figures for one search mode."""

    mode: str
    recall_at_1: float
    recall_at_5: float
    mrr: float
    ranks: dict[str, int | None]  # question id -> 1-based rank of the first hit, None if missed
    top: dict[str, list[tuple[str, str, float]]]  # question id -> first results


# ----------------------------------------------------------------------------- question set


def load_question_set(path: Path = QUESTIONS_PATH) -> tuple[list[Question], tuple[str, ...], Path]:
    """Read the YAML question set: (questions, source-only prefixes, corpus folder)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    questions = []
    for raw in data["questions"]:
        targets = [Target(raw["source"], raw["locator"])]
        targets += [Target(alt["source"], alt["locator"]) for alt in raw.get("alt") or []]
        questions.append(Question(raw["id"], raw["question"], tuple(targets), raw.get("note", "")))
    prefixes = tuple(data.get("source_only_prefixes") or ())
    corpus = (REPO_ROOT / data.get("corpus", "../shared/data/regulations")).resolve()
    return questions, prefixes, corpus


# ----------------------------------------------------------------------------- matching


def _norm(text: str) -> str:
    """Compare locators without whitespace (incl. narrow no-break spaces) or case."""
    return "".join(text.split()).casefold()


def _starts_at_boundary(text: str, prefix: str) -> bool:
    """`prefix` begins `text` and does not stop inside a number or word ('Article 1' vs '12')."""
    if not prefix or not text.startswith(prefix):
        return False
    if len(text) == len(prefix):
        return True
    return not (text[len(prefix)].isalnum() and prefix[-1].isalnum())


_RANGE = re.compile(r"^(\D*?)(\d+(?:\.\d+)*)[^\d\-]*-(\D*?)(\d+(?:\.\d+)*)")
_NUMBERED = re.compile(r"^(\D*?)(\d+(?:\.\d+)*)")


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split("."))


def _part_within(returned: str, expected: str) -> bool:
    """One locator level: '2(a)' is within '2'; the range 'Rule 1-2' contains 'Rule 2'."""
    if _starts_at_boundary(returned, expected):
        return True
    rng, one = _RANGE.match(returned), _NUMBERED.match(expected)
    if not rng or not one or rng.group(1) != one.group(1) or rng.group(3) not in ("", rng.group(1)):
        return False
    return _numbers(rng.group(2)) <= _numbers(one.group(2)) <= _numbers(rng.group(4))


def locator_matches(returned: str, expected: str) -> bool:
    """True when `returned` lies within `expected`, or is its immediate enclosing part.

    Levels are compared one by one ("A > B > C"). "Article 1 > 2(a)" is within "Article 1 > 2";
    a merged chunk "Rule 1-2" or "Note 3-5" counts for each rule or note it spans; "Article 1"
    encloses "Article 1 > 2" (a chunk holding a whole short article contains the paragraph).
    A bare document title never counts.
    """
    r = [_norm(part) for part in returned.split(">")]
    e = [_norm(part) for part in expected.split(">")]
    if len(r) >= len(e):  # as deep or deeper: same path, last expected level contains it
        return r[: len(e) - 1] == e[:-1] and _part_within(r[len(e) - 1], e[-1])
    if len(r) >= 2 and len(r) == len(e) - 1:  # the enclosing part
        return r[:-1] == e[: len(r) - 1] and (
            r[-1] == e[len(r) - 1] or _part_within(r[-1], e[len(r) - 1])
        )
    return False


def source_matches(returned: str, expected: str) -> bool:
    """Same document, also when the index was built from a parent folder of the corpus."""
    r = returned.replace("\\", "/").strip("/")
    e = expected.replace("\\", "/").strip("/")
    return r == e or r.endswith("/" + e)


def is_hit(source: str, locator: str, target: Target, source_only: Sequence[str]) -> bool:
    """Whether a returned passage (source, locator) answers for `target`."""
    if not source_matches(source, target.source):
        return False
    if any(target.source.startswith(p) for p in source_only):
        return True
    return locator_matches(locator, target.locator)


def first_hit_rank(
    results: Sequence[Any], question: Question, source_only: Sequence[str]
) -> int | None:
    """1-based rank of the first passage answering `question`, or None."""
    for rank, passage in enumerate(results, start=1):
        if any(is_hit(passage.source, passage.locator, t, source_only) for t in question.targets):
            return rank
    return None


# ----------------------------------------------------------------------------- running


def evaluate_mode(
    search: Callable[..., list[Any]],
    questions: Sequence[Question],
    mode: str,
    source_only: Sequence[str],
) -> ModeResult:
    """Ask every question in `mode` and score the ranked passages."""
    ranks: dict[str, int | None] = {}
    top: dict[str, list[tuple[str, str, float]]] = {}
    for q in questions:
        results = search(q.question, k=RANK_DEPTH, mode=mode)
        ranks[q.id] = first_hit_rank(results, q, source_only)
        top[q.id] = [(p.source, p.locator, float(p.score)) for p in results[:5]]
    recall_at_1, recall_at_5, mrr = rank_figures(list(ranks.values()))
    return ModeResult(
        mode=mode,
        recall_at_1=recall_at_1,
        recall_at_5=recall_at_5,
        mrr=mrr,
        ranks=ranks,
        top=top,
    )


def measure_latency(
    search: Callable[..., list[Any]], questions: Sequence[Question], repeat: int
) -> list[float]:
    """Milliseconds per hybrid search (k=5), warm, over all questions `repeat` times."""
    for q in questions[:5]:  # warm-up
        search(q.question, k=5, mode="hybrid")
    timings = []
    for _ in range(repeat):
        for q in questions:
            start = time.perf_counter()
            search(q.question, k=5, mode="hybrid")
            timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0-100) of `values`, linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[int(pct) - 1]


def _summary_dict(summary: Any) -> dict[str, Any]:
    """The ingest summary as a plain dict, whatever its exact type."""
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        return dataclasses.asdict(summary)
    if hasattr(summary, "model_dump"):
        return dict(summary.model_dump())
    return {k: v for k, v in vars(summary).items() if not k.startswith("_")}


def _throttled_progress(every_s: float = 5.0) -> Callable[[str], None]:
    """A progress callback printing at most one line every `every_s` seconds (stderr)."""
    last = [0.0]

    def report(message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            print(f"  {message}", file=sys.stderr, flush=True)

    return report


def _group(question: Question) -> str:
    """Which text a question is about: the folder of its expected source, or 'spanning'."""
    return "spanning" if question.id.startswith("x-") else question.targets[0].source.split("/")[0]


def unreachable_targets(
    questions: Sequence[Question], corpus: Path, source_only: Sequence[str]
) -> list[tuple[str, Target]]:
    """Targets that no chunk of their document can match, by running the chunker only."""
    from retrieval.chunking import chunk_document
    from retrieval.loaders import load_document

    locators: dict[str, list[str]] = {}
    missing = []
    for q in questions:
        for t in q.targets:
            if t.source not in locators:
                doc = load_document(corpus / t.source)
                locators[t.source] = [c.locator for c in chunk_document(doc, t.source)]
            if not any(is_hit(t.source, loc, t, source_only) for loc in locators[t.source]):
                missing.append((q.id, t))
    return missing


# ----------------------------------------------------------------------------- reporting


def _print_misses(result: ModeResult, questions: Sequence[Question]) -> None:
    """List the questions `result` did not answer in the top 5, with what came back."""
    misses = [q for q in questions if (result.ranks[q.id] or 99) > 5]
    print(f"\nMisses at 5, {result.mode} ({len(misses)}):")
    for q in misses:
        rank = result.ranks[q.id]
        where = f"rank {rank}" if rank else f"not in top {RANK_DEPTH}"
        print(f"- {q.id} ({where}): {q.question}")
        print(f"    expected {q.targets[0].source} | {q.targets[0].locator}")
        for source, locator, score in result.top[q.id][:3]:
            print(f"    got      {source} | {locator} | {score:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, help="reuse (or build) the index in DIR")
    parser.add_argument("--corpus", type=Path, help="folder to ingest (default: from the set)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS_PATH)
    parser.add_argument("--repeat", type=int, default=3, help="latency passes over the set")
    parser.add_argument("--verbose", action="store_true", help="list the misses per mode")
    parser.add_argument(
        "--no-ingest", action="store_true", help="search --index DIR as it is, without ingesting"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to FILE")
    parser.add_argument(
        "--check-locators",
        action="store_true",
        help="only check that the chunker produces every expected locator",
    )
    args = parser.parse_args(argv)

    from retrieval.ingest import ingest_paths
    from retrieval.search import open_searcher
    from tamga.settings import get_settings

    settings = get_settings()  # TAMGA_CHROMA_URL and TAMGA_MAX_DOCUMENT_MB, as `tamga ingest`

    questions, source_only, corpus = load_question_set(args.questions)
    corpus = (args.corpus or corpus).resolve()
    if not corpus.is_dir():
        print(f"corpus folder not found: {corpus}", file=sys.stderr)
        return 2
    if args.check_locators:
        missing = unreachable_targets(questions, corpus, source_only)
        for qid, t in missing:
            print(f"{qid}: no chunk of {t.source} matches {t.locator!r}")
        n_targets = sum(len(q.targets) for q in questions)
        print(f"{n_targets - len(missing)} of {n_targets} expected passages can be matched.")
        return 1 if missing else 0

    with tempfile.TemporaryDirectory(prefix="tamga-bench-") as tmp:
        index_dir = args.index or Path(tmp) / "index"
        if args.no_ingest:
            if args.index is None:
                print("--no-ingest needs --index DIR", file=sys.stderr)
                return 2
            info: dict[str, Any] = {}
            wall_s = 0.0
        else:
            print(f"Ingesting {corpus} into {index_dir} ...", file=sys.stderr)
            started = time.perf_counter()
            summary = ingest_paths(
                [corpus], index_dir, prune=False, progress=_throttled_progress(),
                max_file_mb=settings.max_document_mb, chroma_url=settings.chroma_url,
            )
            wall_s = time.perf_counter() - started
            info = _summary_dict(summary)
        added = int(info.get("chunks_added", 0))
        ingest_s = float(info.get("elapsed_s") or wall_s)
        chunks_per_s = added / ingest_s if added and ingest_s > 0 else None

        searcher = open_searcher(index_dir, chroma_url=settings.chroma_url)
        total_chunks = _index_size(searcher, info, added)
        results = [evaluate_mode(searcher.search, questions, m, source_only) for m in MODES]
        timings = measure_latency(searcher.search, questions, args.repeat)

    p50, p95 = percentile(timings, 50), percentile(timings, 95)
    print(f"\nQuestions: {len(questions)}   corpus: {corpus}")
    print(f"Index chunks: {total_chunks if total_chunks is not None else 'n/a'}")
    if chunks_per_s is not None:
        print(f"Ingest: {added:,} chunks in {ingest_s:.1f} s = {chunks_per_s:.1f} chunks/s")
    else:
        print("Ingest: nothing new to index (existing index reused)")
    print()
    print(
        render_table(
            ["mode", "recall@1", "recall@5", f"MRR@{RANK_DEPTH}"],
            [
                [r.mode, f"{r.recall_at_1:.3f}", f"{r.recall_at_5:.3f}", f"{r.mrr:.3f}"]
                for r in results
            ],
        )
    )
    hybrid = results[-1]
    rows = []
    for r in results:
        by_group: dict[str, list[int | None]] = defaultdict(list)
        for q in questions:
            by_group[_group(q)].append(r.ranks[q.id])
        for g, ranks in sorted(by_group.items()):
            rows.append([r.mode, g, len(ranks), *_figures(ranks)])
    print("\nBy text:")
    print(render_table(["mode", "text", "questions", "recall@1", "recall@5", "MRR"], rows))
    print(
        f"\nHybrid search latency (k=5, warm, {len(timings)} searches): "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    print(
        f"Targets: hybrid recall@5 >= 0.9 -> {hybrid.recall_at_5:.3f}; recall@1 >= 0.65 -> "
        f"{hybrid.recall_at_1:.3f}; p95 < 150 ms -> {p95:.1f} ms"
    )
    if args.verbose:
        for r in results:
            _print_misses(r, questions)

    if args.json:
        figures = {
            "questions": len(questions),
            "index_chunks": total_chunks,
            "ingest": {"chunks_added": added, "elapsed_s": ingest_s, "chunks_per_s": chunks_per_s},
            "modes": {
                r.mode: {
                    "recall_at_1": r.recall_at_1,
                    "recall_at_5": r.recall_at_5,
                    "mrr": r.mrr,
                    "ranks": r.ranks,
                }
                for r in results
            },
            "latency_ms": {"p50": p50, "p95": p95, "searches": len(timings)},
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def rank_figures(ranks: Sequence[int | None]) -> tuple[float, float, float]:
    """(recall@1, recall@5, MRR) of a list of first-hit ranks (None: not found)."""
    n = len(ranks) or 1
    r1 = sum(1 for x in ranks if x and x <= 1) / n
    r5 = sum(1 for x in ranks if x and x <= 5) / n
    mrr = sum(1.0 / x for x in ranks if x) / n
    return r1, r5, mrr


def _figures(ranks: Sequence[int | None]) -> list[str]:
    """recall@1, recall@5 and MRR of a list of first-hit ranks, formatted."""
    return [f"{value:.3f}" for value in rank_figures(ranks)]


def _index_size(searcher: Any, info: dict[str, Any], added: int) -> int | None:
    """How many chunks the index holds, from the searcher or the ingest summary if it says."""
    for name in ("count", "__len__"):
        fn = getattr(searcher, name, None)
        if callable(fn):
            try:
                return int(fn())
            except (TypeError, ValueError):
                pass
    for key in ("chunks_total", "total_chunks", "index_chunks"):
        if info.get(key) is not None:
            return int(info[key])
    return added or None


if __name__ == "__main__":
    sys.exit(main())
