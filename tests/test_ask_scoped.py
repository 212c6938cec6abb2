"""`Assistant.ask` for a signed-up officer sees only the declarations of the officer's offices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.core import Assistant
from tamga.settings import get_settings
from tools.access import UserStore
from tradedata.db import connect


@pytest.fixture()
def office_and_assistant(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Assistant]]:
    monkeypatch.setenv("TAMGA_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    with connect(demo_db, read_only=True) as con:
        (office,) = con.execute(
            "SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) LIMIT 1"
        ).fetchone() or ("",)
    store = UserStore.from_settings(get_settings())
    store.add("ana", "a long enough password", "officer", [office])
    store.add("sam", "another long password", "supervisor")
    assistant = Assistant(
        db_path=demo_db, index_dir=tmp_path / "no-index", log_dir=tmp_path / "logs", load_llm=False
    )
    yield office, assistant
    get_settings.cache_clear()


def _top_values(db: Path, office: str | None) -> list[float]:
    where = "" if office is None else "AND d.customs_office = ?"
    params = [] if office is None else [office]
    with connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT sum(i.customs_value) FROM declarations d JOIN declaration_items i "
            "ON i.declaration_id = d.declaration_id WHERE d.flow = 'import' "
            f"AND year(d.declaration_date) = 2024 {where} GROUP BY d.trader_id "
            "ORDER BY 1 DESC LIMIT 5",
            params,
        ).fetchall()
    return [float(r[0]) for r in rows]


def _numbers(answer_rows: list[list[object]]) -> set[float]:
    return {
        round(float(v), 2)
        for row in answer_rows
        for v in row
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def test_officer_answer_is_scoped_supervisor_is_not(
    office_and_assistant: tuple[str, Assistant], demo_db: Path
) -> None:
    office, assistant = office_and_assistant
    question = "Top 5 importers in 2024 by customs value"
    scoped = assistant.ask(question, user="ana")
    assert scoped.table is not None, scoped.text
    scoped_numbers = _numbers(scoped.table.rows)
    office_top = _top_values(demo_db, office)
    national_top = _top_values(demo_db, None)
    assert office_top and round(office_top[0], 2) in scoped_numbers
    assert round(national_top[0], 2) not in scoped_numbers or office_top[0] == national_top[0]
    assert any("Scope" in w for w in scoped.warnings)

    national = assistant.ask(question, user="sam")
    assert national.table is not None
    assert round(national_top[0], 2) in _numbers(national.table.rows)


def test_unknown_user_is_refused(office_and_assistant: tuple[str, Assistant]) -> None:
    _, assistant = office_and_assistant
    answer = assistant.ask("Top 5 importers in 2024", user="mallory")
    assert answer.engine == "error"
    assert "No user named" in answer.text
    assert answer.table is None
