"""The `tamga` command line. Errors from the library become one readable line and exit code 1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.console import print_json, progress, render_table
from assistant.errors import TamgaError
from assistant.settings import get_settings

app = typer.Typer(
    help="Tamga: a conversational assistant for customs officers (trade data + regulations).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="DuckDB trade database (default: $TAMGA_HOME/trade.duckdb).")
]
IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Regulations index folder (default: $TAMGA_HOME/index).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a readable table.")]

REPO_GUIDANCE = Path(__file__).resolve().parent.parent / "retrieval" / "guidance"


def _fail(message: str, as_json: bool = False) -> None:
    """Report an error the way the output mode expects, then exit 1."""
    if as_json:
        print_json({"error": message})
    else:
        print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(code=1)


def _db(db: Path | None) -> Path:
    return (db or get_settings().database).expanduser()


def _index(index: Path | None) -> Path:
    return (index or get_settings().index).expanduser()


@app.command()
def demo(
    db: DbOption = None,
    index: IndexOption = None,
    rows: Annotated[int, typer.Option("--rows", help="Number of declaration items.")] = 500_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 7,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing for parts that already exist.")
    ] = False,
) -> None:
    """Build the demo trade database and the guidance index."""
    from tradedata.demo import generate_demo

    db_path, index_dir = _db(db), _index(index)
    try:
        if if_missing and db_path.exists():
            progress(f"Demo database already at {db_path}; keeping it.")
        else:
            summary = generate_demo(db_path, items=rows, seed=seed, progress=progress)
            print(summary.describe())
        _build_guidance_index(index_dir, if_missing)
    except TamgaError as exc:
        _fail(str(exc))


def _build_guidance_index(index_dir: Path, if_missing: bool) -> None:
    """Index the guidance notes shipped with Tamga (skipped when the index already has them)."""
    from retrieval.ingest import ingest_paths, index_exists

    if if_missing and index_exists(index_dir):
        progress(f"Guidance index already at {index_dir}; keeping it.")
        return
    summary = ingest_paths([REPO_GUIDANCE], index_dir=index_dir, progress=progress)
    print(summary.describe())


@app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="csv | parquet | kcs")],
    files: Annotated[list[Path], typer.Argument(help="Files to import.")],
    db: DbOption = None,
) -> None:
    """Import trade data files into the database (all or nothing per run)."""
    from tradedata.importers import import_files

    try:
        summary = import_files(fmt, files, _db(db), progress=progress)
    except TamgaError as exc:
        _fail(str(exc))
    print(summary.describe())


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One read-only SELECT statement.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Run one guarded, read-only SELECT on the trade data."""
    from tools.sql import SqlRunner

    settings = get_settings()
    try:
        runner = SqlRunner(_db(db), timeout_s=settings.sql_timeout_s, row_cap=settings.sql_row_cap)
        result = runner.run(query)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json(result.to_json())
        return
    print(render_table(result.columns, result.rows))
    note = " (truncated)" if result.truncated else ""
    print(f"\n{len(result.rows):,} rows{note} in {result.elapsed_ms:,.0f} ms", file=sys.stderr)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    index: IndexOption = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove indexed files that are gone from these folders.")
    ] = False,
) -> None:
    """Index regulation and guidance documents (Markdown, text, HTML, PDF, DOCX)."""
    from retrieval.ingest import ingest_paths

    try:
        summary = ingest_paths(paths, index_dir=_index(index), prune=prune, progress=progress)
    except TamgaError as exc:
        _fail(str(exc))
    print(summary.describe())


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("--k", help="Number of passages.")] = 5,
    as_json: JsonOption = False,
    index: IndexOption = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only documents whose path contains this.")
    ] = None,
) -> None:
    """Hybrid (meaning + keyword) search of the indexed regulations, with citations."""
    from retrieval.search import open_searcher

    try:
        searcher = open_searcher(_index(index))
        passages = searcher.search(query, k=k, source_filter=source)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json({"query": query, "results": [p.to_json() for p in passages]})
        return
    if not passages:
        print("No passage found.")
    for n, p in enumerate(passages, 1):
        print(f"[{n}] {p.locator}  ({p.source}, score {p.score:.3f})")
        print("    " + p.text[:600].replace("\n", "\n    "))
        print()


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    db: DbOption = None,
    index: IndexOption = None,
) -> None:
    """Start the web app (Streamlit) on the configured database and index."""
    import importlib.util
    import os
    import subprocess

    spec = importlib.util.find_spec("app")
    if spec is None or spec.origin is None:
        _fail("Cannot find app.py; run from the Tamga repository (make run).")
        return
    env = dict(os.environ)
    env["TAMGA_DB_PATH"] = str(_db(db))
    env["TAMGA_INDEX_DIR"] = str(_index(index))
    if not Path(env["TAMGA_DB_PATH"]).exists():
        _fail(f"No trade database at {env['TAMGA_DB_PATH']}. Build one with `tamga demo`.")
    progress(f"Tamga web app on http://{host}:{port}  (Ctrl+C to stop)")
    command = [
        sys.executable, "-m", "streamlit", "run", spec.origin,
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    try:
        raise typer.Exit(subprocess.call(command, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def main() -> None:
    """Entry point for `python -m assistant.cli`."""
    app()


if __name__ == "__main__":
    main()
