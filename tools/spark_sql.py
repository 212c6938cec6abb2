"""DuckDB SQL to Spark SQL, only where both engines give the same answer.

The guard (tools/sql_guard.py) and scoping (tools/scoping.py) work on DuckDB SQL; the Spark
backend runs what they produced. sqlglot's transpiler alone is not enough: some functions
silently change meaning between the engines. So the translation here

- rewrites the known differences so that Spark computes what DuckDB would:
  ``quantile_cont`` / ``percentile_cont ... WITHIN GROUP`` / ``median`` become the exact
  ``percentile`` (sqlglot would make the WITHIN GROUP form approximate); ``dayofweek`` (DuckDB
  counts Sunday as 0, Spark as 1) and ``isodow``; ``date_diff('month' | 'quarter' | 'year')``,
  which DuckDB counts in calendar boundaries crossed; ``date - date`` (days in DuckDB, an
  interval in Spark); one-argument ``log`` (base 10 in DuckDB, natural in Spark); ``week``;
- refuses, with the reason, anything that has no exact equivalent or reads engine state:
  lists and list functions, table functions (``range`` counts differently), approximate
  aggregates, ``quantile_disc``, ``age``, ``epoch``, ordered string aggregation, and every
  function not on the allow-list below. A Spark-only function (``reflect``, ``java_method``,
  ``input_file_name``...) therefore never reaches Spark, whatever the guard let through.

    to_spark("SELECT median(customs_value) FROM main.declaration_items", schema).sql
    -> "SELECT PERCENTILE(customs_value, 0.5) FROM declaration_items"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from tamga.errors import SqlFailed, SqlRefused
from tools.sql_guard import DIALECT, in_table_position

__all__ = ["SPARK_DIALECT", "SparkQuery", "to_spark"]

SPARK_DIALECT = "spark"

#: Column types by table, as the backend serves them (for telling dates apart).
Schema = Mapping[str, Mapping[str, str]]

#: sqlglot function nodes whose result is the same on DuckDB and Spark (after the rewrites).
_ALLOWED_NODES: tuple[type[exp.Func], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Sum", "Count", "Avg", "Min", "Max", "CountIf", "LogicalOr", "LogicalAnd", "AnyValue",
        "First", "ArgMax", "ArgMin", "Stddev", "StddevSamp", "StddevPop", "Variance",
        "VariancePop", "Corr", "CovarSamp", "CovarPop",
        "Round", "Abs", "Sign", "Floor", "Ceil", "Sqrt", "Pow", "Exp", "Ln", "Log", "IntDiv",
        "Coalesce", "Nullif", "If", "Greatest", "Least", "Cast", "TryCast",
        "Lower", "Upper", "Trim", "Length", "Substring", "Left", "Right", "Concat", "ConcatWs",
        "Replace", "StartsWith", "EndsWith", "RegexpLike", "Lpad", "Rpad",
        "Year", "Month", "Quarter", "Day", "DayOfYear", "WeekOfYear", "DayOfMonth", "LastDay",
        "DateFromParts", "CurrentDate", "DateTrunc", "TimestampTrunc", "TimeToStr", "Extract",
        "DateDiff", "RowNumber", "Lag", "Lead", "FirstValue", "LastValue", "NthValue",
        "And", "Or", "Exists", "Case", "GroupConcat", "ArrayContains",
        # rewritten below into what Spark computes the same way
        "PercentileCont", "Median", "DayOfWeek", "DayOfWeekIso", "Week",
    )
    if hasattr(exp, name)
)

#: Functions sqlglot keeps by name (window ranks; date_part is rewritten).
_ALLOWED_NAMES = frozenset({
    "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "date_part", "datepart",
})

#: Why a function is refused, for the functions people are likely to try.
_REFUSED_BECAUSE: dict[type[exp.Expr], str] = {
    node: reason
    for name, reason in (
        ("PercentileDisc", "quantile_disc picks a different row on Spark; use median() or "
                           "quantile_cont()"),
        ("Quantile", "quantile() is quantile_disc in DuckDB, which Spark does not reproduce; "
                     "use quantile_cont()"),
        ("ApproxDistinct", "approximate counts differ between engines; use count(DISTINCT ...)"),
        ("ApproxQuantile", "approximate quantiles differ between engines; use quantile_cont()"),
        ("TimeToUnix", "epoch() depends on the engine's time zone"),
        ("ArrayAgg", "lists are not supported on the Spark backend"),
        ("Explode", "lists are not supported on the Spark backend"),
        ("Unnest", "lists are not supported on the Spark backend"),
        ("GenerateSeries", "range()/generate_series() number rows differently on Spark"),
        ("CurrentTimestamp", "the current time depends on the engine's time zone"),
    )
    if (node := getattr(exp, name, None)) is not None
}

_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.DATE32}
_EXTRACT_SAFE = {"year", "month", "day", "quarter", "dayofyear", "doy"}


def _refuse(reason: str) -> SqlRefused:
    return SqlRefused(f"Refused on the Spark backend: {reason}.")


def _anon(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _paren(node: exp.Expr) -> exp.Paren:
    return exp.Paren(this=node)


def _is_date(node: exp.Expr | None, date_columns: frozenset[str]) -> bool:
    """Whether `node` is a DATE: a date column of the schema, a date literal or cast, or a
    function returning a date."""
    if isinstance(node, exp.Paren):
        return _is_date(node.this, date_columns)
    if isinstance(node, exp.Column):
        return node.name.lower() in date_columns
    if isinstance(node, exp.Cast):
        return node.to.this in _DATE_TYPES
    return isinstance(node, exp.CurrentDate | exp.DateFromParts | exp.LastDay)


def _month_index(date: exp.Expr) -> exp.Expr:
    """year(d) * 12 + month(d): months since year 0, for calendar month differences."""
    return _paren(exp.Add(
        this=exp.Mul(this=exp.Year(this=date.copy()), expression=exp.Literal.number(12)),
        expression=exp.Month(this=date.copy()),
    ))


def _quarter_index(date: exp.Expr) -> exp.Expr:
    return _paren(exp.Add(
        this=exp.Mul(this=exp.Year(this=date.copy()), expression=exp.Literal.number(4)),
        expression=exp.Quarter(this=date.copy()),
    ))


def _date_part(unit: str, date: exp.Expr) -> exp.Expr:
    """DuckDB's date_part(unit, d) as Spark computes it, or a refusal."""
    unit = unit.lower()
    if unit in ("dow", "dayofweek", "weekday"):
        return _paren(exp.Sub(this=_anon("DAYOFWEEK", date), expression=exp.Literal.number(1)))
    if unit == "isodow":
        shifted = exp.Mod(
            this=_paren(exp.Add(this=_anon("DAYOFWEEK", date), expression=exp.Literal.number(5))),
            expression=exp.Literal.number(7),
        )
        return _paren(exp.Add(this=shifted, expression=exp.Literal.number(1)))
    if unit in ("week", "weekofyear", "weeks", "w"):
        return _anon("WEEKOFYEAR", date)
    builders = {"year": exp.Year, "month": exp.Month, "day": exp.Day, "quarter": exp.Quarter,
                "dayofyear": exp.DayOfYear, "doy": exp.DayOfYear}
    if unit in builders:
        return builders[unit](this=date)
    raise _refuse(f"date_part('{unit}') has no exact equivalent on Spark; use year, quarter, "
                  "month, week, day, dayofweek or isodow")


def _date_diff(unit: str, start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """DuckDB's date_diff(unit, start, end): calendar boundaries crossed between the dates."""
    unit = unit.lower().rstrip("s")
    if unit == "day":
        return _anon("DATEDIFF", end, start)
    if unit == "month":
        return _paren(exp.Sub(this=_month_index(end), expression=_month_index(start)))
    if unit == "quarter":
        return _paren(exp.Sub(this=_quarter_index(end), expression=_quarter_index(start)))
    if unit == "year":
        return _paren(exp.Sub(this=exp.Year(this=end), expression=exp.Year(this=start)))
    raise _refuse(f"date_diff('{unit}') has no exact equivalent on Spark; use day, month, "
                  "quarter or year")


def _percentile(node: exp.Expr) -> exp.Expr:
    """quantile_cont(x, p), percentile_cont(p) WITHIN GROUP (ORDER BY x), median(x) ->
    Spark's exact percentile(x, p)."""
    if isinstance(node, exp.Median):
        return _anon("PERCENTILE", node.this, exp.Literal.number(0.5))
    if isinstance(node, exp.WithinGroup):
        inner, order = node.this, node.expression
        keys = order.expressions if isinstance(order, exp.Order) else []
        if not isinstance(inner, exp.PercentileCont) or len(keys) != 1:
            raise _refuse("only percentile_cont(p) WITHIN GROUP (ORDER BY one column) is "
                          "supported")
        fraction = inner.this
        if keys[0].args.get("desc"):
            if not isinstance(fraction, exp.Literal) or fraction.is_string:
                raise _refuse("a descending percentile needs a literal fraction")
            fraction = exp.Literal.number(round(1 - float(fraction.this), 12))
        return _anon("PERCENTILE", keys[0].this, fraction)
    assert isinstance(node, exp.PercentileCont)
    fraction = node.expression
    if isinstance(fraction, exp.Order):  # quantile_cont(x, p ORDER BY x [DESC])
        keys, fraction = fraction.expressions, fraction.this
        if len(keys) != 1:
            raise _refuse("quantile_cont() may be ordered by one column only")
        if keys[0].args.get("desc"):
            if not isinstance(fraction, exp.Literal) or fraction.is_string:
                raise _refuse("a descending percentile needs a literal fraction")
            fraction = exp.Literal.number(round(1 - float(fraction.this), 12))
        return _anon("PERCENTILE", keys[0].this, fraction)
    if fraction is None or isinstance(fraction, exp.Array):
        raise _refuse("quantile_cont() needs one fraction (lists are not supported)")
    return _anon("PERCENTILE", node.this, fraction)


def _string_agg(node: exp.GroupConcat) -> exp.Expr:
    """string_agg([DISTINCT] x, sep ORDER BY x [DESC]) -> the sorted (distinct) values joined;
    Spark's own listagg fails on DISTINCT ... WITHIN GROUP."""
    order = node.this
    if not isinstance(order, exp.Order) or len(order.expressions) != 1:
        raise _refuse("string_agg() without ORDER BY joins its parts in any order; write "
                      "string_agg(x, ', ' ORDER BY x)")
    value, key = order.this, order.expressions[0]
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        value = value.expressions[0]
    if key.this != value:
        raise _refuse("string_agg() must be ordered by the values it joins on Spark")
    collected = _anon("COLLECT_SET" if distinct else "COLLECT_LIST", value.copy())
    ordered: exp.Expr = _anon("ARRAY_SORT", collected)
    if key.args.get("desc"):
        ordered = _anon("REVERSE", ordered)
    separator = node.args.get("separator") or exp.Literal.string(",")
    return _anon("ARRAY_JOIN", ordered, separator)


#: Table options that would make Spark read something else than the exported view.
_TABLE_OPTIONS = ("version", "when", "changes", "hints", "partition", "format", "pattern",
                  "only", "indexed", "rows_from", "ordinality")


def _rewrite(node: exp.Expr, date_columns: frozenset[str]) -> exp.Expr:
    """One node of the DuckDB tree, rewritten to Spark's meaning (or refused)."""
    if isinstance(node, exp.Table):
        used = [key for key in _TABLE_OPTIONS if node.args.get(key)]
        if used:
            raise _refuse(f"table options ({', '.join(used)}: time travel, hints, partitions) "
                          "are not supported")
        if node.args.get("db"):
            node.set("db", None)  # the guard allowed only the main schema
        return node
    if isinstance(node, exp.WithinGroup | exp.Median):
        return _percentile(node)
    if isinstance(node, exp.PercentileCont) and not isinstance(node.parent, exp.WithinGroup):
        return _percentile(node)
    if isinstance(node, exp.DayOfWeek):
        return _date_part("dow", node.this)
    if isinstance(node, exp.DayOfWeekIso):
        return _date_part("isodow", node.this)
    if isinstance(node, exp.Week):
        return _anon("WEEKOFYEAR", node.this)
    if isinstance(node, exp.Extract):
        unit = node.this.name.lower()
        if unit in _EXTRACT_SAFE:
            return node
        return _date_part(unit, node.expression)
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("date_part", "datepart"):
        unit, *rest = node.expressions
        if not isinstance(unit, exp.Literal) or len(rest) != 1:
            raise _refuse("date_part() needs a literal unit and one date")
        return _date_part(str(unit.this), rest[0])
    if isinstance(node, exp.DateDiff):
        unit = node.args.get("unit")
        name = unit.name if unit is not None else "day"
        return _date_diff(name, node.expression, node.this)
    if isinstance(node, exp.Sub) and _is_date(node.this, date_columns) \
            and _is_date(node.expression, date_columns):
        return _anon("DATEDIFF", node.this, node.expression)
    if isinstance(node, exp.Log) and node.expression is None:
        return _anon("LOG10", node.this)
    if isinstance(node, exp.Bracket):
        raise _refuse("lists and list indexing are not supported on the Spark backend")
    if isinstance(node, exp.GroupConcat):
        return _string_agg(node)
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)  # a DuckDB planning hint; Spark has no such keyword
    return node


def _check_function(node: exp.Func) -> None:
    if isinstance(node, exp.Array) and isinstance(node.parent, exp.ArrayContains) \
            and node.arg_key == "this":
        return  # list_contains(['a', 'b'], x): membership in a literal list is the same
    if isinstance(node, exp.Array):
        raise _refuse("lists are not supported on the Spark backend")
    for refused, reason in _REFUSED_BECAUSE.items():
        if isinstance(node, refused):
            raise _refuse(reason)
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in _ALLOWED_NAMES:
            return
    elif isinstance(node, _ALLOWED_NODES):
        return
    else:
        name = node.sql_name().lower()
    raise _refuse(
        f"{name}() is not on the list of functions that give the same result on DuckDB and "
        "Spark (docs/scale.md lists them)"
    )


@dataclass(frozen=True)
class SparkQuery:
    """A translated statement, and how many trailing helper columns to drop from its rows."""

    sql: str
    hidden_columns: int = 0


_HIDDEN = "__tamga_order_"


def _order_by_helpers(tree: exp.Expr) -> int:
    """Spark cannot sort a grouped query that also has a window function by an aggregate it
    does not select (ORDER BY sum(x) beside sum(sum(x)) OVER ()). Such sort keys of the
    top-level SELECT become extra columns, selected last and dropped after the query runs."""
    if not isinstance(tree, exp.Select) or tree.args.get("distinct") \
            or not tree.args.get("group") or not tree.find(exp.Window):
        return 0
    order = tree.args.get("order")
    if not isinstance(order, exp.Order):
        return 0
    hidden = 0
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal | exp.Column) or not key.find(exp.AggFunc):
            continue
        hidden += 1
        name = f"{_HIDDEN}{hidden}"
        tree.append("expressions", exp.alias_(key.copy(), name))
        ordered.set("this", exp.column(name))
    return hidden


def to_spark(statement: str, schema: Schema | None = None) -> SparkQuery:
    """The Spark SQL that computes what the guarded DuckDB `statement` computes.

    `schema` gives column types by table, so that date arithmetic on date columns can be
    recognised. Raises SqlRefused when the statement uses something Spark cannot compute the
    same way.
    """
    try:
        tree = sqlglot.parse_one(statement, read=DIALECT)
    except ParseError as exc:
        raise SqlFailed(f"Could not read the SQL for Spark: {exc}") from exc
    for node in tree.find_all(exp.Func):
        if in_table_position(node):
            raise _refuse(f"the table function {node.sql_name().lower()}() is not supported")
    date_columns = frozenset(
        column.lower()
        for columns in (schema or {}).values()
        for column, kind in columns.items()
        if kind.lower().startswith("date") and not kind.lower().startswith("datetime")
    )
    for node in tree.find_all(exp.Func):  # what the user wrote, before any rewrite
        _check_function(node)
    tree = tree.transform(lambda node: _rewrite(node, date_columns), copy=False)
    hidden = _order_by_helpers(tree)
    return SparkQuery(tree.sql(dialect=SPARK_DIALECT), hidden)
