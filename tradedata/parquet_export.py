"""`tamga export parquet`: the trade tables as Parquet files a lake engine (Spark) can read.

Layout of the export folder:

    tamga-export.json                     what was exported (tables, rows, columns, source)
    declarations/year=2024/month=1/data_0.parquet   dated tables, one folder per month
    declaration_items/year=.../month=.../...
    audits/year=.../month=.../...         (by opened_on)
    traders/data_0.parquet                the other tables, one file each
    ...

The year/month partition keys live only in the folder names; the files hold exactly the
table's columns, so a reader that ignores partition folders (Tamga's Spark backend reads
files recursively) sees the same table as DuckDB. An export never deletes anything it did
not write: it refuses a non-empty folder that is not an earlier export, and replaces an
earlier export table by table only with `replace=True`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tamga.errors import DatabaseMissing, ExportRefused, TamgaError
from tradedata.db import TABLES

__all__ = ["MANIFEST", "PARTITION_DATES", "ExportSummary", "export_parquet", "read_manifest"]

MANIFEST = "tamga-export.json"

#: The date column each dated table is partitioned by (year, month).
PARTITION_DATES: dict[str, str] = {
    "declarations": "declaration_date",
    "declaration_items": "declaration_date",
    "audits": "opened_on",
}


@dataclass
class ExportSummary:
    """What an export wrote."""

    folder: Path
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        """One line per table, then the folder."""
        lines = [f"  {table:<18} {count:>12,} rows" for table, count in self.rows.items()]
        return "\n".join([*lines, f"Exported {len(self.rows)} tables to {self.folder} "
                                  f"in {self.seconds:.1f} s."])


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder (TamgaError when the folder is not an export)."""
    path = Path(folder) / MANIFEST
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise TamgaError(f"{folder} is not a Tamga Parquet export (no {MANIFEST}); create "
                         "one with `tamga export parquet --to DIR`.") from exc
    except (OSError, ValueError) as exc:
        raise TamgaError(f"Cannot read {path}: {exc}") from exc


def _check_target(folder: Path, replace: bool) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ExportRefused(f"{folder} exists and is not a folder.")
    if not any(folder.iterdir()):
        return
    if not (folder / MANIFEST).exists():
        raise ExportRefused(
            f"{folder} is not empty and holds no earlier Tamga export; choose an empty or new "
            "folder (nothing was written)."
        )
    if not replace:
        raise ExportRefused(
            f"{folder} already holds a Tamga export; add --replace to write over its tables "
            "(nothing was written)."
        )


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def export_parquet(db_path: Path, folder: Path, *, replace: bool = False,
                   progress: Callable[[str], None] = print) -> ExportSummary:
    """Write every trade table of `db_path` to `folder` as Parquet (dated tables partitioned
    by year and month) with a manifest; raises DatabaseMissing or ExportRefused."""
    db_path, folder = Path(db_path).expanduser(), Path(folder).expanduser()
    if not db_path.exists():
        raise DatabaseMissing(
            f"No trade database at {db_path}. Build one with `tamga demo` or `tamga import`."
        )
    _check_target(folder, replace)
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".staging-{int(time.time() * 1000)}"
    summary = ExportSummary(folder)
    manifest: dict[str, Any] = {
        "format": "tamga-parquet-export/1",
        "source": str(db_path),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": {},
    }
    # A separate in-memory engine that attaches the file read-only: it may write files (the
    # export) and does not clash with read-only connections this process already holds.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_quote(db_path)} AS source (READ_ONLY)")
        con.execute("USE source")
        present = {row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_catalog = 'source'"
        ).fetchall()}
        staging.mkdir()
        for table in (t for t in TABLES if t in present):
            count = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = 'source' AND table_schema = 'main' AND table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            progress(f"Exporting {table} ({count:,} rows)...")
            target = staging / table
            date_column = PARTITION_DATES.get(table)
            if date_column:
                con.execute(
                    f"COPY (SELECT *, year({date_column}) AS year, month({date_column}) AS month "
                    f"FROM {table}) TO {_quote(target)} "
                    "(FORMAT parquet, PARTITION_BY (year, month), COMPRESSION zstd)"
                )
            else:
                target.mkdir()
                con.execute(f"COPY {table} TO {_quote(target / 'data_0.parquet')} "
                            "(FORMAT parquet, COMPRESSION zstd)")
            summary.rows[table] = count
            manifest["tables"][table] = {
                "rows": count,
                "columns": {name: kind for name, kind in columns},
                "partitioned_by": ["year", "month"] if date_column else [],
                "partition_date": date_column,
            }
        # Only now touch the destination: replace the tables this export wrote, one by one.
        for table in summary.rows:
            final = folder / table
            if final.exists():
                shutil.rmtree(final)
            (staging / table).rename(final)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary
