"""Conversation export as Markdown and PDF, from real answers on the demo database."""

from __future__ import annotations

import io
from pathlib import Path

from assistant.core import Assistant
from assistant.export import conversation_markdown, conversation_pdf


def test_markdown_and_pdf_carry_questions_tables_and_sql(demo_db: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    assistant = Assistant(
        db_path=demo_db, index_dir=tmp_path / "no-index", log_dir=tmp_path / "logs", load_llm=False
    )
    chat = assistant.new_conversation()
    questions = ["Top 5 importers in 2024", "and in 2023?"]
    turns = [(q, assistant.ask(q, chat)) for q in questions]
    assert all(answer.sql for _, answer in turns)

    markdown = conversation_markdown(turns)
    for question, answer in turns:
        assert f". {question}" in markdown
        assert answer.sql[0].strip() in markdown
        assert answer.table is not None
        assert str(answer.table.columns[0]) in markdown

    pdf = conversation_pdf(turns)
    assert pdf.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Top 5 importers in 2024" in text
    assert "SELECT" in text.upper()
