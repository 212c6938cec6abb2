"""The offline engine on the real demo database, real embeddings and a real regulations index.

Every figure is checked against a reference query written here, independently of the intent
library; nothing is hard-coded to one build of the data.
"""

from __future__ import annotations

import math
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant.core import Assistant
from assistant.intents import load_intents
from assistant.offline import OfflineEngine, Plan, is_write_request
from assistant.slots import clean_question
from tamga.answer import Answer
from tools.sql import SqlRunner
from tradedata.db import connect

GUIDANCE = Path(__file__).resolve().parents[1] / "retrieval" / "guidance"
GUIDANCE_FILES = ["record-keeping.md", "related-party-transactions.md",
                  "transaction-value-conditions.md", "undervaluation-indicators.md"]


@pytest.fixture(scope="module")
def guidance_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real index (Chroma + BM25) of four guidance notes."""
    from retrieval.ingest import ingest_paths

    docs = tmp_path_factory.mktemp("guidance")
    for name in GUIDANCE_FILES:
        shutil.copy(GUIDANCE / name, docs / name)
    index = tmp_path_factory.mktemp("index")
    ingest_paths([docs], index_dir=index)
    return index


@pytest.fixture(scope="module")
def engine(demo_db: Path, guidance_index: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> OfflineEngine:
    eng = OfflineEngine.open(demo_db, guidance_index, cache_dir=tmp_path_factory.mktemp("cache"))
    eng.warm()
    return eng


def _index_dir(engine: OfflineEngine) -> Path:
    """The regulations index folder the engine searches."""
    assert engine.context.regulations is not None
    return engine.context.regulations.index_dir


@pytest.fixture(scope="module")
def ref(demo_db: Path) -> Any:
    con = connect(demo_db, read_only=True)

    def run(sql: str) -> list[list[Any]]:
        return [list(r) for r in con.execute(sql).fetchall()]

    return run


@pytest.fixture(scope="module")
def v(ref: Any) -> SimpleNamespace:
    """Values picked from the data: traders, years, a chapter, a country, an office."""
    from tools.traders import core_name

    latest = ref("SELECT max(declaration_date) FROM declarations")[0][0]
    names = ref("SELECT trader_id, name, tin FROM traders")
    cores = [core_name(n) for _, n, _ in names]
    unique = {tid for (tid, _, _), c in zip(names, cores, strict=True) if cores.count(c) == 1}
    ranked = ref("""SELECT d.trader_id, t.name FROM declarations d
        JOIN declaration_items i ON i.declaration_id = d.declaration_id
        JOIN traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import'
        GROUP BY ALL ORDER BY sum(i.customs_value) DESC""")
    top = [(tid, name) for tid, name in ranked if tid in unique]
    chapter = ref("""SELECT left(hs_code, 2) FROM declaration_items GROUP BY 1
        ORDER BY sum(customs_value) DESC LIMIT 1""")[0][0]
    origin = ref("""SELECT i.origin_country, c.name FROM declaration_items i
        JOIN countries c ON c.iso2 = i.origin_country GROUP BY ALL
        ORDER BY sum(i.customs_value) DESC LIMIT 1""")[0]
    audited = ref("""SELECT a.trader_id, t.name FROM audits a JOIN traders t USING (trader_id)
        GROUP BY ALL ORDER BY count(*) DESC, 1""")
    audited = next((tid, name) for tid, name in audited if tid in unique)
    return SimpleNamespace(
        latest=latest, y=latest.year, ly=latest.year - 1, py=latest.year - 2,
        t1=top[0][0], n1=top[0][1], t2=top[1][0], n2=top[1][1], t3=top[4][0], n3=top[4][1],
        ch=chapter, cc=origin[0], cn=origin[1], ta=audited[0], na=audited[1])


# -- comparing answers with reference rows --------------------------------------------------------


def _same(cell: Any, want: Any) -> bool:
    if want is None:
        return cell is None
    if isinstance(want, bool) or isinstance(cell, bool):
        return cell == want
    if isinstance(want, int | float) and isinstance(cell, int | float):
        return math.isclose(float(cell), float(want), abs_tol=0.051, rel_tol=1e-6)
    if hasattr(want, "isoformat"):
        want = want.isoformat()
    return str(cell).lower() == str(want).lower()


def _row_has(row: list[Any], want: list[Any]) -> bool:
    used: set[int] = set()
    for value in want:
        k = next((k for k, c in enumerate(row) if k not in used and _same(c, value)), None)
        if k is None:
            return False
        used.add(k)
    return True


def check(answer: Answer, expected: list[list[Any]], mode: str) -> None:
    """Assert the answer's main table matches reference rows (first / top / set)."""
    assert answer.engine == "offline", answer.text
    assert answer.table is not None, answer.text
    rows = answer.table.rows
    if mode == "first":
        assert rows and _row_has(rows[0], expected[0]), (rows[:1], expected)
    elif mode == "top":
        assert len(rows) >= len(expected), (len(rows), len(expected))
        for got, want in zip(rows, expected, strict=False):
            assert _row_has(got, want), (got, want)
    else:
        assert len(rows) == len(expected), (rows, expected)
        free = list(rows)
        for want in expected:
            hit = next((r for r in free if _row_has(r, want)), None)
            assert hit is not None, (want, rows)
            free.remove(hit)


JOIN = "FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id"

CASES = [
    # (question, reference SQL, check mode, intent)
    ("How much did {n1} import in {ly}?",
     "SELECT round(sum(i.customs_value), 2), count(DISTINCT d.declaration_id) {JOIN} "
     "WHERE d.trader_id = '{t1}' AND d.flow = 'import' AND year(d.declaration_date) = {ly}",
     "first", "trader_total"),
    ("{n2} imports by HS chapter in {ly}",
     "SELECT left(i.hs_code, 2), round(sum(i.customs_value), 2) {JOIN} WHERE d.trader_id = "
     "'{t2}' AND d.flow = 'import' AND year(d.declaration_date) = {ly} GROUP BY 1",
     "set", "trader_by_chapter"),
    ("{n1}'s main headings",
     "SELECT left(i.hs_code, 4), round(sum(i.customs_value), 2) {JOIN} WHERE d.trader_id = "
     "'{t1}' AND d.flow = 'import' GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
     "top", "trader_by_heading"),
    ("Which countries does {n3} import from?",
     "SELECT i.origin_country, round(sum(i.customs_value), 2) {JOIN} WHERE d.trader_id = "
     "'{t3}' AND d.flow = 'import' GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
     "top", "trader_by_origin"),
    ("Who are the suppliers of {n1}?",
     "SELECT i.seller_id, round(sum(i.customs_value), 2) {JOIN} WHERE d.trader_id = '{t1}' "
     "AND d.flow = 'import' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
     "top", "trader_by_supplier"),
    ("Which customs offices does {n2} use?",
     "SELECT d.customs_office, count(DISTINCT d.declaration_id) {JOIN} WHERE d.trader_id = "
     "'{t2}' AND d.flow = 'import' GROUP BY 1",
     "set", "trader_by_office"),
    ("{n1} imports per month in {ly}",
     "SELECT strftime(d.declaration_date, '%Y-%m'), round(sum(i.customs_value), 2) {JOIN} "
     "WHERE d.trader_id = '{t1}' AND d.flow = 'import' AND year(d.declaration_date) = {ly} "
     "GROUP BY 1", "set", "trader_trend"),
    ("latest declarations of {n2}",
     "SELECT declaration_id, declaration_date FROM declarations WHERE trader_id = '{t2}' "
     "ORDER BY declaration_date DESC, declaration_id DESC LIMIT 10", "top", "trader_recent"),
    ("How much duty did {n1} pay each year?",
     "SELECT year(d.declaration_date), round(sum(i.duty_amount), 2) {JOIN} WHERE d.trader_id "
     "= '{t1}' AND d.flow = 'import' GROUP BY 1", "set", "trader_duty"),
    ("unit values of {n1} by HS code",
     "SELECT left(i.hs_code, 6), round(sum(i.customs_value) / sum(i.net_mass_kg), 2) {JOIN} "
     "WHERE d.trader_id = '{t1}' AND d.flow = 'import' GROUP BY 1 "
     "ORDER BY sum(i.customs_value) DESC LIMIT 5", "top", "trader_unit_values"),
    ("What share of {n2}'s imports is bought from related parties?",
     "SELECT round(100.0 * coalesce(sum(i.customs_value) FILTER (WHERE i.related_party), 0) "
     "/ sum(i.customs_value), 1) {JOIN} WHERE d.trader_id = '{t2}' AND d.flow = 'import'",
     "first", "trader_related_party"),
    ("control channels of {n1}'s declarations",
     "SELECT control_channel, count(*) FROM declarations WHERE trader_id = '{t1}' GROUP BY 1",
     "set", "trader_channels"),
    ("audit history of {na}",
     "SELECT audit_id, opened_on FROM audits WHERE trader_id = '{ta}'", "set", "trader_audits"),
    ("Give me a briefing on {n3}",
     "SELECT 'tin', tin FROM traders WHERE trader_id = '{t3}'", "first_kv", "trader_briefing"),
    ("total imports in {ly}",
     "SELECT round(sum(i.customs_value), 2), round(sum(i.duty_amount), 2) {JOIN} "
     "WHERE d.flow = 'import' AND year(d.declaration_date) = {ly}", "first", "national_total"),
    ("who were the 5 largest importers of chapter {ch}?",
     "SELECT t.name, round(sum(i.customs_value), 2) {JOIN} JOIN traders t ON t.trader_id = "
     "d.trader_id WHERE d.flow = 'import' AND i.hs_code LIKE '{ch}%' GROUP BY d.trader_id, "
     "t.name ORDER BY 2 DESC LIMIT 5", "set", "top_traders"),
    ("HS chapters ranked by duty in {ly}",
     "SELECT left(i.hs_code, 2), round(sum(i.duty_amount), 2) {JOIN} WHERE d.flow = 'import'"
     " AND year(d.declaration_date) = {ly} GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
     "top", "top_chapters"),
    ("main origin countries of chapter {ch} imports",
     "SELECT i.origin_country, round(sum(i.customs_value), 2) {JOIN} WHERE d.flow = 'import'"
     " AND i.hs_code LIKE '{ch}%' GROUP BY 1 ORDER BY 2 DESC LIMIT 5", "top", "top_origins"),
    ("imports from {cn} per month in {ly}",
     "SELECT strftime(d.declaration_date, '%Y-%m'), round(sum(i.customs_value), 2) {JOIN} "
     "WHERE d.flow = 'import' AND i.origin_country = '{cc}' AND year(d.declaration_date) = "
     "{ly} GROUP BY 1", "set", "national_trend"),
    ("control channel statistics for {ly}",
     "SELECT control_channel, count(*) FROM declarations WHERE year(declaration_date) = {ly} "
     "GROUP BY 1", "set", "channel_stats"),
    ("red channel share by customs office",
     "SELECT customs_office, round(100.0 * count(*) FILTER (WHERE control_channel = 'red') / "
     "count(*), 1) FROM declarations GROUP BY 1 ORDER BY count(*) FILTER (WHERE "
     "control_channel = 'red') / count(*) DESC, 1 LIMIT 3", "top", "red_share_by_office"),
    ("workload of each customs office in {ly}",
     "SELECT customs_office, count(*) FROM declarations WHERE year(declaration_date) = {ly} "
     "GROUP BY 1", "set", "office_workload"),
    ("how many AEO traders are there?",
     "SELECT aeo_status, count(*) FROM traders WHERE aeo_status <> 'none' GROUP BY 1",
     "set", "aeo_summary"),
    ("duty revenue per year",
     "SELECT year(d.declaration_date), round(sum(i.duty_amount), 2) {JOIN} "
     "WHERE d.flow = 'import' GROUP BY 1", "set", "duty_revenue"),
    ("imports by sector", "SELECT t.sector, round(sum(i.customs_value), 2) {JOIN} JOIN "
     "traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import' GROUP BY 1",
     "set", "by_sector"),
    ("declarations per procedure code",
     "SELECT procedure_code, count(*) FROM declarations GROUP BY 1", "set", "by_procedure"),
    ("audit outcomes", "SELECT outcome, count(*) FROM audits GROUP BY 1", "set",
     "audit_outcomes"),
]


@pytest.mark.parametrize(("question", "sql", "mode", "intent"), CASES,
                         ids=[c[3] + "-" + str(n) for n, c in enumerate(CASES)])
def test_intent_families_answer_with_reference_figures(engine: OfflineEngine, ref: Any,
                                                       v: SimpleNamespace, question: str,
                                                       sql: str, mode: str, intent: str) -> None:
    answer = engine.answer(question.format(**vars(v)))
    assert answer.intent == intent, (answer.intent, answer.text)
    expected = ref(sql.format(JOIN=JOIN, **vars(v)))
    if mode == "first_kv":  # a field/value profile: the field's row must show the value
        field, value = expected[0]
        assert answer.table is not None and [field, value] in answer.table.rows
        return
    check(answer, expected, mode)


def test_compare_this_year_with_last_year_like_for_like(engine: OfflineEngine, ref: Any,
                                                        v: SimpleNamespace) -> None:
    answer = engine.answer("compare imports this year with last year")
    assert answer.intent == "plan:compare"  # both values, the change and % in one row
    this = ref(f"SELECT round(sum(i.customs_value), 2) {JOIN} WHERE d.flow = 'import' "
               f"AND d.declaration_date BETWEEN DATE '{v.y}-01-01' AND DATE '{v.latest}'")
    last = ref(f"SELECT round(sum(i.customs_value), 2) {JOIN} WHERE d.flow = 'import' "
               f"AND d.declaration_date BETWEEN DATE '{v.ly}-01-01' "
               f"AND DATE '{v.latest}' - INTERVAL 1 YEAR")
    assert answer.table is not None
    assert answer.table.rows[0][:2] == [last[0][0], this[0][0]]


def test_low_unit_values_follow_the_stated_definition(engine: OfflineEngine, ref: Any) -> None:
    answer = engine.answer("Which declarations have unit values far below the market?")
    assert answer.intent == "low_unit_values"
    expected = ref(f"""WITH imp AS (SELECT i.declaration_id, i.item_no, left(i.hs_code, 6) hs6,
        i.origin_country, i.customs_value / i.net_mass_kg AS uv {JOIN}
        WHERE d.flow = 'import' AND i.net_mass_kg > 0),
      p AS (SELECT hs6, origin_country, median(uv) med, count(*) n FROM imp GROUP BY ALL)
      SELECT imp.declaration_id, imp.item_no FROM imp JOIN p USING (hs6, origin_country)
      WHERE p.n >= 10 AND imp.uv < 0.5 * p.med
      ORDER BY imp.uv / p.med, imp.declaration_id, imp.item_no LIMIT 10""")
    assert expected, "the demo data plants undervalued items"
    check(answer, expected, "top")


def test_origin_shift_of_one_trader(engine: OfflineEngine, ref: Any, v: SimpleNamespace) -> None:
    answer = engine.answer(f"Did {v.n1} switch origin country between {v.py} and {v.ly}?")
    assert answer.intent == "trader_origin_shift"
    expected = ref(f"""SELECT i.origin_country,
        round(coalesce(sum(i.customs_value) FILTER (WHERE year(d.declaration_date) = {v.py}),
                       0), 2),
        round(coalesce(sum(i.customs_value) FILTER (WHERE year(d.declaration_date) = {v.ly}),
                       0), 2)
        {JOIN} WHERE d.trader_id = '{v.t1}' AND d.flow = 'import'
        AND year(d.declaration_date) IN ({v.py}, {v.ly}) GROUP BY 1""")
    check(answer, sorted(expected, key=lambda r: -r[2])[:3], "top")


def test_every_intent_runs_its_sql(engine: OfflineEngine, v: SimpleNamespace, ref: Any) -> None:
    """Each SQL intent, with slots read from one of its own phrasings, passes the guard, runs
    and writes its sentence (no template or SQL error)."""
    decl = ref("SELECT declaration_id FROM declarations LIMIT 1")[0][0]
    fill = {"trader": v.n1, "period": str(v.ly), "country": v.cn, "hs": f"chapter {v.ch}",
            "goods": f"chapter {v.ch}", "office": ref(
                "SELECT customs_office FROM declarations LIMIT 1")[0][0], "n": "5",
            "declaration": decl}
    for intent in load_intents():
        if intent.kind == "search":
            continue
        question = intent.examples[0].format(**fill)
        slots = engine.extractor.extract(clean_question(question))
        if "hs" in intent.required and slots.hs is None:
            slots = engine.extractor.extract(f"HS {v.ch}")
        answer = engine.execute(Plan("intent", question, intent=intent, slots=slots))
        assert answer.intent == intent.id
        assert answer.sql, (intent.id, answer.text)
        assert "could not run" not in answer.text and "failed" not in answer.text, \
            (intent.id, answer.text)


def test_shown_sql_is_exactly_what_produced_the_table(engine: OfflineEngine, demo_db: Path,
                                                       v: SimpleNamespace) -> None:
    answer = engine.answer(f"top 5 importers from {v.cn} in {v.ly}")
    assert answer.table is not None and len(answer.sql) == 1
    assert f"'{v.cc}'" in answer.sql[0] and f"DATE '{v.ly}-01-01'" in answer.sql[0].replace(
        "CAST('", "DATE '").replace("' AS DATE)", "'")
    rerun = SqlRunner(demo_db).run(answer.sql[0])
    assert rerun.rows == answer.table.rows


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text)]


def test_every_figure_in_the_text_comes_from_the_result(engine: OfflineEngine,
                                                        v: SimpleNamespace) -> None:
    questions = [f"How much did {v.n1} import in {v.ly}?", f"top 5 importers in {v.ly}",
                 "control channel statistics", f"Give me a profile of {v.n2}",
                 f"{v.n1} imports by month in {v.ly}", "compare imports this year with last year",
                 f"How much duty did {v.n2} pay?", "Which imports look undervalued?",
                 f"imports from {v.cn} by chapter"]
    for question in questions:
        answer = engine.answer(question)
        assert answer.table is not None, question
        allowed: list[float] = [float(len(answer.table.rows))]
        label_text = question + " " + " ".join(str(x) for x in answer.slots.values())
        for table in answer.tables:
            columns = list(zip(*table.rows, strict=True)) if table.rows else []
            for column in columns:
                numbers = [c for c in column if isinstance(c, int | float) and
                           not isinstance(c, bool)]
                allowed += [float(c) for c in numbers] + [float(sum(numbers))]
                label_text += " " + " ".join(str(c) for c in column if isinstance(c, str))
        labels = set(_numbers(label_text))
        text = re.sub(r"\d{4}-\d\d-\d\d", " ", answer.text)  # dates are labels
        for number in _numbers(text):
            if number in labels:
                continue
            assert any(math.isclose(number, a, abs_tol=0.5) or
                       math.isclose(number, abs(a), abs_tol=0.05) for a in allowed), \
                (question, number, answer.text)


# -- refusals, fallbacks, odd input, rules --------------------------------------------------------


WRITES = ["Delete trader {n1}", "drop table declarations", "DELETE FROM traders",
          "Please update the customs value of declaration X to 0", "remove all audits",
          "Set the AEO status of {n2} to AEO-F", "insert a new declaration",
          "Change the origin country on {n1}'s declarations to Vietnam", "truncate audits",
          "Could you correct the duty amount on the last declaration?", "wipe the audit log",
          "mark {n1} as high risk", "add a new trader called Blue Horizon Ltd",
          "SELECT 1; DROP TABLE traders", "can you erase the declarations from {ly}?"]


@pytest.mark.parametrize("request_", WRITES)
def test_write_requests_are_refused(engine: OfflineEngine, v: SimpleNamespace,
                                    request_: str) -> None:
    answer = engine.answer(request_.format(**vars(v)))
    assert answer.engine == "refused"
    assert not answer.sql and answer.table is None
    assert "can't change data" in answer.text


@pytest.mark.parametrize("question", [
    "Did they change origin country?", "Which traders changed their main origin country?",
    "Remove exports from the chart", "Show me what changed in 2024",
    "How many declarations were corrected after an audit?"])
def test_questions_with_change_words_are_not_writes(question: str) -> None:
    assert not is_write_request(question)


def test_out_of_scope_is_honest_and_offers_close_questions(engine: OfflineEngine) -> None:
    for question in ("What's the weather in Tashkent tomorrow?", "Tell me a joke",
                     "Who will win the football world cup?"):
        answer = engine.answer(question)
        assert answer.engine == "offline" and not answer.sql and answer.table is None
        assert "can't answer" in answer.text
        assert len(answer.suggestions) == 3


def test_suggestions_of_a_fallback_are_answerable(engine: OfflineEngine) -> None:
    answer = engine.answer("Explain the theory of relativity")
    for suggestion in answer.suggestions:
        follow = engine.answer(suggestion)
        assert follow.sql or follow.citations, (suggestion, follow.text)


@pytest.mark.parametrize("question", [
    "", "   ", "x" * 10_000, "Что импортировала компания в 2024 году?",
    "2024년 수입 총액은?",
    "ما هي الواردات في 2024", "\x00\x01\x02", "💥💥💥", "?!?!", "a" * 1999,
])
def test_odd_input_gets_a_polite_answer(engine: OfflineEngine, question: str) -> None:
    answer = engine.answer(question)
    assert answer.engine == "offline"
    assert answer.text and not answer.sql


def test_control_characters_are_ignored(engine: OfflineEngine, v: SimpleNamespace) -> None:
    answer = engine.answer(f"total\x00 imports\x07 in\u200b {v.ly}")
    assert answer.intent == "national_total" and answer.sql


def test_ambiguous_trader_asks_which_one(engine: OfflineEngine) -> None:
    index = engine.extractor.traders
    common = engine.extractor.common_words
    from tools.traders import NAME_FILLERS

    word, rows = next(
        (w, r) for w, r in sorted(index.by_word.items())
        if 2 <= len(r) <= 8 and len(w) >= 4 and w.isalpha() and w not in NAME_FILLERS
        and w not in common and len({index.rows[n].core for n in r}) == len(r)
        and all(index.rows[n].core != w for n in r))
    answer = engine.answer(f"What did {word.title()} import in 2024?")
    assert not answer.sql and "Which one" in answer.text
    assert len(answer.suggestions) == len(rows)
    chosen = engine.answer(answer.suggestions[0])
    assert chosen.intent == "trader_total" and chosen.sql
    assert index.rows[rows[0]].trader_id in chosen.sql[0] or any(
        index.rows[n].trader_id in chosen.sql[0] for n in rows)


def test_unknown_trader_is_said_so(engine: OfflineEngine) -> None:
    answer = engine.answer("What did Zyxwv Quantum Holdings Corp import in 2024?")
    assert not answer.sql and "No trader named" in answer.text


def test_rule_question_quotes_and_cites_passages(engine: OfflineEngine) -> None:
    answer = engine.answer("How long must an importer keep records?")
    assert answer.intent == "regulation_lookup" and not answer.sql
    assert answer.citations and answer.citations[0].source.endswith("record-keeping.md")
    quotes = re.findall(r'"(.+?)"(?:\n|$)', answer.text, flags=re.S)
    assert quotes
    for quote, citation in zip(quotes, answer.citations, strict=False):
        for piece in quote.replace("...", "\n").split("\n"):
            piece = piece.strip()
            if piece:
                assert piece in " ".join(citation.text.split()), piece


def test_related_party_rule_question(engine: OfflineEngine) -> None:
    answer = engine.answer("When can we reject the declared transaction value between related "
                           "parties?")
    assert answer.intent == "regulation_lookup"
    sources = [c.source for c in answer.citations]
    assert any("related-party" in s or "transaction-value" in s for s in sources), sources


def test_hs_lookup_and_declaration_detail(engine: OfflineEngine, ref: Any,
                                          v: SimpleNamespace) -> None:
    answer = engine.answer(f"What does chapter {v.ch} cover?")
    assert answer.intent == "hs_lookup"
    check(answer, ref(f"SELECT code, description FROM hs_nomenclature WHERE code = '{v.ch}'"),
          "first")
    decl = ref("SELECT declaration_id FROM declarations ORDER BY declaration_date DESC, "
               "declaration_id LIMIT 1")[0][0]
    detail = engine.answer(f"show declaration {decl}")
    assert detail.intent == "declaration_detail"
    check(detail, ref(f"SELECT item_no, hs_code FROM declaration_items "
                      f"WHERE declaration_id = '{decl}'"), "set")


# -- the Assistant: routing and threads -----------------------------------------------------------


class _FakeLLM:
    """A stand-in LLM engine (only an LLM may be faked): records calls, may fail."""

    name = "llm"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def answer(self, question: str, conversation: Any = None) -> Answer:
        from tamga.errors import LLMUnavailable

        self.calls.append(question)
        if self.fail:
            raise LLMUnavailable("connection refused")
        return Answer("model answer", engine="llm")


def test_auto_routing(engine: OfflineEngine, tmp_path: Path, v: SimpleNamespace) -> None:
    llm = _FakeLLM()
    assistant = Assistant(db_path=engine.context.database, index_dir=_index_dir(engine),
                          log_dir=tmp_path, llm_engine=llm, offline=engine)
    confident = assistant.ask(f"total imports in {v.ly}")
    assert confident.engine == "offline" and not llm.calls
    vague = assistant.ask("Which trader looks like a smuggling front company?")
    assert vague.engine == "llm" and llm.calls
    refused = assistant.ask("delete all traders", engine="llm")
    assert refused.engine == "refused" and len(llm.calls) == 1
    forced = assistant.ask(f"total imports in {v.ly}", engine="offline")
    assert forced.engine == "offline" and len(llm.calls) == 1


def test_llm_down_falls_back_to_offline_with_a_warning(engine: OfflineEngine, tmp_path: Path,
                                                       v: SimpleNamespace) -> None:
    assistant = Assistant(db_path=engine.context.database, index_dir=_index_dir(engine),
                          log_dir=tmp_path, llm_engine=_FakeLLM(fail=True), offline=engine)
    answer = assistant.ask(f"total imports in {v.ly}", engine="llm")
    assert answer.engine == "offline" and answer.sql
    assert "unavailable" in answer.warnings[0]
    no_llm = Assistant(db_path=engine.context.database, index_dir=_index_dir(engine),
                       log_dir=tmp_path, offline=engine, load_llm=False)
    answer = no_llm.ask(f"total imports in {v.ly}", engine="llm")
    assert answer.engine == "offline" and "not available" in answer.warnings[0]


def test_twenty_threads_twenty_conversations_no_cross_talk(engine: OfflineEngine, ref: Any,
                                                           tmp_path: Path,
                                                           v: SimpleNamespace) -> None:
    assistant = Assistant(db_path=engine.context.database, index_dir=_index_dir(engine),
                          log_dir=tmp_path, offline=engine, load_llm=False)
    traders = ref("SELECT DISTINCT d.trader_id FROM declarations d WHERE d.flow = 'import' "
                  f"AND year(d.declaration_date) = {v.py} ORDER BY 1 LIMIT 5")
    traders = [t[0] for t in traders]
    expected = {t: ref(f"SELECT round(sum(i.customs_value), 2) {JOIN} WHERE d.trader_id = "
                       f"'{t}' AND d.flow = 'import' AND year(d.declaration_date) = {v.py}")[0][0]
                for t in traders}
    barrier = threading.Barrier(20)

    def chat(k: int) -> tuple[str, Answer]:
        trader = traders[k % len(traders)]
        conversation = assistant.new_conversation(user=f"officer{k}")
        barrier.wait()
        assistant.ask(f"What did {trader} import in {v.ly}?", conversation, user=f"officer{k}")
        return trader, assistant.ask(f"and in {v.py}?", conversation, user=f"officer{k}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(chat, range(20)))
    for trader, answer in results:
        assert answer.intent == "trader_total", answer.text
        assert trader in answer.sql[0]
        check(answer, [[expected[trader]]], "first")
    assert assistant.audit is not None and assistant.audit.verify().records == 40


def test_regulation_tool_returns_citations_and_verbatim_quotes(guidance_index: Path) -> None:
    from retrieval.search import RegulationsIndex
    from tools.regulations import best_excerpt, search_regulations

    question = "How long must records be kept after the declaration?"
    citations = search_regulations(RegulationsIndex(guidance_index), question, k=4)
    assert citations and citations[0].source.endswith("record-keeping.md")
    assert all(c.score >= 0.5 * citations[0].score for c in citations)
    quote = best_excerpt(citations[0].text, question, limit=200)
    for piece in quote.replace("...", "\n").split("\n"):
        assert piece.strip() in " ".join(citations[0].text.split())
    assert len(quote) <= 210


def test_ask_reports_its_steps(engine: OfflineEngine, tmp_path: Path, v: SimpleNamespace) -> None:
    assistant = Assistant(db_path=engine.context.database, index_dir=_index_dir(engine),
                          log_dir=tmp_path, offline=engine, load_llm=False)
    steps: list[str] = []
    answer = assistant.ask(f"top 5 importers in {v.ly}", on_step=steps.append)
    assert answer.sql and steps[0] == "Reading the question"
    assert any("Top importers" in s for s in steps[1:])
