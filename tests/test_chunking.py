"""Chunking and locators on the real regulation texts (read from ../shared/data) and small docs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from retrieval.chunking import ChunkingConfig, chunk_document, short_name
from retrieval.loaders import load_document
from retrieval.search import locator_matches
from tests.conftest import needs_shared_regulations, require_shared_regulations

REPO = Path(__file__).resolve().parents[1]
REGULATIONS = REPO.parent / "shared" / "data" / "regulations"
CONFIG = ChunkingConfig()


def chunks_of(relative: str):
    path = REGULATIONS / relative
    return chunk_document(load_document(path), relative)


def by_locator(chunks):
    return {c.locator: c for c in chunks}


@pytest.fixture(scope="module")
def valuation():
    require_shared_regulations()
    return chunks_of("wto/wto_customs_valuation_agreement.md")


@pytest.fixture(scope="module")
def kyoto():
    require_shared_regulations()
    return chunks_of("wco/revised_kyoto_convention.md")


@pytest.fixture(scope="module")
def hs():
    require_shared_regulations()
    return chunks_of("wco/hs_convention.md")


@needs_shared_regulations
def test_us_code_locators_normalise_the_narrow_no_break_space():
    raw = (REGULATIONS / "us-19-usc/chunck-634.md").read_text(encoding="utf-8")
    assert "§\u202f1592" in raw  # the data really has U+202F after the section sign
    chunks = chunks_of("us-19-usc/chunck-634.md")
    assert chunks, "no chunks"
    for chunk in chunks:
        assert chunk.locator.startswith("19 U.S.C. § 1592(c)"), chunk.locator
        assert "\u202f" not in chunk.locator and "\u202f" not in chunk.text
        assert chunk.title == (
            "19 U.S.C. § 1592. Penalties for fraud, gross negligence, and negligence"
        )
    # the long subsection is cut at its own paragraphs: (1) Fraud ... (4) Prior disclosure
    first = chunks[0]
    assert first.locator.startswith("19 U.S.C. § 1592(c)(1)-")
    assert locator_matches(first.locator, "19 U.S.C. § 1592(c)(2)")
    assert first.text.startswith("(1) Fraud")
    prior = [c for c in chunks if c.locator.startswith("19 U.S.C. § 1592(c)(4)")]
    assert prior and "discloses the circumstances of a violation" in prior[0].text


@needs_shared_regulations
def test_us_code_heading_only_file_gives_no_chunk():
    # chunck-104.md holds only division headings ("Administrative Provisions / part 1")
    assert chunks_of("us-19-usc/chunck-104.md") == []


@needs_shared_regulations
def test_us_code_short_subsection_is_one_chunk():
    chunks = chunks_of("us-19-usc/chunck-493.md")
    assert [c.locator for c in chunks] == ["19 U.S.C. § 1508(a)"]
    chunk = chunks[0]
    assert chunk.title == "19 U.S.C. § 1508. Recordkeeping"
    assert "make, keep, and render for examination and inspection records" in chunk.text
    # the index text carries the citation and headings; the passage text stays clean
    assert chunk.index_text.startswith("19 U.S.C. § 1508. Recordkeeping | 19 U.S.C. § 1508(a)")
    assert "Requirements" in chunk.index_text
    assert not chunk.text.startswith("19 U.S.C.")


@needs_shared_regulations
def test_us_code_section_without_subsections_splits_on_numbered_paragraphs():
    chunks = chunks_of("us-19-usc/chunck-887.md")  # § 1677 definitions, about 9,000 words
    assert len(chunks) > 20
    assert all(c.locator.startswith("19 U.S.C. § 1677(") for c in chunks)
    assert any(c.locator.startswith("19 U.S.C. § 1677(4)") for c in chunks)
    assert max(c.words for c in chunks) <= CONFIG.max_words


def test_valuation_agreement_articles_paragraphs_and_notes(valuation):
    locators = by_locator(valuation)
    assert short_name(valuation[0].title) == "Agreement on Customs Valuation"
    assert valuation[0].title.startswith("Agreement on implementation of article VII")
    related = next(
        c for c in valuation if "shall not in itself be grounds for regarding" in c.text
    )
    assert related.locator == "Agreement on Customs Valuation > Article 1 > 2(a)"
    article_1_1 = "Agreement on Customs Valuation > Article 1 > 1(a)"
    assert any(locator_matches(loc, article_1_1) for loc in locators)
    # short articles stay whole, with their own citation
    assert "Agreement on Customs Valuation > Article 12" in locators
    royalties = next(
        c for c in valuation if "royalties and licence fees related to the goods" in c.text
    )
    assert royalties.locator.startswith("Agreement on Customs Valuation > Article 8 > 1(c)")
    # interpretative notes (Annex I) get their own locators
    notes = [c.locator for c in valuation if "> Annex I > Note to Article 1" in c.locator]
    paragraph_1b = "Agreement on Customs Valuation > Annex I > Note to Article 1 > Paragraph 1b)"
    assert any(n.startswith(paragraph_1b) for n in notes)
    assert any("Note to Article 1 > Paragraph 2" in n for n in notes)
    assert any(loc.endswith("Annex I > Note to Article 8 > Paragraph 1c)") for loc in locators)


def test_kyoto_convention_standards_and_no_dutch(kyoto):
    locators = by_locator(kyoto)
    assert kyoto[0].title == (
        "International Convention on the simplification and harmonization of Customs "
        "procedures (as amended)"
    )
    audit = locators["Revised Kyoto Convention > General Annex > Chapter 6 > 6.6"]
    assert audit.text == "Customs control systems shall include audit-based controls."
    assert "Standard" in audit.index_text and "CUSTOMS CONTROL" in audit.index_text
    assert any(loc.startswith("Revised Kyoto Convention > Article 1 ") for loc in locators)
    assert "Revised Kyoto Convention > General Annex > Chapter 10 > 10.1" in locators
    # the Dutch translation that follows the English text in the file is left out
    assert not any("douane" in c.text.lower() for c in kyoto)
    assert not any("Artikel" in c.locator or "HOOFDSTUK" in c.locator for c in kyoto)


def test_hs_convention_rules_and_notes(hs):
    locators = [c.locator for c in hs]
    rule3 = next(c for c in hs if "most specific description shall be preferred" in c.text)
    rule3b = "HS Convention > General Interpretative Rules > Rule 3(b)"
    assert locator_matches(rule3.locator, rule3b)
    assert rule3.locator.startswith("HS Convention > General Interpretative Rules > Rule")
    assert any(loc.startswith("HS Convention > Section XI > Chapter 61 > Note") for loc in locators)
    assert any(loc.startswith("HS Convention > Section XI > Note") for loc in locators)
    chapter61 = "HS Convention > Section XI > Chapter 61 > Heading 61."
    assert any(loc.startswith(chapter61) for loc in locators)
    assert any(loc.startswith("HS Convention > Article 3 > 1") for loc in locators)
    # the table of contents is not indexed as text; no Dutch
    assert not any("TABLE OF CONTENTS" in c.text for c in hs)
    assert not any("Verdrag" in c.text for c in hs)


@pytest.mark.parametrize(("relative", "english_share"), [
    ("wto/wto_customs_valuation_agreement.md", 1.0),
    ("wto/wto_rules_of_origin_agreement.md", 1.0),
    ("wto/wto_preshipment_inspection_agreement.md", 1.0),
    ("wto/wto_import_licensing_agreement.md", 1.0),
    ("wco/revised_kyoto_convention.md", 0.47),  # the second half of the file is in Dutch
])
@needs_shared_regulations
def test_real_treaties_respect_size_limits(relative, english_share):
    chunks = chunks_of(relative)
    assert chunks
    assert all(0 < c.words <= CONFIG.max_words for c in chunks), max(c.words for c in chunks)
    assert len({c.ordinal for c in chunks}) == len(chunks)
    name = short_name(chunks[0].title)
    assert all(c.locator.startswith(name + " > ") for c in chunks)
    # nothing is lost: almost every word of the body lands in some chunk
    source_words = load_document(REGULATIONS / relative).word_count
    assert sum(c.words for c in chunks) >= 0.9 * english_share * source_words


def test_hs_chunks_respect_the_hard_cap(hs):
    assert len(hs) > 300
    assert max(c.words for c in hs) <= CONFIG.max_words


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_generic_markdown_heading_path_and_merging(tmp_path):
    doc = write(tmp_path / "note.md", """# Valuation guide

Short intro.

## Related parties

### Who is related

Two persons are related when one controls the other or both are controlled by a third person.

### Testing the price

The importer may show that the price closely approximates a test value accepted at about the
same time, for identical or similar goods sold to unrelated buyers.

## Record keeping

Keep the records for five years.
""")
    chunks = chunk_document(load_document(doc), "note.md")
    locators = [c.locator for c in chunks]
    assert all(c.title == "Valuation guide" for c in chunks)
    # tiny sections are merged with their neighbours under the same parent
    assert "Valuation guide > Related parties" in locators
    merged = next(c for c in chunks if c.locator == "Valuation guide > Related parties")
    assert "controls the other" in merged.text and "test value" in merged.text
    assert any("five years" in c.text for c in chunks)
    assert all("Short intro" in c.text or "Short intro" not in c.index_text for c in chunks)


def test_long_paragraphs_are_split_by_size_with_overlap(tmp_path):
    sentences = [
        f"Sentence number {i} says something about customs valuation rule {i}." for i in range(200)
    ]
    doc = write(tmp_path / "long.md", "# Long\n\n## Part\n\n" + " ".join(sentences) + "\n")
    chunks = chunk_document(load_document(doc), "long.md")
    assert len(chunks) >= 5
    assert all(c.words <= CONFIG.max_words for c in chunks)
    assert all(c.locator == "Long > Part" for c in chunks)
    for a, b in itertools.pairwise(chunks):
        last_sentence = a.text.split(". ")[-1]
        assert last_sentence.rstrip(".") in b.text  # consecutive windows overlap
    joined = " ".join(c.text for c in chunks)
    assert all(f"rule {i}." in joined for i in range(200))


def test_locator_matching_handles_parents_parts_and_ranges():
    assert locator_matches("Agreement on Customs Valuation > Article 1",
                           "Agreement on Customs Valuation > Article 1 > 2(a)")
    assert locator_matches("Agreement on Customs Valuation > Article 1 > 2(a)-(c)",
                           "Agreement on Customs Valuation > Article 1 > 2(b)")
    assert not locator_matches("Agreement on Customs Valuation > Article 1",
                               "Agreement on Customs Valuation > Article 12")
    assert locator_matches("Revised Kyoto Convention > General Annex > Chapter 6 > 6.1-6.8",
                           "Revised Kyoto Convention > General Annex > Chapter 6 > 6.6")
    assert not locator_matches("Revised Kyoto Convention > General Annex > Chapter 6 > 6.1-6.5",
                               "Revised Kyoto Convention > General Annex > Chapter 6 > 6.6")
    assert locator_matches("19 U.S.C. § 1592(c)(1)-(3)", "19 U.S.C.\u202f§\u202f1592(c)(2)")
    assert locator_matches("19 U.S.C. § 1592(c)", "19 U.S.C. § 1592(c)(4)")
    assert not locator_matches("19 U.S.C. § 1592(c)", "19 U.S.C. § 1592(d)")
    assert locator_matches("HS Convention > General Interpretative Rules > Rule 1-2",
                           "HS Convention > General Interpretative Rules > Rule 2(a)")
    assert locator_matches("Agreement on Customs Valuation > Article 8 > 1(c)-2",
                           "Agreement on Customs Valuation > Article 8 > 1(d)")
    assert not locator_matches("Agreement on Customs Valuation > Article 8 > 1(c)-2",
                               "Agreement on Customs Valuation > Article 8 > 3")
    assert locator_matches("19 U.S.C. § 1677(4)(E)(iii)-(5)(A)", "19 U.S.C. § 1677(4)(F)")
    assert locator_matches("HS Convention > Section XI > Chapter 61 > Heading 61.01-61.03",
                           "HS Convention > Section XI > Chapter 61 > Heading 61.02")
    assert locator_matches("HS Convention > Section XI > Note 1-3",
                           "HS Convention > Section XI > Note 2")


def test_treaty_provisions_are_embedded_without_their_header(kyoto, valuation):
    # the instrument's long title and captions go to keyword search only (index_text); the
    # embedding model sees the provision itself, so short Kyoto standards stay distinct
    audit = by_locator(kyoto)["Revised Kyoto Convention > General Annex > Chapter 6 > 6.6"]
    assert audit.embed_text == audit.text
    assert audit.index_text.endswith(audit.text) and audit.index_text != audit.text
    assert all(c.embed_text == c.text for c in valuation)


@needs_shared_regulations
def test_us_code_and_generic_chunks_embed_their_index_text(tmp_path):
    [record] = chunks_of("us-19-usc/chunck-495.md")
    assert record.embed_text == ""  # the section caption ("Recordkeeping") stays in the vector
    assert "Recordkeeping" in record.index_text
    note = tmp_path / "note.md"
    note.write_text("# Guidance\n\n## Records\n\nKeep records for five years.\n", encoding="utf-8")
    [chunk] = chunk_document(load_document(note), "note.md")
    assert chunk.embed_text == ""
