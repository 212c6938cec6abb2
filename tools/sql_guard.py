"""The SQL guard: decide, before anything runs, whether a statement is one harmless read-only query.

Rules (see docs/sql.md for the reasons):

- exactly one statement, and it is a query: SELECT, WITH ... SELECT, FROM-first SELECT, set
  operations (UNION / INTERSECT / EXCEPT) or VALUES;
- nothing anywhere in it writes, changes settings or talks to the outside: no INSERT / UPDATE /
  DELETE / MERGE, no DDL, no SELECT ... INTO, no ATTACH / COPY / EXPORT / INSTALL / LOAD / PRAGMA /
  SET / CALL, not even inside a CTE;
- every table it reads is an allowed trade table (or a CTE defined around it): no file paths, no
  other schemas or catalogs, no system views;
- the only table functions are range / generate_series / unnest; functions that read files, the
  network, settings, sequences or the environment are refused wherever they appear;
- no invisible or control characters.

The guard returns the statement re-written by sqlglot (comments dropped), and that text is what
runs, so the engine executes exactly what was checked.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from tamga.errors import SqlFailed, SqlRefused
from tradedata.db import TABLES

# sqlglot logs a warning when it falls back to an opaque "Command"; the guard reports instead.
logging.getLogger("sqlglot").addHandler(logging.NullHandler())

DIALECT = "duckdb"
MAX_SQL_CHARS = 100_000

#: The contract tables of the trade data model (docs/architecture.md); nothing else can be queried.
TRADE_TABLES: tuple[str, ...] = TABLES

#: Table functions that only generate values (no I/O): allowed in FROM.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

#: Scalar functions refused wherever they appear (they read settings/environment or change state).
DENIED_FUNCTIONS = frozenset({
    "current_setting", "getenv", "nextval", "currval", "setval", "setseed", "sleep_ms",
    "pg_sleep", "json_execute_serialized_sql", "query", "query_table", "glob", "sniff_csv",
    "which_secret", "checkpoint", "force_checkpoint", "parquet_scan", "seq_scan",
})

#: Name prefixes of function families that read files, the network, or engine internals.
DENIED_PREFIXES = (
    "read_", "duckdb_", "pragma_", "parquet_", "sqlite_", "postgres_", "mysql_", "iceberg_",
    "delta_", "ducklake_", "http", "st_read", "load_", "enable_", "disable_", "arrow_",
    "pandas_", "python_", "copy_", "import_", "export_", "register_", "deregister_",
    "destroy_", "add_", "remove_",
)

#: Statement-level nodes that are never part of a read-only query.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Set",
        "Pragma", "Copy", "Use", "Attach", "Detach", "Install", "Export", "Into", "Transaction",
        "Commit", "Rollback", "Describe", "Summarize", "Show", "TruncateTable", "Cache",
        "Uncache", "Refresh", "Analyze", "LoadData", "Kill", "Grant", "Revoke", "Comment",
        "Returning", "Lock", "LockingStatement", "Undrop", "ToFile", "Secret",
    )
    if hasattr(exp, name)
)

_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
_FIRST_TOKENS = {TokenType.SELECT, TokenType.WITH, TokenType.FROM, TokenType.VALUES}
_TABLE_POSITION = (exp.Table, exp.Lateral, exp.From, exp.Join)
_ALLOWED_WHITESPACE = {"\t", "\n", "\r", " "}
_STATEMENT_KEYWORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP", "ALTER",
    "ATTACH", "DETACH", "COPY", "EXPORT", "IMPORT", "INSTALL", "FORCE", "LOAD", "PRAGMA", "SET",
    "RESET", "CALL", "CHECKPOINT", "USE", "VACUUM", "TRUNCATE", "BEGIN", "START", "COMMIT",
    "ROLLBACK", "ABORT", "END", "DESCRIBE", "DESC", "SHOW", "SUMMARIZE", "EXPLAIN", "PREPARE",
    "EXECUTE", "DEALLOCATE", "ANALYZE", "COMMENT", "GRANT", "REVOKE", "UNPIVOT", "PIVOT",
    "UPDATE_EXTENSIONS",
})


@lru_cache(maxsize=1)
def _engine_functions() -> tuple[frozenset[str], frozenset[str]]:
    """(table function names, other function names) known to the installed DuckDB."""
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={"enable_external_access": False, "autoload_known_extensions": False,
                "autoinstall_known_extensions": False},
    )
    try:
        rows = con.execute(
            "SELECT DISTINCT lower(function_name), function_type IN ('table', 'table_macro', "
            "'pragma') FROM duckdb_functions()"
        ).fetchall()
    finally:
        con.close()
    tables = frozenset(name for name, is_table in rows if is_table)
    others = frozenset(name for name, is_table in rows if not is_table)
    return tables, others


def _refuse(reason: str) -> SqlRefused:
    return SqlRefused(f"Refused: {reason}")


def _check_characters(sql: str) -> None:
    if not sql.strip():
        raise _refuse("the query is empty; write one SELECT statement.")
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse(f"the query is {len(sql):,} characters long (limit {MAX_SQL_CHARS:,}).")
    for pos, char in enumerate(sql):
        if char.isascii() and (char.isprintable() or char in _ALLOWED_WHITESPACE):
            continue
        name = unicodedata.name(char, "unnamed")
        if unicodedata.category(char)[0] in "CZ":
            raise _refuse(
                f"the query contains an invisible, control or unusual space character "
                f"U+{ord(char):04X} ({name}) at position {pos}; retype it with plain characters."
            )
        lookalike = unicodedata.normalize("NFKC", char)
        if lookalike != char and lookalike.isascii():
            raise _refuse(
                f"the query contains U+{ord(char):04X} ({name}) at position {pos}, which looks "
                f"like '{lookalike}'; retype it with plain characters."
            )


def _split_statements(sql: str) -> list[list[object]]:
    try:
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql)
    except TokenError as exc:
        raise SqlFailed(f"Syntax error: an unclosed quote or comment? ({exc})") from exc
    statements: list[list[object]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def in_table_position(node: exp.Func) -> bool:
    """Whether a function stands where a table does (a table function in FROM / JOIN /
    LATERAL). Only the table slot ("this") counts: a join condition (ON a = b AND c = d) sits
    under the same Join node in its "on" slot."""
    return isinstance(node.parent, _TABLE_POSITION) and node.arg_key == "this"


def _check_function(node: exp.Func) -> None:
    name = _function_name(node)
    table_functions, other_functions = _engine_functions()
    if in_table_position(node) and name not in ALLOWED_TABLE_FUNCTIONS:
        raise _refuse(
            f"the table function {name}() is not allowed; read the trade tables instead "
            f"(only {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))} may appear in FROM)."
        )
    if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
        raise _refuse(
            f"the function {name}() reads files, the network, settings or engine state, "
            "or changes them."
        )
    if name in table_functions and name not in other_functions | ALLOWED_TABLE_FUNCTIONS:
        raise _refuse(f"{name}() is a table function that is not allowed.")


def _visible_ctes(node: exp.Expr) -> set[str]:
    names: set[str] = set()
    current: exp.Expr | None = node
    while current is not None:
        with_ = current.args.get("with_") or current.args.get("with")
        if isinstance(with_, exp.With):
            names.update(cte.alias_or_name.lower() for cte in with_.expressions)
        current = current.parent
    return names


def _check_table(table: exp.Table, allowed: frozenset[str]) -> None:
    target = table.this
    if isinstance(target, exp.Func):
        return  # checked with the other functions
    if not isinstance(target, exp.Identifier):
        raise _refuse(f"'{table.sql(DIALECT)}' is not a table name.")
    name = str(target.this)
    schema, catalog = table.db, table.catalog
    if catalog or (schema and schema.lower() != "main"):
        raise _refuse(
            f"'{table.sql(DIALECT)}' is outside the trade database; use the table name alone."
        )
    lowered = name.lower()
    if lowered in allowed:
        return
    if not schema and lowered in _visible_ctes(table):
        return
    raise _refuse(
        f"'{name}' is not a table of the trade database (files, paths and system views cannot "
        f"be read). Tables: {', '.join(sorted(allowed))}."
    )


def check_sql(sql: str, tables: Iterable[str] | None = None) -> str:
    """Return the normalised statement if `sql` is one safe read-only query, else raise.

    `tables` are the table names the query may read (default: the trade data model tables).
    Raises SqlRefused with the reason, or SqlFailed when the SQL cannot be parsed.
    """
    allowed = frozenset(t.lower() for t in (tables if tables is not None else TRADE_TABLES))
    _check_characters(sql)
    statements = _split_statements(sql)
    if not statements:
        raise _refuse("the query is empty; write one SELECT statement.")
    if len(statements) > 1:
        raise _refuse(
            f"found {len(statements)} statements; send exactly one SELECT, without ';' between."
        )
    tokens = statements[0]
    first = next((t for t in tokens if getattr(t, "token_type", None) != TokenType.L_PAREN),
                 tokens[0])
    if getattr(first, "token_type", None) not in _FIRST_TOKENS:
        word = str(getattr(first, "text", ""))
        if word.upper() in _STATEMENT_KEYWORDS:
            raise _refuse(
                f"{word.upper()} statements are not allowed; only one read-only SELECT "
                "(or WITH ... SELECT) can run."
            )
        raise _refuse(
            f"a query must start with SELECT, WITH, FROM or VALUES; this one starts with "
            f"'{word[:40]}'."
        )
    try:
        parsed = [e for e in sqlglot.parse(sql, read=DIALECT) if e is not None]
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        where = f" (line {detail.get('line')}, column {detail.get('col')})" if detail else ""
        message = str(detail.get("description") or exc).splitlines()[0]
        raise SqlFailed(f"Syntax error{where}: {message}.") from exc
    except (TokenError, RecursionError) as exc:
        raise SqlFailed(f"Could not read the SQL: {exc}") from exc
    if len(parsed) != 1:
        raise _refuse(f"found {len(parsed)} statements; send exactly one SELECT.")
    tree = parsed[0]
    if not isinstance(tree, _QUERY_ROOTS):
        raise _refuse(
            f"a {tree.key.upper()} statement is not allowed; only one read-only SELECT can run."
        )
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            what = "SELECT ... INTO" if isinstance(node, exp.Into) else node.key.upper()
            raise _refuse(
                f"{what} is not allowed anywhere in the query (not even in a CTE or subquery): "
                "the trade data is read-only."
            )
        if isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Table):
            _check_table(node, allowed)
    return tree.sql(dialect=DIALECT, comments=False)
