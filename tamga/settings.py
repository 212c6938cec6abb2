"""Tamga settings, declared once: every value has a default, a help text and a TAMGA_ env name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of Tamga's configuration. Set any field with an environment variable TAMGA_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="TAMGA_", env_file=".env", extra="ignore")

    home: Path = Field(
        default=Path("~/.tamga"),
        description="Data directory holding the default database, index and logs.",
    )
    db_path: Path | None = Field(
        default=None, description="DuckDB trade database (default: <home>/trade.duckdb)."
    )
    index_dir: Path | None = Field(
        default=None, description="Regulations index folder (default: <home>/index)."
    )
    log_dir: Path | None = Field(
        default=None, description="Audit log and feedback folder (default: <home>/logs)."
    )
    findings_dir: Path | None = Field(
        default=None,
        description="Document verification findings (default: <home>/findings).",
    )
    max_verify_mb: float = Field(
        default=25.0, gt=0, description="Largest document `tamga verify` reads, in MB."
    )
    sql_timeout_s: float = Field(
        default=10.0, description="Time limit for one SQL query, in seconds."
    )
    sql_row_cap: int = Field(
        default=5000, description="Most rows one SQL query returns; more are cut off."
    )
    max_document_mb: float = Field(
        default=50.0, description="Largest document `tamga ingest` reads; bigger files are skipped."
    )
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000); unset = local index.",
    )
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint base URL; unset = no remote LLM."
    )
    llm_api_key: str | None = Field(default=None, description="API key for the LLM endpoint.")
    llm_model: str = Field(default="gpt-4o-mini", description="Model name at the LLM endpoint.")
    llm_timeout_s: float = Field(default=60.0, description="Time limit for one LLM call.")
    local_model: bool = Field(
        default=False,
        description="Use the packaged local model (Qwen2.5-Coder-1.5B GGUF) when installed.",
    )
    llm_data_policy: Literal["schema", "aggregates", "rows"] = Field(
        default="aggregates",
        description="What query results may be sent to a REMOTE LLM endpoint: schema (column "
        "names only), aggregates (grouped results, trader names/TINs masked) or rows.",
    )
    session_hours: float = Field(
        default=8.0, gt=0, description="Lifetime of a login session, in hours."
    )
    spark_remote: str | None = Field(
        default=None,
        description="Spark Connect address (sc://host:port) to run queries on instead of the "
        "DuckDB file; unset = DuckDB. Needs `pip install '.[spark]'`.",
    )
    spark_token: str | None = Field(
        default=None, description="Token the Spark Connect server expects (sent over gRPC)."
    )
    spark_data: str | None = Field(
        default=None,
        description="The `tamga export parquet` folder as the Spark server reads it (a path or "
        "a lake URL such as s3a://bucket/tamga; default: <home>/parquet).",
    )

    def resolved_home(self) -> Path:
        """The data directory with ~ expanded."""
        return self.home.expanduser()

    @property
    def database(self) -> Path:
        """Path of the DuckDB trade database."""
        return (self.db_path or self.resolved_home() / "trade.duckdb").expanduser()

    def resolved_spark_data(self) -> str:
        """Where the Spark backend reads the exported Parquet tables from."""
        return self.spark_data or str(self.resolved_home() / "parquet")

    @property
    def index(self) -> Path:
        """Folder of the regulations index (Chroma + BM25)."""
        return (self.index_dir or self.resolved_home() / "index").expanduser()

    @property
    def logs(self) -> Path:
        """Folder of the audit log and feedback."""
        return (self.log_dir or self.resolved_home() / "logs").expanduser()

    @property
    def findings(self) -> Path:
        """Folder of the document verification findings (never in the trade database)."""
        return (self.findings_dir or self.resolved_home() / "findings").expanduser()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
