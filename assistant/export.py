"""A conversation written out as Markdown or PDF, with the SQL, tables and sources of answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tamga.answer import Answer
from tamga.formatting import format_cell
from tamga.pdf import PdfDocument

MAX_ROWS = 30


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "| " + " | ".join("---" for _ in columns) + " |"
    body = [
        "| " + " | ".join(format_cell(v).replace("|", "/") for v in row) + " |"
        for row in rows[:MAX_ROWS]
    ]
    if len(rows) > MAX_ROWS:
        body.append(f"| … {len(rows) - MAX_ROWS:,} more rows |" + " |" * (len(columns) - 1))
    return "\n".join([head, sep, *body])


def conversation_markdown(
    turns: Sequence[tuple[str, Answer]], title: str = "Tamga conversation"
) -> str:
    """The conversation as Markdown: each question, the answer, its table, SQL and sources."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# {title}", "", f"Exported {stamp}. Every figure comes from the SQL shown.", ""]
    for n, (question, answer) in enumerate(turns, 1):
        parts += [f"## {n}. {question}", "", answer.text, ""]
        if answer.table is not None and answer.table.columns:
            parts += [_md_table(answer.table.columns, answer.table.rows), ""]
        if answer.sql:
            parts += ["**SQL**", ""]
            parts += [f"```sql\n{s.strip()}\n```" for s in answer.sql]
            parts.append("")
        if answer.citations:
            parts += ["**Sources**", ""]
            parts += [f"- {c.locator} — `{c.source}`" for c in answer.citations]
            parts.append("")
        for warning in answer.warnings:
            parts += [f"> Warning: {warning}", ""]
        parts += [f"*Engine: {answer.engine}*", ""]
    return "\n".join(parts)


def conversation_pdf(
    turns: Sequence[tuple[str, Answer]], title: str = "Tamga conversation"
) -> bytes:
    """The conversation as a PDF document (A4), in the same layout as the Markdown export."""
    doc = PdfDocument()
    pdf, body, mono, clean, para = doc.pdf, doc.body, doc.mono, doc.clean, doc.para

    pdf.add_page()
    para(title, 16, "B")
    para(
        f"Exported {datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Every figure comes from the SQL shown.",
        9,
    )
    for n, (question, answer) in enumerate(turns, 1):
        pdf.ln(2)
        para(f"{n}. {question}", 12, "B")
        para(answer.text)
        table = answer.table
        if table is not None and table.columns:
            pdf.set_font(body, "", 8)
            with pdf.table(text_align="LEFT", first_row_as_headings=True) as pdf_table:
                pdf_table.row([clean(c) for c in table.columns])
                for row in table.rows[:MAX_ROWS]:
                    pdf_table.row([clean(format_cell(v)) for v in row])
            if len(table.rows) > MAX_ROWS:
                para(f"... {len(table.rows) - MAX_ROWS:,} more rows", 8)
        for sql in answer.sql:
            para(sql.strip(), 8, font=mono)
        for c in answer.citations:
            para(f"Source: {c.locator} ({c.source})", 8)
        for warning in answer.warnings:
            para(f"Warning: {warning}", 8)
        para(f"Engine: {answer.engine}", 8)
    return doc.output()
