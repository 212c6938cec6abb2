"""Ingest on real components: the packaged embedder, a real Chroma index, BM25 and the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from retrieval import embedding
from retrieval.chunking import chunk_document
from retrieval.index import IndexStore, read_generation
from retrieval.ingest import index_exists, ingest_paths
from retrieval.loaders import load_document
from retrieval.search import Searcher, open_searcher
from tamga.errors import IngestError, TamgaError

FILLER = (
    "The officer records what was checked, which documents were seen and who was present, so "
    "that a colleague can follow the reasoning later without asking."
)


def words(n: int, topic: str) -> str:
    """A paragraph of about n words about `topic` (enough to avoid merging tiny sections)."""
    out = [f"This part explains {topic}."]
    while len(" ".join(out).split()) < n:
        out.append(FILLER)
    return " ".join(out)


def make_markdown(path: Path) -> Path:
    path.write_text(
        "# Warehouse procedures\n\n"
        "## Bonded storage\n\n" + words(60, "bonded storage of zinc ingots") + "\n\n"
        "## Stock records\n\n" + words(60, "stock ledgers kept by the warehouse keeper") + "\n",
        encoding="utf-8",
    )
    return path


def make_text(path: Path) -> Path:
    path.write_text(
        "Transit guarantee memo\n\n"
        + words(60, "the comprehensive guarantee for transit movements")
        + "\n",
        encoding="utf-8",
    )
    return path


def make_html(path: Path) -> Path:
    path.write_text(f"""<!doctype html>
<html><head><title>Express consignments</title><style>p {{ color: red }}</style></head>
<body>
<nav><a href="/">Home</a> | <a href="/menu">Menu navigation junk</a></nav>
<h1>Express consignments</h1>
<h2>Low-value parcels</h2>
<p>{words(60, "low-value courier parcels cleared with a simplified manifest")}</p>
<h2>Duty-free threshold</h2>
<ul><li>{words(30, "the duty-free threshold for postal items")}</li>
<li>Items above the threshold need a full declaration.</li></ul>
<table><tr><th>Band</th><th>Rate</th></tr><tr><td>Under 150</td><td>none</td></tr></table>
<script>var tracking = "should never be indexed";</script>
</body></html>""", encoding="utf-8")
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Advance rulings handbook", level=0)
    document.add_heading("Applying for a ruling", level=1)
    document.add_paragraph(words(60, "how an importer applies for a binding tariff ruling"))
    document.add_heading("Validity of rulings", level=1)
    document.add_paragraph(words(60, "how long a binding ruling stays valid, three years"))
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Ruling type"
    table.cell(0, 1).text = "Validity"
    table.cell(1, 0).text = "Tariff classification"
    table.cell(1, 1).text = "three years"
    document.save(str(path))
    return path


def make_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "AUDIT MANUAL")
    pdf.ln(4)
    pdf.multi_cell(0, 6, words(60, "planning a post-clearance audit visit"))
    pdf.add_page()
    pdf.multi_cell(0, 6, "2. Selecting traders")
    pdf.ln(4)
    topic = "selecting traders by risk profile and import volumes of refrigerated lorries"
    pdf.multi_cell(0, 6, words(60, topic))
    pdf.output(str(path))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    make_markdown(folder / "warehouse.md")
    make_text(folder / "transit.txt")
    make_html(folder / "sub" / "express.html")
    make_docx(folder / "rulings.docx")
    make_pdf(folder / "audit.pdf")
    (folder / "notes.csv").write_text("a,b\n1,2\n")  # unsupported: ignored in folders
    (folder / ".hidden.md").write_text("# Hidden\n\nnever indexed\n")
    return folder


def manifest_ids(index: Path) -> set[str]:
    store = IndexStore(index)
    try:
        return set(store.chunk_ids())
    finally:
        store.close()


def vector_ids(index: Path) -> set[str]:
    store = IndexStore(index)
    try:
        return store.vector_ids()
    finally:
        store.close()


@pytest.mark.slow
def test_each_format_is_indexed_with_its_structure(corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    messages: list[str] = []
    summary = ingest_paths([corpus], index, progress=messages.append)
    assert summary.files_indexed == 5, summary.describe()
    assert summary.files_skipped == []
    assert summary.files_ignored == 1  # notes.csv; the hidden file is not even seen
    assert summary.chunks_added == len(manifest_ids(index)) > 0
    assert any("chunks embedded" in m for m in messages)
    assert index_exists(index)

    searcher = open_searcher(index)
    cases = [
        ("warehouse.md", "zinc ingots bonded storage", "Warehouse procedures > Bonded storage"),
        ("transit.txt", "comprehensive guarantee transit", "Transit guarantee memo"),
        ("sub/express.html", "low-value courier parcels manifest",
         "Express consignments > Low-value parcels"),
        ("rulings.docx", "how long is a binding ruling valid",
         "Advance rulings handbook > Validity of rulings"),
        ("audit.pdf", "selecting traders by risk profile refrigerated lorries",
         "AUDIT MANUAL > 2. Selecting traders > p. 2"),
    ]
    for source, query, locator in cases:
        results = searcher.search(query, k=3, source_filter=source)
        assert results, source
        top = results[0]
        assert top.source == source
        assert top.locator == locator, (source, top.locator)
        assert top.score > 0
        assert set(top.to_json()) == {"source", "locator", "text", "score"}
    # HTML boilerplate (nav, script, style) stays out; table rows come in
    html_hits = searcher.search("express parcels", k=10, source_filter="express")
    html_text = " ".join(p.text for p in html_hits)
    assert "should never be indexed" not in html_text and "navigation junk" not in html_text
    assert "Under 150 | none" in html_text
    docx_hits = searcher.search("ruling validity", k=10, source_filter="rulings")
    docx_text = " ".join(p.text for p in docx_hits)
    assert "Tariff classification | three years" in docx_text


def test_reingest_unchanged_changed_and_prune(corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    first = ingest_paths([corpus], index)
    generation = read_generation(index)
    ids = manifest_ids(index)
    assert vector_ids(index) == ids

    second = ingest_paths([corpus], index)
    assert second.chunks_added == 0 and second.chunks_removed == 0
    assert second.files_indexed == 0 and second.files_unchanged == first.files_indexed
    assert read_generation(index) == generation
    assert manifest_ids(index) == ids

    # a changed file replaces its chunks (and only its chunks)
    (corpus / "warehouse.md").write_text(
        "# Warehouse procedures\n\n## Bonded storage\n\n"
        + words(60, "bonded storage of frozen tuna loins") + "\n",
        encoding="utf-8",
    )
    third = ingest_paths([corpus], index)
    assert third.files_indexed == 1 and third.chunks_added >= 1 and third.chunks_removed >= 1
    assert vector_ids(index) == manifest_ids(index)
    searcher = open_searcher(index)
    hits = searcher.search("zinc ingots", k=5, mode="keyword")
    assert all("zinc" not in p.text for p in hits)
    assert "tuna" in searcher.search("frozen tuna loins", k=1)[0].text

    # a deleted file stays indexed until --prune
    (corpus / "transit.txt").unlink()
    kept = ingest_paths([corpus], index)
    assert kept.files_removed == 0
    assert open_searcher(index).search("transit guarantee", k=1, source_filter="transit.txt")
    pruned = ingest_paths([corpus], index, prune=True)
    assert pruned.files_removed == 1 and pruned.chunks_removed >= 1
    assert open_searcher(index).search("transit guarantee", k=3, source_filter="transit.txt") == []
    assert vector_ids(index) == manifest_ids(index)


def test_bad_files_are_skipped_and_the_rest_is_indexed(tmp_path: Path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    make_markdown(folder / "good.md")
    (folder / "empty.md").write_text("")
    (folder / "junk.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage\n")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    (folder / "big.md").write_text("# Big\n\n" + words(3000, "something long"), encoding="utf-8")
    messages: list[str] = []
    summary = ingest_paths([folder], tmp_path / "index", progress=messages.append,
                           max_file_mb=0.01)
    reasons = dict(summary.files_skipped)
    assert summary.files_indexed == 1, summary.describe()
    assert reasons["empty.md"] == "empty file"
    assert "binary" in reasons["junk.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert "DOCX" in reasons["broken.docx"]
    assert "too large" in reasons["big.md"]
    assert sum("Skipped" in m for m in messages) == 5
    assert "Skipped 5 files" in summary.describe()
    assert open_searcher(tmp_path / "index").search("zinc ingots", k=1)[0].source == "good.md"


def test_single_file_and_missing_paths(tmp_path: Path):
    doc = make_markdown(tmp_path / "one.md")
    summary = ingest_paths([doc], tmp_path / "index")
    assert summary.files_indexed == 1
    assert open_searcher(tmp_path / "index").search("stock ledgers", k=1)[0].source == "one.md"
    with pytest.raises(IngestError, match="No such file or folder"):
        ingest_paths([tmp_path / "nope"], tmp_path / "index")
    with pytest.raises(TamgaError, match="No regulations index at"):
        open_searcher(tmp_path / "no-index")
    assert not index_exists(tmp_path / "no-index")


def test_interrupted_ingest_leaves_a_consistent_index(tmp_path: Path, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    for n, topic in enumerate(["olive oil", "ball bearings", "cut roses", "steel wire"]):
        (folder / f"doc{n}.md").write_text(
            f"# Note {n}\n\n" + "\n\n".join(
                f"## Part {p}\n\n" + words(70, f"{topic} part {p}") for p in range(3)
            ),
            encoding="utf-8",
        )
    expected = sum(len(chunk_document(load_document(p), p.name)) for p in folder.glob("*.md"))
    index = tmp_path / "index"
    real_embed = embedding.embed
    calls = {"n": 0}

    def failing_embed(texts, batch_size=64):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash while embedding")
        return real_embed(texts, batch_size=batch_size)

    monkeypatch.setattr(embedding, "embed", failing_embed)
    with pytest.raises(IngestError, match="Indexing stopped") as caught:
        ingest_paths([folder], index, batch_size=4)
    assert "run the same command again" in str(caught.value)
    monkeypatch.setattr(embedding, "embed", real_embed)

    committed = manifest_ids(index)
    assert 0 < len(committed) < expected  # some files made it, not all
    assert committed <= vector_ids(index)  # every committed chunk has its vector
    searcher = Searcher(index)
    assert searcher.keyword.ids == searcher.ids  # keyword index matches the manifest
    for query in ["olive oil", "ball bearings", "cut roses", "steel wire"]:
        for passage in searcher.search(query, k=5):
            assert passage.chunk_id in committed

    summary = ingest_paths([folder], index, batch_size=4)
    assert manifest_ids(index) == vector_ids(index)
    assert len(manifest_ids(index)) == expected
    assert summary.files_unchanged + summary.files_indexed == 4
    top = open_searcher(index).search("steel wire", k=1)[0]
    assert top.text.startswith("This part explains steel")


def test_cli_ingest_and_search_json(corpus: Path, tmp_path: Path):
    runner = CliRunner()
    index = tmp_path / "index"
    result = runner.invoke(app, ["ingest", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "Indexed 5 of 5 files" in result.stdout
    result = runner.invoke(app, ["search", "zinc ingots bonded storage", "--json", "--k", "2",
                                 "--index", str(index)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["query"] == "zinc ingots bonded storage"
    assert 1 <= len(data["results"]) <= 2
    top = data["results"][0]
    assert set(top) == {"source", "locator", "text", "score"}
    assert top["source"] == "warehouse.md"
    assert top["locator"] == "Warehouse procedures > Bonded storage"
    readable = runner.invoke(
        app, ["search", "zinc ingots", "--index", str(index), "--source", "warehouse"]
    )
    assert readable.exit_code == 0
    assert "[1] Warehouse procedures > Bonded storage" in readable.stdout
    missing = runner.invoke(app, ["search", "anything", "--index", str(tmp_path / "none")])
    assert missing.exit_code == 1
    assert "No regulations index at" in missing.output


def test_ingest_lock_refuses_a_second_writer(tmp_path: Path):
    from filelock import FileLock

    index = tmp_path / "index"
    index.mkdir()
    doc = make_markdown(tmp_path / "one.md")
    with FileLock(str(index / ".ingest.lock")), pytest.raises(IngestError, match="Another ingest"):
        ingest_paths([doc], index)
    assert os.listdir(index) == [".ingest.lock"] or not index_exists(index)
