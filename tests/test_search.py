"""Search over a real index of the shared regulations (a subset, ingested once per session).

The subset: the four WTO agreements, the Revised Kyoto Convention and about 130 files of
Title 19 of the US Code (the valuation, entry, records, audit, protest and penalty sections
plus every 60th file as distractors), copied into a temporary folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.index import IndexStore
from retrieval.ingest import ingest_paths
from retrieval.search import (
    RERANK_FEATURES,
    RERANK_WEIGHTS,
    Candidates,
    Passage,
    RegulationsIndex,
    Searcher,
    embed_query,
    fuse,
    fuse_scores,
    locator_matches,
    open_searcher,
    rerank,
    rerank_features,
)
from retrieval.synonyms import expand_query
from tamga.errors import TamgaError
from tests.conftest import require_shared_regulations

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
REGULATIONS = REPO.parent / "shared" / "data" / "regulations"
US_CODE_FILES = sorted({
    *range(331, 344),  # § 1401a value
    *range(427, 437),  # § 1484 entry
    477,  # § 1500 appraisement
    *range(493, 528),  # § 1508 records, § 1509 examination of books, § 1514 protests
    *range(596, 604),  # § 1581 boarding and search
    *range(632, 644),  # § 1592 penalties
    *range(714, 719),  # § 1625 interpretive rulings
    *range(0, 2571, 60),  # distractors from the whole title
})


@pytest.fixture(scope="session")
def regulations_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_shared_regulations()
    corpus = tmp_path_factory.mktemp("regulations")
    (corpus / "wto").mkdir()
    (corpus / "wco").mkdir()
    (corpus / "us-19-usc").mkdir()
    for path in (REGULATIONS / "wto").glob("*.md"):
        shutil.copy(path, corpus / "wto")
    shutil.copy(REGULATIONS / "wco" / "revised_kyoto_convention.md", corpus / "wco")
    for n in US_CODE_FILES:
        shutil.copy(REGULATIONS / "us-19-usc" / f"chunck-{n}.md", corpus / "us-19-usc")
    index = tmp_path_factory.mktemp("regulations-index")
    started = time.perf_counter()
    summary = ingest_paths([corpus], index)
    elapsed = time.perf_counter() - started
    print(f"\nindexed {summary.chunks_added} chunks of the regulations subset in {elapsed:.1f} s")
    assert summary.files_indexed >= len(US_CODE_FILES) + 4
    assert ("us-19-usc/chunck-0.md", "empty file") in summary.files_skipped
    return index


# (question in an officer's words, expected source, expected locator)
QUESTIONS = [
    ("Can customs reject the price because buyer and seller are related?",
     "wto/wto_customs_valuation_agreement.md", "Agreement on Customs Valuation > Article 1 > 2"),
    ("How long do I keep records?",
     "us-19-usc/chunck-495.md", "19 U.S.C. § 1508(c)"),
    ("Do customs have to carry out audit-based controls?",
     "wco/revised_kyoto_convention.md",
     "Revised Kyoto Convention > General Annex > Chapter 6 > 6.6"),
    ("What is the highest fine for a negligent false declaration?",
     "us-19-usc/chunck-634.md", "19 U.S.C. § 1592(c)"),
    ("Do royalties paid to the licensor go into the customs value?",
     "wto/wto_customs_valuation_agreement.md", "Agreement on Customs Valuation > Article 8 > 1"),
    ("Which exchange rate converts the invoice currency?",
     "wto/wto_customs_valuation_agreement.md", "Agreement on Customs Valuation > Article 9"),
    ("Can an exporter get a binding assessment of origin before shipping?",
     "wto/wto_rules_of_origin_agreement.md", "Agreement on Rules of Origin > Article 2"),
]


def found_at(passages: list[Passage], source: str, locator: str) -> int | None:
    for rank, passage in enumerate(passages, 1):
        if passage.source == source and locator_matches(passage.locator, locator):
            return rank
    return None


@pytest.mark.parametrize(("question", "source", "locator"), QUESTIONS)
def test_questions_find_their_passage(regulations_index: Path, question, source, locator):
    passages = open_searcher(regulations_index).search(question, k=5)
    rank = found_at(passages, source, locator)
    shown = [(p.source, p.locator) for p in passages]
    assert rank is not None, f"{locator} not in the top 5: {shown}"


def test_results_are_cited_sorted_and_deduplicated(regulations_index: Path):
    searcher = open_searcher(regulations_index)
    passages = searcher.search("penalty for fraud gross negligence", k=10)
    assert len(passages) == 10
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    keys = [(p.source, p.locator) for p in passages]
    assert len(set(keys)) == len(keys)
    for p in passages:
        assert p.locator and p.text and p.source and p.chunk_id
        assert "\u202f" not in p.locator
        assert set(p.to_json()) == {"source", "locator", "text", "score"}


def test_source_filter_and_modes(regulations_index: Path):
    searcher = open_searcher(regulations_index)
    only_kyoto = searcher.search("appeal against a decision", k=5, source_filter="KYOTO")
    assert only_kyoto and all("kyoto" in p.source for p in only_kyoto)
    only_file = searcher.search("records", k=3, source_filter="chunck-495")
    assert [p.source for p in only_file] == ["us-19-usc/chunck-495.md"]
    assert searcher.search("records", k=3, source_filter="no-such-document") == []

    question = "customs control systems audit-based controls"
    vector = searcher.search(question, k=5, mode="vector")
    keyword = searcher.search(question, k=5, mode="keyword")
    hybrid = searcher.search(question, k=5, mode="hybrid")
    assert all(-1.0 <= p.score <= 1.0 for p in vector)
    assert all(p.score > 0 for p in keyword)
    assert all(0 < p.score < 1.0 for p in hybrid)  # the re-ranker's output
    # a word that exists only as a keyword (a section number) is found by BM25
    assert searcher.search("1592", k=3, mode="keyword")[0].locator.startswith("19 U.S.C. § 1592")
    with pytest.raises(TamgaError):
        searcher.search("   ")
    with pytest.raises(TamgaError):
        searcher.search("records", mode="fuzzy")  # type: ignore[arg-type]


def test_plain_words_are_expanded_to_the_legal_terms(regulations_index: Path):
    # Kyoto Chapter 5 speaks of "security", never of a "guarantee": without the synonym list
    # keyword search cannot connect them
    searcher = open_searcher(regulations_index)
    question = "How large a guarantee can customs demand?"
    chapter5 = [i for i, loc in enumerate(searcher.locators) if "> Chapter 5 > 5." in loc]
    assert chapter5
    raw = searcher.keyword.scores("guarantee")
    expanded = searcher.keyword_scores("guarantee")
    assert all(raw[i] == 0 for i in chapter5)
    assert all(expanded[i] > 0 for i in chapter5)
    found = searcher.search(question, k=5, mode="keyword", source_filter="kyoto")
    assert any("> Chapter 5 > 5." in p.locator for p in found), [p.locator for p in found]


def test_searcher_is_cached_and_reloaded_after_changes(regulations_index: Path, tmp_path: Path):
    regulations = RegulationsIndex(regulations_index)
    first = regulations.searcher()
    assert regulations.searcher() is first
    assert len(first) == IndexStore(regulations_index).count_chunks()
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "circular.md").write_text(
        "# Circular 7/2026\n\n## Perishable goods\n\n"
        "Consignments of fresh strawberries are released within two hours at the border "
        "crossing; the officer on duty may take samples afterwards.\n",
        encoding="utf-8",
    )
    ingest_paths([extra], regulations_index)
    second = regulations.searcher()
    assert second is not first
    top = second.search("how fast are fresh strawberries released", k=1)[0]
    assert top.source == "circular.md" and top.locator == "Circular 7/2026 > Perishable goods"
    # the real texts are still there
    assert second.search("audit-based controls", k=3, source_filter="kyoto")


def test_search_latency(regulations_index: Path):
    searcher = open_searcher(regulations_index)
    queries = [q for q, _, _ in QUESTIONS] * 3
    searcher.search("warm", k=5)
    timings = []
    for query in queries:
        started = time.perf_counter()
        searcher.search(query, k=5)
        timings.append(time.perf_counter() - started)
    timings.sort()
    median = timings[len(timings) // 2]
    print(f"\nsearch latency over {len(timings)} queries: median {median * 1000:.0f} ms")
    assert median < 2.0  # generous: the machine is shared; see docs/retrieval.md for p95


def test_fusion_rewards_agreement_between_rankings():
    vector = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (4, 11.0), (1, 9.0)]
    fused = fuse(vector, keyword, k=20, vector_weight=1.0, keyword_weight=1.0)
    order = [pos for pos, _ in fused]
    assert order[:2] == [1, 3]  # in both lists beats first place in one
    assert set(order) == {1, 2, 3, 4}
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)


def test_score_fusion_keeps_margins():
    # chunk 7 is mid-table for meaning but far ahead on keywords: with equal shares it wins,
    # where rank fusion would put the vector ranking's first place (chunk 1) on top
    cosine = {1: 0.62, 2: 0.60, 3: 0.50, 7: 0.56}
    bm25 = {7: 9.0, 1: 3.0, 4: 2.5}
    fused = fuse_scores(cosine, bm25, vector_share=0.5)
    assert fused[0][0] == 7
    assert {pos for pos, _ in fused} == {1, 2, 3, 4, 7}
    assert all(0.0 <= s <= 1.0 for _, s in fused)
    assert fuse(sorted(cosine.items(), key=lambda x: -x[1]),
                sorted(bm25.items(), key=lambda x: -x[1]))[0][0] == 1
    assert fuse_scores({}, {}) == []
    only_vector = fuse_scores({5: 0.3, 6: 0.5}, {})
    assert [pos for pos, _ in only_vector] == [6, 5]


def _pool(fused, cosine, multilingual, bm25, words, coverage=None, heading=None,
          statute=None) -> Candidates:
    return Candidates(fused, cosine, multilingual, bm25, words, coverage or {}, heading or {},
                      statute or {})


def test_rerank_features_are_the_documented_signals():
    pool = _pool([(1, 0.8), (2, 0.6), (3, 0.3)], {1: 0.5, 2: 0.7, 3: 0.4},
                 {1: 0.80, 2: 0.90, 3: 0.85}, [0.0, 2.0, 6.0, 4.0], [0, 400, 20, 20],
                 {1: 0.5, 2: 1.0}, {2: 0.5}, {3: 1.0})
    rows = rerank_features(pool)
    assert rows.shape == (3, len(RERANK_FEATURES)) == (3, len(RERANK_WEIGHTS))
    assert list(rows[:, 0]) == [0.8, 0.6, 0.3]                       # fused score
    assert list(rows[:, 1]) == pytest.approx(np.log1p([1, 0, 2]))   # rank by MiniLM cosine
    assert list(rows[:, 2]) == pytest.approx(np.log1p([2, 0, 1]))   # rank by BM25
    assert list(rows[:, 3]) == pytest.approx(np.log1p([400, 20, 20]))
    assert list(rows[:, 4]) == pytest.approx(np.log1p([2, 0, 1]))   # rank by multilingual
    assert list(rows[:, 5]) == pytest.approx([0.0, 1.0, 0.5])       # multilingual, min-max
    assert list(rows[:, 6]) == [0.5, 1.0, 0.0]                      # keyword coverage
    assert list(rows[:, 7]) == [0.0, 0.5, 0.0]                      # ... in the heading
    assert list(rows[:, 8]) == [0.0, 0.0, 1.0]                      # statute section


def test_rerank_prefers_agreement_and_the_shorter_passage():
    # chunks 1 and 2: the same evidence everywhere (ties rank 1 first in each ranking); 2 is a
    # one-sentence passage, 1 a long subsection (the fit on 104 questions weighs length less
    # than the one on 54 did: 20 against 400 words no longer outweighs three rank ties)
    pool = _pool([(1, 0.8), (2, 0.8), (3, 0.3)], {1: 0.6, 2: 0.6, 3: 0.4},
                 {1: 0.85, 2: 0.85, 3: 0.80}, [0.0, 5.0, 5.0, 1.0], [0, 1200, 20, 20],
                 {1: 1.0, 2: 1.0, 3: 0.5})
    ranked = rerank(pool)
    assert [pos for pos, _ in ranked] == [2, 1, 3]
    assert all(0.0 < score < 1.0 for _, score in ranked)
    assert ranked[0][1] > ranked[1][1] > ranked[2][1]
    # first in all three rankings beats a slightly higher fused score that none puts first
    pool = _pool([(6, 0.75), (4, 0.74), (5, 0.2)], {4: 0.70, 5: 0.50, 6: 0.65},
                 {4: 0.88, 5: 0.80, 6: 0.84}, [0.0, 0.0, 0.0, 0.0, 9.0, 1.0, 6.0], [50] * 7,
                 {4: 1.0, 5: 0.5, 6: 1.0})
    assert rerank(pool)[0][0] == 4
    assert rerank(_pool([], {}, {}, [], [])) == []
    # a keyword-only candidate whose vectors are missing (interrupted ingest) still gets a place
    ranked = rerank(_pool([(4, 0.74), (9, 0.5)], {4: 0.7}, {4: 0.86}, [0.0] * 9 + [3.0],
                          [50] * 10))
    assert [pos for pos, _ in ranked] == [4, 9]
    # a statute section needs more evidence than a treaty provision with the same signals
    signals = ([(1, 0.8), (2, 0.7)], {1: 0.6, 2: 0.6}, {1: 0.85, 2: 0.84}, [0.0, 5.0, 4.0],
               [0, 60, 60])
    assert [pos for pos, _ in rerank(_pool(*signals))] == [1, 2]
    as_statute = dict(rerank(_pool(*signals, statute={1: 1.0})))
    assert as_statute[1] < dict(rerank(_pool(*signals)))[1]


def test_hybrid_search_pools_three_rankings_then_reranks(regulations_index: Path):
    # the pool is the union of the MiniLM, multilingual and BM25 rankings, every candidate
    # carries both cosines, and search returns the pool in the fitted re-ranker's order
    from retrieval.multilingual import embed_question

    searcher = open_searcher(regulations_index)
    question = "Can we ask the importer for a guarantee, and how big?"
    depth = 50
    vector = searcher.vector_ranking(embed_query(expand_query(question)), depth)
    multilingual = searcher.vector_ranking(embed_question(question), depth, multilingual=True)
    keyword = searcher.keyword_ranking(question, depth)
    pool = searcher.candidates(question, depth)
    union = {p for p, _ in vector} | {p for p, _ in multilingual} | {p for p, _ in keyword}
    assert {pos for pos, _ in pool.fused} == union
    assert set(pool.cosine) == union and set(pool.multilingual) == union
    assert len(multilingual) == depth and not {p for p, _ in multilingual} <= {
        p for p, _ in vector} | {p for p, _ in keyword}
    assert all(0.0 <= share <= 1.0 for share in pool.coverage.values())
    expected = searcher._passages(rerank(pool), 5)
    got = searcher.search(question, k=5)
    assert [p.chunk_id for p in got] == [p.chunk_id for p in expected]
    assert [round(p.score, 9) for p in got] == [round(p.score, 9) for p in expected]


def test_searcher_on_missing_index(tmp_path: Path):
    with pytest.raises(TamgaError, match="No regulations index"):
        Searcher(tmp_path / "missing")
