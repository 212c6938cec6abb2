"""`tamga export parquet`: every trade table as Parquet, partitioned by year/month, lossless."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tamga.errors import DatabaseMissing, ExportRefused
from tradedata import db
from tradedata.db import TABLES
from tradedata.parquet_export import MANIFEST, PARTITION_DATES, export_parquet


@pytest.fixture(scope="module")
def exported(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "lake"
    lines: list[str] = []
    summary = export_parquet(demo_db, folder, progress=lines.append)
    assert [line.split()[1] for line in lines] == list(TABLES)  # progress, table by table
    assert set(summary.rows) == set(TABLES)
    return folder


def _files(folder: Path, table: str) -> str:
    return str(folder / table / "**" / "*.parquet")


def test_every_table_comes_back_identical(demo_db: Path, exported: Path) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{demo_db}' AS src (READ_ONLY)")
    for table in TABLES:
        parquet = f"read_parquet('{_files(exported, table)}', hive_partitioning = false)"
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM src.main.{table}").fetchall()]
        assert [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {parquet}").fetchall()] \
            == columns, f"{table}: the files must hold exactly the table's columns"
        for left, right in ((f"src.main.{table}", parquet), (parquet, f"src.main.{table}")):
            extra = con.execute(
                f"SELECT count(*) FROM (SELECT * FROM {left} EXCEPT ALL SELECT * FROM {right})"
            ).fetchone()
            assert extra == (0,), f"{table}: rows differ between DuckDB and Parquet"


def test_dated_tables_are_partitioned_by_year_and_month(demo_db: Path, exported: Path) -> None:
    con = db.connect(demo_db, read_only=True)
    try:
        for table, column in PARTITION_DATES.items():
            months = {(y, m) for y, m in con.execute(
                f"SELECT DISTINCT year({column}), month({column}) FROM {table}").fetchall()}
            folders = {(int(p.parent.name.split("=")[1]), int(p.name.split("=")[1]))
                       for p in (exported / table).glob("year=*/month=*")}
            assert folders == months, table
    finally:
        con.close()


def test_the_manifest_says_what_was_exported(demo_db: Path, exported: Path) -> None:
    manifest = json.loads((exported / MANIFEST).read_text(encoding="utf-8"))
    con = db.connect(demo_db, read_only=True)
    try:
        for table in TABLES:
            entry = manifest["tables"][table]
            assert (entry["rows"],) == con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert entry["partitioned_by"] == (["year", "month"] if table in PARTITION_DATES
                                               else [])
        assert manifest["tables"]["declarations"]["columns"]["declaration_date"] == "DATE"
    finally:
        con.close()


def test_a_folder_with_other_files_is_refused_and_kept(demo_db: Path, tmp_path: Path) -> None:
    keep = tmp_path / "notes.txt"
    keep.write_text("mine", encoding="utf-8")
    with pytest.raises(ExportRefused, match="not empty"):
        export_parquet(demo_db, tmp_path, progress=lambda _: None)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert keep.read_text(encoding="utf-8") == "mine"


def test_an_earlier_export_is_replaced_only_when_asked(demo_db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lake"
    export_parquet(demo_db, folder, progress=lambda _: None)
    first = (folder / MANIFEST).read_text(encoding="utf-8")
    with pytest.raises(ExportRefused, match="--replace"):
        export_parquet(demo_db, folder, progress=lambda _: None)
    assert (folder / MANIFEST).read_text(encoding="utf-8") == first
    summary = export_parquet(demo_db, folder, replace=True, progress=lambda _: None)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*TABLES, MANIFEST])
    assert summary.rows["declaration_items"] == json.loads(first)["tables"][
        "declaration_items"]["rows"]


def test_a_missing_database_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatabaseMissing):
        export_parquet(tmp_path / "none.duckdb", tmp_path / "out", progress=lambda _: None)
    assert not (tmp_path / "out").exists()


def test_the_cli_exports_and_refuses_with_a_message(demo_db: Path, tmp_path: Path) -> None:
    tamga = [sys.executable, "-m", "cli.main"]
    done = subprocess.run([*tamga, "export", "parquet", "--to", str(tmp_path / "x"),
                           "--db", str(demo_db)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Exported 7 tables" in done.stdout and "Exporting declaration_items" in done.stderr
    again = subprocess.run([*tamga, "export", "parquet", "--to", str(tmp_path / "x"),
                            "--db", str(demo_db)], capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "--replace" in again.stderr
