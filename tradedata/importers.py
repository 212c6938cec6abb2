"""Import trade data into the DuckDB database: canonical CSV/Parquet files and KCS declarations.

A run is all or nothing. The files are read in chunks into an in-memory staging database and
checked there with vectorised SQL (values, keys, references, conflicts with what the trade
database already holds; the trade database is only attached read-only at this stage). Only
when everything passes is the trade database opened for writing, and all new rows of all
files go in with one transaction. Rows already present with identical content are skipped,
so importing the same file twice adds nothing. The file layout and the rules are in
docs/importing.md.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tamga.errors import ImportRejected
from tradedata import kcs

FORMATS = ("csv", "parquet", "kcs")
CSV_BLOCK_BYTES = 16 << 20  # about 100,000-200,000 rows per chunk
PARQUET_BATCH_ROWS = 200_000
TARGET = "target"  # alias of the attached trade database in the staging connection

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Col:
    """One column an import file may carry: its name, value kind and whether it is required."""

    name: str
    kind: str
    required: bool = False
    label: str = ""  # as written in the file, when it differs from `name` (KCS headers)
    must_have: bool | None = None  # header must contain it (default: same as `required`)

    @property
    def shown(self) -> str:
        """The column name as the user wrote it."""
        return self.label or self.name

    @property
    def header_required(self) -> bool:
        """Whether a file without this column is rejected."""
        return self.required if self.must_have is None else self.must_have


def _cols(spec: str) -> tuple[Col, ...]:
    """Parse 'name:kind[!]' words ('!' = a value is required) into columns."""
    out = []
    for word in spec.split():
        name, kind = word.split(":")
        out.append(Col(name, kind.rstrip("!"), kind.endswith("!")))
    return tuple(out)


TABLE_COLUMNS: dict[str, tuple[Col, ...]] = {
    "traders": _cols(
        "trader_id:text! name:text! tin:text country:country region:text sector:text "
        "aeo_status:text registered_on:date"
    ),
    "declarations": _cols(
        "declaration_id:text! declaration_date:date! flow:flow! trader_id:text! "
        "declarant_id:text customs_office:text procedure_code:text transport_mode:text "
        "dispatch_country:country incoterm:text currency:currency control_channel:channel"
    ),
    "declaration_items": _cols(
        "declaration_id:text! item_no:item_no! hs_code:hs! goods_description:text "
        "origin_country:country seller_id:text related_party:bool preference_code:text "
        "net_mass_kg:number quantity:number quantity_unit:text invoice_value:number "
        "customs_value:number! duty_rate_pct:number duty_amount:number vat_amount:number"
    ),
    "audits": _cols(
        "audit_id:text! trader_id:text! opened_on:date! closed_on:date audit_type:text "
        "outcome:text additional_duty:number penalty_amount:number summary:text"
    ),
    "dataset_info": _cols("key:text! value:text"),
}

# The flat layout: one row per item with the declaration's columns repeated on each row.
# item_no may be left out (items are then numbered 1..n per declaration in file order).
LINE_COLUMNS: tuple[Col, ...] = TABLE_COLUMNS["declarations"] + tuple(
    Col(c.name, c.kind, c.required and c.name != "item_no")
    for c in TABLE_COLUMNS["declaration_items"]
    if c.name != "declaration_id"
)

# Columns of declaration_items copied from the declaration (and hs_chapter = the first two
# digits of hs_code): the importer fills them. A file may carry them, but then they must
# equal the declaration's values (and left(hs_code, 2)), or the import is rejected.
ITEM_COPIES = ("trader_id", "declaration_date", "flow")
ITEM_DERIVED: tuple[Col, ...] = _cols(
    "trader_id:text declaration_date:date flow:flow hs_chapter:text"
)

# What a file (or the staging table) of each kind may carry.
FILE_COLUMNS: dict[str, tuple[Col, ...]] = {
    **TABLE_COLUMNS,
    "declaration_items": TABLE_COLUMNS["declaration_items"] + ITEM_DERIVED,
    "lines": LINE_COLUMNS + ITEM_DERIVED[3:],
}

KCS_COLUMNS: tuple[Col, ...] = tuple(
    Col(name, kind, required, label=header, must_have=True)
    for header, name, kind, required in kcs.FEATURE_COLUMNS
) + tuple(
    Col(name, kind, required, label=header, must_have=False)
    for header, name, kind, required in kcs.LABEL_COLUMNS
)

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "traders": ("trader_id",),
    "declarations": ("declaration_id",),
    "declaration_items": ("declaration_id", "item_no"),
    "audits": ("audit_id",),
    "dataset_info": ("key",),
}

# Write order (referenced tables first) and the physical order of new rows.
WRITE_ORDER: tuple[tuple[str, str], ...] = (
    ("traders", "trader_id"),
    ("declarations", "declaration_date, trader_id, declaration_id"),
    ("declaration_items", "trader_id, declaration_date, declaration_id, item_no"),
    ("audits", "trader_id, opened_on"),
    ("dataset_info", "key"),
)

SQL_TYPES = {
    "date": "DATE",
    "number": "DOUBLE",
    "item_no": "INTEGER",
    "bool": "BOOLEAN",
    "label01": "TINYINT",
    "label012": "TINYINT",
}

_NUMBER_RE = r"\+?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"

# kind -> (SQL: is the text value $v valid, SQL: the typed value, what is wrong otherwise).
RULES: dict[str, tuple[str, str, str]] = {
    "text": ("TRUE", "$v", ""),
    "date": (
        "regexp_full_match($v, '[0-9]{4}-[0-9]{2}-[0-9]{2}') "
        "AND year(TRY_CAST($v AS DATE)) BETWEEN 1900 AND 2100",
        "TRY_CAST($v AS DATE)",
        "is not a date written YYYY-MM-DD (e.g. 2024-03-31)",
    ),
    "number": (
        f"regexp_full_match($v, '{_NUMBER_RE}') AND isfinite(TRY_CAST($v AS DOUBLE))",
        "TRY_CAST($v AS DOUBLE)",
        "is not a number ≥ 0 (digits, a dot for decimals, no thousands separators)",
    ),
    "item_no": (
        "regexp_full_match($v, '[0-9]{1,9}') AND TRY_CAST($v AS INTEGER) >= 1",
        "TRY_CAST($v AS INTEGER)",
        "is not a whole number ≥ 1",
    ),
    "bool": (
        "lower($v) IN ('true', 'false', 'yes', 'no', 'y', 'n', 't', 'f', '1', '0')",
        "lower($v) IN ('true', 'yes', 'y', 't', '1')",
        "is not a yes/no value (true/false, yes/no or 1/0)",
    ),
    "country": (
        "upper($v) IN (SELECT iso2 FROM _countries)",
        "upper($v)",
        "is not an ISO 3166-1 alpha-2 country code (e.g. DE, CN, US)",
    ),
    "hs": (
        "regexp_full_match($v, '[0-9]{6,10}')",
        "$v",
        "is not an HS code of 6 to 10 digits (digits only, no dots or spaces; "
        "keep HS codes as text so that leading zeros survive)",
    ),
    "flow": (
        "lower($v) IN ('import', 'export')",
        "lower($v)",
        "is not a flow: use import or export",
    ),
    "channel": (
        "lower($v) IN ('green', 'yellow', 'red')",
        "lower($v)",
        "is not a control channel: use green, yellow or red",
    ),
    "currency": (
        "upper($v) IN (SELECT code FROM _currencies)",
        "upper($v)",
        "is not an ISO 4217 currency code (e.g. EUR, USD, KRW)",
    ),
    "hs6": (
        "regexp_full_match($v, '[0-9]{1,6}')",
        "lpad($v, 6, '0')",
        "is not an HS6 code (up to 6 digits)",
    ),
    "kcs_country": (
        "upper($v) = 'ZZ' OR upper($v) IN (SELECT iso2 FROM _countries)",
        "NULLIF(upper($v), 'ZZ')",
        "is not an ISO 3166-1 alpha-2 country code (or ZZ for unknown)",
    ),
    "label01": ("$v IN ('0', '1')", "TRY_CAST($v AS TINYINT)", "is not a fraud label (0 or 1)"),
    "label012": (
        "$v IN ('0', '1', '2')",
        "TRY_CAST($v AS TINYINT)",
        "is not a critical-fraud label (0, 1 or 2)",
    ),
}


@dataclass
class TableCount:
    """Rows of one table: written by this run, and skipped because already there unchanged."""

    inserted: int = 0
    skipped: int = 0


@dataclass
class ImportSummary:
    """What an import run did; `describe()` is the text the CLI prints."""

    fmt: str
    db_path: Path
    files: list[Path]
    rows_read: int = 0
    tables: dict[str, TableCount] = field(default_factory=dict)
    labels_path: Path | None = None
    labels: TableCount | None = None
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def inserted(self) -> int:
        """Rows written to the database by this run, over all tables."""
        return sum(c.inserted for c in self.tables.values())

    def describe(self) -> str:
        """A few lines for a person: per-table counts, where the labels went, the time taken."""
        n = len(self.files)
        lines = [
            f"Imported {n} {self.fmt} file{'s' if n != 1 else ''} ({_rows(self.rows_read)}) "
            f"into {self.db_path} in {self.elapsed_s:.1f} s."
        ]
        for table, count in self.tables.items():
            if count.inserted or count.skipped:
                lines.append(
                    f"  {table:<18} {count.inserted:>10,} new  {count.skipped:>10,} already there"
                )
        if self.labels is not None and self.labels_path is not None:
            lines.append(
                f"  {'labels':<18} {self.labels.inserted:>10,} new  "
                f"{self.labels.skipped:>10,} already there  -> {self.labels_path}"
            )
        if not self.rows_read:
            lines.append("Nothing to import: the files have no rows.")
        elif not self.inserted and not (self.labels and self.labels.inserted):
            lines.append("Nothing new: the database already held every row; it was not touched.")
        lines.extend(self.notes)
        return "\n".join(lines)


def import_files(
    fmt: str,
    files: Sequence[Path],
    db_path: Path,
    progress: Progress | None = None,
) -> ImportSummary:
    """Validate `files` (format csv, parquet or kcs) and add their rows to the database at
    `db_path` in one transaction; raise ImportRejected (database untouched) on any problem."""
    say: Progress = progress or (lambda _message: None)
    fmt = (fmt or "").strip().lower()
    if fmt not in FORMATS:
        raise ImportRejected(f"Unknown import format {fmt!r}: use one of {', '.join(FORMATS)}.")
    if not files:
        raise ImportRejected("No file to import: name at least one file.")
    run = _Run(fmt, [Path(f) for f in files], Path(db_path).expanduser(), say)
    try:
        return run.execute()
    except ImportRejected as exc:
        raise ImportRejected(f"{exc} Nothing was imported; the database is unchanged.") from exc
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        if run.committed:
            raise ImportRejected(f"The rows were written to {db_path}, but then: {exc}") from exc
        raise ImportRejected(
            f"The import failed: {exc}. Nothing was imported; the database is unchanged."
        ) from exc
    finally:
        run.close()


def _q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _show(value: Any, limit: int = 60) -> str:
    """A value as quoted in an error message."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def _rows(n: int, noun: str = "row") -> str:
    """'1 row', '2,500 rows'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _in_all(n: int, plural: str) -> str:
    """' In all, 12 <plural>.' for an error message, or nothing when there is only one."""
    return f" In all, {n:,} {plural}." if n > 1 else ""


def _normalise_header(name: str) -> str:
    """Header cell -> column name: trimmed, lower case, spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _kcs_header(name: str) -> str:
    """KCS header cell -> comparable form: lower case, single spaces."""
    return " ".join(name.replace("_", " ").split()).lower()


class _Run:
    """One import run: staging, checks, and the final write."""

    def __init__(self, fmt: str, files: list[Path], db_path: Path, say: Progress) -> None:
        self.fmt = fmt
        self.files = files
        self.labels = [str(f) for f in files]
        self.db_path = db_path
        self.say = say
        self.started = time.perf_counter()
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        self.attached = False
        self.target_tables: set[str] = set()
        self.staged: set[str] = set()
        # columns each file actually carries, per table: (table, file index) -> names
        self.present: dict[tuple[str, int], set[str]] = {}
        self.shown: dict[int, dict[str, str]] = {}  # file index -> column name -> header text
        self.summary = ImportSummary(fmt=fmt, db_path=db_path, files=list(files))
        self.created_db = False
        self.committed = False
        self.tmp_labels: Path | None = None

    # ----------------------------------------------------------------- driver

    def execute(self) -> ImportSummary:
        self._check_files()
        self._attach_read_only()
        self._load_code_lists()
        for index, path in enumerate(self.files):
            self._stage_file(index, path)
        if self.fmt == "kcs":
            self._derive_kcs()
        if "lines" in self.staged:
            self._derive_lines()
        self._check_keys()
        self._fill_item_copies()
        self._check_rows()
        info = self._check_dataset_info()
        self._count_existing()
        wrote_labels = self._prepare_labels() if self.fmt == "kcs" else False
        if self.summary.inserted or wrote_labels:
            self._add_auto_info(info)
            self._write()
        self.summary.elapsed_s = time.perf_counter() - self.started
        return self.summary

    def close(self) -> None:
        """Drop the staging database and any half-written side file."""
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        if self.tmp_labels is not None:
            self.tmp_labels.unlink(missing_ok=True)

    def _file_label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else "(added by Tamga)"

    def _col_label(self, index: int, name: str) -> str:
        return self.shown.get(index, {}).get(name, name)

    def _where(self, index: int, row: int | None = None, column: str | None = None) -> str:
        parts = [self._file_label(index)]
        if row is not None:
            parts.append(f"row {row:,}")
        if column is not None:
            parts.append(f"column {self._col_label(index, column)!r}")
        return ", ".join(parts)

    # ----------------------------------------------------------------- set-up

    def _check_files(self) -> None:
        seen: dict[Path, int] = {}
        for index, path in enumerate(self.files):
            if not path.exists():
                raise ImportRejected(f"{self._file_label(index)}: no such file.")
            if not path.is_file():
                raise ImportRejected(f"{self._file_label(index)}: is not a file.")
            key = path.resolve()
            if key in seen:
                raise ImportRejected(
                    f"{self._file_label(index)}: the same file is named twice "
                    f"(also as {self._file_label(seen[key])})."
                )
            seen[key] = index

    def _attach_read_only(self) -> None:
        if not self.db_path.exists():
            return
        try:
            self.con.execute(f"ATTACH {_q(str(self.db_path))} AS {TARGET} (READ_ONLY)")
        except duckdb.Error as exc:
            raise ImportRejected(_database_problem(self.db_path, exc)) from exc
        self.attached = True
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_catalog = {_q(TARGET)} AND table_schema = 'main'"
        ).fetchall()
        self.target_tables = {r[0] for r in rows}

    def _load_code_lists(self) -> None:
        import pycountry

        countries = {c.alpha_2 for c in pycountry.countries}
        if "countries" in self.target_tables:
            countries |= {
                r[0] for r in self.con.execute(f"SELECT iso2 FROM {TARGET}.countries").fetchall()
            }
        currencies = {c.alpha_3 for c in pycountry.currencies}
        for table, column, codes in (
            ("_countries", "iso2", countries),
            ("_currencies", "code", currencies),
        ):
            self.con.register("_codes", pa.table({column: sorted(codes)}))
            self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM _codes")
            self.con.unregister("_codes")

    # ---------------------------------------------------------------- staging

    def _stage_file(self, index: int, path: Path) -> None:
        label = self._file_label(index)
        self.say(f"Reading {label}")
        parquet = self.fmt == "parquet" or (self.fmt == "kcs" and path.suffix == ".parquet")
        reader = _ParquetSource(path, label) if parquet else _CsvSource(path, label)
        header = reader.header()
        kind, spec, names = self._recognise(index, header)
        self.shown[index] = {n: h.strip() for n, h in zip(names, header, strict=True)}
        by_name = {c.name: c for c in spec}
        present = set(names)
        if kind == "lines" and "item_no" in present:
            by_name["item_no"] = Col("item_no", "item_no", True)
        self._ensure_staging(kind, spec)
        checker = _ChunkChecker(self, index, kind, [by_name[c.name] for c in spec], present)
        rows = 0
        for batch in reader.batches(names):
            checker.check_and_stage(batch, rows)
            rows += batch.num_rows
            self.say(f"{label}: {_rows(rows)} read and checked")
        checker.finish()
        self.summary.rows_read += rows
        if kind == "lines":
            decl = {c.name for c in TABLE_COLUMNS["declarations"]}
            item = {c.name for c in FILE_COLUMNS["declaration_items"]}
            self.present[("declarations", index)] = present & decl
            self.present[("declaration_items", index)] = (present & item) | {"item_no"}
        elif kind != "kcs":
            self.present[(kind, index)] = present
        if rows == 0:
            self.summary.notes.append(f"Note: {label} has a header but no rows.")

    def _recognise(self, index: int, header: list[str]) -> tuple[str, tuple[Col, ...], list[str]]:
        """Which table a file feeds (from its header), and its columns as staging names."""
        label = self._file_label(index)
        if self.fmt == "kcs":
            known = {_kcs_header(c.shown): c.name for c in KCS_COLUMNS}
            names = [known.get(_kcs_header(h), "") for h in header]
            kind, spec = "kcs", KCS_COLUMNS
            unknown = [h for h, n in zip(header, names, strict=True) if not n]
        else:
            names = [_normalise_header(h) for h in header]
            table = _table_of(set(names))
            if table is None:
                hint = ""
                if len(header) == 1 and ";" in header[0]:
                    hint = " It looks separated by semicolons: save it with commas."
                raise ImportRejected(
                    f"{label}, line 1 (header): cannot tell which table this file is for. "
                    "A file needs audit_id (audits), hs_code or item_no (declaration_items; with "
                    "declaration_date too: one row per item), declaration_date (declarations), "
                    "trader_id with name (traders), or exactly key,value (dataset_info)." + hint
                )
            kind = table
            spec = FILE_COLUMNS[kind]
            allowed = {c.name for c in spec}
            unknown = [h for h, n in zip(header, names, strict=True) if n not in allowed]
        what = "a KCS file" if kind == "kcs" else f"a {kind} file"
        if kind == "lines":
            what = "a declaration lines file (one row per item)"
        if unknown:
            expected = ", ".join(c.shown for c in spec)
            raise ImportRejected(
                f"{label}, line 1 (header), column {unknown[0]!r}: not a column of {what}. "
                f"Expected columns: {expected}."
            )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ImportRejected(
                f"{label}, line 1 (header), column {dupes[0]!r}: appears more than once."
            )
        missing = [c.shown for c in spec if c.header_required and c.name not in names]
        if missing:
            raise ImportRejected(
                f"{label}, line 1 (header), column {missing[0]!r}: missing; {what} needs "
                f"the columns {', '.join(missing)}."
            )
        return kind, spec, names

    def _ensure_staging(self, kind: str, spec: Sequence[Col]) -> None:
        if kind in self.staged:
            return
        cols = ", ".join(f"{c.name} {SQL_TYPES.get(c.kind, 'VARCHAR')}" for c in spec)
        self.con.execute(f"CREATE TABLE s_{kind} (_file INTEGER, _row BIGINT, {cols})")
        self.staged.add(kind)

    def _ensure_table(self, table: str) -> None:
        self._ensure_staging(table, FILE_COLUMNS[table])

    # ------------------------------------------------------------- derivation

    def _derive_kcs(self) -> None:
        """KCS lines -> canonical lines, traders and the side-file rows."""
        self._ensure_staging("lines", FILE_COLUMNS["lines"])
        self.con.execute(f"INSERT INTO s_lines BY NAME {kcs.lines_select_sql('s_kcs')}")
        self._ensure_table("traders")
        self.con.execute(f"INSERT INTO s_traders BY NAME {kcs.traders_select_sql('s_kcs')}")
        decl = {c.name for c in TABLE_COLUMNS["declarations"]}
        item = {c.name for c in TABLE_COLUMNS["declaration_items"]}
        renamed = {
            "declaration_date": "declaration_date",
            "trader_id": "importer_id",
            "procedure_code": "import_type",
            "transport_mode": "transport_code",
            "dispatch_country": "departure_country",
            "hs_code": "hs6",
            "preference_code": "tax_type",
            "net_mass_kg": "net_mass",
            "customs_value": "item_price",
            "duty_rate_pct": "tax_rate",
        }
        for index in range(len(self.files)):
            # An importer already in the database is kept as it is (only its id is compared).
            self.present[("traders", index)] = {"trader_id"}
            self.present[("declarations", index)] = decl
            self.present[("declaration_items", index)] = item
            shown = self.shown[index]
            for canonical, staged in renamed.items():
                if staged in shown:
                    shown[canonical] = shown[staged]

    def _derive_lines(self) -> None:
        """One-row-per-item lines -> declarations (checked to agree) and numbered items."""
        self.say("Checking that the lines of each declaration agree")
        decl_cols = [c.name for c in TABLE_COLUMNS["declarations"]]
        listed = ", ".join(decl_cols)
        distinct = self._first(f"SELECT count(*) FROM (SELECT DISTINCT {listed} FROM s_lines)")
        ids = self._first("SELECT count(DISTINCT declaration_id) FROM s_lines")
        if distinct != ids:
            self._report_disagreement(decl_cols)
        self._ensure_table("declarations")
        self._ensure_table("declaration_items")
        self.con.execute(
            f"""INSERT INTO s_declarations BY NAME
            SELECT first.f AS _file, first.r AS _row, * EXCLUDE (first) FROM (
                SELECT min({{'f': _file, 'r': _row}}) AS first, {listed}
                FROM s_lines GROUP BY ALL)"""
        )
        item_cols = [
            c.name
            for c in TABLE_COLUMNS["declaration_items"]
            if c.name not in ("declaration_id", "item_no")
        ]
        unnumbered = self._first("SELECT count(*) FROM s_lines WHERE item_no IS NULL")
        item_no = "item_no"
        if unnumbered and unnumbered[0]:
            item_no = (
                "coalesce(item_no, CAST(row_number() OVER ("
                "PARTITION BY declaration_id ORDER BY _file, _row) AS INTEGER))"
            )
        self.con.execute(
            f"""INSERT INTO s_declaration_items BY NAME
            SELECT _file, _row, declaration_id, {item_no} AS item_no, {", ".join(item_cols)},
                   {", ".join(ITEM_COPIES)}, hs_chapter
            FROM s_lines"""
        )
        self.con.execute("DROP TABLE s_lines")  # free the memory; not needed any more

    def _report_disagreement(self, decl_cols: list[str]) -> None:
        """Find and report the first line that disagrees with its declaration's first line."""
        others = [c for c in decl_cols if c != "declaration_id"]
        differs = " OR ".join(f"{c} IS DISTINCT FROM f_{c}" for c in others)
        which = " ".join(f"WHEN {c} IS DISTINCT FROM f_{c} THEN '{c}'" for c in others)
        firsts = ", ".join(f"first_value({c}) OVER w AS f_{c}" for c in others)
        bad = self._first(
            f"""
            WITH x AS (
                SELECT *, {firsts},
                       first_value(_file) OVER w AS f_file, first_value(_row) OVER w AS f_row
                FROM s_lines
                WINDOW w AS (PARTITION BY declaration_id ORDER BY _file, _row)
            )
            SELECT _file, _row, declaration_id, CASE {which} END, f_file, f_row,
                   count(*) OVER ()
            FROM x WHERE {differs} ORDER BY _file, _row LIMIT 1
            """
        )
        if not bad:
            return
        f, r, decl_id, col, f0, r0, n = bad
        mine, first = self.con.execute(
            f"SELECT CAST({col} AS VARCHAR) FROM s_lines WHERE _file = ? AND _row = ? "
            f"UNION ALL SELECT CAST({col} AS VARCHAR) FROM s_lines "
            f"WHERE _file = ? AND _row = ?",
            [f, r, f0, r0],
        ).fetchall()
        where0 = f"row {r0:,}" + ("" if f0 == f else f" of {self._file_label(f0)}")
        raise ImportRejected(
            f"{self._where(f, r, col)}: {_show(mine[0])} differs from {_show(first[0])} on "
            f"{where0}, an earlier line of declaration {decl_id!r}; the lines of one "
            f"declaration must agree on its declaration columns.{_in_all(n, 'lines disagree')}"
        )

    # ----------------------------------------------------------------- checks

    def _first(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        return _one(self.con.execute(sql, params or []))

    def _check_keys(self) -> None:
        """No key twice in the run; every reference resolves in the run or the database."""
        self.say("Checking keys and references")
        for table, pk in PRIMARY_KEYS.items():
            if table not in self.staged:
                continue
            keys = ", ".join(pk)
            distinct = self._first(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM s_{table})")
            if distinct and distinct[0] == self._count(table):
                continue
            hit = self._first(
                f"""
                WITH x AS (
                    SELECT _file, _row, {keys},
                           row_number() OVER w AS rn,
                           first_value(_file) OVER w AS f_file, first_value(_row) OVER w AS f_row
                    FROM s_{table} WINDOW w AS (PARTITION BY {keys} ORDER BY _file, _row)
                )
                SELECT _file, _row, f_file, f_row, count(*) OVER () FROM x WHERE rn > 1
                ORDER BY _file, _row LIMIT 1
                """
            )
            if hit:
                f, r, f0, r0, n = hit
                key = self._key_text(table, f, r)
                where0 = f"row {r0:,}" + ("" if f0 == f else f" of {self._file_label(f0)}")
                raise ImportRejected(
                    f"{self._where(f, r, pk[-1])}: duplicate key: {table} {key} is also on "
                    f"{where0}.{_in_all(n, 'rows repeat a key')}"
                )
        refs = (
            ("declaration_items", "declaration_id", "declarations", "declaration"),
            ("declarations", "trader_id", "traders", "trader"),
            ("audits", "trader_id", "traders", "trader"),
        )
        for table, col, parent, noun in refs:
            if table not in self.staged:
                continue
            match = f"p.{PRIMARY_KEYS[parent][0]} = s.{col}"
            conds = []
            if parent in self.staged:
                conds.append(f"NOT EXISTS (SELECT 1 FROM s_{parent} p WHERE {match})")
            if parent in self.target_tables:
                conds.append(f"NOT EXISTS (SELECT 1 FROM {TARGET}.{parent} p WHERE {match})")
            where = " AND ".join(conds) or "TRUE"
            hit = self._first(
                f"SELECT _file, _row, {col}, count(*) OVER () FROM s_{table} s WHERE {where} "
                "ORDER BY _file, _row LIMIT 1"
            )
            if hit:
                f, r, value, n = hit
                raise ImportRejected(
                    f"{self._where(f, r, col)}: unknown {noun} {value!r}: it is neither in the "
                    f"files of this import nor in the database. Import the {parent} first or "
                    f"together with this file.{_in_all(n, f'rows refer to unknown {noun}s')}"
                )

    def _fill_item_copies(self) -> None:
        """Fill the items' copies of their declaration's columns (and hs_chapter); values a
        file carries for them must already be equal, or the import is rejected."""
        if "declaration_items" not in self.staged:
            return
        hit = self._first(
            "SELECT _file, _row, hs_chapter, hs_code, count(*) OVER () FROM s_declaration_items "
            "WHERE hs_chapter IS DISTINCT FROM left(hs_code, 2) AND hs_chapter IS NOT NULL "
            "ORDER BY _file, _row LIMIT 1"
        )
        if hit:
            f, r, chapter, code, n = hit
            raise ImportRejected(
                f"{self._where(f, r, 'hs_chapter')}: {_show(chapter)} is not the chapter of "
                f"hs_code {_show(code)}; hs_chapter must be its first two digits (or leave the "
                f"column out: Tamga fills it).{_in_all(n, 'rows have a wrong hs_chapter')}"
            )
        copies = ", ".join(ITEM_COPIES)
        heads = []
        if "declarations" in self.staged:
            heads.append(f"SELECT declaration_id, {copies} FROM s_declarations")
        if "declarations" in self.target_tables:
            staged = (
                "AND declaration_id NOT IN (SELECT declaration_id FROM s_declarations)"
                if "declarations" in self.staged
                else ""
            )
            heads.append(
                f"SELECT declaration_id, {copies} FROM {TARGET}.declarations "
                f"WHERE declaration_id IN (SELECT declaration_id FROM s_declaration_items) {staged}"
            )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE s_heads AS "
            + (" UNION ALL ".join(heads) or
               "SELECT NULL::VARCHAR AS declaration_id, NULL::VARCHAR AS trader_id, "
               "NULL::DATE AS declaration_date, NULL::VARCHAR AS flow WHERE false")
        )
        differs = " OR ".join(f"(s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM h.{c})"
                              for c in ITEM_COPIES)
        which = " ".join(f"WHEN s.{c} IS NOT NULL AND s.{c} IS DISTINCT FROM h.{c} THEN '{c}'"
                         for c in ITEM_COPIES)
        hit = self._first(
            f"SELECT s._file, s._row, s.declaration_id, CASE {which} END, count(*) OVER () "
            f"FROM s_declaration_items s JOIN s_heads h USING (declaration_id) WHERE {differs} "
            "ORDER BY s._file, s._row LIMIT 1"
        )
        if hit:
            f, r, decl_id, col, n = hit
            mine, theirs = self._first(
                f"SELECT CAST(s.{col} AS VARCHAR), CAST(h.{col} AS VARCHAR) "
                "FROM s_declaration_items s JOIN s_heads h USING (declaration_id) "
                "WHERE s._file = ? AND s._row = ?",
                [f, r],
            ) or (None, None)
            raise ImportRejected(
                f"{self._where(f, r, col)}: {_show(mine)} differs from {_show(theirs)}, the "
                f"{col} of declaration {decl_id!r}; an item's {col} is a copy of its "
                "declaration's (or leave the column out: Tamga fills it)."
                + _in_all(n, "rows differ from their declaration")
            )
        self.say("Copying declaration dates, traders and flows onto the items")
        sets = ", ".join(f"{c} = h.{c}" for c in ITEM_COPIES)
        self.con.execute(
            f"UPDATE s_declaration_items s SET {sets}, hs_chapter = left(s.hs_code, 2) "
            "FROM s_heads h WHERE h.declaration_id = s.declaration_id"
        )
        self.con.execute("DROP TABLE s_heads")

    def _key_text(self, table: str, f: int, r: int) -> str:
        pk = PRIMARY_KEYS[table]
        values = (
            self._first(
                f"SELECT {', '.join(f'CAST({k} AS VARCHAR)' for k in pk)} FROM s_{table} "
                "WHERE _file = ? AND _row = ?",
                [f, r],
            )
            or ()
        )
        return " / ".join(repr(v) for v in values)

    def _check_rows(self) -> None:
        """Rules across columns of one row."""
        if "audits" in self.staged:
            hit = self._first(
                "SELECT _file, _row, closed_on, opened_on FROM s_audits "
                "WHERE closed_on < opened_on ORDER BY _file, _row LIMIT 1"
            )
            if hit:
                f, r, closed, opened = hit
                raise ImportRejected(
                    f"{self._where(f, r, 'closed_on')}: {closed} is before opened_on {opened}."
                )

    def _db_info(self) -> dict[str, str | None]:
        if "dataset_info" not in self.target_tables:
            return {}
        rows = self.con.execute(f"SELECT key, value FROM {TARGET}.dataset_info").fetchall()
        return {k: v for k, v in rows}

    def _check_dataset_info(self) -> dict[str, str]:
        """The reporting currency must be known and must not change; returns keys to add."""
        db_info = self._db_info()
        run_info: dict[str, tuple[int, int, str | None]] = {}
        if "dataset_info" in self.staged:
            for f, r, key, value in self.con.execute(
                "SELECT _file, _row, key, value FROM s_dataset_info ORDER BY _file, _row"
            ).fetchall():
                run_info[key] = (f, r, value)
        db_currency = db_info.get("reporting_currency")
        if "reporting_currency" in run_info:
            f, r, value = run_info["reporting_currency"]
            if (
                not value
                or not re.fullmatch(r"[A-Za-z]{3}", value)
                or not self._first("SELECT 1 FROM _currencies WHERE code = upper(?)", [value])
            ):
                raise ImportRejected(
                    f"{self._where(f, r, 'value')}: reporting_currency {_show(value)} is not "
                    "an ISO 4217 currency code (e.g. EUR, USD, KRW)."
                )
            if db_currency and db_currency != value:
                raise ImportRejected(
                    f"{self._where(f, r, 'value')}: money in {self.db_path} is in "
                    f"{db_currency}, but this import says {value}; amounts in two currencies "
                    "cannot be mixed in one database. Import into another database (--db)."
                )
        add: dict[str, str] = {}
        if self.fmt == "kcs":
            if db_currency and db_currency != kcs.REPORTING_CURRENCY:
                raise ImportRejected(
                    f"{self._file_label(0)}: KCS amounts are in {kcs.REPORTING_CURRENCY}, but "
                    f"money in {self.db_path} is in {db_currency}; amounts in two currencies "
                    "cannot be mixed in one database. Import the KCS files into another "
                    "database (--db)."
                )
            add["reporting_currency"] = kcs.REPORTING_CURRENCY
            add["source"] = kcs.SOURCE
        else:
            has_money = any(
                self._count(t) for t in ("declaration_items", "audits") if t in self.staged
            )
            if has_money and not db_currency and "reporting_currency" not in run_info:
                raise ImportRejected(
                    f"{self._file_label(0)}: the database does not say which currency its "
                    "money columns are in. Add a dataset_info file with the columns key,value "
                    "and a row reporting_currency,<ISO code> (e.g. reporting_currency,EUR) to "
                    "this import."
                )
            add["source"] = self.fmt
        add["built_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {k: v for k, v in add.items() if k not in db_info and k not in run_info}

    def _count(self, table: str) -> int:
        row = self._first(f"SELECT count(*) FROM s_{table}")
        return int(row[0]) if row else 0

    def _count_existing(self) -> None:
        """Rows already in the database must be identical (then skipped), never different."""
        self.say("Comparing with the database")
        for table, pk in PRIMARY_KEYS.items():
            if table not in self.staged:
                continue
            total = self._count(table)
            matched = 0
            if table in self.target_tables:
                for index in range(len(self.files)):
                    matched += self._compare_file(table, pk, index)
            self.summary.tables[table] = TableCount(inserted=total - matched, skipped=matched)

    def _compare_file(self, table: str, pk: tuple[str, ...], index: int) -> int:
        cols = [c for c in sorted(self.present.get((table, index), set())) if c not in pk]
        order = [c.name for c in FILE_COLUMNS[table]]
        cols.sort(key=order.index)
        join = " AND ".join(f"s.{k} = t.{k}" for k in pk)
        base = f"FROM s_{table} s JOIN {TARGET}.{table} t ON {join} WHERE s._file = {index}"
        if cols:
            differs = " OR ".join(f"s.{c} IS DISTINCT FROM t.{c}" for c in cols)
            which = " ".join(f"WHEN s.{c} IS DISTINCT FROM t.{c} THEN '{c}'" for c in cols)
            hit = self._first(
                f"SELECT s._row, CASE {which} END, count(*) OVER () {base} AND ({differs}) "
                "ORDER BY s._row LIMIT 1"
            )
            if hit:
                r, col, n = hit
                mine, theirs = self._first(
                    f"SELECT CAST(s.{col} AS VARCHAR), CAST(t.{col} AS VARCHAR) {base} "
                    "AND s._row = ?",
                    [r],
                ) or (None, None)
                key = self._key_text(table, index, r)
                raise ImportRejected(
                    f"{self._where(index, r, col)}: {table} {key} is already in the database "
                    f"with {col} = {_show(theirs) if theirs is not None else 'empty'}, but this "
                    f"file says {_show(mine) if mine is not None else 'empty'}. Tamga never "
                    "overwrites: correct the file or drop the rows that are already imported."
                    + _in_all(n, "rows differ from the database")
                )
        row = self._first(f"SELECT count(*) {base}")
        return int(row[0]) if row else 0

    # ----------------------------------------------------------------- labels

    def _prepare_labels(self) -> bool:
        """Build the KCS side file (labels + KCS-only columns); True when it gains rows."""
        path = kcs.labels_path(self.db_path)
        self.summary.labels_path = path
        extras = ", ".join(f"k.{c}" for c in kcs.EXTRA_COLUMNS)
        self.con.execute(
            f"""CREATE TABLE s_labels AS
            SELECT i.declaration_id, i.item_no, k.fraud, k.critical_fraud, {extras}
            FROM s_declaration_items i JOIN s_kcs k USING (_file, _row)"""
        )
        self.con.execute("CREATE TABLE old_labels AS SELECT * FROM s_labels LIMIT 0")
        if path.exists():
            import pyarrow.parquet as pq

            try:
                old = pq.read_table(path)
            except (pa.ArrowException, OSError) as exc:
                raise ImportRejected(
                    f"{path}: the existing labels file cannot be read ({exc})."
                ) from exc
            if set(old.column_names) != set(kcs.SIDE_FILE_COLUMNS):
                raise ImportRejected(
                    f"{path}: the existing labels file has unexpected columns "
                    f"{', '.join(old.column_names)}."
                )
            self.con.register("_old_labels", old)
            self.con.execute("INSERT INTO old_labels BY NAME SELECT * FROM _old_labels")
            self.con.unregister("_old_labels")
        join = "s.declaration_id = o.declaration_id AND s.item_no = o.item_no"
        cols = [c for c in kcs.SIDE_FILE_COLUMNS if c not in ("declaration_id", "item_no")]
        differs = " OR ".join(f"s.{c} IS DISTINCT FROM o.{c}" for c in cols)
        hit = self._first(
            f"""SELECT i._file, i._row, s.declaration_id, s.item_no, count(*) OVER ()
            FROM s_labels s JOIN old_labels o ON {join}
            JOIN s_declaration_items i
              ON i.declaration_id = s.declaration_id AND i.item_no = s.item_no
            WHERE {differs} ORDER BY i._file, i._row LIMIT 1"""
        )
        if hit:
            f, r, decl_id, item_no, n = hit
            raise ImportRejected(
                f"{self._where(f, r)}: declaration {decl_id!r} item {item_no} already has "
                f"different labels or KCS attributes in {path}.{_in_all(n, 'lines differ')}"
            )
        total = self._count("labels")
        row = self._first(f"SELECT count(*) FROM s_labels s JOIN old_labels o ON {join}")
        skipped = int(row[0]) if row else 0
        self.summary.labels = TableCount(inserted=total - skipped, skipped=skipped)
        if total == skipped:
            return False
        import pyarrow.parquet as pq

        table = self.con.sql(
            f"""SELECT * FROM old_labels
            UNION ALL
            SELECT s.* FROM s_labels s WHERE NOT EXISTS (SELECT 1 FROM old_labels o WHERE {join})
            ORDER BY declaration_id, item_no"""
        ).to_arrow_table()
        self.tmp_labels = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.tmp_labels)
        return True

    # ------------------------------------------------------------------ write

    def _add_auto_info(self, add: dict[str, str]) -> None:
        if not add:
            return
        self._ensure_table("dataset_info")
        self.con.executemany(
            "INSERT INTO s_dataset_info VALUES (-1, 0, ?, ?)", [(k, v) for k, v in add.items()]
        )
        count = self.summary.tables.setdefault("dataset_info", TableCount())
        count.inserted += len(add)

    def _write(self) -> None:
        """Write all new rows in one transaction, then move the side file into place."""
        from tradedata.db import create_database

        if self.attached:
            self.con.execute(f"DETACH {TARGET}")
            self.attached = False
        self.created_db = not self.db_path.exists()
        try:
            create_database(self.db_path).close()  # schema and reference tables, if missing
            self.con.execute(f"ATTACH {_q(str(self.db_path))} AS {TARGET}")
            self.attached = True
        except duckdb.Error as exc:
            self._drop_created_db()
            raise ImportRejected(_database_problem(self.db_path, exc)) from exc
        self.say(f"Writing {self.summary.inserted:,} new rows to {self.db_path}")
        try:
            self.con.execute("BEGIN TRANSACTION")
            for table, order in WRITE_ORDER:
                if table not in self.staged or not self.summary.tables[table].inserted:
                    continue
                pk = PRIMARY_KEYS[table]
                cols = ", ".join(c.name for c in FILE_COLUMNS[table])
                join = " AND ".join(f"t.{k} = s.{k}" for k in pk)
                new_only = (
                    f"WHERE NOT EXISTS (SELECT 1 FROM {TARGET}.{table} t WHERE {join}) "
                    if self.summary.tables[table].skipped
                    else ""
                )
                self.con.execute(
                    f"INSERT INTO {TARGET}.{table} ({cols}) SELECT {cols} FROM s_{table} s "
                    f"{new_only}ORDER BY {order}"
                )
            self.con.execute("COMMIT")
            self.committed = True
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            with contextlib.suppress(duckdb.Error):
                self.con.execute(f"DETACH {TARGET}")
            self.attached = False
            self._drop_created_db()
            raise ImportRejected(f"{self.db_path}: writing failed ({exc}).") from exc
        self.con.execute(f"DETACH {TARGET}")
        self.attached = False
        if self.tmp_labels is not None and self.summary.labels_path is not None:
            os.replace(self.tmp_labels, self.summary.labels_path)
            self.tmp_labels = None
        self.say("Done.")

    def _drop_created_db(self) -> None:
        if self.created_db:
            for suffix in ("", ".wal"):
                Path(str(self.db_path) + suffix).unlink(missing_ok=True)


def _one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result (reading it to the end, as DuckDB wants before the next query)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _table_of(names: set[str]) -> str | None:
    """The table a canonical file feeds, from its column names; None when unclear."""
    if names == {"key", "value"}:
        return "dataset_info"
    if "audit_id" in names:
        return "audits"
    if "hs_code" in names or "item_no" in names:
        return "lines" if "declaration_date" in names else "declaration_items"
    if "declaration_date" in names or "flow" in names:
        return "declarations"
    if "trader_id" in names and names & {c.name for c in TABLE_COLUMNS["traders"][1:]}:
        return "traders"
    return None


def _database_problem(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "lock" in text.lower():
        return (
            f"{path}: the database is in use by another program (close it, e.g. the web app, "
            "and try again)."
        )
    return f"{path}: cannot open the database ({text.splitlines()[0] if text else exc})."


class _ChunkChecker:
    """Checks the values of one file chunk by chunk (vectorised SQL) and stages them typed."""

    def __init__(
        self, run: _Run, index: int, kind: str, spec: list[Col], present: set[str]
    ) -> None:
        self.run = run
        self.index = index
        self.kind = kind
        self.spec = spec
        self.present = present
        self.first: tuple[int, int, str] | None = None  # row, column position, message
        self.first_column = ""
        self.bad_rows = 0
        self.bad_by_column: dict[str, int] = {}

    def _text_sql(self, col: Col, cat: str) -> str:
        """SQL giving a column of the chunk as trimmed text, NULL when empty (text columns
        arrive trimmed already, see check_and_stage)."""
        src = col.name
        if cat == "str":
            return src
        if cat == "null":
            return "CAST(NULL AS VARCHAR)"
        if cat == "timestamp":
            return f"CAST(CAST({src} AS DATE) AS VARCHAR)"
        if cat == "float":
            return (
                f"CASE WHEN isfinite({src}) AND abs({src}) < 1e15 AND {src} = floor({src}) "
                f"THEN CAST(CAST({src} AS BIGINT) AS VARCHAR) ELSE CAST({src} AS VARCHAR) END"
            )
        return f"CAST({src} AS VARCHAR)"

    def check_and_stage(self, batch: pa.RecordBatch, offset: int) -> None:
        """Check one chunk (rows offset+1...) and, while the file is clean, stage it typed."""
        import pyarrow.compute as pc

        con = self.run.con
        cats = {f.name: _category(f.type) for f in batch.schema}
        arrays = []
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            if cats[name] == "str":  # trim, and an empty cell is a missing value
                array = pc.utf8_trim_whitespace(array)
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)
            arrays.append(array)
        arrays.append(pa.array(range(offset + 1, offset + batch.num_rows + 1), type=pa.int64()))
        chunk = pa.Table.from_arrays(arrays, names=[*batch.schema.names, "_row"])
        con.register("_chunk", chunk)
        try:
            cols = [c for c in self.spec if c.name in self.present]
            text = {c.name: self._text_sql(c, cats[c.name]) for c in cols}
            checked = [c for c in cols if c.kind != "text" or c.required]
            if checked:
                bads = ", ".join(f"{_bad_sql(c, text[c.name])} AS {c.name}" for c in checked)
                con.execute(f"CREATE OR REPLACE TABLE _b AS SELECT _row, {bads} FROM _chunk")
                any_bad = " OR ".join(c.name for c in checked)
                aggs = ", ".join(
                    f"min(_row) FILTER (WHERE {c.name}), count(*) FILTER (WHERE {c.name})"
                    for c in checked
                )
                found = _one(
                    con.execute(f"SELECT count(*) FILTER (WHERE {any_bad}), {aggs} FROM _b")
                )
                if found and found[0]:
                    self._record(found, [c.name for c in checked])
            if self.first is None:
                values = ", ".join(
                    RULES[c.kind][1].replace("$v", text[c.name])
                    if c.name in text
                    else f"CAST(NULL AS {SQL_TYPES.get(c.kind, 'VARCHAR')})"
                    for c in self.spec
                )
                con.execute(
                    f"INSERT INTO s_{self.kind} SELECT {self.index}, _row, {values} FROM _chunk"
                )
        finally:
            con.unregister("_chunk")

    def _record(self, found: tuple[Any, ...], names: list[str]) -> None:
        self.bad_rows += int(found[0])
        best: tuple[int, int] | None = None
        for pos, name in enumerate(names):
            first_row, count = found[1 + 2 * pos], found[2 + 2 * pos]
            if count:
                self.bad_by_column[name] = self.bad_by_column.get(name, 0) + int(count)
                if best is None or first_row < best[0]:
                    best = (int(first_row), pos)
        if self.first is not None or best is None:
            return
        row, pos = best
        name = names[pos]
        raw = _one(
            self.run.con.execute(
                f"SELECT CAST({name} AS VARCHAR) FROM _chunk WHERE _row = ?", [row]
            )
        )
        raw_value = raw[0] if raw else None
        col = next(c for c in self.spec if c.name == name)
        if raw_value is None or not str(raw_value).strip():
            what = "is empty, but every row needs a value"
        else:
            what = f"{_show(raw_value)} {RULES[col.kind][2]}"
        self.first = (row, pos, what)
        self.first_column = name

    def finish(self) -> None:
        if self.first is None:
            return
        row, _, what = self.first
        message = f"{self.run._where(self.index, row, self.first_column)}: {what}."
        if self.bad_rows > 1:
            per = ", ".join(
                f"{self.run._col_label(self.index, n)}: {k:,}"
                for n, k in self.bad_by_column.items()
            )
            message += f" In all, {self.bad_rows:,} rows have problems ({per})."
        raise ImportRejected(message)


def _bad_sql(col: Col, text: str) -> str:
    """SQL that is true when the value of `col` (given as trimmed text by `text`) is wrong."""
    valid = RULES[col.kind][0].replace("$v", text)
    missing = "TRUE" if col.required else "FALSE"
    return f"CASE WHEN {text} IS NULL THEN {missing} ELSE NOT coalesce({valid}, FALSE) END"


def _category(t: pa.DataType) -> str:
    """How a column type is turned into text for checking (see _ChunkChecker._value_sql)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str"
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_floating(t):
        return "float"
    return "other"


class _CsvSource:
    """A comma-separated UTF-8 file with a header line, read in chunks with pyarrow."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self.ncols = 0
        self.names: list[str] = []
        self.header_only = False

    def header(self) -> list[str]:
        if self.path.stat().st_size == 0:
            raise ImportRejected(f"{self.label}: the file is empty (not even a header line).")
        with self.path.open("rb") as fh:
            head = fh.read(1 << 16)
        if b"\x00" in head or head.startswith((b"PAR1", b"PK\x03\x04")):
            hint = ""
            if head.startswith(b"PAR1"):
                hint = " It is a Parquet file: use `tamga import parquet`."
            elif head.startswith(b"PK\x03\x04"):
                hint = " It looks like a spreadsheet: save it as CSV (UTF-8)."
            line = head[: max(head.find(b"\x00"), 0)].count(b"\n") + 1
            raise ImportRejected(
                f"{self.label}, line {line}: this is a binary file, not CSV text.{hint}"
            )
        with self.path.open("rb") as fh:
            first = fh.readline()
        self.header_only = len(first) == self.path.stat().st_size
        try:
            header = next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]), [])
        except UnicodeDecodeError as exc:
            raise ImportRejected(
                f"{self.label}, line 1 (header): not UTF-8 text ({exc.reason}); "
                "save the file as CSV UTF-8."
            ) from exc
        except csv.Error as exc:
            raise ImportRejected(f"{self.label}, line 1 (header): {exc}.") from exc
        if not any(h.strip() for h in header):
            raise ImportRejected(f"{self.label}, line 1: the header line is empty.")
        if any(not h.strip() for h in header):
            pos = next(i for i, h in enumerate(header) if not h.strip()) + 1
            raise ImportRejected(f"{self.label}, line 1 (header): column {pos} has no name.")
        self.ncols = len(header)
        self.names = [h.strip() for h in header]
        return header

    def batches(self, names: list[str]) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pacsv

        if self.header_only:
            return
        read = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        try:
            with pacsv.open_csv(
                self.path, read_options=read, parse_options=parse, convert_options=convert
            ) as reader:
                yield from reader
        except pa.ArrowInvalid as exc:
            raise self._locate(exc) from exc

    def _locate(self, exc: Exception) -> ImportRejected:
        """Find the first line Arrow could not read (slow, but only on the error path)."""
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    text = raw.decode("utf-8", errors="replace")
                    fields = next(csv.reader([text.rstrip("\r\n")]), [])
                    where = next(
                        (
                            f", column {self.names[i]!r}"
                            for i, cell in enumerate(fields)
                            if "\ufffd" in cell and i < len(self.names)
                        ),
                        "",
                    )
                    return ImportRejected(
                        f"{self.label}, line {lineno}{where}: not UTF-8 text (byte "
                        f"0x{raw[err.start]:02x}); save the file as CSV UTF-8."
                    )
                if b"\x00" in raw:
                    return ImportRejected(
                        f"{self.label}, line {lineno}: contains binary data (NUL bytes)."
                    )
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            next(reader, None)
            row = 0
            try:
                for fields in reader:
                    if not fields:
                        continue
                    row += 1
                    if len(fields) != self.ncols:
                        return ImportRejected(
                            f"{self.label}, line {reader.line_num} (row {row:,}): "
                            f"{len(fields)} fields, but the header has {self.ncols}."
                        )
            except csv.Error as err:
                return ImportRejected(f"{self.label}, line {reader.line_num}: {err}.")
        return ImportRejected(f"{self.label}: cannot be read as CSV ({exc}).")


class _ParquetSource:
    """A Parquet file, read in batches with pyarrow."""

    def __init__(self, path: Path, label: str) -> None:
        import pyarrow.parquet as pq

        self.label = label
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ImportRejected(f"{label}: not a Parquet file ({exc}).") from exc
        self.schema = self.file.schema_arrow

    def header(self) -> list[str]:
        for f in self.schema:
            t = f.type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
                raise ImportRejected(
                    f"{self.label}, column {f.name!r}: type {t} cannot be imported "
                    "(use text, numbers, booleans or dates)."
                )
        return list(self.schema.names)

    def batches(self, names: list[str]) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self.file.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                arrays = [
                    a.cast(a.type.value_type) if pa.types.is_dictionary(a.type) else a
                    for a in batch.columns
                ]
                yield pa.RecordBatch.from_arrays(arrays, names=names)
        except (pa.ArrowException, OSError) as exc:
            raise ImportRejected(f"{self.label}: cannot be read as Parquet ({exc}).") from exc
