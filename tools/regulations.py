"""Regulation search as a tool: the best passages for a question, as citations, and quotes.

    citations = search_regulations(retriever, "How long must an importer keep records?")
    quote = best_excerpt(citations[0].text, "How long must an importer keep records?")

The tools do not know how passages are found: they take a `Retriever` (the hybrid searcher of
retrieval/search.py, passed in by the assistant, the CLI or the web app). Nothing here
paraphrases: a quote is a run of whole sentences copied from the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from tamga.answer import Citation


class Passage(Protocol):
    """One passage a retriever found: where it is, its text and how well it matches."""

    @property
    def source(self) -> str:
        """The document, relative to the folder it was ingested from."""
        ...

    @property
    def locator(self) -> str:
        """Heading path or article/section number."""
        ...

    @property
    def text(self) -> str:
        """The passage as written."""
        ...

    @property
    def score(self) -> float:
        """Higher is better."""
        ...

    @property
    def title(self) -> str:
        """The document's title."""
        ...


class Retriever(Protocol):
    """Finds passages of the regulations and guidance for a query."""

    def search(self, query: str, k: int = 5, source_filter: str | None = None
               ) -> Sequence[Passage]:
        """The best `k` passages, best first; raises TamgaError when there is no index."""
        ...


def as_citation(passage: Passage) -> Citation:
    """A found passage as the citation an answer carries."""
    return Citation(passage.source, passage.locator, passage.text, float(passage.score),
                    getattr(passage, "title", ""))

QUOTE_CHARS = 480
_WORD = re.compile(r"[a-z]{4,}")


def search_regulations(retriever: Retriever, query: str, k: int = 5,
                       source_filter: str | None = None, keep: float = 0.5) -> list[Citation]:
    """The best passages for `query` as citations, best first.

    Passages scoring below `keep` times the best score are dropped (they rarely answer the
    question). Raises TamgaError when there is no index or the query is empty.
    """
    passages = retriever.search(query, k=k, source_filter=source_filter)
    if not passages:
        return []
    top = passages[0].score
    return [as_citation(p) for p in passages if p.score >= keep * top]


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
