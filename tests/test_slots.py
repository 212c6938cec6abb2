"""Slot extraction on the real demo database: periods relative to the data, HS codes and goods
words, countries, top-N, measures, offices and traders (exact, fuzzy, by TIN/ID, ambiguous)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from assistant.context import DataContext
from assistant.intents import load_intents
from assistant.slots import SlotExtractor, clean_question
from tamga.period import add_months
from tools.traders import NAME_FILLERS, fold
from tradedata.db import connect


@pytest.fixture(scope="module")
def ex(demo_db: Path) -> SlotExtractor:
    context = DataContext.open(demo_db)
    context.vocabulary = frozenset(load_intents().vocabulary())
    return context.extractor


@pytest.fixture(scope="module")
def con(demo_db: Path) -> duckdb.DuckDBPyConnection:
    return connect(demo_db, read_only=True)


@pytest.fixture(scope="module")
def latest(con: duckdb.DuckDBPyConnection) -> date:
    return con.execute("SELECT max(declaration_date) FROM declarations").fetchall()[0][0]


def _one_period(ex: SlotExtractor, question: str) -> tuple[date, date]:
    slots = ex.extract(clean_question(question))
    assert slots.period is not None, question
    return slots.period.start, slots.period.end


# -- periods --------------------------------------------------------------------------------------


def test_explicit_periods(ex: SlotExtractor) -> None:
    assert _one_period(ex, "imports in 2024") == (date(2024, 1, 1), date(2025, 1, 1))
    assert _one_period(ex, "imports in Q3 2024") == (date(2024, 7, 1), date(2024, 10, 1))
    assert _one_period(ex, "third quarter of 2024") == (date(2024, 7, 1), date(2024, 10, 1))
    assert _one_period(ex, "what came in in March 2025") == (date(2025, 3, 1), date(2025, 4, 1))
    assert _one_period(ex, "between Jan and Jun 2024") == (date(2024, 1, 1), date(2024, 7, 1))
    assert _one_period(ex, "from November 2023 to February 2024") == (
        date(2023, 11, 1), date(2024, 3, 1))
    assert _one_period(ex, "the first half of 2024") == (date(2024, 1, 1), date(2024, 7, 1))
    assert _one_period(ex, "H2 2023") == (date(2023, 7, 1), date(2024, 1, 1))


def test_relative_periods_count_from_the_latest_declaration(ex: SlotExtractor,
                                                             latest: date) -> None:
    end = latest + timedelta(days=1)
    month_start = latest.replace(day=1)
    assert ex.facts.latest_date == latest
    assert _one_period(ex, "imports last year") == (date(latest.year - 1, 1, 1),
                                                    date(latest.year, 1, 1))
    assert _one_period(ex, "imports this year") == (date(latest.year, 1, 1), end)
    assert _one_period(ex, "in the last 3 months") == (add_months(month_start, -2), end)
    assert _one_period(ex, "this month") == (month_start, add_months(month_start, 1))
    q_start = date(latest.year, 3 * ((latest.month - 1) // 3) + 1, 1)
    assert _one_period(ex, "last quarter") == (add_months(q_start, -3), q_start)
    assert _one_period(ex, "since March 2024") == (date(2024, 3, 1), end)
    this_year = ex.extract("this year").period
    assert this_year is not None and this_year.kind == "ytd"
    assert this_year.partial == (end < date(latest.year + 1, 1, 1))


def test_a_year_range_gives_both_years_and_the_span(ex: SlotExtractor) -> None:
    slots = ex.extract("Did they move sourcing from 2023 to 2024?")
    assert [p.start.year for p in slots.periods] == [2023, 2024]
    assert slots.range_period is not None
    assert (slots.range_period.start, slots.range_period.end) == (date(2023, 1, 1),
                                                                  date(2025, 1, 1))


def test_like_for_like_cuts_the_earlier_period(ex: SlotExtractor, latest: date) -> None:
    this_year = ex.extract("this year").period
    last_year = ex.extract("last year").period
    assert this_year is not None and last_year is not None
    cut = ex.like_for_like(last_year, this_year)
    assert cut.start == date(latest.year - 1, 1, 1)
    assert cut.end == add_months(latest + timedelta(days=1), -12)


# -- goods and HS codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "code", "level"), [
    ("imports under chapter 85", "85", 2),
    ("chapter 9 goods", "09", 2),
    ("heading 8517 by origin", "8517", 4),
    ("HS 8517.13 imports", "851713", 6),
    ("who imports coffee?", "0901", 4),
    ("mobile phones from China", "851713", 6),
    ("Chinese steel", "72", 2),
    ("tariff code 3004901000", "3004901000", 10),
])
def test_hs_by_code_and_words(ex: SlotExtractor, question: str, code: str, level: int) -> None:
    slots = ex.extract(question)
    assert slots.hs is not None, question
    assert (slots.hs.code, slots.hs.level) == (code, level)


def test_goods_word_found_in_the_nomenclature_is_flagged(ex: SlotExtractor) -> None:
    slots = ex.extract("Which companies import olive oil?")
    assert slots.hs is not None and slots.hs.code == "1509" and slots.hs.via == "description"
    assert any("olive" in note for note in slots.notes)


def test_unknown_hs_code_is_a_problem_not_a_filter(ex: SlotExtractor) -> None:
    slots = ex.extract("imports under heading 7790")
    assert slots.hs is None
    assert slots.problems and "7790" in slots.problems[0]


def test_a_year_is_not_a_heading_unless_named_so(ex: SlotExtractor) -> None:
    year = ex.extract("imports in 2024")
    assert year.hs is None and year.period is not None
    heading = ex.extract("imports of heading 2008")
    assert heading.hs is not None and heading.hs.code == "2008" and heading.period is None


# -- countries, offices, small slots --------------------------------------------------------------


@pytest.mark.parametrize(("question", "codes"), [
    ("imports from China", ["CN"]),
    ("goods of CN origin", ["CN"]),
    ("imports from Viet Nam", ["VN"]),
    ("imports from Vietnam", ["VN"]),
    ("what comes from the US", ["US"]),
    ("South Korea and Japan", ["KR", "JP"]),
    ("did they switch from China to Vietnam", ["CN", "VN"]),
    ("show us the imports", []),
    ("imports IN 2024", []),
])
def test_countries(ex: SlotExtractor, question: str, codes: list[str]) -> None:
    assert [c.code for c in ex.extract(question).countries] == codes


def test_office_by_name_without_accents(ex: SlotExtractor, con: duckdb.DuckDBPyConnection
                                        ) -> None:
    office = con.execute("SELECT customs_office FROM declarations GROUP BY 1 "
                         "ORDER BY count(*) DESC LIMIT 1").fetchall()[0][0]
    plain = fold(office).title()
    assert ex.extract(f"declarations at {plain} in 2024").office == office


@pytest.mark.parametrize(("question", "n"), [
    ("top 5 importers", 5), ("the ten biggest importers", 10), ("top importers", None),
    ("imports in the last 3 months", None), ("first 20 declarations", 20),
])
def test_top_n(ex: SlotExtractor, question: str, n: int | None) -> None:
    assert ex.extract(question).top_n == n


@pytest.mark.parametrize(("question", "metric"), [
    ("chapters ranked by duty", "duty"), ("top importers by weight", "mass"),
    ("who lodged the most declarations", "count"), ("top importers", None),
    ("unit values per kg", None),
])
def test_metric(ex: SlotExtractor, question: str, metric: str | None) -> None:
    assert ex.extract(question).metric == metric


def test_flow_grain_channel_chart(ex: SlotExtractor) -> None:
    assert ex.extract("top exporters").flow == "export"
    assert ex.extract("imports and exports by month").flow == "both"
    assert ex.extract("imports by month").grain == "month"
    assert ex.extract("annual imports").grain == "year"
    assert ex.extract("red channel declarations").channel == "red"
    assert ex.extract("as a chart please").chart


# -- traders --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unique_trader(con: duckdb.DuckDBPyConnection) -> tuple[str, str, str]:
    """A trader whose folded core name no other trader shares (id, name, tin)."""
    rows = con.execute("SELECT trader_id, name, tin FROM traders ORDER BY trader_id").fetchall()
    from tools.traders import core_name

    cores = [core_name(r[1]) for r in rows]
    for (tid, name, tin), core in zip(rows, cores, strict=True):
        if cores.count(core) == 1 and len(core.split()) >= 2 and tin:
            return tid, name, tin
    raise AssertionError("no trader with a unique name")


def test_trader_by_full_core_and_lower_case_name(ex: SlotExtractor,
                                                 unique_trader: tuple[str, str, str]) -> None:
    tid, name, _ = unique_trader
    from tools.traders import core_name

    core = core_name(name)
    for question in (f"What did {name} import in 2024?",
                     f"What did {core.title()} import in 2024?",
                     f"what did {core} import in 2024?",
                     f"{core.title()}'s imports in 2024"):
        slots = ex.extract(question)
        assert slots.trader is not None and slots.trader.trader_id == tid, question
        assert slots.period is not None and slots.period.start.year == 2024


def test_trader_with_a_typo(ex: SlotExtractor, unique_trader: tuple[str, str, str]) -> None:
    tid, name, _ = unique_trader
    words = name.split()
    longest = max(range(len(words)), key=lambda k: len(words[k]))
    words[longest] = words[longest][:-2] + words[longest][-1]  # drop one letter
    slots = ex.extract(f"imports of {' '.join(words)} in 2024")
    assert slots.trader is not None and slots.trader.trader_id == tid


def test_trader_by_tin_and_id(ex: SlotExtractor, unique_trader: tuple[str, str, str]) -> None:
    tid, _, tin = unique_trader
    by_tin = ex.extract(f"imports of TIN {tin} during 2025")
    assert by_tin.trader is not None and by_tin.trader.trader_id == tid
    assert by_tin.period is not None and by_tin.period.start.year == 2025
    by_id = ex.extract(f"{tid.lower()} imports by chapter")
    assert by_id.trader is not None and by_id.trader.trader_id == tid


def test_ambiguous_trader_gives_candidates_not_a_guess(ex: SlotExtractor) -> None:
    index = ex.traders
    word, rows = next(
        (w, r) for w, r in sorted(index.by_word.items())
        if 2 <= len(r) <= 8 and len(w) >= 4 and w.isalpha() and w not in NAME_FILLERS
        and w not in ex.common_words
        and len({index.rows[n].core for n in r}) == len(r)
        and all(index.rows[n].core != w for n in r))
    slots = ex.extract(f"What did {word.title()} import last year?")
    assert slots.trader is None
    assert {m.trader_id for m in slots.trader_candidates} == {index.rows[n].trader_id
                                                             for n in rows}


def test_no_trader_in_a_national_question(ex: SlotExtractor) -> None:
    for question in ("Top importers in 2024", "Green channel share", "imports of steel",
                     "How long must an importer keep records?"):
        slots = ex.extract(question)
        assert slots.trader is None and not slots.trader_candidates, question


def test_unknown_company_name_is_noticed(ex: SlotExtractor) -> None:
    slots = ex.extract("What did Zyxwv Quantum Holdings Corp import in 2024?")
    assert slots.trader is None
    assert slots.unknown_name is not None and "Zyxwv" in slots.unknown_name


# -- odd input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [
    "", "   ", "\x00\x07 imports \u200b in 2024", "Что импортировала компания в 2024 году?",
    "2024년 수입", "ما هي الواردات في 2024", "💥💥💥", "x" * 10_000,
    "'; DROP TABLE traders; --",
])
def test_odd_input_does_not_crash(ex: SlotExtractor, question: str) -> None:
    slots = ex.extract(clean_question(question))
    assert isinstance(slots.to_json(), dict)


def test_clean_question_removes_control_characters() -> None:
    assert clean_question("Top\x00 importers\x07\u200b  in\n2024") == "Top importers in 2024"


@pytest.mark.parametrize(("typed", "read"), [
    ("duty per office, last qtr", "duty per office, last quarter"),
    ("importers this yr", "importers this year"),
    ("exports ly by month", "exports last year by month"),
    ("how many import decs in 2024", "how many import declarations in 2024"),
    ("ch 02 imports", "chapter 02 imports"),
    ("ch. 87 share of duty", "chapter 87 share of duty"),
    ("total exports 2024 v 2025?", "total exports 2024 vs 2025?"),
    ("Q1 2025 v. Q2 2025", "Q1 2025 vs Q2 2025"),
    ("value/kg on 8703", "value per kg on 8703"),
    ("# of entries at Balboa", "number of entries at Balboa"),
    ("audits by type - counts pls", "audits by type - counts"),
    ("importers w/ VAT > 2,000,000 last qtr", "importers with VAT above 2,000,000 last quarter"),
    ("traders w/o AEO, value >= 5m", "traders without AEO, value at least 5m"),
    ("addl duty < 1,000", "additional duty below 1,000"),
    ("value per dispatch ctry", "value per dispatch country"),
    ("split by invoicing ccy", "split by invoicing currency"),
    ("proc 7100 share", "procedure 7100 share"),
    ("pref 300 imports", "preference code 300 imports"),
    ("duty on pref-300 lines", "duty on preference code 300 lines"),
    ("pref. code 300 lines", "preference code 300 lines"),
    ("preference-code 300 items", "preference code 300 items"),
    ("HS 640399 value/pair", "HS 640399 value per pair"),
    ("duty last qtr v the qtr before", "duty last quarter vs the quarter before"),
    ("# new importers in 2024", "number of new importers in 2024"),
    ("AEO v non-AEO", "AEO vs non-AEO"),
    # words that only look like shorthand stay as typed
    ("Chapter 2 and the Dec figures", "Chapter 2 and the Dec figures"),
    ("imports from China, 2024", "imports from China, 2024"),
    ("the ch. is unclear", "the ch. is unclear"),
    ("a -> b and x > y", "a -> b and x > y"),
    ("goods of Section V", "goods of Section V"),
    ("Part V v Section XV", "Part V vs Section XV"),
    ("the proc was slow", "the proc was slow"),
])
def test_clean_question_writes_out_officers_shorthand(typed: str, read: str) -> None:
    assert clean_question(typed) == read


def test_shorthand_periods_are_the_plain_ones(ex: SlotExtractor) -> None:
    assert _one_period(ex, "duty by office last qtr") == _one_period(ex, "duty by office last "
                                                                         "quarter")
    assert _one_period(ex, "imports this yr") == _one_period(ex, "imports this year")
    assert _one_period(ex, "imports ly") == _one_period(ex, "imports last year")


def test_us_dollars_are_a_currency_not_the_country(ex: SlotExtractor) -> None:
    for question in ("Total invoice value of imports invoiced in US dollars in 2024",
                     "imports priced in US$ in 2024"):
        assert ex.extract(clean_question(question)).countries == [], question
    assert [c.code for c in ex.extract("imports from the US in 2024").countries] == ["US"]


def test_an_office_name_with_a_comma_is_one_office(ex: SlotExtractor) -> None:
    """ "Manzanillo International Terminal, Colón": the whole name is the office; its last word
    is not left over for the trader look-up (a trader called "Colon ..." once took it)."""
    for office in ex.facts.offices:
        if "," not in office:
            continue
        slots = ex.extract(clean_question(f"What customs value has {office} cleared in 2024?"))
        assert slots.office == office and slots.trader is None, (office, slots.masked)
        last = office.rsplit(",", 1)[1].strip()
        assert last not in slots.masked, (office, slots.masked)
