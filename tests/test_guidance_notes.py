"""The shipped guidance notes: enough of them, well formed, and every citation real."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "regulations"


def test_at_least_25_notes_each_with_legal_basis() -> None:
    notes = sorted((REPO / "retrieval" / "guidance").glob("*.md"))
    assert len(notes) >= 25
    for note in notes:
        text = note.read_text(encoding="utf-8")
        assert text.startswith("# "), note.name
        assert "## Legal basis" in text, note.name


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data/regulations is not present")
def test_every_cited_provision_exists_in_the_texts() -> None:
    checker = importlib.import_module("tests.guidance_citations")
    notes, checks, problems = checker.run_checks()
    assert notes >= 25
    assert checks > 500
    assert problems == []
