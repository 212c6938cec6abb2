"""Fixtures of the Spark tests: a local Spark Connect server over the demo's Parquet export.

The tests skip, saying why, where pyspark or Java is missing (the default `make test`
environment); `make spark-test` installs pyspark in its own environment and runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tamga.settings import Settings
from tests.spark.server import LocalSpark, local_spark_connect, missing_requirement
from tools.sql import SqlRunner


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSpark]:
    """A Spark Connect server for the whole session, stopped by its PID at the end."""
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    with local_spark_connect(tmp_path_factory.mktemp("spark")) as server:
        print(f"\n[spark] Spark Connect listening at {server.remote} after "
              f"{server.started_s:.1f} s (pid {server.pid})")
        yield server


@pytest.fixture(scope="session")
def spark_export(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database exported with `export_parquet` (what `tamga export parquet` writes)."""
    from tradedata.parquet_export import export_parquet

    folder = tmp_path_factory.mktemp("export") / "parquet"
    export_parquet(demo_db, folder, progress=lambda _: None)
    return folder


@pytest.fixture(scope="session")
def spark_settings(spark_server: LocalSpark, spark_export: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings that switch Tamga to the Spark backend (as TAMGA_SPARK_* would)."""
    return Settings(home=tmp_path_factory.mktemp("home"), spark_remote=spark_server.remote,
                    spark_token=spark_server.token, spark_data=str(spark_export))


@pytest.fixture(scope="session")
def spark_runner(spark_settings: Settings, demo_db: Path) -> Iterator[SqlRunner]:
    """An unscoped runner on Spark, with the time limit and row cap of the DuckDB one."""
    runner = SqlRunner.from_settings(spark_settings, demo_db, timeout_s=120, row_cap=1_000_000)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def duck_runner(demo_db: Path) -> Iterator[SqlRunner]:
    """The same database on DuckDB."""
    runner = SqlRunner(demo_db, timeout_s=120, row_cap=1_000_000)
    yield runner
    runner.close()
