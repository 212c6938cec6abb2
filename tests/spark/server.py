"""A local Spark Connect server for the opt-in Spark tests and benchmark (`make spark-test`).

It runs the server class that ships in the pyspark package, in the foreground, bound to the
loopback interface, with a random token, and stops it by the process ID it started:

    with local_spark_connect() as server:
        SparkBackend(server.remote, server.token, export_dir)
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


@dataclass
class LocalSpark:
    """A running local server: where to connect and with which token."""

    remote: str
    token: str
    pid: int
    log: Path
    started_s: float


def missing_requirement() -> str | None:
    """Why a local Spark server cannot start here, or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (the Spark tests run with `make spark-test`)"
    if shutil.which("java") is None:
        return ("Java is not installed (Spark needs Java 17: "
                "apt-get install openjdk-17-jre-headless)")
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def local_spark_connect(log_dir: Path, cores: int = 2, memory: str = "2g",
                        timeout_s: float = 180.0) -> Iterator[LocalSpark]:
    """Start a Spark Connect server on a free loopback port; stop it on exit."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port, token = _free_port(), secrets.token_hex(16)
    log = log_dir / "spark-connect.log"
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_CONNECT_AUTHENTICATE_TOKEN": token,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [
        str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS,
        "--master", f"local[{cores}]", "--driver-memory", memory,
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.sql.shuffle.partitions=4",
    ]
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        while not _listening(port):
            if process.poll() is not None:
                raise RuntimeError(f"Spark Connect exited ({process.returncode}): "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"Spark Connect did not listen within {timeout_s:.0f} s")
            time.sleep(0.5)
        yield LocalSpark(f"sc://localhost:{port}", token, process.pid, log,
                         time.perf_counter() - started)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
