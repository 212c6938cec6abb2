"""Row-level scoping: an officer's query can only see the declarations of the officer's offices.

The rule is enforced on the SQL itself, after the guard (tools/sql_guard.py) has accepted it and
before DuckDB sees it. Every reference to a protected table, at any depth (joins, subqueries,
CTE bodies, set operations, LATERAL, window queries), is replaced by a filtered subquery that
keeps the reference's name or alias, so the rest of the query reads exactly as written:

    SELECT count(*) FROM declarations AS d
    -> SELECT COUNT(*) FROM (SELECT * FROM main.declarations
                             WHERE customs_office IN ('Balboa Seaport')) AS d

What a scoped user sees:

- ``declarations``: rows whose ``customs_office`` is one of the user's offices;
- ``declaration_items``: items of those declarations (a semi-join: items have no office);
- ``traders`` and ``audits``: traders with at least one declaration in the user's offices, and
  the audits of those traders;
- reference tables (``hs_nomenclature``, ``countries``, ``dataset_info``): everything.

A CTE named like a protected table (``WITH declarations AS (...)``) is renamed to a fresh name
together with the references that resolve to it, so after the rewrite no name in the query can
reach a protected table except through its filtered subquery. A reference the resolver gets
wrong therefore fails to run, it never reads unfiltered rows.

    runner = ScopedRunner(SqlRunner(path), Scope.offices_of("ana", ["Balboa Seaport"]))
    runner.run("SELECT count(*) FROM declaration_items")   # only Balboa Seaport's items
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from tamga.errors import SqlRefused
from tamga.scope import Scope
from tools.sql import Params, QueryResult
from tools.sql_guard import DIALECT

if TYPE_CHECKING:
    from tools.runner import Runner

__all__ = ["PROTECTED_TABLES", "ScopedRunner", "scope_sql"]

#: The tables whose rows depend on the user's offices.
PROTECTED_TABLES: tuple[str, ...] = ("declarations", "declaration_items", "traders", "audits")

# Table arguments a scoped subquery can carry over; any other (time travel, hints...) is refused.
_CARRIED_ARGS = ("joins", "laterals", "pivots", "sample")
_HARMLESS_ARGS = {"this", "db", "catalog", "alias", *_CARRIED_ARGS}


# -- the rewrite -------------------------------------------------------------------------------


def _office_condition(offices: tuple[str, ...]) -> exp.Expr:
    if not offices:
        return exp.false()
    column = exp.column("customs_office")
    return exp.In(this=column, expressions=[exp.Literal.string(o) for o in offices])


def _scoped_declaration_ids(offices: tuple[str, ...], column: str) -> exp.Select:
    return (
        exp.select(column)
        .from_(exp.table_("declarations", db="main"))
        .where(_office_condition(offices))
    )


def _filtered_source(table: str, offices: tuple[str, ...]) -> exp.Select:
    """SELECT * FROM main.<table> WHERE <only the rows the offices may see>."""
    base = exp.select(exp.Star()).from_(exp.table_(table, db="main"))
    if table == "declarations":
        return base.where(_office_condition(offices))
    key = "declaration_id" if table == "declaration_items" else "trader_id"
    ids = _scoped_declaration_ids(offices, key)
    return base.where(exp.In(this=exp.column(key), query=exp.Subquery(this=ids)))


def _protected_name(table: exp.Table) -> str | None:
    """The protected table a Table node names, or None (CTE names are checked separately)."""
    if not isinstance(table.this, exp.Identifier) or table.catalog:
        return None
    if table.db and table.db.lower() != "main":
        return None
    name = str(table.this.this).lower()
    return name if name in PROTECTED_TABLES else None


def _cte_scope(table: exp.Table) -> dict[str, exp.CTE]:
    """The CTEs (by lower-case name) that an unqualified table name at `table` can resolve to.

    Follows the usual rules: a CTE body sees the CTEs defined before it in the same WITH, plus
    itself when the WITH is RECURSIVE and the body is a UNION; the main query sees all of them.
    Inner WITH clauses shadow outer ones.
    """
    visible: dict[str, exp.CTE] = {}
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(node, exp.CTE):
            pass  # handled at its With below
        elif isinstance(node, exp.With):
            ctes = list(node.expressions)
            if isinstance(child, exp.CTE) and child in ctes:
                index = ctes.index(child)
                recursive = bool(node.args.get("recursive")) and isinstance(
                    child.this, exp.Union
                )
                seen = ctes[: index + 1] if recursive else ctes[:index]
                for cte in seen:
                    visible.setdefault(cte.alias_or_name.lower(), cte)
        elif isinstance(with_, exp.With) and child is not with_:
            for cte in with_.expressions:
                visible.setdefault(cte.alias_or_name.lower(), cte)
        child = node
        node = node.parent
    return visible


def _fresh_namer(tree: exp.Expr) -> Any:
    used = {str(i.this).lower() for i in tree.find_all(exp.Identifier)}
    counter = itertools.count(1)

    def fresh(base: str) -> str:
        while True:
            name = f"_scoped_cte_{base}_{next(counter)}"
            if name not in used:
                used.add(name)
                return name

    return fresh


def scope_tree(tree: exp.Expr, scope: Scope) -> exp.Expr:
    """Rewrite a parsed query (in place) so it only sees what `scope` allows; returns it."""
    if scope.offices is None:
        return tree
    offices = scope.offices
    fresh = _fresh_namer(tree)

    # 1. Work out, before changing anything, what every table reference resolves to.
    renames: dict[int, str] = {}  # id(CTE) -> its new name
    for cte in tree.find_all(exp.CTE):
        if cte.alias_or_name.lower() in PROTECTED_TABLES:
            renames[id(cte)] = fresh(cte.alias_or_name.lower())
    to_cte: list[tuple[exp.Table, str]] = []
    to_scope: list[tuple[exp.Table, str]] = []
    for table in list(tree.find_all(exp.Table)):
        name = _protected_name(table)
        if name is None:
            continue
        if not table.db:
            target = _cte_scope(table).get(name)
            if target is not None:
                if id(target) in renames:
                    to_cte.append((table, renames[id(target)]))
                continue  # a CTE that is not named like a protected table cannot be here
        to_scope.append((table, name))

    # 2. Rename the shadowing CTEs and the references that resolve to them.
    for cte in tree.find_all(exp.CTE):
        if id(cte) in renames:
            alias = cte.args["alias"]
            alias.set("this", exp.to_identifier(renames[id(cte)]))
    for table, new_name in to_cte:
        if table.args.get("alias") is None:
            table.set("alias", exp.TableAlias(this=table.this.copy()))
        table.set("this", exp.to_identifier(new_name))

    # 3. Replace every reference to a real protected table by its filtered subquery.
    for table, name in to_scope:
        extra = {k for k, v in table.args.items() if v and k not in _HARMLESS_ARGS}
        if extra:
            raise SqlRefused(
                f"Refused: '{table.sql(DIALECT)}' uses {', '.join(sorted(extra))}, which a "
                "scoped query cannot use on a protected table."
            )
        alias = table.args.get("alias")
        if alias is None:
            alias = exp.TableAlias(this=table.this.copy())
        replacement = exp.Subquery(this=_filtered_source(name, offices), alias=alias.copy())
        for arg in _CARRIED_ARGS:
            value = table.args.get(arg)
            if value:
                replacement.set(arg, value)
        table.replace(replacement)

    # 4. Column references qualified with the schema (main.declarations.col) keep working.
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None and column.table.lower() in PROTECTED_TABLES:
            column.set("db", None)
            column.set("catalog", None)
    return tree


def scope_sql(sql: str, scope: Scope) -> str:
    """One query (already accepted by the guard) rewritten so it only sees `scope`'s rows."""
    if scope.offices is None:
        return sql
    tree = sqlglot.parse_one(sql, read=DIALECT)
    return scope_tree(tree, scope).sql(dialect=DIALECT, comments=False)


class ScopedRunner:
    """A runner whose every query is guarded, then scoped to one user's offices.

    It wraps another runner (normally the database's SqlRunner, whose read-only connection
    every user shares), so creating one per request is cheap; it holds no connection itself.
    """

    def __init__(self, base: Runner, scope: Scope) -> None:
        if not base.scope.unrestricted:
            raise ValueError("a ScopedRunner wraps an unscoped runner")
        self.base = base
        self._scope = scope

    @property
    def db_path(self) -> Path:
        """The wrapped runner's database."""
        return self.base.db_path

    @property
    def row_cap(self) -> int:
        """The wrapped runner's row cap."""
        return self.base.row_cap

    @property
    def scope(self) -> Scope:
        """What this runner's queries may see."""
        return self._scope

    def tables(self) -> list[str]:
        """The trade tables present in the database."""
        return self.base.tables()

    def check(self, sql: str) -> str:
        """The guarded statement rewritten to the scope (what would run); raises if refused."""
        return scope_sql(self.base.check(sql), self._scope)

    def run(self, sql: str, params: Params = None) -> QueryResult:
        """Guard, scope and run one read-only query (the scoped text is guarded again)."""
        return self.base.run(self.check(sql), params)

    def describe_schema(self) -> str:
        """The schema description of the wrapped runner (tables and columns are not secret)."""
        return self.base.describe_schema()

    def __repr__(self) -> str:
        return f"ScopedRunner({self.base!r}, {self._scope.describe()})"
