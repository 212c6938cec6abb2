"""Questions each passage answers (retrieval/questions.py): written, stored, embedded, searched.

Real index (MiniLM, the multilingual model, Chroma, BM25); the only stand-in is the model that
writes the questions, a scripted chat that records its calls. The real local model writes them
in tests/test_local_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval import questions as questions_module
from retrieval.index import IndexStore
from retrieval.ingest import ingest_paths, update_question_vectors, write_questions
from retrieval.questions import (
    LOCAL_FILE,
    SHIPPED_DIR,
    load_questions,
    parse_questions,
    read_vectors,
    text_key,
)
from retrieval.search import Searcher, question_signals

pytestmark = pytest.mark.slow

NOTES = {
    "records.md": "# Keeping documents\n\n## Retention\n\nAn importer retains the documents of "
                  "each entry for five years from the date of entry, and shows them to an "
                  "auditor on request.\n",
    "warehouse.md": "# Warehouse procedures\n\n## Office records\n\nThe office keeps a record "
                    "of the goods placed in a bonded warehouse; how long a record is kept by "
                    "the office depends on its filing rules.\n",
    "samples.md": "# Samples\n\n## Taking samples\n\nAn officer may take samples of goods for "
                  "a laboratory analysis, and the importer may be present.\n",
}
QUERY = "How long is a record kept by the office?"


class ScriptedWriter:
    """Writes the questions scripted for the passage it is shown; records each call."""

    def __init__(self, script: dict[str, str]) -> None:
        self.script = script
        self.calls: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        self.calls.append(messages)
        passage = messages[-1]["content"]
        for word, reply in self.script.items():
            if word in passage:
                return reply
        return "1. What does this passage say?\n2. Who does it apply to?"


SCRIPT = {
    "five years": f"1. {QUERY}\n2. How long must an importer hold on to the paperwork?\n"
                  "3. Can an auditor ask for old papers?",
    "bonded warehouse": "- What does the office note when goods go into a bonded store?\n"
                        "- Which goods sit in a customs warehouse?",
    "laboratory": "Can an officer take goods away for testing?\nMay I watch the test?",
}


@pytest.fixture()
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(questions_module, "SHIPPED_DIR", tmp_path / "no-shipped-questions")
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for name, text in NOTES.items():
        (corpus / name).write_text(text)
    folder = tmp_path / "index"
    ingest_paths([corpus], folder)
    return folder


def _first(folder: Path, query: str = QUERY) -> str:
    return Searcher(folder, warm=False).search(query, k=3)[0].source


def test_parse_questions_drops_numbering_bullets_and_fragments() -> None:
    reply = ("1. Who pays the duty?\n- Who pays the duty?\n2) When?\n• What is a bonded store?\n"
             "To protect the data.\nWhat is the value of materials consumed in\n")
    assert parse_questions(reply) == ["Who pays the duty?", "What is a bonded store?"]
    assert len(parse_questions("\n".join(f"Question number {n}?" for n in range(9)))) == 5


def test_written_questions_bring_their_passage_first(index: Path) -> None:
    before = _first(index)
    assert before == "warehouse.md"  # the query shares its words with the warehouse note
    writer = ScriptedWriter(SCRIPT)
    made = write_questions(index, writer, model_name="scripted")
    assert made == 3 and len(writer.calls) == 3
    assert writer.calls[0][0]["content"] == questions_module.GENERATION_PROMPT
    stored = [json.loads(line) for line in (index / LOCAL_FILE).read_text().splitlines()]
    assert {row["source"] for row in stored} == set(NOTES)
    assert all(row["model"] == "scripted" for row in stored)
    vectors = read_vectors(index)
    assert vectors is not None and len(vectors[0]) == len(vectors[1]) == 7
    # the officer's question meets the question the model wrote for the records note
    assert _first(index) == "records.md"


def test_an_open_index_picks_up_new_questions(index: Path) -> None:
    """A running app's index reopens its searcher once questions are written."""
    from retrieval.search import RegulationsIndex

    regulations = RegulationsIndex(index)
    assert regulations.search(QUERY, k=1)[0].source == "warehouse.md"
    write_questions(index, ScriptedWriter(SCRIPT))
    assert regulations.search(QUERY, k=1)[0].source == "records.md"


def test_writing_resumes_and_respects_the_limit(index: Path) -> None:
    writer = ScriptedWriter(SCRIPT)
    assert write_questions(index, writer, limit=1) == 1
    assert write_questions(index, writer) == 2
    assert write_questions(index, writer) == 0  # nothing left: the model is not asked again
    assert len(writer.calls) == 3
    # a line cut short by an interrupted run is ignored, the rest kept
    with (index / LOCAL_FILE).open("a") as out:
        out.write('{"sha": "abc", "questions": ["cut sh')
    assert len(load_questions(index)) == 3


def test_questions_for_part_of_the_pool_change_nothing(index: Path) -> None:
    writer = ScriptedWriter(SCRIPT)
    store = IndexStore(index)
    try:
        records = next(c for c in store.all_chunks() if "five years" in c.text)
    finally:
        store.close()
    (index / LOCAL_FILE).write_text(json.dumps(
        {"sha": text_key(records.text), "source": "records.md", "locator": "", "model": "x",
         "questions": writer(
             [{"role": "user", "content": "five years"}], 90).splitlines()[0:1]}) + "\n")
    assert update_question_vectors(index) == 1
    searcher = Searcher(index, warm=False)
    assert searcher.questions is not None and searcher.questions.with_questions == 1
    pool = searcher.candidates(QUERY)
    assert question_signals(pool) is None  # two of the three candidates have no questions
    assert searcher.search(QUERY, k=1)[0].source == "warehouse.md"


def test_question_vectors_follow_the_index(index: Path, tmp_path: Path) -> None:
    write_questions(index, ScriptedWriter(SCRIPT))
    assert update_question_vectors(index) == 0  # up to date: nothing embedded again
    # a note removed from the corpus takes its question vectors with it
    corpus = tmp_path / "notes"
    (corpus / "samples.md").unlink()
    ingest_paths([corpus], index, prune=True)
    vectors = read_vectors(index)
    assert vectors is not None and len(vectors[0]) == 5
    # vectors of another embedding model are not used
    meta = json.loads((index / "questions-vectors.json").read_text())
    meta["model"] = "another-model"
    (index / "questions-vectors.json").write_text(json.dumps(meta))
    assert read_vectors(index) is None
    assert Searcher(index, warm=False).questions is None
    assert update_question_vectors(index) == 5


def test_shipped_questions_parse_and_match_the_shipped_guidance() -> None:
    from retrieval.chunking import chunk_document
    from retrieval.loaders import load_document

    files = sorted(SHIPPED_DIR.glob("*.jsonl"))
    assert files, "Tamga ships the questions of its guidance notes"
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert len(row["sha"]) == 64 and row["questions"], row
            assert all(q.strip() for q in row["questions"])
    guidance = Path(questions_module.__file__).parent / "guidance"
    keys: set[str] = set()
    for note in sorted(guidance.glob("*.md")):
        doc = load_document(note, note.read_bytes())
        keys.update(text_key(c.text) for c in chunk_document(doc, note.name))
    shipped = load_questions()
    missing = keys - set(shipped)
    assert not missing, f"{len(missing)} guidance chunks have no shipped questions"
