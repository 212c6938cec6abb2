"""Data contexts: what one officer's questions derive from the data stays in that officer's scope.

Reproduces the hint leak of issue 12: the LLM prompt hints were read from a slot extractor
cached by database path only, so after one unscoped call an officer's hints could name a
trader of another office. Now every look-up lives on the data context of one (database, scope)
pair; these tests ask in both orders, in one process, and check hints, the LLM data card, slot
matches, suggestions and the verified examples shown to a model.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.context import DataContext, DataContexts
from assistant.core import Assistant
from assistant.llm import DirectSqlEngine
from assistant.lookup_cache import LookupCache
from assistant.prompts import IntentExamples, hints_for
from tamga.scope import Scope
from tamga.settings import Settings
from tools.access import UserStore
from tools.runner import RecordingRunner
from tradedata.db import connect

PASSWORD = "a long enough password"


@dataclass(frozen=True)
class Office:
    """One customs office, a trader that only declares there, and its officer."""

    name: str
    trader_id: str
    trader_name: str
    user: str


def _only_at(db: Path, office: str, other: str) -> tuple[str, str]:
    """The largest importer that declares at `office` and never at `other`."""
    with connect(db, read_only=True) as con:
        row = con.execute(
            "SELECT t.trader_id, t.name FROM traders t JOIN declarations d USING (trader_id) "
            "GROUP BY ALL HAVING bool_or(d.customs_office = ?) AND NOT bool_or("
            "d.customs_office = ?) AND count(DISTINCT d.customs_office) = 1 "
            "ORDER BY count(*) DESC LIMIT 1", [office, other]).fetchone()
    assert row is not None, f"no trader declares only at {office}"
    return str(row[0]), str(row[1])


@pytest.fixture(scope="module")
def offices(demo_db: Path) -> tuple[Office, Office]:
    with connect(demo_db, read_only=True) as con:
        busiest = [r[0] for r in con.execute(
            "SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) DESC LIMIT 2"
        ).fetchall()]
    a, b = busiest
    return (Office(a, *_only_at(demo_db, a, b), "ana"), Office(b, *_only_at(demo_db, b, a), "ben"))


@pytest.fixture()
def assistant(demo_db: Path, offices: tuple[Office, Office], tmp_path: Path) -> Assistant:
    settings = Settings(home=tmp_path / "home")
    store = UserStore.from_settings(settings)
    for office in offices:
        store.add(office.user, PASSWORD, "officer", [office.name])
    store.add("sam", PASSWORD, "supervisor")
    return Assistant(settings, db_path=demo_db, index_dir=tmp_path / "no-index", audit=False,
                     load_llm=False, users=store)


def _question(office: Office) -> str:
    return f"What did {office.trader_name} import in 2024, by HS chapter?"


def _names_in(text: str, office: Office) -> bool:
    return office.trader_id in text or office.trader_name in text


def test_hints_after_an_unscoped_call_name_only_the_officers_traders(
        assistant: Assistant, offices: tuple[Office, Office]) -> None:
    mine, theirs = offices
    everything = assistant.context_for(assistant.scope_of("sam"))
    unscoped = " ".join(hints_for(_question(theirs), everything))
    assert theirs.trader_id in unscoped  # the supervisor's hints do name it ...

    officer = assistant.context_for(assistant.scope_of(mine.user))
    hints = " ".join(hints_for(_question(theirs), officer))
    assert not _names_in(hints, theirs)  # ... the officer's, asked next, must not
    assert mine.trader_id in " ".join(hints_for(_question(mine), officer))


@pytest.mark.parametrize("order", ["ana first", "ben first"])
def test_two_officers_in_one_process_see_only_their_own(
        assistant: Assistant, offices: tuple[Office, Office], order: str) -> None:
    pair = offices if order == "ana first" else offices[::-1]
    for mine, theirs in (pair, pair[::-1]):
        scope = assistant.scope_of(mine.user)
        context = assistant.context_for(scope)
        assert context.scope.offices == (mine.name,)

        # slot matches: the other office's trader is unknown here
        slots = context.extractor.extract(_question(theirs))
        assert slots.trader is None
        assert all(m.trader_id != theirs.trader_id for m in slots.trader_candidates)
        found = context.extractor.extract(_question(mine)).trader
        assert found is not None and found.trader_id == mine.trader_id

        # the LLM data card lists only the officer's office
        card = context.data_card
        assert card.typical[("declarations", "customs_office")] == [mine.name]
        assert theirs.name not in card.schema_text()

        # hints and the whole prompt a model would be sent (schema, examples, hints)
        offline = assistant.offline_for(scope)
        def hints(question: str, c: DataContext = context) -> list[str]:
            return hints_for(question, c)

        engine = DirectSqlEngine(lambda *_a: "", context, examples=IntentExamples(offline),
                                 hints=hints)
        messages = engine.messages(_question(theirs))
        assert messages[-1]["content"].endswith(_question(theirs))
        prompt = " ".join(m["content"] for m in messages).replace(_question(theirs), "")
        assert not _names_in(prompt, theirs) and theirs.name not in prompt
        mine_prompt = " ".join(m["content"] for m in engine.messages(_question(mine)))
        assert mine.trader_id in mine_prompt

        # suggestions and the answer itself
        answer = assistant.ask(_question(theirs), user=mine.user, engine="offline")
        shown = " ".join([answer.text, *answer.suggestions, *answer.warnings, *answer.sql])
        assert theirs.trader_id not in shown  # the name may only be echoed from the question
        assert not any(_names_in(s, theirs) for s in answer.suggestions)
        for table in answer.tables:
            assert not any(_names_in(str(row), theirs) for row in table.rows)


def test_contexts_are_built_once_per_scope_and_never_shared(
        demo_db: Path, offices: tuple[Office, Office]) -> None:
    contexts = DataContexts(demo_db)
    a, b = (Scope.offices_of(o.user, [o.name]) for o in offices)
    first = contexts.get(a)
    assert contexts.get(Scope.offices_of("another officer", [offices[0].name])) is first
    assert contexts.get(b) is not first
    assert contexts.get(Scope.everything()) is not first
    # the look-ups hang off the context, so they follow it
    assert contexts.get(b).traders is not first.traders
    assert {t.trader_id for t in first.traders.rows} < {
        t.trader_id for t in contexts.get(Scope.everything()).traders.rows}


def test_a_context_refuses_runners_of_another_scope(demo_db: Path, offices: tuple[Office, Office]
                                                    ) -> None:
    contexts = DataContexts(demo_db)
    officer = contexts.get(Scope.offices_of("ana", [offices[0].name]))
    with pytest.raises(ValueError, match="scope"):
        DataContext(demo_db, Scope.everything(), officer.runner, officer.analysis_runner)


# -- the look-ups kept on disk between processes ---------------------------------------------------


def _recorded_context(database: Path, scope: Scope, cache_dir: Path
                      ) -> tuple[DataContext, RecordingRunner]:
    """A context as a new process builds it, with a recorder on its runner."""
    base = DataContexts(database).get(scope).runner
    recorder = RecordingRunner(base)
    return DataContext(database, scope, recorder, recorder,
                       cache=LookupCache(cache_dir, database, scope)), recorder


def _lookups(context: DataContext) -> tuple[object, ...]:
    return (context.traders.to_json(), context.facts.to_json(), context.coded_values)


def test_a_new_process_reads_the_lookups_from_disk_without_querying(
        demo_db: Path, offices: tuple[Office, Office], tmp_path: Path) -> None:
    mine, theirs = offices
    scope = Scope.offices_of(mine.user, [mine.name])
    first, first_sql = _recorded_context(demo_db, scope, tmp_path)
    first.warm()
    assert first_sql.statements  # built from the database once ...
    assert len(list(tmp_path.glob("lookups-*.json"))) == 1

    second, second_sql = _recorded_context(demo_db, scope, tmp_path)
    assert _lookups(second) == _lookups(first)
    second.warm()
    assert second_sql.statements == []  # ... then read from the file
    found = second.extractor.extract(_question(mine)).trader
    assert found is not None and found.trader_id == mine.trader_id
    # the officer's file holds only what the officer sees
    assert second.extractor.extract(_question(theirs)).trader is None
    assert theirs.trader_id not in json.dumps(second.traders.to_json())
    assert second.facts.offices == [mine.name]


def test_each_scope_and_each_database_version_has_its_own_file(
        demo_db: Path, offices: tuple[Office, Office], tmp_path: Path) -> None:
    everything = LookupCache(tmp_path, demo_db, Scope.everything())
    officer = LookupCache(tmp_path, demo_db, Scope.offices_of("ana", [offices[0].name]))
    assert everything.path() != officer.path()
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(demo_db, copy)
    before = LookupCache(tmp_path, copy, Scope.everything()).path()
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new import
    assert LookupCache(tmp_path, copy, Scope.everything()).path() != before
    assert LookupCache(tmp_path, tmp_path / "missing.duckdb", Scope.everything()).path() is None


def test_a_damaged_cache_file_is_rebuilt(demo_db: Path, tmp_path: Path) -> None:
    scope = Scope.everything()
    path = LookupCache(tmp_path, demo_db, scope).path()
    assert path is not None
    path.write_text('{"traders": [["T1", "Not', encoding="utf-8")  # cut off mid-write
    context, recorder = _recorded_context(demo_db, scope, tmp_path)
    assert len(context.traders) > 10 and recorder.statements
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert [stored[k] for k in stored if k.startswith("traders@")] == [context.traders.to_json()]


def test_an_unwritable_cache_folder_only_costs_time(demo_db: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    context, _ = _recorded_context(demo_db, Scope.everything(), blocked)
    context.warm()
    assert len(context.traders) > 10 and blocked.read_text(encoding="utf-8") == "not a folder"


def test_the_assistant_keeps_its_lookups_under_its_home(demo_db: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    first = Assistant(settings, db_path=demo_db, index_dir=tmp_path / "no-index", audit=False,
                      load_llm=False)
    answer = first.ask("Top 5 importers in 2024", engine="offline")
    assert answer.tables
    assert len(list((tmp_path / "home" / "cache").glob("lookups-*.json"))) == 1
    again = Assistant(settings, db_path=demo_db, index_dir=tmp_path / "no-index", audit=False,
                      load_llm=False).ask("Top 5 importers in 2024", engine="offline")
    assert again.text == answer.text and again.tables[0].rows == answer.tables[0].rows


def test_a_part_written_by_other_code_is_not_read(demo_db: Path, tmp_path: Path) -> None:
    scope = Scope.everything()
    path = LookupCache(tmp_path, demo_db, scope).path()
    assert path is not None
    path.write_text(json.dumps({"traders@0ld": [["T9", "Stale Name", None, "stale", "stale"]]}),
                    encoding="utf-8")
    context, recorder = _recorded_context(demo_db, scope, tmp_path)
    assert "Stale Name" not in {row.name for row in context.traders.rows}
    assert recorder.statements  # read from the database instead ...
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert "traders@0ld" not in stored and any(k.startswith("traders@") for k in stored)


def test_the_web_overview_is_kept_with_the_context(demo_db: Path, tmp_path: Path) -> None:
    context, recorder = _recorded_context(demo_db, Scope.everything(), tmp_path)
    built = context.derived("overview", lambda r: r.run(
        "SELECT count(*), max(declaration_date) FROM declarations").rows[0])
    again, again_sql = _recorded_context(demo_db, Scope.everything(), tmp_path)
    assert again.derived("overview", lambda r: r.run(
        "SELECT count(*), max(declaration_date) FROM declarations").rows[0]) == list(built)
    assert again_sql.statements == [] and len(recorder.statements) == 1
