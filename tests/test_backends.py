"""Choosing the backend from the settings, and what a user reads when Spark cannot be used."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tamga.errors import BackendUnavailable
from tamga.settings import Settings
from tools.backends import DuckDBBackend, open_backend
from tools.sql import SqlRunner

REPO = Path(__file__).resolve().parents[1]


def test_duckdb_is_the_default(demo_db: Path, tmp_path: Path) -> None:
    backend = open_backend(Settings(home=tmp_path), demo_db)
    assert isinstance(backend, DuckDBBackend) and backend.location == str(demo_db)
    with SqlRunner.from_settings(Settings(home=tmp_path), demo_db) as runner:
        assert runner.engine == "duckdb"
        assert runner.run("SELECT count(*) FROM declarations").rows[0][0] > 0


def test_a_malformed_spark_address_is_refused(demo_db: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, spark_remote="http://spark:15002")
    with pytest.raises(BackendUnavailable, match="sc://host:port"):
        open_backend(settings, demo_db)


def test_spark_that_cannot_be_used_says_why_quickly(demo_db: Path, tmp_path: Path) -> None:
    """Without pyspark the message says how to install it; with pyspark and no server, that
    nothing listens. Either way within seconds, with a non-zero exit."""
    env = {**os.environ, "TAMGA_HOME": str(tmp_path), "TAMGA_SPARK_REMOTE": "sc://localhost:9"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "sql", "SELECT 1", "--db", str(demo_db)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode != 0
    assert ("pip install '.[spark]'" in done.stderr
            or "Cannot reach Spark Connect at sc://localhost:9" in done.stderr), done.stderr
    assert time.perf_counter() - started < 30
