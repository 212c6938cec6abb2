"""The Spark Connect backend: guarded, scoped queries run on a Spark cluster.

Spark has no read-only mode, so nothing reaches it that the guard (tools/sql_guard.py) and
scoping did not pass, and the translation (tools/spark_sql.py) refuses every function whose
result differs between the engines or that Spark alone offers (``reflect``, ``java_method``...).
The client never writes: it only registers the exported Parquet tables (`tamga export parquet`)
as temporary views of its own session and runs SELECTs on them.

    backend = SparkBackend("sc://spark.internal:15002", token, "s3a://lake/tamga")
    SqlRunner(Path("trade.duckdb"), backend=backend).run("SELECT count(*) FROM declarations")

pyspark is imported only when a backend is created (`pip install '.[spark]'`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tamga.errors import BackendUnavailable, SqlFailed, SqlTimeout
from tools.backends import Params, engine_message, timeout_message
from tools.spark_sql import to_spark
from tools.sql_guard import TRADE_TABLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkBackend"]

#: Session settings every query runs under: dates and times read the same as in DuckDB.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
}


def _first_line(exc: BaseException) -> str:
    text = engine_message(exc)
    return text.splitlines()[0][:500]


class SparkBackend:
    """Trade tables served by a Spark Connect server from a Parquet export folder."""

    name = "spark"

    def __init__(self, remote: str, token: str | None, data: str,
                 session: SparkSession | None = None) -> None:
        """Connect to `remote` (sc://host:port) and register the tables exported to `data`
        (a folder or lake URL the Spark server can read). Raises BackendUnavailable."""
        if not remote.startswith("sc://"):
            raise BackendUnavailable(
                f"TAMGA_SPARK_REMOTE must look like sc://host:port, not {remote!r}."
            )
        self.remote = remote
        self.data = data.rstrip("/")
        self._token = token
        self._lock = threading.Lock()
        self._session: SparkSession | None = session
        self._tables: tuple[str, ...] = ()
        self._schema: dict[str, dict[str, str]] = {}
        self._connect()

    @property
    def location(self) -> str:
        """The Parquet export the views read."""
        return self.data

    # -- connection ---------------------------------------------------------------------------

    def _url(self) -> str:
        url = self.remote.rstrip("/")
        if self._token and ";token=" not in url:
            url += f"/;token={self._token}"
        return url

    def _connect(self) -> SparkSession:
        with self._lock:
            if self._session is None:
                self._session = self._open()
                self._register(self._session)
            elif not self._tables:
                self._register(self._session)
            return self._session

    def _open(self) -> SparkSession:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise BackendUnavailable(
                "The Spark backend needs pyspark: pip install '.[spark]' (or unset "
                "TAMGA_SPARK_REMOTE to use the DuckDB file)."
            ) from exc
        self._probe()
        # the client logs every failed query with its JVM stack; the caller gets the message
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        try:
            session = SparkSession.builder.remote(self._url()).create()
            for key, value in SESSION_CONF.items():
                session.conf.set(key, value)
        except Exception as exc:  # grpc and pyspark raise many kinds
            raise BackendUnavailable(
                f"Cannot reach Spark Connect at {self.remote}: {_first_line(exc)}"
            ) from exc
        return session

    def _probe(self) -> None:
        """Fail fast when nothing listens (the Spark client would retry for minutes)."""
        parsed = urlsplit("http://" + self.remote.removeprefix("sc://").split("/;")[0])
        host, port = parsed.hostname or "localhost", parsed.port or 15002
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as exc:
            raise BackendUnavailable(
                f"Cannot reach Spark Connect at {self.remote}: {exc.strerror or exc}. Is the "
                "server running (make spark-server), and is TAMGA_SPARK_REMOTE right?"
            ) from exc

    def _register(self, session: SparkSession) -> None:
        """Read the export manifest and register each exported trade table as a view."""
        manifest_path = f"{self.data}/tamga-export.json"
        try:
            text = "\n".join(
                row[0] for row in session.read.text(manifest_path, wholetext=True).collect()
            )
            manifest = json.loads(text)
        except Exception as exc:
            raise BackendUnavailable(
                f"Spark cannot read the export manifest {manifest_path} "
                f"({_first_line(exc)}). Write the tables with `tamga export parquet --to DIR` "
                "where the Spark server can read them, and set TAMGA_SPARK_DATA to DIR."
            ) from exc
        exported = manifest.get("tables", {})
        tables, schema = [], {}
        for table in TRADE_TABLES:
            if table not in exported:
                continue
            frame = (session.read.option("recursiveFileLookup", "true")
                     .parquet(f"{self.data}/{table}"))
            frame.createOrReplaceTempView(table)
            tables.append(table)
            schema[table] = {
                field.name: field.dataType.simpleString() for field in frame.schema.fields
            }
        self._tables, self._schema = tuple(tables), schema

    def tables(self) -> tuple[str, ...]:
        """The trade tables the export holds."""
        self._connect()
        return self._tables

    # -- queries ------------------------------------------------------------------------------

    def execute(self, statement: str, params: Params, row_cap: int,
                timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Translate (SqlRefused when Spark would answer differently), then run on Spark under
        a tag that a timer interrupts."""
        session = self._connect()
        query = to_spark(statement, self._schema)
        tag = f"tamga-{uuid.uuid4().hex}"
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            with contextlib.suppress(Exception):  # interrupting is best effort
                session.interruptTag(tag)

        timer = threading.Timer(timeout_s, stop)
        timer.daemon = True
        session.addTag(tag)
        timer.start()
        try:
            # $name parameters are :name in Spark SQL; both kinds stay bound, never inlined
            args = (dict(params) if isinstance(params, dict) else list(params)) if params else None
            frame = session.sql(query.sql, args=args)
            keep = len(frame.columns) - query.hidden_columns
            columns = list(frame.columns)[:keep]
            rows = [tuple(row)[:keep] for row in frame.limit(row_cap + 1).collect()]
        except Exception as exc:
            if timed_out.is_set():
                raise SqlTimeout(timeout_message(timeout_s)) from exc
            raise SqlFailed(f"Spark: {_first_line(exc)}") from exc
        finally:
            timer.cancel()
            session.removeTag(tag)
        return columns, rows

    def describe_schema(self) -> str:
        """The exported tables with their columns and Spark types, one line per table."""
        self._connect()
        return "\n".join(
            f"{table}({', '.join(f'{c} {t}' for c, t in self._schema[table].items())})"
            for table in self._tables
        )

    def close(self) -> None:
        """End the Spark session (the server keeps running)."""
        with self._lock:
            if self._session is not None:
                with contextlib.suppress(Exception):  # the server may already be gone
                    self._session.stop()
                self._session = None
                self._tables = ()

    def __repr__(self) -> str:
        return f"SparkBackend({self.remote!r}, {self.data!r})"
