"""What leaves the machine: results cut down to the data policy before a remote model sees them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamga.settings import Settings
from tools.egress import (
    EgressLog,
    Masker,
    effective_policy,
    is_aggregate_query,
    is_remote,
    redact_data,
    redact_for_llm,
)
from tools.sql import SqlRunner

BY_TRADER = (
    "SELECT t.name, t.tin, count(*) AS declarations FROM declarations d "
    "JOIN traders t USING (trader_id) GROUP BY ALL ORDER BY 3 DESC LIMIT 5"
)
ROWS = (
    "SELECT d.declaration_id, t.name, t.tin FROM declarations d "
    "JOIN traders t USING (trader_id) LIMIT 5"
)


@pytest.fixture(scope="module")
def runner(demo_db: Path) -> Iterator[SqlRunner]:
    with SqlRunner(demo_db) as r:
        yield r


@pytest.fixture(scope="module")
def names(runner: SqlRunner) -> set[str]:
    rows = runner.run("SELECT name, tin FROM traders").rows
    return {v for row in rows for v in row if v}


def _text(payload: dict[str, object]) -> str:
    return json.dumps(payload, ensure_ascii=False).lower()


def test_default_policy_is_aggregates_for_remote_endpoints() -> None:
    settings = Settings()
    assert settings.llm_data_policy == "aggregates"
    assert effective_policy("https://api.openai.com/v1", settings.llm_data_policy) == "aggregates"
    assert effective_policy("http://127.0.0.1:8080/v1", "schema") == "rows"
    assert effective_policy("http://localhost:11434/v1", "schema") == "rows"
    assert not is_remote(None) and is_remote("http://10.0.0.5:8000/v1")
    with pytest.raises(ValueError):
        effective_policy("https://x.example/v1", "everything")


def test_aggregate_detection() -> None:
    assert is_aggregate_query(BY_TRADER)
    assert is_aggregate_query("SELECT count(*) FROM declarations")
    assert is_aggregate_query("WITH s AS (SELECT trader_id, sum(1) AS n FROM declarations "
                              "GROUP BY 1) SELECT * FROM s ORDER BY n DESC")
    assert not is_aggregate_query(ROWS)
    assert not is_aggregate_query("SELECT name, count(*) OVER () FROM traders")
    assert not is_aggregate_query("SELECT name, (SELECT count(*) FROM audits) FROM traders")
    assert not is_aggregate_query("SELECT count(*) FROM traders UNION ALL SELECT 1 FROM traders")


def test_aggregates_policy_masks_trader_names_and_tins(runner: SqlRunner, names: set[str]) -> None:
    result = runner.run(BY_TRADER)
    sent_names = {row[0] for row in result.rows}
    masker = Masker(names)
    log = EgressLog()
    payload = redact_for_llm(result, "aggregates", masker=masker, log=log)
    text = _text(payload)
    assert not any(name.lower() in text for name in sent_names)
    assert payload["masked_columns"] == ["name", "tin"]
    assert [row[2] for row in payload["rows"]] == [row[2] for row in result.rows]
    first = payload["rows"][0][0]
    assert first.startswith("TRADER-") and masker.unmask(f"{first} leads") == (
        f"{result.rows[0][0]} leads")
    assert log.records[0].rows_sent == len(result.rows) and log.records[0].payload is payload


def test_value_based_masking_catches_renamed_columns(runner: SqlRunner, names: set[str]) -> None:
    result = runner.run("SELECT t.name AS who, count(*) AS n FROM declarations d "
                        "JOIN traders t USING (trader_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 3")
    payload = redact_for_llm(result, "aggregates", masker=Masker(names))
    assert payload["masked_columns"] == ["who"]
    assert not any(row[0].lower() in _text(payload) for row in result.rows)


def test_rows_are_withheld_unless_the_policy_allows_them(runner: SqlRunner) -> None:
    result = runner.run(ROWS)
    log = EgressLog()
    aggregated = redact_for_llm(result, "aggregates", log=log)
    assert "rows" not in aggregated and "aggregated results" in aggregated["withheld"]
    schema = redact_for_llm(runner.run(BY_TRADER), "schema", log=log)
    assert "rows" not in schema
    assert schema["columns"] == [{"name": "name", "type": "text"},
                                 {"name": "tin", "type": "text"},
                                 {"name": "declarations", "type": "number"}]
    everything = redact_for_llm(result, "rows", log=log)
    assert everything["rows"] == result.rows
    assert [r.rows_sent for r in log.records] == [0, 0, len(result.rows)]
    assert log.summary() == f"3 results sent to the remote model: {len(result.rows)} rows sent, " \
        f"{len(result.rows) + 5} withheld."


def test_masker_masks_known_values_in_text_and_aliases_stay_stable() -> None:
    masker = Masker(["Puma Moda S.A.", "123456789", "T000039"])
    text = masker.mask_text("Puma Moda S.A. (TIN 123456789, T000039) vs puma moda s.a.")
    assert "Puma" not in text and "123456789" not in text and "T000039" not in text
    assert text.count("TRADER-001") == 2  # the same company, whatever the case
    masker.alias("Puma", "Puma Moda S.A.")
    assert masker.mask_text("What did Puma import?") == "What did TRADER-001 import?"
    assert masker.unmask("TRADER-001 imported most.") == "Puma Moda S.A. imported most."
    assert masker.mask_text("Pumas are cats") == "Pumas are cats"  # whole words only


def test_redact_data_masks_identities_and_withholds_details() -> None:
    profile = {"profile": {"trader_id": "T000039", "name": "Puma Moda S.A.", "tin": "123456789",
                           "figures": {"declarations": 120},
                           "audits": [{"audit_id": "A1", "penalty_amount": 5000.0}]}}
    log = EgressLog()
    masker = Masker(["Puma Moda S.A."])
    out = redact_data(profile, "aggregates", tool="trader_profile", masker=masker, log=log)
    text = json.dumps(out)
    assert "Puma" not in text and "T000039" not in text and "123456789" not in text
    assert out["profile"]["figures"] == {"declarations": 120}
    assert out["profile"]["audits"]["count"] == 1 and "A1" not in text
    schema = redact_data(profile, "schema", tool="trader_profile", log=log)
    assert schema["shape"]["profile"]["figures"] == {"declarations": "number"}
    assert "120" not in json.dumps(schema)
    public = redact_data({"error": "No trader Puma Moda S.A. here"}, "schema", tool="find_trader",
                         masker=masker, public=True, log=log)
    assert public == {"error": f"No trader {masker.pseudonym('Puma Moda S.A.')} here"}
    assert redact_data(profile, "rows", tool="trader_profile") is profile
    assert [(r.tool, r.rows_withheld) for r in log.records] == [
        ("trader_profile", 1), ("trader_profile", 1), ("find_trader", 0)]
