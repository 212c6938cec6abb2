"""`tamga import csv|parquet|kcs`: happy paths, idempotence and every way a file is refused.

Every refusal must name the file (and the row and column where there is one) and leave the
database file byte-for-byte as it was.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from tamga.errors import ImportRejected
from tradedata import importers, kcs
from tradedata.db import TABLES
from tradedata.importers import ImportSummary, import_files

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
KCS_DIR = (REPO / ".." / "shared" / "data" / "kcs").resolve()
KCS_TRAIN = KCS_DIR / "df_syn_train_eng.csv"
KCS_VALID = KCS_DIR / "df_syn_valid_eng.csv"
needs_kcs = pytest.mark.skipif(
    not KCS_TRAIN.exists(), reason=f"KCS reference data not found at {KCS_DIR}"
)

TRADERS = DATA / "traders.csv"
LINES = DATA / "declaration_lines.csv"
AUDITS = DATA / "audits.csv"
INFO = DATA / "dataset_info.csv"
EXAMPLES = [TRADERS, LINES, AUDITS, INFO]

DECLARATION_COLUMNS = [c.name for c in importers.TABLE_COLUMNS["declarations"]]
ITEM_COLUMNS = [c.name for c in importers.TABLE_COLUMNS["declaration_items"]]


# ------------------------------------------------------------------------------- helpers


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table_rows(db: Path, table: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


def content_hash(db: Path) -> str:
    """A hash of every row of every table (independent of the file's physical layout)."""
    digest = hashlib.sha256()
    for table in TABLES:
        digest.update(repr(table_rows(db, table)).encode())
    return digest.hexdigest()


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def edited(path: Path, out: Path, row: int, column: str, value: str) -> Path:
    """A copy of the CSV `path` with data row `row` (1-based), `column` set to `value`."""
    rows = read_csv_rows(path)
    rows[row - 1][column] = value
    return write_csv(out, rows)


@pytest.fixture(scope="module")
def example_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("template") / "trade.duckdb"
    import_files("csv", EXAMPLES, db)
    return db


@pytest.fixture()
def example_db(tmp_path: Path, example_template: Path) -> Path:
    """A database holding the example files of tests/data (a fresh copy for each test)."""
    db = tmp_path / "trade.duckdb"
    shutil.copyfile(example_template, db)
    return db


def assert_refused(run: Callable[[], ImportSummary], db: Path, *fragments: str) -> str:
    """`run` raises ImportRejected naming every fragment, and `db` is byte-for-byte unchanged."""
    existed = db.exists()
    before = file_hash(db) if existed else None
    with pytest.raises(ImportRejected) as info:
        run()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    if existed:
        assert file_hash(db) == before
    else:
        assert not db.exists()
    assert not Path(str(db) + ".wal").exists()
    return message


# ---------------------------------------------------------------------------- happy paths


def test_csv_example_import(tmp_path: Path) -> None:
    db = tmp_path / "trade.duckdb"
    messages: list[str] = []
    summary = import_files("csv", EXAMPLES, db, progress=messages.append)
    lines = read_csv_rows(LINES)
    declarations = {r["declaration_id"] for r in lines}
    assert summary.tables["traders"].inserted == len(read_csv_rows(TRADERS))
    assert summary.tables["declarations"].inserted == len(declarations)
    assert summary.tables["declaration_items"].inserted == len(lines)
    assert summary.tables["audits"].inserted == len(read_csv_rows(AUDITS))
    assert summary.rows_read == sum(len(read_csv_rows(f)) for f in EXAMPLES)
    assert any("read and checked" in m for m in messages)
    assert not Path(str(db) + ".wal").exists()  # committed and checkpointed
    text = summary.describe()
    assert "declaration_items" in text and str(db) in text

    con = duckdb.connect(str(db), read_only=True)
    try:
        info = dict(con.execute("SELECT key, value FROM dataset_info").fetchall())
        assert info["reporting_currency"] == "EUR" and info["source"] == "csv"
        assert "built_at" in info
        # HS codes stay text with their leading zero; types are the schema's.
        hs, mass, related, date = (
            con.execute(
                "SELECT i.hs_code, i.net_mass_kg, i.related_party, d.declaration_date "
                "FROM declaration_items i JOIN declarations d USING (declaration_id) "
                "WHERE i.declaration_id = '24LV000000000201'"
            ).fetchone()
            or ()
        )
        assert hs == "090111" and mass == 19200.0 and related is False
        assert str(date) == "2024-02-12"
        assert con.execute(
            "SELECT count(*) FROM declaration_items WHERE related_party"
        ).fetchone() == (sum(r["related_party"] == "true" for r in lines),)
        total = sum(float(r["customs_value"]) for r in lines)
        (db_total,) = con.execute(
            "SELECT sum(customs_value) FROM declaration_items"
        ).fetchone() or (0,)
        assert db_total == pytest.approx(total)
        # an empty cell is NULL, not an empty string
        assert con.execute(
            "SELECT closed_on, additional_duty FROM audits WHERE audit_id = 'A-2024-004'"
        ).fetchone() == (None, None)
        # the reference tables came with the new database
        assert con.execute("SELECT count(*) FROM countries").fetchone()[0] > 200  # type: ignore[index]
    finally:
        con.close()


def test_per_table_layout_gives_the_same_rows(tmp_path: Path, example_db: Path) -> None:
    lines = read_csv_rows(LINES)
    seen: dict[str, dict[str, str]] = {}
    for row in lines:
        seen.setdefault(row["declaration_id"], row)
    decl = write_csv(tmp_path / "declarations.csv", list(seen.values()), DECLARATION_COLUMNS)
    items = write_csv(tmp_path / "declaration_items.csv", lines, ITEM_COLUMNS)
    db = tmp_path / "per_table.duckdb"
    summary = import_files("csv", [items, AUDITS, decl, TRADERS, INFO], db)
    assert summary.tables["declarations"].inserted == len(seen)
    for table in ("traders", "declarations", "declaration_items", "audits", "countries"):
        assert table_rows(db, table) == table_rows(example_db, table), table


def parquet_copy(
    src: Path,
    out: Path,
    dates: tuple[str, ...] = (),
    numbers: tuple[str, ...] = (),
    booleans: tuple[str, ...] = (),
    integers: tuple[str, ...] = (),
) -> Path:
    """Write a CSV as Parquet with real column types, as an officer's pandas export would."""
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    frame = frame.replace("", None)
    for c in dates:
        frame[c] = pd.to_datetime(frame[c])
    for c in numbers:
        frame[c] = pd.to_numeric(frame[c])
    for c in booleans:
        frame[c] = frame[c].map({"true": True, "false": False, None: None}).astype("boolean")
    for c in integers:
        frame[c] = frame[c].astype("int64")
    frame.to_parquet(out, index=False)
    return out


def test_parquet_import_matches_csv(tmp_path: Path, example_db: Path) -> None:
    files = [
        parquet_copy(TRADERS, tmp_path / "traders.parquet", dates=("registered_on",)),
        parquet_copy(
            LINES,
            tmp_path / "lines.parquet",
            dates=("declaration_date",),
            numbers=(
                "net_mass_kg",
                "quantity",
                "invoice_value",
                "customs_value",
                "duty_rate_pct",
                "duty_amount",
                "vat_amount",
            ),
            booleans=("related_party",),
            integers=("item_no",),
        ),
        parquet_copy(
            AUDITS,
            tmp_path / "audits.parquet",
            dates=("opened_on", "closed_on"),
            numbers=("additional_duty", "penalty_amount"),
        ),
        parquet_copy(INFO, tmp_path / "info.parquet"),
    ]
    db = tmp_path / "from_parquet.duckdb"
    summary = import_files("parquet", files, db)
    assert summary.tables["declaration_items"].inserted == len(read_csv_rows(LINES))
    for table in ("traders", "declarations", "declaration_items", "audits"):
        assert table_rows(db, table) == table_rows(example_db, table), table


def test_reimport_adds_nothing(example_db: Path) -> None:
    before_bytes, before_rows = file_hash(example_db), content_hash(example_db)
    summary = import_files("csv", EXAMPLES, example_db)
    assert summary.inserted == 0
    assert summary.tables["declaration_items"].skipped == len(read_csv_rows(LINES))
    assert summary.tables["traders"].skipped == len(read_csv_rows(TRADERS))
    assert "Nothing new" in summary.describe()
    assert content_hash(example_db) == before_rows
    assert file_hash(example_db) == before_bytes


def test_reimport_with_new_rows_adds_only_those(tmp_path: Path, example_db: Path) -> None:
    lines = read_csv_rows(LINES)
    extra = dict(lines[0], declaration_id="24DE000000000199", declaration_date="2024-06-03")
    extra2 = dict(extra, item_no="2", hs_code="6109100010", customs_value="999.5")
    new_file = write_csv(tmp_path / "more_lines.csv", [*lines, extra, extra2])
    summary = import_files("csv", [new_file], example_db)
    assert summary.tables["declarations"].inserted == 1
    assert summary.tables["declaration_items"].inserted == 2
    assert summary.tables["declaration_items"].skipped == len(lines)
    rows = table_rows(example_db, "declaration_items")
    assert len(rows) == len(lines) + 2
    again = content_hash(example_db)
    assert import_files("csv", [new_file], example_db).inserted == 0
    assert content_hash(example_db) == again


def test_lines_without_item_no_are_numbered(tmp_path: Path) -> None:
    lines = read_csv_rows(LINES)
    columns = [c for c in lines[0] if c != "item_no"]
    no_numbers = write_csv(tmp_path / "lines.csv", lines, columns)
    db = tmp_path / "t.duckdb"
    import_files("csv", [TRADERS, no_numbers, INFO], db)
    numbered = [(r[0], r[1]) for r in table_rows(db, "declaration_items")]
    expected = [(r["declaration_id"], int(r["item_no"])) for r in lines]
    assert numbered == sorted(expected)


def test_chunked_reading_reports_the_right_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are numbered across chunks: force many small chunks and break a late row."""
    monkeypatch.setattr(importers, "CSV_BLOCK_BYTES", 2048)
    rows = [
        {"trader_id": f"T-{n:05d}", "name": f"Trader number {n}", "country": "DE"}
        for n in range(1, 1201)
    ]
    good = write_csv(tmp_path / "traders.csv", rows)
    db = tmp_path / "t.duckdb"
    messages: list[str] = []
    summary = import_files("csv", [good], db, progress=messages.append)
    assert summary.tables["traders"].inserted == 1200
    assert sum("read and checked" in m for m in messages) > 5  # really read in chunks
    rows.append({"trader_id": "T-99999", "name": "Late", "country": "QQ"})
    rows[1000]["country"] = "Germany"
    bad = write_csv(tmp_path / "more_traders.csv", rows)
    message = assert_refused(
        lambda: import_files("csv", [bad], db),
        db,
        "more_traders.csv, row 1,001, column 'country'",
        "'Germany'",
    )
    assert "In all, 2 rows have problems" in message


# ------------------------------------------------------------------------------------ KCS


@needs_kcs
def test_kcs_train_import(tmp_path: Path) -> None:
    db = tmp_path / "kcs.duckdb"
    messages: list[str] = []
    summary = import_files("kcs", [KCS_TRAIN], db, progress=messages.append)
    raw = pd.read_csv(KCS_TRAIN, dtype=str, keep_default_na=False)
    assert summary.tables["declarations"].inserted == raw["Declaration ID"].nunique()
    assert summary.tables["declaration_items"].inserted == len(raw)
    assert summary.tables["traders"].inserted == raw["Importer ID"].nunique()
    assert summary.elapsed_s < 60  # seconds in practice; generous for a busy machine
    assert any("read and checked" in m for m in messages)

    con = duckdb.connect(str(db), read_only=True)
    try:
        info = dict(con.execute("SELECT key, value FROM dataset_info").fetchall())
        assert info["reporting_currency"] == "KRW" and info["source"] == "kcs"
        # no fraud label anywhere the assistant can query
        names = [
            r[0].lower()
            for r in con.execute("SELECT column_name FROM information_schema.columns").fetchall()
        ]
        assert names and not any("fraud" in n for n in names)
        # the mapping, checked on every line against the source file
        got = (
            con.execute(
                "SELECT d.declaration_id, d.declaration_date::VARCHAR AS declaration_date,"
                " d.trader_id, d.customs_office,"
                " i.hs_code, i.origin_country, d.dispatch_country, i.customs_value,"
                " i.duty_rate_pct, i.duty_amount, i.net_mass_kg, d.transport_mode, d.flow"
                " FROM declarations d JOIN declaration_items i USING (declaration_id)"
            )
            .df()
            .set_index("declaration_id")
        )
    finally:
        con.close()
    src = raw.set_index("Declaration ID").loc[got.index]
    assert (got["declaration_date"] == src["Date"]).all()
    assert (got["trader_id"] == src["Importer ID"]).all()
    assert (got["customs_office"] == src["Office ID"]).all()
    assert (got["hs_code"] == src["HS6 Code"].str.zfill(6)).all()
    assert got["hs_code"].str.fullmatch(r"\d{6}").all()
    origin = src["Country of Origin"].where(src["Country of Origin"] != "ZZ")
    assert (got["origin_country"].fillna("-") == origin.fillna("-")).all()
    assert got["customs_value"].to_numpy() == pytest.approx(src["Item Price"].astype(float))
    expected_duty = src["Item Price"].astype(float) * src["Tax Rate"].astype(float) / 100
    assert got["duty_amount"].to_numpy() == pytest.approx(expected_duty.to_numpy(), abs=0.01)
    assert (got["flow"] == "import").all()
    modes = src["Mode of Transport"].map(kcs.TRANSPORT_MODES)
    assert (got["transport_mode"] == modes).all()

    labels = kcs.read_labels(db)
    assert summary.labels_path == kcs.labels_path(db) and summary.labels_path.exists()
    assert len(labels) == len(raw)
    assert int(labels["fraud"].sum()) == int(raw["Fraud"].astype(int).sum())
    assert int(labels["critical_fraud"].sum()) == int(raw["Critical Fraud"].astype(int).sum())
    by_id = labels.set_index("declaration_id")
    assert (
        by_id.loc[raw["Declaration ID"], "fraud"].to_numpy() == raw["Fraud"].astype(int).to_numpy()
    ).all()

    # importing the same file again changes nothing, neither the database nor the labels
    db_bytes, label_bytes = file_hash(db), file_hash(summary.labels_path)
    again = import_files("kcs", [KCS_TRAIN], db)
    assert again.inserted == 0 and again.labels is not None and again.labels.inserted == 0
    assert file_hash(db) == db_bytes and file_hash(summary.labels_path) == label_bytes


@needs_kcs
@pytest.mark.slow
def test_kcs_train_then_valid(tmp_path: Path) -> None:
    db = tmp_path / "kcs.duckdb"
    import_files("kcs", [KCS_TRAIN], db)
    summary = import_files("kcs", [KCS_VALID], db)
    train = pd.read_csv(KCS_TRAIN, dtype=str)
    valid = pd.read_csv(KCS_VALID, dtype=str)
    shared = set(train["Importer ID"]) & set(valid["Importer ID"])
    assert summary.tables["traders"].skipped == len(shared)
    assert summary.tables["declaration_items"].inserted == len(valid)
    assert len(kcs.read_labels(db)) == len(train) + len(valid)


def kcs_sample(tmp_path: Path, rows: int = 50, name: str = "kcs_sample.csv") -> Path:
    """The first `rows` lines of the real KCS train file (kept in tmp_path, not the repo)."""
    out = tmp_path / name
    with KCS_TRAIN.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n > rows:
                break
            dst.write(line)
    return out


@needs_kcs
def test_kcs_repeated_declaration_id_becomes_items(tmp_path: Path) -> None:
    rows = read_csv_rows(kcs_sample(tmp_path, 5))
    header = (
        "Date",
        "Office ID",
        "Importer ID",
        "Declarant ID",
        "Import Type",
        "Mode of Transport",
        "Country of Departure",
    )
    for row in rows[1:3]:
        row["Declaration ID"] = rows[0]["Declaration ID"]
        for column in header:
            row[column] = rows[0][column]
    sample = write_csv(tmp_path / "repeated.csv", rows)
    db = tmp_path / "kcs.duckdb"
    summary = import_files("kcs", [sample], db)
    assert summary.tables["declarations"].inserted == 3
    items = table_rows(db, "declaration_items")
    first = [r for r in items if r[0] == rows[0]["Declaration ID"]]
    assert [r[1] for r in first] == [1, 2, 3]
    assert [r[2] for r in first] == [rows[i]["HS6 Code"].zfill(6) for i in range(3)]
    labels = kcs.read_labels(db)
    mine = labels[labels["declaration_id"] == rows[0]["Declaration ID"]].sort_values("item_no")
    assert mine["fraud"].tolist() == [int(rows[i]["Fraud"]) for i in range(3)]


@needs_kcs
def test_kcs_into_a_database_in_another_currency_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "usd.duckdb"
    usd = write_csv(tmp_path / "info.csv", [{"key": "reporting_currency", "value": "USD"}])
    import_files("csv", [TRADERS, LINES, usd], db)
    assert_refused(
        lambda: import_files("kcs", [kcs_sample(tmp_path)], db),
        db,
        "kcs_sample.csv",
        "KRW",
        "USD",
        "cannot be mixed",
    )
    assert not kcs.labels_path(db).exists()


@pytest.fixture(scope="module")
def kcs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KCS database holding the first 20 lines of the train file."""
    folder = tmp_path_factory.mktemp("kcs")
    db = folder / "kcs.duckdb"
    import_files("kcs", [kcs_sample(folder, 20, "first.csv")], db)
    return db


@needs_kcs
@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("HS6 Code", "8517.12", "is not an HS6 code"),
        ("Country of Origin", "XX", "is not an ISO 3166-1 alpha-2"),
        ("Date", "01/02/2020", "YYYY-MM-DD"),
        ("Item Price", "12,5", "is not a number"),
        ("Fraud", "3", "is not a fraud label"),
        ("Importer ID", "", "is empty"),
    ],
)
def test_kcs_bad_values(
    tmp_path: Path, kcs_template: Path, column: str, value: str, fragment: str
) -> None:
    db = tmp_path / "kcs.duckdb"
    shutil.copyfile(kcs_template, db)
    shutil.copyfile(kcs.labels_path(kcs_template), kcs.labels_path(db))
    bad = edited(kcs_sample(tmp_path, 40, "second.csv"), tmp_path / "bad.csv", 33, column, value)
    assert_refused(
        lambda: import_files("kcs", [bad], db),
        db,
        "bad.csv, row 33",
        f"column '{column}'",
        fragment,
    )
    assert len(kcs.read_labels(db)) == 20


@needs_kcs
def test_kcs_lines_of_one_declaration_must_agree(tmp_path: Path) -> None:
    rows = read_csv_rows(kcs_sample(tmp_path, 5))
    rows[3]["Declaration ID"] = rows[1]["Declaration ID"]  # same declaration, other importer
    sample = write_csv(tmp_path / "disagree.csv", rows)
    db = tmp_path / "kcs.duckdb"
    assert_refused(
        lambda: import_files("kcs", [sample], db),
        db,
        "disagree.csv, row 4",
        "differs from",
        "on row 2",
    )


@needs_kcs
def test_kcs_file_missing_a_column(tmp_path: Path) -> None:
    frame = pd.read_csv(kcs_sample(tmp_path), dtype=str).drop(columns=["Net Mass"])
    frame.to_csv(tmp_path / "short.csv", index=False)
    db = tmp_path / "kcs.duckdb"
    assert_refused(
        lambda: import_files("kcs", [tmp_path / "short.csv"], db),
        db,
        "short.csv",
        "column 'Net Mass'",
        "missing",
    )


# --------------------------------------------------------------------- refused CSV files


def lines_with(tmp_path: Path, row: int, column: str, value: str) -> list[Path]:
    return [edited(LINES, tmp_path / "bad_lines.csv", row, column, value)]


BAD_VALUES = [
    ("customs_value", "12O.50", "is not a number"),
    ("net_mass_kg", "1,250.5", "is not a number"),
    ("net_mass_kg", "-3", "is not a number ≥ 0"),
    ("quantity", "nan", "is not a number"),
    ("item_no", "1.5", "whole number"),
    ("declaration_date", "2024-13-01", "YYYY-MM-DD"),
    ("declaration_date", "03/04/2024", "YYYY-MM-DD"),
    ("origin_country", "XX", "ISO 3166-1 alpha-2"),
    ("dispatch_country", "Germany", "ISO 3166-1 alpha-2"),
    ("hs_code", "8541.43", "HS code of 6 to 10 digits"),
    ("hs_code", "85414", "HS code of 6 to 10 digits"),
    ("flow", "imports", "use import or export"),
    ("control_channel", "amber", "use green, yellow or red"),
    ("related_party", "maybe", "yes/no"),
    ("currency", "EURO", "ISO 4217"),
    ("customs_value", "", "is empty"),
    ("trader_id", "", "is empty"),
]


@pytest.mark.parametrize(("column", "value", "fragment"), BAD_VALUES)
def test_bad_value_is_refused(
    tmp_path: Path, example_db: Path, column: str, value: str, fragment: str
) -> None:
    lines = read_csv_rows(LINES)
    lines[2]["declaration_id"] = "24DE000000000177"  # a new declaration, so a real change
    bad = edited(
        write_csv(tmp_path / "src.csv", lines), tmp_path / "bad_lines.csv", 3, column, value
    )
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "bad_lines.csv, row 3",
        f"column '{column}'",
        fragment,
        "Nothing was imported",
    )


def test_missing_required_column(tmp_path: Path, example_db: Path) -> None:
    rows = read_csv_rows(TRADERS)
    bad = write_csv(tmp_path / "traders_no_name.csv", rows, ["trader_id", "tin", "name_x"])
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "traders_no_name.csv",
        "column 'name_x'",
        "not a column",
    )
    bad = write_csv(
        tmp_path / "items.csv",
        read_csv_rows(LINES),
        [c for c in ITEM_COLUMNS if c != "customs_value"],
    )
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "items.csv, line 1 (header), column 'customs_value'",
        "missing",
    )


def test_unrecognised_header(tmp_path: Path, example_db: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("foo,bar\n1,2\n", encoding="utf-8")
    assert_refused(
        lambda: import_files("csv", [odd], example_db),
        example_db,
        "odd.csv, line 1",
        "cannot tell which table",
    )
    semi = tmp_path / "semicolons.csv"
    semi.write_text("trader_id;name\nT-1;X\n", encoding="utf-8")
    assert_refused(
        lambda: import_files("csv", [semi], example_db), example_db, "semicolons.csv", "semicolons"
    )


def test_duplicate_key_in_file(tmp_path: Path, example_db: Path) -> None:
    rows = read_csv_rows(TRADERS)
    rows.append(dict(rows[1], name="Another name"))
    bad = write_csv(tmp_path / "dup_traders.csv", rows)
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "dup_traders.csv, row 4, column 'trader_id'",
        "duplicate key",
        "also on row 2",
    )
    lines = read_csv_rows(LINES)
    lines.append(dict(lines[0]))
    bad = write_csv(tmp_path / "dup_lines.csv", lines)
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        f"dup_lines.csv, row {len(lines)}, column 'item_no'",
        "duplicate key",
    )


def test_duplicate_key_across_files_of_one_run(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    other = write_csv(tmp_path / "more_traders.csv", read_csv_rows(TRADERS)[:1])
    assert_refused(
        lambda: import_files("csv", [TRADERS, other, INFO], db),
        db,
        "more_traders.csv, row 1, column 'trader_id'",
        "also on row 1 of",
        str(TRADERS),
    )


def test_item_of_unknown_declaration(tmp_path: Path, example_db: Path) -> None:
    rows = read_csv_rows(LINES)
    rows[4]["declaration_id"] = "NO-SUCH-DECLARATION"
    items = write_csv(tmp_path / "items.csv", rows, ITEM_COLUMNS)
    assert_refused(
        lambda: import_files("csv", [items], example_db),
        example_db,
        "items.csv, row 5, column 'declaration_id'",
        "unknown declaration 'NO-SUCH-DECLARATION'",
    )


def test_declaration_of_unknown_trader(tmp_path: Path, example_db: Path) -> None:
    bad = edited(LINES, tmp_path / "lines.csv", 4, "trader_id", "T-0000")
    bad_rows = read_csv_rows(bad)
    for row in bad_rows:
        if row["declaration_id"] == bad_rows[3]["declaration_id"]:
            row["trader_id"] = "T-0000"
    write_csv(bad, bad_rows)
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "lines.csv, row 4, column 'trader_id'",
        "unknown trader 'T-0000'",
    )
    audits = edited(AUDITS, tmp_path / "audits.csv", 2, "trader_id", "T-0000")
    assert_refused(
        lambda: import_files("csv", [audits], example_db),
        example_db,
        "audits.csv, row 2, column 'trader_id'",
        "unknown trader",
    )


def test_conflicting_content_on_reimport(tmp_path: Path, example_db: Path) -> None:
    bad = edited(TRADERS, tmp_path / "traders.csv", 2, "name", "Baltic Tea Ltd")
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "traders.csv, row 2, column 'name'",
        "already in the database",
        "'Baltic Coffee Roasters SIA'",
        "'Baltic Tea Ltd'",
        "never overwrites",
    )
    bad = edited(LINES, tmp_path / "lines.csv", 5, "customs_value", "1.00")
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "lines.csv, row 5, column 'customs_value'",
        "already in the database",
    )


def test_lines_of_one_declaration_must_agree(tmp_path: Path) -> None:
    bad = edited(LINES, tmp_path / "lines.csv", 2, "declaration_date", "2024-03-05")
    db = tmp_path / "new.duckdb"
    assert_refused(
        lambda: import_files("csv", [TRADERS, bad, INFO], db),
        db,
        "lines.csv, row 2, column 'declaration_date'",
        "'2024-03-05' differs",
        "on row 1",
    )


def test_audit_closed_before_opened(tmp_path: Path, example_db: Path) -> None:
    bad = edited(AUDITS, tmp_path / "audits.csv", 1, "closed_on", "2023-01-01")
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "audits.csv, row 1, column 'closed_on'",
        "before opened_on",
    )


def test_reporting_currency_rules(tmp_path: Path, example_db: Path) -> None:
    db = tmp_path / "new.duckdb"
    assert_refused(
        lambda: import_files("csv", [TRADERS, LINES], db),
        db,
        "does not say which currency",
        "reporting_currency",
    )
    usd = write_csv(tmp_path / "usd.csv", [{"key": "reporting_currency", "value": "USD"}])
    assert_refused(
        lambda: import_files("csv", [usd], example_db),
        example_db,
        "usd.csv, row 1, column 'value'",
        "EUR",
        "USD",
        "cannot be mixed",
    )
    odd = write_csv(tmp_path / "odd.csv", [{"key": "reporting_currency", "value": "Euro"}])
    assert_refused(
        lambda: import_files("csv", [TRADERS, LINES, odd], db),
        db,
        "odd.csv, row 1, column 'value'",
        "ISO 4217",
    )


def test_bad_file_among_good_ones_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    bad = edited(AUDITS, tmp_path / "audits.csv", 2, "opened_on", "yesterday")
    assert_refused(
        lambda: import_files("csv", [TRADERS, LINES, INFO, bad], db),
        db,
        "audits.csv, row 2, column 'opened_on'",
    )
    # and an existing database keeps exactly what it had
    import_files("csv", [TRADERS, INFO], db)
    assert_refused(lambda: import_files("csv", [LINES, bad], db), db, "audits.csv, row 2")
    assert table_rows(db, "declarations") == []


def test_ragged_row(tmp_path: Path, example_db: Path) -> None:
    text = TRADERS.read_text(encoding="utf-8").splitlines()
    text[2] = text[2].rsplit(",", 2)[0]  # drop two fields from data row 2 (line 3)
    bad = tmp_path / "ragged.csv"
    bad.write_text("\n".join(text) + "\n", encoding="utf-8")
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "ragged.csv, line 3 (row 2)",
        "6 fields, but the header has 8",
    )


def test_binary_garbage(tmp_path: Path, example_db: Path) -> None:
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(bytes(range(256)) * 4)
    assert_refused(
        lambda: import_files("csv", [bad], example_db), example_db, "garbage.csv", "binary file"
    )
    fake = tmp_path / "export.csv"
    fake.write_bytes(b"PK\x03\x04" + b"\x14\x00" * 50)
    assert_refused(
        lambda: import_files("csv", [fake], example_db), example_db, "export.csv", "spreadsheet"
    )


def test_not_utf8(tmp_path: Path, example_db: Path) -> None:
    data = TRADERS.read_bytes() + "T-2001,Café Lumière SARL,,FR,,,,\n".encode("latin-1")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(data)
    assert_refused(
        lambda: import_files("csv", [bad], example_db),
        example_db,
        "latin1.csv, line 5, column 'name'",
        "not UTF-8",
    )


def test_empty_file(tmp_path: Path, example_db: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert_refused(
        lambda: import_files("csv", [empty], example_db), example_db, "empty.csv", "empty"
    )


def test_header_only_file_imports_nothing(tmp_path: Path, example_db: Path) -> None:
    header_only = tmp_path / "traders.csv"
    header_only.write_text("trader_id,name\n", encoding="utf-8")
    before = file_hash(example_db)
    summary = import_files("csv", [header_only], example_db)
    assert summary.inserted == 0 and "no rows" in summary.describe()
    assert file_hash(example_db) == before


def test_unknown_format_missing_file_and_repeats(tmp_path: Path, example_db: Path) -> None:
    assert_refused(
        lambda: import_files("xlsx", [TRADERS], example_db),
        example_db,
        "Unknown import format 'xlsx'",
        "csv, parquet, kcs",
    )
    missing = tmp_path / "nowhere" / "traders.csv"
    assert_refused(
        lambda: import_files("csv", [missing], example_db), example_db, str(missing), "no such file"
    )
    assert_refused(lambda: import_files("csv", [tmp_path], example_db), example_db, "is not a file")
    assert_refused(
        lambda: import_files("csv", [TRADERS, TRADERS], example_db), example_db, "named twice"
    )


def test_parquet_problems(tmp_path: Path, example_db: Path) -> None:
    assert_refused(
        lambda: import_files("parquet", [TRADERS], example_db),
        example_db,
        "traders.csv",
        "not a Parquet file",
    )
    frame = pd.read_csv(LINES, dtype=str, keep_default_na=False)
    frame["hs_code"] = frame["hs_code"].astype("int64")  # loses the leading zero of 090111
    frame["declaration_id"] = frame["declaration_id"] + "-B"
    frame.to_parquet(tmp_path / "lines.parquet", index=False)
    assert_refused(
        lambda: import_files("parquet", [tmp_path / "lines.parquet"], example_db),
        example_db,
        "lines.parquet, row 4, column 'hs_code'",
        "'90111'",
        "leading zeros",
    )
    pd.DataFrame({"trader_id": ["T-9"], "name": [[1, 2]]}).to_parquet(tmp_path / "nested.parquet")
    assert_refused(
        lambda: import_files("parquet", [tmp_path / "nested.parquet"], example_db),
        example_db,
        "nested.parquet, column 'name'",
        "cannot be imported",
    )
    a_csv = tmp_path / "x.csv"
    shutil.copy(tmp_path / "lines.parquet", a_csv)
    assert_refused(
        lambda: import_files("csv", [a_csv], example_db),
        example_db,
        "x.csv",
        "Parquet file: use `tamga import parquet`",
    )


# ------------------------------------------------------------------------------------ CLI


def test_cli_import_and_refusal(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    runner = CliRunner()
    result = runner.invoke(app, ["import", "csv", *map(str, EXAMPLES), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "declaration_items" in result.stdout and "new" in result.stdout
    assert "read and checked" in result.stderr
    before = file_hash(db)
    bad = edited(TRADERS, tmp_path / "bad_traders.csv", 3, "country", "XX")
    result = runner.invoke(app, ["import", "csv", str(bad), "--db", str(db)])
    assert result.exit_code == 1
    assert "Error:" in result.stderr
    assert "bad_traders.csv, row 3, column 'country'" in result.stderr
    assert "Traceback" not in result.output
    assert file_hash(db) == before
    result = runner.invoke(app, ["import", "pdf", str(bad), "--db", str(db)])
    assert result.exit_code == 1 and "Unknown import format" in result.stderr
