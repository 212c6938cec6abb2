"""declaration_items carries copies of its declaration's trader_id, declaration_date and flow
(and hs_chapter = left(hs_code, 2)): every writer must keep them equal to the source."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from tamga.errors import ImportRejected
from tradedata.db import connect as db_connect
from tradedata.importers import TABLE_COLUMNS, import_files

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
KCS_TRAIN = (REPO / ".." / "shared" / "data" / "kcs" / "df_syn_train_eng.csv").resolve()
TRADERS = DATA / "traders.csv"
LINES = DATA / "declaration_lines.csv"
INFO = DATA / "dataset_info.csv"

# Items whose copies differ from their declaration (or whose chapter is not their code's).
MISMATCHES = """
    SELECT count(*) FILTER (WHERE i.trader_id IS DISTINCT FROM d.trader_id) AS trader_id,
           count(*) FILTER (WHERE i.declaration_date IS DISTINCT FROM d.declaration_date)
               AS declaration_date,
           count(*) FILTER (WHERE i.flow IS DISTINCT FROM d.flow) AS flow,
           count(*) FILTER (WHERE i.hs_chapter IS DISTINCT FROM left(i.hs_code, 2))
               AS hs_chapter,
           count(d.declaration_id) AS joined,
           count(*) AS items
    FROM declaration_items i LEFT JOIN declarations d USING (declaration_id)
"""


def mismatches(db: Path) -> dict[str, int]:
    """Mismatch counts per copied column, plus joined and total item counts."""
    con = db_connect(db, read_only=True)
    try:
        cur = con.execute(MISMATCHES)
        names = [c[0] for c in cur.description]
        row = cur.fetchone()
    finally:
        con.close()
    assert row is not None
    return dict(zip(names, row, strict=True))


def assert_copies_equal(db: Path, min_items: int = 1) -> None:
    found = mismatches(db)
    assert found["items"] >= min_items
    assert found["joined"] == found["items"]  # every item has its declaration
    assert {k: found[k] for k in ("trader_id", "declaration_date", "flow", "hs_chapter")} == {
        "trader_id": 0, "declaration_date": 0, "flow": 0, "hs_chapter": 0,
    }


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def split_lines(tmp_path: Path, extra: list[str] | None = None) -> tuple[Path, Path]:
    """The example lines as a declarations file and an items file (items may carry `extra`)."""
    lines = read_rows(LINES)
    decl_cols = [c.name for c in TABLE_COLUMNS["declarations"]]
    item_cols = [c.name for c in TABLE_COLUMNS["declaration_items"]] + (extra or [])
    seen: dict[str, dict[str, str]] = {}
    for row in lines:
        seen.setdefault(row["declaration_id"], row)
        row["hs_chapter"] = row["hs_code"][:2]
    decls = write_rows(tmp_path / "declarations.csv", list(seen.values()), decl_cols)
    items = write_rows(tmp_path / "items.csv", lines, [c for c in item_cols if c in lines[0]])
    return decls, items


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_items_copy_their_declaration(demo_db: Path) -> None:
    assert_copies_equal(demo_db, min_items=20_000)


def test_csv_lines_import_fills_copies(tmp_path: Path) -> None:
    db = tmp_path / "trade.duckdb"
    import_files("csv", [TRADERS, LINES, INFO], db)
    assert_copies_equal(db, min_items=len(read_rows(LINES)))


def test_csv_items_file_without_copies_is_filled(tmp_path: Path) -> None:
    db = tmp_path / "trade.duckdb"
    decls, items = split_lines(tmp_path)
    import_files("csv", [TRADERS, decls, INFO], db)  # declarations first, items in a later run
    summary = import_files("csv", [items], db)
    assert summary.tables["declaration_items"].inserted == len(read_rows(LINES))
    assert_copies_equal(db, min_items=len(read_rows(LINES)))
    again = import_files("csv", [items], db)  # re-import adds nothing
    assert again.inserted == 0


def test_parquet_items_carrying_equal_copies_accepted(tmp_path: Path) -> None:
    import pandas as pd

    db = tmp_path / "trade.duckdb"
    decls, items = split_lines(tmp_path, ["trader_id", "declaration_date", "flow", "hs_chapter"])
    frame = pd.read_csv(items, dtype=str)
    assert {"trader_id", "flow", "hs_chapter"} <= set(frame.columns)
    frame = frame.drop(columns=["declaration_date"])  # with it the file would be a lines file
    parquet = tmp_path / "items.parquet"
    frame.to_parquet(parquet)
    import_files("csv", [TRADERS, decls, INFO], db)
    import_files("parquet", [parquet], db)
    assert_copies_equal(db, min_items=len(frame))


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [("trader_id", "T-NOBODY", "trader_id of declaration"),
     ("flow", None, "flow of declaration"),
     ("hs_chapter", "99", "is not the chapter of hs_code")],
)
def test_items_carrying_other_values_rejected(tmp_path: Path, column: str, value: str | None,
                                              fragment: str) -> None:
    db = tmp_path / "trade.duckdb"
    decls, _ = split_lines(tmp_path)
    import_files("csv", [TRADERS, decls, INFO], db)
    rows = read_rows(LINES)
    for row in rows:
        row["hs_chapter"] = row["hs_code"][:2]
    target = rows[2]
    if value is None:  # the other flow
        value = "export" if target["flow"] == "import" else "import"
    target[column] = value
    cols = [c.name for c in TABLE_COLUMNS["declaration_items"]] + [column]
    items = write_rows(tmp_path / "bad_items.csv", rows, [c for c in cols if c in rows[0]])
    before = sha(db)
    with pytest.raises(ImportRejected) as info:
        import_files("csv", [items], db)
    message = str(info.value)
    assert "bad_items.csv" in message and "row 3" in message and repr(column) in message
    assert fragment in message
    assert sha(db) == before


@pytest.mark.skipif(not KCS_TRAIN.exists(), reason="KCS reference data not found")
def test_kcs_import_fills_copies(tmp_path: Path) -> None:
    sample = tmp_path / "kcs_sample.csv"
    with KCS_TRAIN.open(encoding="utf-8") as src, sample.open("w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n > 300:
                break
            dst.write(line)
    db = tmp_path / "trade.duckdb"
    import_files("kcs", [sample], db)
    assert_copies_equal(db, min_items=300)
