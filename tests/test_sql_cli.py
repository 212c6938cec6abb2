"""`tamga sql`: a readable table, --json as in docs/architecture.md, refusals as {"error"} with
exit code 1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.test_sql_guard import ITEMS, TRADERS, build_trade_db

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trade_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trade_db(tmp_path_factory.mktemp("cli") / "trade.duckdb")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["sql", *args])
    return result.exit_code, result.stdout, result.stderr


def test_table_output(trade_db: Path) -> None:
    code, out, err = invoke(
        "SELECT trader_id, name, registered_on FROM traders ORDER BY trader_id", "--db",
        str(trade_db),
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["trader_id", "name", "registered_on"]
    assert set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == [t[0] for t in TRADERS]
    assert "Orion Textiles LLC" in out and "2015-03-01" in out
    assert f"{len(TRADERS)} rows" in err


def test_json_output(trade_db: Path) -> None:
    code, out, _ = invoke(
        "SELECT hs_code, sum(customs_value) AS value FROM declaration_items "
        "GROUP BY hs_code ORDER BY hs_code",
        "--json", "--db", str(trade_db),
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"columns", "rows", "truncated", "elapsed_ms"}
    assert data["columns"] == ["hs_code", "value"]
    expected: dict[str, float] = {}
    for item in ITEMS:
        expected[item[2]] = expected.get(item[2], 0.0) + item[6]
    assert data["rows"] == [[hs, v] for hs, v in sorted(expected.items())]
    assert data["truncated"] is False and data["elapsed_ms"] >= 0


@pytest.mark.parametrize(
    "sql",
    ["DROP TABLE traders", "SELECT * FROM read_csv('/etc/passwd')", "SELECT 1; SELECT 2"],
)
def test_refused_statement_json(sql: str, trade_db: Path) -> None:
    before = hashlib.sha256(trade_db.read_bytes()).hexdigest()
    code, out, _ = invoke(sql, "--json", "--db", str(trade_db))
    assert code == 1
    data = json.loads(out)
    assert list(data) == ["error"] and data["error"].startswith("Refused:")
    assert hashlib.sha256(trade_db.read_bytes()).hexdigest() == before


def test_failed_statement_without_json(trade_db: Path) -> None:
    code, out, err = invoke("SELECT no_such_column FROM traders", "--db", str(trade_db))
    assert code == 1 and out == ""
    assert err.startswith("Error:") and "no_such_column" in err


def test_missing_database(tmp_path: Path) -> None:
    code, out, _ = invoke("SELECT 1", "--json", "--db", str(tmp_path / "none.duckdb"))
    assert code == 1
    assert "tamga demo" in json.loads(out)["error"]


def test_settings_from_environment_in_a_real_process(trade_db: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TAMGA_HOME": str(tmp_path), "TAMGA_SQL_ROW_CAP": "2",
           "TAMGA_SQL_TIMEOUT_S": "1"}
    capped = subprocess.run(
        [sys.executable, "-m", "cli.main", "sql", "SELECT * FROM range(10)", "--json",
         "--db", str(trade_db)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    assert capped.returncode == 0, capped.stderr
    data = json.loads(capped.stdout)
    assert data["rows"] == [[0], [1]] and data["truncated"] is True

    slow = subprocess.run(
        [sys.executable, "-m", "cli.main", "sql",
         "SELECT count(*) FROM range(100000000) a, range(100000000) b", "--json",
         "--db", str(trade_db)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    assert slow.returncode == 1
    assert "1 s limit" in json.loads(slow.stdout)["error"]
