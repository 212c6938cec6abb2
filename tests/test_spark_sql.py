"""The DuckDB-to-Spark translation: known differences rewritten, the rest refused by name.

These run without Spark (the translation is pure SQL); tests/spark runs the results on a real
Spark Connect server and compares them with DuckDB (`make spark-test`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tamga.errors import SqlRefused, TamgaError
from tests.test_sql_guard import HOSTILE
from tools.spark_sql import to_spark
from tools.sql_guard import check_sql
from tradedata import db

SCHEMA = {
    "declarations": {"declaration_id": "string", "declaration_date": "date"},
    "audits": {"opened_on": "date", "closed_on": "date", "trader_id": "string"},
    "declaration_items": {"customs_value": "double", "declaration_date": "date"},
}


def spark(sql: str) -> str:
    """What the Spark backend would send for `sql` (after the guard, as in the runner)."""
    return to_spark(check_sql(sql), SCHEMA).sql


@pytest.mark.parametrize(("duckdb_sql", "spark_part"), [
    # exact percentiles: sqlglot alone makes WITHIN GROUP approximate
    ("SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY customs_value) FROM declaration_items",
     "PERCENTILE(customs_value, 0.9)"),
    ("SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY customs_value DESC) "
     "FROM declaration_items", "PERCENTILE(customs_value, 0.1)"),
    ("SELECT quantile_cont(customs_value, 0.25) FROM declaration_items",
     "PERCENTILE(customs_value, 0.25)"),
    ("SELECT median(customs_value) FROM declaration_items", "PERCENTILE(customs_value, 0.5)"),
    # DuckDB counts Sunday as 0, Spark as 1; ISO days are Monday = 1
    ("SELECT dayofweek(declaration_date) FROM declarations", "(DAYOFWEEK(declaration_date) - 1)"),
    ("SELECT date_part('dow', declaration_date) FROM declarations",
     "(DAYOFWEEK(declaration_date) - 1)"),
    ("SELECT isodow(declaration_date) FROM declarations",
     "((DAYOFWEEK(declaration_date) + 5) % 7 + 1)"),
    ("SELECT week(declaration_date) FROM declarations", "WEEKOFYEAR(declaration_date)"),
    # calendar boundaries crossed, as DuckDB counts them
    ("SELECT date_diff('month', opened_on, closed_on) FROM audits",
     "((YEAR(closed_on) * 12 + MONTH(closed_on)) - (YEAR(opened_on) * 12 + MONTH(opened_on)))"),
    ("SELECT date_diff('year', opened_on, closed_on) FROM audits",
     "(YEAR(closed_on) - YEAR(opened_on))"),
    ("SELECT date_diff('day', opened_on, closed_on) FROM audits", "DATEDIFF(closed_on, opened_on)"),
    ("SELECT closed_on - opened_on FROM audits", "DATEDIFF(closed_on, opened_on)"),
    # one-argument log is base 10 in DuckDB, natural in Spark
    ("SELECT log(customs_value) FROM declaration_items", "LOG10(customs_value)"),
    # scoping's main.<table> is a plain view name on Spark
    ("SELECT count(*) FROM main.declarations", "FROM declarations"),
    # DuckDB sorts NULLs last, Spark first: the translation says it
    ("SELECT declaration_id FROM declarations ORDER BY declaration_date",
     "ORDER BY declaration_date NULLS LAST"),
])
def test_known_differences_are_rewritten(duckdb_sql: str, spark_part: str) -> None:
    assert spark_part in spark(duckdb_sql)


@pytest.mark.parametrize(("sql", "words"), [
    ("SELECT quantile_disc(customs_value, 0.5) FROM declaration_items", "quantile_disc"),
    ("SELECT quantile(customs_value, 0.5) FROM declaration_items", "quantile_cont"),
    ("SELECT approx_count_distinct(declaration_id) FROM declarations", "approximate"),
    ("SELECT epoch(declaration_date) FROM declarations", "time zone"),
    ("SELECT age(declaration_date) FROM declarations", "age()"),
    ("SELECT string_agg(declaration_id, ',') FROM declarations", "string_agg"),
    ("SELECT list(declaration_id) FROM declarations", "lists"),
    ("SELECT [1, 2, 3][1:2]", "lists"),
    ("SELECT * FROM range(10)", "table function"),
    ("SELECT * FROM generate_series(1, 3)", "table function"),
    ("SELECT date_diff('hour', opened_on, closed_on) FROM audits", "date_diff('hour')"),
    ("SELECT quantile_cont(customs_value, [0.1, 0.9]) FROM declaration_items", "lists"),
])
def test_what_differs_is_refused_with_the_reason(sql: str, words: str) -> None:
    with pytest.raises(SqlRefused) as error:
        spark(sql)
    assert "Spark" in str(error.value) and words in str(error.value)


SPARK_ONLY = [
    "SELECT reflect('java.lang.System', 'getProperty', 'user.home')",
    "SELECT java_method('java.lang.System', 'getenv', 'HOME')",
    "SELECT input_file_name() FROM declarations",
    "SELECT current_user()",
    "SELECT assert_true(false)",
    "SELECT raise_error('boom')",
    "SELECT uuid()",
    "SELECT rand()",
    "SELECT from_json('{}', 'a INT')",
    "SELECT transform(array(1), x -> x + 1)",
    "SELECT explode(array(1, 2))",
    "SELECT spark_partition_id() FROM declarations",
    "SELECT version()",
    "SELECT session_user()",
    "SELECT url_decode('x')",
    "SELECT aes_decrypt(unhex('00'), '0000111122223333')",
]


@pytest.mark.parametrize("sql", SPARK_ONLY)
def test_spark_only_functions_never_reach_spark(sql: str) -> None:
    """Whatever the DuckDB guard lets through, Spark sees only allow-listed functions."""
    with pytest.raises(SqlRefused):
        to_spark(sql, SCHEMA)


def test_every_hostile_statement_is_stopped_before_spark() -> None:
    """The guard runs before the translation: none of the guard's hostile corpus, nor the
    Spark file readers, gives a statement to send."""
    attacks = [s for _, s in HOSTILE] + [
        "SELECT * FROM text.`/etc/passwd`",
        "SELECT * FROM parquet.`/tmp/other`",
        "SELECT * FROM csv.`/etc/hosts`",
        "INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT * FROM declarations",
        "ADD JAR /tmp/evil.jar",
        "CREATE TEMPORARY FUNCTION f AS 'x.Y'",
        "CACHE TABLE declarations",
        "SET spark.sql.ansi.enabled=false",
    ]
    sent = []
    for attack in attacks:
        try:
            to_spark(check_sql(attack), SCHEMA)
        except TamgaError:  # refused or unreadable: either way nothing is sent
            continue
        sent.append(attack)
    assert sent == []


def test_a_grouped_window_query_sorted_by_an_aggregate_gets_a_hidden_sort_column() -> None:
    query = to_spark(check_sql(
        "SELECT hs_chapter, round(100 * sum(customs_value) / sum(sum(customs_value)) OVER (), 1)"
        " FROM declaration_items GROUP BY 1 ORDER BY sum(customs_value) DESC LIMIT 5"), SCHEMA)
    assert query.hidden_columns == 1
    assert "AS __tamga_order_1" in query.sql and "ORDER BY __tamga_order_1 DESC" in query.sql


def test_the_products_own_queries_translate(demo_db: Path) -> None:
    """Every query of the assistant's verified answers can be translated (what runs on Spark
    is compared with DuckDB in tests/spark)."""
    from tools.sql import SqlRunner

    with SqlRunner(demo_db) as runner:
        assert runner.tables() == list(db.TABLES)
    statements = [
        "SELECT trader_id, sum(customs_value) AS v FROM declaration_items "
        "WHERE flow = 'import' GROUP BY ALL ORDER BY v DESC LIMIT 10",
        "SELECT strftime(declaration_date, '%Y-%m') AS month, count(*) FROM declarations "
        "GROUP BY 1 ORDER BY 1",
        "WITH t AS (SELECT trader_id, count(*) n FROM declarations GROUP BY 1) "
        "SELECT * FROM t QUALIFY row_number() OVER (ORDER BY n DESC) <= 3",
    ]
    for sql in statements:
        assert "SELECT" in to_spark(check_sql(sql), SCHEMA).sql
