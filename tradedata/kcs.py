"""The Korea Customs Service synthetic declarations (KCS) and how they map to Tamga's model.

The importer itself lives in tradedata.importers (format ``kcs``); this module holds what is
specific to KCS: its columns, the code lists we translate, the SQL that maps a staged KCS
line to a canonical declaration line, and the side file that keeps the fraud labels away
from the tables the assistant can query. See docs/importing.md for the mapping table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# (header in the KCS file, staging column, value kind, value required). Every one of these
# headers must be present in a KCS file; values may be empty unless required.
FEATURE_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("Declaration ID", "declaration_id", "text", True),
    ("Date", "declaration_date", "date", True),
    ("Office ID", "customs_office", "text", False),
    ("Process Type", "process_type", "text", False),
    ("Import Type", "import_type", "text", False),
    ("Import Use", "import_use", "text", False),
    ("Payment Type", "payment_type", "text", False),
    ("Mode of Transport", "transport_code", "text", False),
    ("Declarant ID", "declarant_id", "text", False),
    ("Importer ID", "importer_id", "text", True),
    ("Seller ID", "seller_id", "text", False),
    ("Courier ID", "courier_id", "text", False),
    ("HS6 Code", "hs6", "hs6", True),
    ("Country of Departure", "departure_country", "kcs_country", False),
    ("Country of Origin", "origin_country", "kcs_country", False),
    ("Tax Rate", "tax_rate", "number", False),
    ("Tax Type", "tax_type", "text", False),
    ("Country of Origin Indicator", "origin_indicator", "text", False),
    ("Net Mass", "net_mass", "number", False),
    ("Item Price", "item_price", "number", True),
)

# The labels: optional (a file without them imports, its lines just have no label).
LABEL_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("Fraud", "fraud", "label01", False),
    ("Critical Fraud", "critical_fraud", "label012", False),
)

# KCS attributes that have no column in the canonical model; they travel with the labels.
EXTRA_COLUMNS: tuple[str, ...] = (
    "process_type",
    "import_use",
    "payment_type",
    "courier_id",
    "origin_indicator",
)

# Columns of the side file, in order.
SIDE_FILE_COLUMNS: tuple[str, ...] = (
    "declaration_id",
    "item_no",
    "fraud",
    "critical_fraud",
    *EXTRA_COLUMNS,
)

# Mode of transport: the KCS codes are the UN/ECE Recommendation 19 modes times ten.
TRANSPORT_MODES: dict[str, str] = {
    "10": "sea",
    "20": "rail",
    "30": "road",
    "40": "air",
    "50": "post",
    "60": "multimodal",
    "70": "fixed installation",
    "80": "inland waterway",
    "90": "other",
}

REPORTING_CURRENCY = "KRW"
SOURCE = "kcs"


def labels_path(db_path: Path) -> Path:
    """Where the KCS labels of the database at `db_path` are kept: `<db stem>.labels.parquet`."""
    db_path = Path(db_path).expanduser()
    return db_path.with_name(db_path.stem + ".labels.parquet")


def read_labels(db_path: Path) -> pd.DataFrame:
    """The KCS labels (and KCS-only attributes) imported next to `db_path`, keyed by
    declaration_id + item_no; an empty frame when none were imported."""
    path = labels_path(db_path)
    if not path.exists():
        return pd.DataFrame(columns=list(SIDE_FILE_COLUMNS))
    return pd.read_parquet(path)


def transport_sql(column: str) -> str:
    """SQL turning a KCS transport code column into Tamga's transport_mode word."""
    whens = " ".join(f"WHEN '{code}' THEN '{word}'" for code, word in TRANSPORT_MODES.items())
    return f"CASE {column} {whens} ELSE {column} END"


def lines_select_sql(source: str) -> str:
    """A SELECT giving canonical declaration-line columns (by name) from a staged KCS table."""
    return f"""
        SELECT _file, _row,
               declaration_id,
               declaration_date,
               'import' AS flow,
               importer_id AS trader_id,
               declarant_id,
               customs_office,
               import_type AS procedure_code,
               {transport_sql("transport_code")} AS transport_mode,
               departure_country AS dispatch_country,
               hs6 AS hs_code,
               origin_country,
               seller_id,
               tax_type AS preference_code,
               net_mass AS net_mass_kg,
               item_price AS customs_value,
               tax_rate AS duty_rate_pct,
               round(item_price * tax_rate / 100.0, 2) AS duty_amount
        FROM {source}
    """


def traders_select_sql(source: str) -> str:
    """A SELECT giving one trader row (by name) per KCS importer, from a staged KCS table."""
    return f"""
        SELECT _file, _row,
               importer_id AS trader_id,
               'Importer ' || importer_id AS name,
               'KR' AS country
        FROM {source}
        QUALIFY row_number() OVER (PARTITION BY importer_id ORDER BY _file, _row) = 1
    """
