"""The `tamga` command line. Errors from the library become one readable line and exit code 1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.console import print_json, progress
from tamga.errors import TamgaError
from tamga.formatting import render_table
from tamga.settings import get_settings

app = typer.Typer(
    help="Tamga: a conversational assistant for customs officers (trade data + regulations).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB trade database (default: $TAMGA_HOME/trade.duckdb)."),
]
IndexOption = Annotated[
    Path | None,
    typer.Option("--index", help="Regulations index folder (default: $TAMGA_HOME/index)."),
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
    _export_encoder_if_missing()
    _embed_intent_examples()
    try:
        if if_missing and db_path.exists():
            progress(f"Demo database already at {db_path}; keeping it.")
        else:
            summary = generate_demo(db_path, items=rows, seed=seed, progress=progress)
            print(summary.describe())
        _build_demo_documents(db_path, seed, if_missing)
        _build_guidance_index(index_dir, if_missing)
        _prepare_lookups(db_path)
    except TamgaError as exc:
        _fail(str(exc))


def _prepare_lookups(db_path: Path) -> None:
    """The trader index, dates, offices and codes of the database, kept on disk so the
    first question of each process does not read them again (assistant/lookup_cache.py)."""
    from assistant.context import DataContexts
    from tamga.scope import Scope

    contexts = DataContexts(db_path, get_settings())
    try:
        context = contexts.get(Scope.everything())
        if context.cache is not None and not context.cache.stored():
            progress("Indexing the traders, offices and codes for the assistant (once)")
        context.warm()
    finally:
        contexts.close()


def _export_encoder_if_missing() -> None:
    """The fast-starting ONNX encoder, exported once per environment (torch stays the
    fallback when the export is impossible)."""
    from retrieval.embedding import export_onnx, onnx_path

    if onnx_path().exists():
        return
    try:
        export_onnx(onnx_path(), progress=progress)
    except (ImportError, RuntimeError, OSError) as exc:
        progress(f"Could not export the encoder to ONNX ({exc}); using torch.")


def _build_demo_documents(db_path: Path, seed: int, if_missing: bool) -> None:
    """Demo invoices, packing lists and certificates next to the database (`tamga verify`)."""
    from tradedata.demo_documents import documents_dir_for, generate_demo_documents

    folder = documents_dir_for(db_path)
    if if_missing and (folder / "truth.csv").exists():
        progress(f"Demo documents already in {folder}; keeping them.")
        return
    print(generate_demo_documents(db_path, seed=seed, progress=progress).describe())


def _build_guidance_index(index_dir: Path, if_missing: bool) -> None:
    """Index the guidance notes shipped with Tamga (skipped when the index already has them;
    an index made by an older Tamga gets its multilingual vectors)."""
    from retrieval.ingest import (
        index_exists,
        ingest_paths,
        needs_multilingual_vectors,
        update_multilingual_vectors,
        update_question_vectors,
    )

    settings = get_settings()
    if if_missing and index_exists(index_dir):
        progress(f"Guidance index already at {index_dir}; keeping it.")
        if needs_multilingual_vectors(index_dir, settings.chroma_url):
            update_multilingual_vectors(index_dir, progress=progress,
                                        chroma_url=settings.chroma_url)
        update_question_vectors(index_dir, progress=progress, chroma_url=settings.chroma_url)
        return
    summary = ingest_paths([REPO_GUIDANCE], index_dir=index_dir, progress=progress,
                           max_file_mb=settings.max_document_mb, chroma_url=settings.chroma_url)
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


export_app = typer.Typer(
    help="Write the trade data out for other engines.", no_args_is_help=True
)
app.add_typer(export_app, name="export")


@export_app.command("parquet")
def export_parquet_(
    to: Annotated[Path, typer.Option("--to", help="Folder to write the Parquet tables to.")],
    db: DbOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Write over an earlier export in that folder.")
    ] = False,
) -> None:
    """Every trade table as Parquet (dated tables partitioned by year/month), for Spark."""
    from tradedata.parquet_export import export_parquet

    try:
        summary = export_parquet(_db(db), to, replace=replace, progress=progress)
    except TamgaError as exc:
        _fail(str(exc))
        return
    print(summary.describe())


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One read-only SELECT statement.")],
    as_json: JsonOption = False,
    db: DbOption = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Run as this user: an officer sees only their offices."),
    ] = None,
) -> None:
    """Run one guarded, read-only SELECT on the trade data."""
    from assistant.context import DataContexts
    from tamga.scope import Scope
    from tools.access import resolve_scope

    settings = get_settings()
    try:
        scope = Scope.everything() if user is None else resolve_scope(user, _user_store(None))
        runner = DataContexts(_db(db), settings).get(scope).runner
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
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to index.")
    ] = None,
    index: IndexOption = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove indexed files that are gone from these folders.")
    ] = False,
    update_vectors: Annotated[
        bool, typer.Option(
            "--update-vectors",
            help="Give every chunk already indexed its multilingual vector (an index made "
                 "by an older Tamga); no file is read again.",
        )
    ] = False,
    questions: Annotated[
        bool, typer.Option(
            "--questions",
            help="Have the local model write the questions each indexed passage answers, "
                 "for search (a few seconds a passage; resumable; search works meanwhile).",
        )
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", help="With --questions: at most this many passages.")
    ] = None,
) -> None:
    """Index regulation and guidance documents (Markdown, text, HTML, PDF, DOCX)."""
    from retrieval.ingest import ingest_paths, update_multilingual_vectors

    try:
        settings = get_settings()
        if questions:
            if paths:
                summary = ingest_paths(paths, index_dir=_index(index), prune=prune,
                                       progress=progress, max_file_mb=settings.max_document_mb,
                                       chroma_url=settings.chroma_url)
                print(summary.describe())
            _write_questions(_index(index), limit, settings.chroma_url)
            return
        if update_vectors and not paths:
            made = update_multilingual_vectors(_index(index), progress=progress,
                                               chroma_url=settings.chroma_url)
            print(f"Added multilingual vectors to {made:,} chunks.")
            return
        summary = ingest_paths(paths or [], index_dir=_index(index), prune=prune,
                               progress=progress,
                               max_file_mb=settings.max_document_mb,
                               chroma_url=settings.chroma_url)
    except TamgaError as exc:
        _fail(str(exc))
    print(summary.describe())


def _write_questions(index_dir: Path, limit: int | None, chroma_url: str | None) -> None:
    """`tamga ingest --questions`: the local model writes each passage's questions."""
    from assistant import local_model
    from assistant.llm import local_llama
    from retrieval.ingest import write_questions

    llama = local_llama(get_settings().resolved_home(), progress=progress, role="questions")
    try:
        made = write_questions(index_dir, lambda messages, n: llama.chat(messages, n),
                               progress=progress, limit=limit, chroma_url=chroma_url,
                               model_name=local_model.MODEL_FILE)
    except KeyboardInterrupt:
        print("Stopped. The questions written so far are kept; run the same command to go on "
              "(search uses them once this command has finished).")
        raise typer.Exit(130) from None
    print(f"Wrote questions for {made:,} passage{'' if made == 1 else 's'}.")


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
        searcher = open_searcher(_index(index), chroma_url=get_settings().chroma_url)
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
        sys.executable, "-m", "web.serve", spec.origin,
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]
    if os.name == "posix":  # become the server: a signal to `tamga serve` reaches Streamlit
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)
    try:
        raise typer.Exit(subprocess.call(command, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


risk_app = typer.Typer(
    help="Risk scoring of declarations: train on inspected lines, rank, explain.",
    no_args_is_help=True,
)
app.add_typer(risk_app, name="risk")


@risk_app.command("evaluate")
def risk_evaluate(
    train: Annotated[
        list[Path],
        typer.Option("--train", help="Labeled training file (repeat --train for several)."),
    ],
    test: Annotated[
        list[Path],
        typer.Option("--test", help="Labeled test file (repeat --test for several)."),
    ],
    fmt: Annotated[str, typer.Option("--format", help="Input format: kcs.")] = "kcs",
    top: Annotated[int, typer.Option("--top", help="Flagged test lines to show.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Train on the train files, rank the test lines, report precision at 5% and 10%."""
    from tools.risk_model import evaluate

    try:
        report = evaluate(train, test, fmt=fmt, top=top, progress=progress)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json(report.to_json())
        return
    print(report.describe())


model_app = typer.Typer(
    help="The optional local language model (Qwen2.5-Coder-1.5B-Instruct, Apache-2.0).",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")


@model_app.command("install")
def model_install(
    verify: Annotated[
        bool, typer.Option("--verify", help="Recompute the SHA-256 even if already checked.")
    ] = False,
) -> None:
    """Join the installed model parts into one GGUF file under TAMGA_HOME/models, hash-checked."""
    from assistant import local_model

    try:
        path = local_model.assemble_model(progress=progress)
        if verify:
            progress("Verifying the SHA-256 of the model file")
            if not local_model.verify_model(path):
                _fail(f"{path} does not match the official file; run `tamga model install` "
                      "again after deleting it.")
    except TamgaError as exc:
        _fail(str(exc))
        return
    print(f"Local model ready: {path} (SHA-256 {local_model.MODEL_SHA256[:12]}… verified).")
    if not local_model.llama_cpp_installed():
        print(f"llama-cpp-python is not installed yet. {local_model.INSTALL_HINT}")
    else:
        print("Use it with TAMGA_LOCAL_MODEL=1 (and no TAMGA_LLM_BASE_URL): "
              "tamga ask --engine llm QUESTION")


@model_app.command("export-encoder")
def model_export_encoder(
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing when the file already exists.")
    ] = False,
) -> None:
    """Export the packaged sentence encoder to ONNX (fast start, no torch at run time) and
    embed the intent library's example questions once, into the environment's Tamga folder."""
    from retrieval.embedding import export_onnx, onnx_path

    path = onnx_path()
    if if_missing and path.exists():
        progress(f"ONNX sentence encoder already at {path}; keeping it.")
    else:
        try:
            export_onnx(path, progress=progress)
        except (ImportError, RuntimeError, OSError) as exc:
            _fail(f"Could not export the encoder to ONNX ({exc}); Tamga still works with "
                  "torch, only slower to start.")
        print(f"ONNX sentence encoder ready: {path}")
    _embed_intent_examples()


def _embed_intent_examples() -> None:
    """The intent library's example vectors, computed once and kept on disk."""
    from assistant.intents import load_intents
    from assistant.matcher import Matcher

    matcher = Matcher(load_intents())
    if not matcher.cached():
        progress("Embedding the verified example questions (once)")
        matcher.matrix()


@model_app.command("status")
def model_status(as_json: JsonOption = False) -> None:
    """Show whether the local model's runtime and parts are installed and the file verified."""
    from assistant import local_model

    info = local_model.status()
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        print(f"{key:20} {value}")


# -- ask, chat, audit -----------------------------------------------------------------------------

EngineOption = Annotated[
    str, typer.Option("--engine", help="auto (verified intents, then the LLM if configured), "
                      "offline or llm.")
]
UserOption = Annotated[str, typer.Option("--user", help="Who asks (kept in the audit log).")]


def _assistant(db: Path | None, index: Path | None, engine: str) -> Any:
    from assistant.core import ENGINES, Assistant

    if engine not in ENGINES:
        _fail(f"Unknown engine {engine!r}: use auto, offline or llm.")
    return Assistant(get_settings(), db_path=_db(db), index_dir=_index(index), engine=engine)


def _pretty_sql(sql: str) -> str:
    try:
        import sqlglot

        return sqlglot.transpile(sql, read="duckdb", write="duckdb", pretty=True)[0]
    except Exception:  # display only: fall back to the statement as it ran
        return sql


def _print_answer(answer: Any, show_sql: bool = True) -> None:
    """An answer as an officer reads it: text, tables, SQL, sources, warnings, suggestions."""
    print(answer.text)
    if answer.understood:
        print(f"\n{answer.understood}")
    for table in answer.tables:
        print()
        if table.title:
            print(f"{table.title}:")
        print(render_table(table.columns, table.rows, max_rows=25))
    if answer.chart:
        print(f"\nChart: {answer.chart['kind']} of {answer.chart['y']} by {answer.chart['x']}")
    if show_sql and answer.sql:
        print("\nSQL that ran:")
        for statement in answer.sql:
            print("  " + _pretty_sql(statement).replace("\n", "\n  "))
    if answer.citations:
        print("\nSources:")
        for n, c in enumerate(answer.citations, 1):
            print(f"  [{n}] {c.locator} ({c.source}, score {c.score:.3f})")
    for warning in answer.warnings:
        print(f"\nNote: {warning}")
    if answer.suggestions:
        print("\nYou could ask: " + " | ".join(answer.suggestions[:4]))
    intent = f", intent {answer.intent}" if answer.intent else ""
    print(f"\n({answer.engine}{intent}, {answer.elapsed_ms:,.0f} ms)", file=sys.stderr)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain English.")],
    as_json: JsonOption = False,
    db: DbOption = None,
    index: IndexOption = None,
    engine: EngineOption = "auto",
    user: UserOption = "cli",
) -> None:
    """Answer one question from the trade data or the regulations (logged in the audit log)."""
    from retrieval.embedding import preload_encoder

    preload_encoder()  # loads while the database look-ups are read
    try:
        answer = _assistant(db, index, engine).ask(question, None, user=user, engine=engine)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json(answer.to_json(question))
    else:
        _print_answer(answer)
    if answer.engine == "error":
        raise typer.Exit(code=1)


@app.command()
def chat(
    db: DbOption = None,
    index: IndexOption = None,
    engine: EngineOption = "auto",
    user: UserOption = "cli",
    sql: Annotated[bool, typer.Option("--sql/--no-sql", help="Show the SQL that ran.")] = True,
) -> None:
    """Talk with Tamga: follow-up questions build on the previous ones ('exit' to quit)."""
    try:
        assistant = _assistant(db, index, engine)
    except TamgaError as exc:
        _fail(str(exc))
        return
    conversation = assistant.new_conversation(user=user)
    interactive = sys.stdin.isatty()
    if interactive:
        progress("Tamga chat: ask about trade data or customs rules. Type 'exit' to quit.")
    while True:
        try:
            line = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        question = line.strip()
        if question.lower() in ("exit", "quit", ":q", "bye"):
            break
        if not question:
            continue
        answer = assistant.ask(question, conversation, user=user, engine=engine)
        if not interactive:
            print(f"> {question}")
        _print_answer(answer, show_sql=sql)
        print()


audit_app = typer.Typer(
    help="The audit log of every question and answer (a hash chain: edits are detectable).",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
LogOption = Annotated[
    Path | None,
    typer.Option("--log", help="Audit log file (default: $TAMGA_HOME/logs/audit.jsonl)."),
]


def _audit_log(log: Path | None) -> Any:
    from assistant.audit_log import AuditLog

    return AuditLog(log) if log else AuditLog.in_folder(get_settings().logs)


@audit_app.command("verify")
def audit_verify(log: LogOption = None, as_json: JsonOption = False) -> None:
    """Check every record's hash and link; exit 1 and name the first broken record if any."""
    audit = _audit_log(log)
    result = audit.verify()
    if as_json:
        print_json({"ok": result.ok, "records": result.records, "first_bad": result.first_bad,
                    "reason": result.reason, "head_hash": result.head_hash,
                    "path": str(audit.path)})
    else:
        print(result.describe())
    if not result.ok:
        raise typer.Exit(code=1)


@audit_app.command("export")
def audit_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    log: LogOption = None,
) -> None:
    """Write the audit log out as JSON lines or CSV (checks the chain first, warns if broken)."""
    audit = _audit_log(log)
    if fmt not in ("jsonl", "csv"):
        _fail(f"Unknown format {fmt!r}: use jsonl or csv.")
    result = audit.verify()
    if not result.ok:
        progress(f"Warning: {result.describe()}")
    try:
        if output is None:
            count = audit.export(sys.stdout, fmt)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("w", encoding="utf-8", newline="") as f:
                count = audit.export(f, fmt)
    except TamgaError as exc:
        _fail(str(exc))
        return
    progress(f"Exported {count:,} records" + (f" to {output}" if output else ""))


PeriodOption = Annotated[
    str | None,
    typer.Option("--period", help="2025-10 (month), 2025-Q3 (quarter) or 2025 (year)."),
]


@risk_app.command("score")
def risk_score(
    trader: Annotated[str, typer.Argument(help="Trader ID, e.g. T000012.")],
    period: PeriodOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A trader's risk score from the label-free indicators, with reasons and duty at stake."""
    from tamga.formatting import fmt_money
    from tools.indicators import analysis_runner
    from tools.runner import reporting_currency
    from tools.trader_risk import parse_period, trader_score

    try:
        runner = analysis_runner(_db(db))
        score = trader_score(runner, trader, parse_period(period))
        currency = reporting_currency(runner)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json(score.to_json())
        return
    print(f"{score.name} ({score.trader_id}): risk score {score.score:.2f}, duty at stake "
          f"{fmt_money(score.duty_at_stake, currency, cents_below=0)}, expected revenue "
          f"{fmt_money(score.expected_revenue, currency, cents_below=0)}")
    for reason in score.reasons or ["No indicator flags this trader."]:
        print(f"- {reason}")


@risk_app.command("top")
def risk_top(
    period: PeriodOption = None,
    office: Annotated[str | None, typer.Option("--office", help="Customs office name.")] = None,
    n: Annotated[int, typer.Option("--n", help="How many traders.")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who to audit next: traders ranked by expected revenue at stake (score x duty gap)."""
    from tools.indicators import analysis_runner
    from tools.trader_risk import audit_candidates, parse_period

    try:
        runner = analysis_runner(_db(db))
        found = audit_candidates(runner, parse_period(period), office, n, progress=progress)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json({"period": period, "office": office,
                    "candidates": [c.to_json() for c in found]})
        return
    rows = [[c.rank, c.trader_id, c.name, f"{c.score:.2f}", round(c.duty_at_stake),
             round(c.expected_revenue), c.last_audit or "-"] for c in found]
    print(render_table(["rank", "trader_id", "name", "score", "duty_at_stake",
                        "expected_revenue", "last_audit"], rows))
    for c in found[:5]:
        print(f"{c.rank}. {c.trader_id}: {c.reasons[0] if c.reasons else ''}")


@app.command()
def brief(
    trader: Annotated[str | None, typer.Argument(help="Trader ID; omit for a period "
                                                      "briefing.")] = None,
    period: PeriodOption = None,
    fmt: Annotated[str, typer.Option("--format", help="md or pdf.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    db: DbOption = None,
    index: IndexOption = None,
    findings: Annotated[bool, typer.Option(
        "--findings", help="Add the trader's document verification findings.")] = False,
) -> None:
    """Briefing for audit planning (TRADER) or for supervisors (--period only)."""
    from retrieval.search import RegulationsIndex
    from tools.briefing import period_briefing, trader_briefing
    from tools.indicators import analysis_runner
    from tools.trader_risk import parse_period

    if fmt not in ("md", "pdf"):
        _fail(f"Unknown format {fmt!r}: use md or pdf.")
        return
    try:
        parsed = parse_period(period)
        runner = analysis_runner(_db(db))
        if trader:
            regulations = RegulationsIndex(_index(index), chroma_url=get_settings().chroma_url)
            briefing = trader_briefing(runner, trader, parsed,
                                       regulations if regulations.exists() else None,
                                       progress=progress,
                                       findings=_findings(runner, trader) if findings else None)
        elif parsed is not None:
            briefing = period_briefing(runner, parsed, progress=progress)
        else:
            _fail("Give a trader ID, or --period for a period briefing.")
            return
    except TamgaError as exc:
        _fail(str(exc))
        return
    if fmt == "pdf":
        target = output or Path(f"briefing-{trader or period}.pdf")
        target.write_bytes(briefing.pdf())
        progress(f"Wrote {target}")
    elif output is not None:
        output.write_text(briefing.markdown(), encoding="utf-8")
        progress(f"Wrote {output}")
    else:
        print(briefing.markdown())


# -- verify ---------------------------------------------------------------------------------------


@app.command()
def verify(
    document: Annotated[Path, typer.Argument(
        help="Commercial invoice, packing list or certificate of origin (PDF, DOCX, XLSX, CSV; "
             "images with OCR when tesseract is installed).")],
    declaration: Annotated[str | None, typer.Option(
        "--declaration", help="Declaration ID to check against (found by trader, date and "
                              "goods when omitted).")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
    user: Annotated[str | None, typer.Option(
        "--user", help="Check as this user: an officer sees only their offices.")] = None,
) -> None:
    """Check a trade document against its declaration: each discrepancy, its size, its rule."""
    from assistant.audit_log import AuditLog
    from assistant.context import DataContexts
    from assistant.verification import check_document
    from tamga.scope import Scope
    from tools.access import resolve_scope
    from tools.documents import load_bytes
    from tools.verify import FindingsStore

    settings = get_settings()
    limit = int(settings.max_verify_mb * 1_000_000)
    try:
        data = load_bytes(document, limit)
        scope = Scope.everything() if user is None else resolve_scope(user, _user_store(None))
        context = DataContexts(_db(db), settings).get(scope)
        report = check_document(data, document.name, context, user=user or "cli",
                                audit=AuditLog.in_folder(settings.logs),
                                store=FindingsStore(settings.findings),
                                declaration_id=declaration, max_bytes=limit)
    except TamgaError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        print_json(report.to_json())
        return
    print(report.summary())
    for warning in report.warnings:
        print(f"Note: {warning}")
    for n, (d, row) in enumerate(zip(report.discrepancies, report.rows(), strict=True), 1):
        line = f", line {d.line}" if d.line else ""
        print(f"\n[{n}] {d.field}{line}: document {row[2]}, declared {row[3]}, "
              f"difference {row[4]}")
        print(f"    {d.explanation}")
        print(f"    Rule: {d.rule.provision} — {d.rule.locator} ({d.rule.source})")
    print(f"\nFields read from {report.document}:")
    print(render_table(["field", "value", "where"],
                       [[f["name"], f["value"], f["where"]] for f in report.fields], 200))


def _findings(runner: Any, trader: str) -> list[dict[str, Any]]:
    from tools.verify import FindingsStore, visible_findings

    return visible_findings(runner, FindingsStore(get_settings().findings).for_trader(trader))


# -- users ----------------------------------------------------------------------------------------

users_app = typer.Typer(
    help="Accounts and roles: officer (own customs offices), analyst, supervisor, admin.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")
UsersDbOption = Annotated[
    Path | None,
    typer.Option("--users-db", help="Users file (default: $TAMGA_HOME/users.db)."),
]


def _user_store(users_db: Path | None) -> Any:
    from tools.access import UserStore

    if users_db is None:
        return UserStore.from_settings(get_settings())
    return UserStore(users_db, session_hours=get_settings().session_hours)


def _known_offices(db_path: Path) -> list[str] | None:
    """The customs offices in the trade database, or None when there is no database to ask."""
    if not db_path.exists():
        return None
    from tools.sql import SqlRunner

    with SqlRunner(db_path) as runner:
        result = runner.run("SELECT DISTINCT customs_office FROM declarations ORDER BY 1")
    return [str(r[0]) for r in result.rows if r[0] is not None]


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: Annotated[
        str, typer.Option("--role", help="officer | analyst | supervisor | admin.")
    ],
    office: Annotated[
        list[str] | None,
        typer.Option("--office", help="A customs office an officer serves (repeat for several)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Accept offices not found in the trade database.")
    ] = False,
    users_db: UsersDbOption = None,
    db: DbOption = None,
) -> None:
    """Add a user (the password is asked twice, or read with --password-stdin)."""
    offices = office or []
    try:
        known = None if force or not offices else _known_offices(_db(db))
    except TamgaError as exc:
        _fail(str(exc))
        return
    unknown = [o for o in offices if known is not None and o not in known]
    if unknown:
        _fail(f"Unknown customs office(s): {', '.join(unknown)}. Offices in the database: "
              f"{'; '.join(known or [])}. (Use --force to add them anyway.)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = _user_store(users_db).add(name, password, role, offices)
    except TamgaError as exc:
        _fail(str(exc))
        return
    where = f" ({', '.join(user.offices)})" if user.offices else ""
    print(f"Added {user.role} {user.name}{where}.")


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="User to remove.")],
    users_db: UsersDbOption = None,
) -> None:
    """Remove a user and end their sessions."""
    try:
        _user_store(users_db).remove(name)
    except TamgaError as exc:
        _fail(str(exc))
    print(f"Removed {name}.")


@users_app.command("list")
def users_list(users_db: UsersDbOption = None, as_json: JsonOption = False) -> None:
    """List users, roles and offices (password hashes are never shown)."""
    users = _user_store(users_db).users()
    if as_json:
        print_json({"users": [u.to_json() for u in users]})
        return
    if not users:
        print("No users yet: Tamga runs single-user (everyone sees all offices). "
              "Add one with `tamga users add NAME --role ...`.")
        return
    print(render_table(["name", "role", "offices", "created_at"],
                       [[u.name, u.role, "; ".join(u.offices) or "(all)", u.created_at]
                        for u in users]))


def main() -> None:
    """Entry point of `tamga` and `python -m cli.main`: run the command, then exit at once.

    Once a command has finished and its output is flushed, the process ends with `os._exit`
    rather than a normal interpreter shutdown. The native libraries loaded by a question
    (DuckDB, torch, tokenizers, Chroma) tear their threads down in no fixed order at shutdown;
    once in four full test runs `tamga ask` died there with SIGABRT ("terminate called ...
    FATAL: exception not rethrown") after printing a complete answer. Nothing is lost by
    skipping it: the audit log, imports and the index write and close their files before a
    command returns.
    """
    import contextlib
    import logging
    import os

    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
