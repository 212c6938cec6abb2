"""Worked examples for the plan filler: a bank of officers' questions with their draft lines
(assistant/plan_examples.yaml, written for this project), and the nearest ones to a question.

A small model copies the form of the examples it has just read far better than it follows a
description, so each question is preceded by the few bank questions that share the most
(weighted) words with it. Similarity is TF-IDF cosine over lower-case word stems: no model, a
few milliseconds, the same answer every time.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

BANK_FILE = Path(__file__).with_name("plan_examples.yaml")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "and", "or", "is", "are", "was",
    "were", "be", "been", "do", "does", "did", "what", "which", "who", "how", "me", "my", "our",
    "we", "us", "i", "it", "its", "this", "that", "these", "those", "there", "from", "with",
    "per", "than", "as", "into",
})


@dataclass(frozen=True)
class Example:
    """One bank question and the draft line that answers it."""

    question: str
    line: str


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms(text: str) -> list[str]:
    """The stems of a question's content words (digits kept: years, quarters, HS codes)."""
    return [_stem(w) for w in _WORD.findall(text.lower().replace("’", "'")) if w not in _STOP]


class ExampleBank:
    """The bank, with IDF weights over its questions."""

    def __init__(self, examples: list[Example]) -> None:
        """`examples` in bank order (ties in similarity keep this order)."""
        self.examples = examples
        docs = [Counter(terms(e.question)) for e in examples]
        df: Counter[str] = Counter(t for d in docs for t in d)
        n = len(docs)
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        self._vectors = [self._vector(d) for d in docs]

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        vec = {t: (1 + math.log(c)) * self.idf.get(t, 0.0) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def nearest(self, question: str, k: int = 6) -> list[Example]:
        """The `k` examples most like `question`, the most similar last (nearest the question
        in the prompt); examples sharing no word are not returned."""
        query = self._vector(Counter(terms(question)))
        scored = [(sum(w * vec.get(t, 0.0) for t, w in query.items()), -i)
                  for i, vec in enumerate(self._vectors)]
        best = sorted((s for s in scored if s[0] > 0), reverse=True)[:k]
        return [self.examples[-i] for _score, i in reversed(best)]


def load_examples(path: Path = BANK_FILE) -> list[Example]:
    """The examples of a bank file (`examples: [{q, plan}, ...]`)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [Example(str(item["q"]), str(item["plan"])) for item in data.get("examples", [])]


@lru_cache(maxsize=1)
def default_bank() -> ExampleBank:
    """The bank shipped with Tamga (loaded once)."""
    return ExampleBank(load_examples())
