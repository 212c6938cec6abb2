"""Intent matching: which verified intent a question asks for, and how sure we are.

A question is compared with every intent's example phrasings by meaning (sentence embeddings
of the question with its slot values masked, so "What did Jefferson Food Distributors import
in 2024?" reads "What did Acme import in 2024?") and by keywords (each intent's keyword
patterns that occur).
The score of an intent is the similarity of the question to the centroid of its examples plus
a bonus per keyword hit (keywords are the intent's distinctive words, so they weigh a lot).
The example embeddings are computed once per Matcher (one serves every scope of an Assistant)
and cached on disk when a cache folder is given.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.intents import Intent, IntentLibrary, stem
from assistant.slots import MASKS, STOPWORDS

if TYPE_CHECKING:
    import numpy as np

KEYWORD_BONUS = 0.15  # added to the similarity per unit of keyword weight hit ...
MAX_KEYWORD_HITS = 3  # ... for at most this much weight
MISSING_KEYWORD_PENALTY = 0.15  # for an intent whose defining words the question lacks
# Stand-ins for the placeholders of example phrasings: the same words slot masking puts in
# questions, so that both sides read alike.
EXAMPLE_FILL = {
    "trader": MASKS["trader"], "period": MASKS["period"], "country": MASKS["country"],
    "hs": MASKS["hs"], "goods": MASKS["hs"], "office": MASKS["office"], "n": "10",
    "declaration": MASKS["declaration"],
}

def embed_texts(texts: list[str]) -> np.ndarray:
    """Unit-length sentence embeddings, one row per text (retrieval.embedding.embed serialises
    calls to the encoder: a question runs on one CPU thread, a batch on every core)."""
    from retrieval.embedding import embed

    return embed(texts)


# Words any question may use without asking for anything an intent must know about.
GENERIC_WORDS = frozenset([
    "customs", "declaration", "declarations", "goods", "trade", "trades", "traded", "data",
    "import", "imports", "imported", "importer", "importers", "importing", "export", "exports",
    "exported", "exporter", "exporters", "exporting", "value", "values", "valued", "country",
    "countries", "trader", "traders", "company", "companies", "firm", "firms", "business", "year",
    "years", "yearly", "month", "months", "monthly", "quarter", "quarters", "period", "periods",
    "total", "totals", "number", "numbers", "amount", "amounts", "much", "many", "show", "list",
    "give", "tell", "please", "see", "want", "know", "need", "find", "look", "check", "get", "got",
    "make", "made", "also", "only", "just", "first", "last", "latest", "recent", "this", "that",
    "next", "previous", "prior", "top", "most", "largest", "biggest", "main", "leading", "highest",
    "lowest", "ranked", "rank", "ranking", "compared", "overall", "all", "each", "per", "our",
    "their", "them", "they", "who", "what", "which", "when", "where", "how", "why", "does", "did",
    "done", "have", "has", "had", "was", "were", "will", "would", "could", "should", "can", "may",
    "might", "shall", "been", "being", "any", "some", "every", "other", "same", "such", "there",
    "here", "about", "into", "onto", "from", "with", "without", "over", "under", "between",
    "since", "until", "during", "before", "after", "duty", "duties", "tax", "taxes", "vat",
    "weight", "mass", "tonnes", "tons", "kilos", "kilograms", "chart", "graph", "table", "picture",
    "plot", "visualise", "visualize", "report", "summary", "summarise", "summarize", "breakdown",
    "break", "down", "split", "green", "yellow", "red", "channel", "channels", "office", "offices",
    "customs", "post", "posts", "item", "items", "shipment", "shipments", "consignment",
    "consignments", "right", "now", "today", "currently", "please", "thanks", "thank", "you",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "one", "two", "three", "four", "five", "six", "seven",
    "eight", "nine", "ten", "twenty", "hundred", "thousand", "million", "billion", "usd", "bring",
    "brings", "brought", "bringing", "came", "come", "comes", "coming", "arrive", "arrived",
    "arriving", "clear", "cleared", "clearing", "revenue", "receipts", "collected", "collect",
    "collecting", "paid", "pay", "pays", "payment", "payments",
])


def unexplained_words(masked: str, intent: Intent) -> list[str]:
    """Words of a (masked) question that neither the intent's own phrasings nor everyday
    question words account for: what an answer from this intent would ignore."""

    masks = {m.lower() for m in MASKS.values()}
    generic = {stem(w) for w in GENERIC_WORDS | STOPWORDS}
    out = []
    for word in re.findall(r"[a-z]+", masked.lower()):
        if len(word) < 3 or word in masks or word in STOPWORDS:
            continue
        if stem(word) in generic or stem(word) in intent.stems():
            continue
        if word not in out:
            out.append(word)
    return out


@dataclass(frozen=True)
class Match:
    """One intent's score for a question."""

    intent: Intent
    score: float
    similarity: float
    keywords: int
    example: str

    def to_json(self) -> dict[str, object]:
        """Plain data for logs and debugging."""
        return {"intent": self.intent.id, "score": round(self.score, 3),
                "similarity": round(self.similarity, 3), "keywords": self.keywords,
                "example": self.example}


class Matcher:
    """Scores intents for questions; build once, share between threads."""

    def __init__(self, library: IntentLibrary, cache_dir: Path | None = None) -> None:
        """`cache_dir`: where the example vectors are kept on disk (default: the Python
        environment's Tamga folder, where `make install` computes them once)."""
        from retrieval.embedding import environment_dir

        self.library = library
        self.cache_dir = cache_dir if cache_dir is not None else environment_dir()
        self._examples: list[tuple[Intent, str]] = [
            (intent, text)
            for intent in library
            for text in intent.example_texts(EXAMPLE_FILL)
        ]
        self._matrix: np.ndarray | None = None
        self._centroids: np.ndarray | None = None
        self._lock = threading.Lock()

    # -- example embeddings, computed once --------------------------------------------------------

    def _key(self) -> str:
        from retrieval.embedding import model_version

        digest = hashlib.sha256(model_version().encode())
        for _, text in self._examples:
            digest.update(text.encode() + b"\n")
        return digest.hexdigest()[:16]

    def matrix(self) -> np.ndarray:
        """The embeddings of every example phrasing (rows in library order)."""
        with self._lock:
            if self._matrix is None:
                self._matrix = self._load_or_embed()
            return self._matrix

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return Path(self.cache_dir) / f"intent-examples-{self._key()}.npy"

    def cached(self) -> bool:
        """True when the example vectors are already on disk (no encoder needed to load them)."""
        path = self._cache_path()
        return path is not None and path.exists()

    def _load_or_embed(self) -> np.ndarray:
        import numpy as np

        path = self._cache_path()
        matrix = None
        if path is not None and path.exists():
            try:
                cached = np.load(path)
                if cached.shape[0] == len(self._examples):
                    matrix = cached
            except (OSError, ValueError):
                matrix = None
        if matrix is None:
            matrix = embed_texts([text for _, text in self._examples])
        if path is not None and not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
                np.save(tmp, matrix)
                tmp.replace(path)
            except OSError:
                pass  # a read-only environment only costs a second or two next time
        return matrix

    # -- scoring ----------------------------------------------------------------------------------

    def centroids(self) -> np.ndarray:
        """One unit vector per intent: the mean of its example embeddings."""
        import numpy as np

        with self._lock:
            if self._centroids is None:
                matrix = self._matrix if self._matrix is not None else self._load_or_embed()
                self._matrix = matrix
                rows = []
                for intent in self.library:
                    members = [k for k, (it, _) in enumerate(self._examples) if it.id == intent.id]
                    c = matrix[members].mean(axis=0)
                    rows.append(c / np.linalg.norm(c))
                self._centroids = np.vstack(rows)
            return self._centroids

    def rank(self, masked: str, allowed: Callable[[Intent], bool] | None = None,
             vector: np.ndarray | None = None) -> list[Match]:
        """Intents for a masked question, best first (only those `allowed` passes)."""
        if vector is None:
            vector = embed_texts([masked])[0]
        centroid_sims = self.centroids() @ vector
        example_sims = self.matrix() @ vector
        best_example: dict[str, tuple[float, str]] = {}
        for k, (intent, text) in enumerate(self._examples):
            sim = float(example_sims[k])
            if intent.id not in best_example or sim > best_example[intent.id][0]:
                best_example[intent.id] = (sim, text)
        lowered = masked.lower()
        out = []
        for n, intent in enumerate(self.library):
            if allowed is not None and not allowed(intent):
                continue
            sim = float(centroid_sims[n])
            hits = intent.keyword_hits(lowered)
            score = sim + KEYWORD_BONUS * min(hits, MAX_KEYWORD_HITS)
            if intent.requires_keyword and hits == 0:
                score -= MISSING_KEYWORD_PENALTY
            out.append(Match(intent, score, sim, hits, best_example[intent.id][1]))
        out.sort(key=lambda m: (-m.score, m.intent.id))
        return out

    def question_vector(self, masked: str) -> np.ndarray:
        """The embedding of one masked question."""
        return embed_texts([masked])[0]

    def similar_examples(self, masked: str, k: int = 5) -> list[tuple[Intent, str, float]]:
        """The k example phrasings closest to a question (for an LLM's few-shot prompt)."""
        vector = embed_texts([masked])[0]
        sims = self.matrix() @ vector
        order = sims.argsort()[::-1]
        seen: set[str] = set()
        out = []
        for k_ in order:
            intent, text = self._examples[int(k_)]
            if intent.id in seen:
                continue
            seen.add(intent.id)
            out.append((intent, text, float(sims[int(k_)])))
            if len(out) >= k:
                break
        return out
