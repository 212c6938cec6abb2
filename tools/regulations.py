"""Regulation search as a tool: the best passages for a question, as citations, and quotes.

    citations = search_regulations(index_dir, "How long must an importer keep records?")
    quote = best_excerpt(citations[0].text, "How long must an importer keep records?")

Nothing here paraphrases: a quote is a run of whole sentences copied from the passage.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.answer import Citation

if TYPE_CHECKING:
    from retrieval.search import Searcher

QUOTE_CHARS = 480
_WORD = re.compile(r"[a-z]{4,}")


def search_regulations(index: Path | Searcher, query: str, k: int = 5,
                       source_filter: str | None = None, keep: float = 0.5) -> list[Citation]:
    """The best passages for `query` as citations, best first.

    `index` is an index folder or an open Searcher. Passages scoring below `keep` times the
    best score are dropped (they rarely answer the question). Raises TamgaError when there is
    no index or the query is empty.
    """
    if isinstance(index, str | Path):
        from retrieval.search import open_searcher

        searcher = open_searcher(Path(index))
    else:
        searcher = index
    passages = searcher.search(query, k=k, source_filter=source_filter)
    if not passages:
        return []
    top = passages[0].score
    return [Citation(p.source, p.locator, p.text, float(p.score), getattr(p, "title", ""))
            for p in passages if p.score >= keep * top]


def best_excerpt(text: str, question: str, limit: int = QUOTE_CHARS) -> str:
    """The run of whole sentences of `text` that shares most words with `question` (verbatim,
    with '...' where the passage goes on)."""
    clean = " ".join(text.split())
    if len(clean) <= limit:
        return clean
    sentences = [s for s in re.split(r"(?<=[.;:!?])\s+", clean) if s]
    wanted = {w[:5] for w in _WORD.findall(question.lower())}

    def score(sentence: str) -> int:
        return len(wanted & {w[:5] for w in _WORD.findall(sentence.lower())})

    best_start, best_score = 0, -1
    for k, sentence in enumerate(sentences):
        s = score(sentence)
        if s > best_score:
            best_start, best_score = k, s
    chosen = [sentences[best_start]]
    k = best_start + 1
    while k < len(sentences) and len(" ".join(chosen)) + len(sentences[k]) < limit:
        chosen.append(sentences[k])
        k += 1
    excerpt = " ".join(chosen)
    if len(excerpt) > limit:
        excerpt = excerpt[: limit - 3].rsplit(" ", 1)[0] + "..."
    prefix = "... " if best_start > 0 else ""
    suffix = " ..." if k < len(sentences) and not excerpt.endswith("...") else ""
    return prefix + excerpt + suffix
