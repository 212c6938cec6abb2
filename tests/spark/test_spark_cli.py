"""The command line on Spark: the settings come from the environment, as an officer sets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.spark.server import LocalSpark
from tests.spark.test_spark_equivalence import same_rows
from tools.sql import SqlRunner

REPO = Path(__file__).resolve().parents[2]


def _tamga(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, cwd=REPO, timeout=300)


def test_sql_and_ask_run_on_spark_from_the_environment(
    spark_server: LocalSpark, spark_export: Path, demo_db: Path, duck_runner: SqlRunner,
    tmp_path: Path,
) -> None:
    env = {"TAMGA_HOME": str(tmp_path), "TAMGA_SPARK_REMOTE": spark_server.remote,
           "TAMGA_SPARK_TOKEN": spark_server.token, "TAMGA_SPARK_DATA": str(spark_export)}
    sql = ("SELECT customs_office, count(*) AS n FROM declarations "
           "GROUP BY 1 ORDER BY n DESC, 1")
    done = _tamga(["sql", sql, "--json", "--db", str(demo_db)], env)
    assert done.returncode == 0, done.stderr
    assert same_rows(json.loads(done.stdout)["rows"], duck_runner.run(sql).rows) is None

    asked = _tamga(["ask", "Top 5 importers by customs value", "--json", "--db",
                    str(demo_db), "--engine", "offline"], env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["table"]["rows"] and answer["sql"]
    # the SQL shown is the DuckDB statement, runnable with `tamga sql` on either engine
    assert same_rows(answer["table"]["rows"][:5],
                     duck_runner.run(answer["sql"][0]).rows[:5]) is None

    refused = _tamga(["sql", "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
                      "--db", str(demo_db)], env)
    assert refused.returncode != 0 and "Refused on the Spark backend" in refused.stderr
