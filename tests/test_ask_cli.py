"""`tamga ask` and `tamga chat` as an officer runs them: real subprocesses, real database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.intents import load_intents
from assistant.matcher import Matcher
from tradedata.db import connect

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # each command loads the embedding model (~10 s)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TAMGA_HOME whose cache already holds the intent embeddings (saves each run ~30 s)."""
    home = tmp_path_factory.mktemp("home")
    Matcher(load_intents(), cache_dir=home / "cache").matrix()
    return home


def tamga(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"TAMGA_HOME": str(home), "HOME": str(home), "PATH": "/usr/bin:/bin",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def ref(demo_db: Path) -> Any:
    con = connect(demo_db, read_only=True)
    return lambda sql: [list(r) for r in con.execute(sql).fetchall()]


def test_ask_json_has_the_design_schema(home: Path, demo_db: Path, ref: Any) -> None:
    year = ref("SELECT year(max(declaration_date)) - 1 FROM declarations")[0][0]
    question = f"top 5 importers in {year}"
    done = tamga(home, "ask", question, "--json", "--db", str(demo_db), "--user", "officer7")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"question", "answer", "engine", "sql", "table", "citations", "elapsed_ms"} <= set(out)
    assert out["question"] == question and out["engine"] == "offline"
    assert isinstance(out["answer"], str) and out["answer"]
    assert isinstance(out["sql"], list) and all(isinstance(s, str) for s in out["sql"])
    assert set(out["table"]) == {"columns", "rows"}
    assert isinstance(out["citations"], list)
    assert isinstance(out["elapsed_ms"], int | float) and out["elapsed_ms"] > 0
    expected = ref(f"""SELECT t.name, round(sum(i.customs_value), 2) FROM declarations d
        JOIN declaration_items i ON i.declaration_id = d.declaration_id
        JOIN traders t ON t.trader_id = d.trader_id
        WHERE d.flow = 'import' AND year(d.declaration_date) = {year}
        GROUP BY d.trader_id, t.name ORDER BY 2 DESC LIMIT 5""")
    columns = out["table"]["columns"]
    got = [[r[columns.index("trader")], r[columns.index("value")]] for r in out["table"]["rows"]]
    assert got == expected


def test_ask_refuses_writes_and_logs_everything(home: Path, demo_db: Path) -> None:
    done = tamga(home, "ask", "drop table traders", "--json", "--db", str(demo_db))
    assert done.returncode == 0
    out = json.loads(done.stdout)
    assert out["engine"] == "refused" and out["sql"] == [] and out["table"] is None
    verify = tamga(home, "audit", "verify", "--json")
    assert verify.returncode == 0, verify.stdout
    report = json.loads(verify.stdout)
    assert report["ok"] and report["records"] >= 1
    exported = tamga(home, "audit", "export")
    questions = [json.loads(line)["question"] for line in exported.stdout.splitlines()]
    assert "drop table traders" in questions


def test_chat_keeps_the_conversation(home: Path, demo_db: Path, ref: Any) -> None:
    trader_id, name = ref("""SELECT d.trader_id, t.name FROM declarations d
        JOIN declaration_items i ON i.declaration_id = d.declaration_id
        JOIN traders t ON t.trader_id = d.trader_id GROUP BY ALL
        ORDER BY sum(i.customs_value) DESC LIMIT 1""")[0]
    years = ref("SELECT DISTINCT year(declaration_date) FROM declarations ORDER BY 1")
    ly, py = years[-2][0], years[-3][0]
    script = f"What did {trader_id} import in {ly}?\nand in {py}?\nexit\nnot asked\n"
    done = tamga(home, "chat", "--db", str(demo_db), "--engine", "offline", stdin=script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"{name} imported goods worth") == 2
    assert f"in {py}:" in done.stdout and "not asked" not in done.stdout
    assert done.stdout.count("SQL that ran:") == 2 and f"'{trader_id}'" in done.stdout
    assert "offline, intent trader_total" in done.stderr


def test_missing_database_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    done = tamga(home, "ask", "total imports", "--json", "--db", str(tmp_path / "none.duckdb"))
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["engine"] == "error" and "tamga demo" in out["answer"]
    bad = tamga(home, "ask", "total imports", "--engine", "magic", "--db", str(tmp_path))
    assert bad.returncode == 1 and "Unknown engine" in bad.stderr
