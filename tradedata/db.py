"""Opening and creating the DuckDB trade database from the one DDL source (schema.sql)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb

from tamga.errors import DatabaseMissing

#: The tables of the trade data model (schema.sql), the only ones a query may read.
TABLES: tuple[str, ...] = (
    "traders",
    "declarations",
    "declaration_items",
    "audits",
    "hs_nomenclature",
    "countries",
    "dataset_info",
)


def schema_sql() -> str:
    """The DDL that creates every table of the trade data model."""
    return resources.files("tradedata").joinpath("schema.sql").read_text(encoding="utf-8")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables and indexes that do not exist yet (idempotent)."""
    con.execute(schema_sql())


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the trade database; read-only connections also refuse all file and network access."""
    path = Path(path).expanduser()
    if read_only:
        if not path.exists():
            raise DatabaseMissing(
                f"No trade database at {path}. Build one with `tamga demo` or `tamga import`."
            )
        return duckdb.connect(
            str(path),
            read_only=True,
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "python_enable_replacements": False,
            },
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path))


def create_database(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a writable database with the schema and reference tables."""
    from tradedata.reference import fill_reference_tables

    con = connect(path)
    create_schema(con)
    fill_reference_tables(con)
    return con
