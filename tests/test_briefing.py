"""Briefings (Markdown and PDF) and the risk/brief commands, on the 20,000-item demo database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from retrieval.search import RegulationsIndex
from tamga.errors import UnknownTrader
from tools.briefing import period_briefing, trader_briefing
from tools.dashboard import key_figures
from tools.indicators import analysis_runner
from tools.sql import SqlRunner
from tools.trader_risk import parse_period, score_traders

SECTIONS = ["## Identity", "## Trade summary and trends", "## Top goods",
            "## Origins and suppliers", "## Risk flags", "## Past audits", "## Rules that matter",
            "## Suggested audit focus", "## Appendix: SQL behind the figures"]


@pytest.fixture(scope="module")
def runner(demo_db: Path) -> SqlRunner:
    return analysis_runner(demo_db)


@pytest.fixture(scope="module")
def flagged_trader(runner: SqlRunner) -> str:
    return score_traders(runner)[0].trader_id


def test_trader_briefing_markdown(runner: SqlRunner, flagged_trader: str, tmp_path: Path) -> None:
    period = parse_period("2025")
    regulations = RegulationsIndex(tmp_path / "no-index")  # none there: passed as no retriever
    b = trader_briefing(runner, flagged_trader, period,
                        regulations if regulations.exists() else None)
    md = b.markdown()
    for s in SECTIONS:
        assert s in md
    name, decls, value = runner.run(
        "SELECT t.name, count(DISTINCT d.declaration_id), sum(i.customs_value) "
        "FROM traders t JOIN declarations d ON d.trader_id = t.trader_id "
        "JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        "WHERE t.trader_id = $t AND d.flow = 'import' AND d.declaration_date >= '2025-01-01' "
        "AND d.declaration_date < '2026-01-01' GROUP BY t.name", {"t": flagged_trader}).rows[0]
    assert name in md
    assert f"{decls:,} import declarations" in md
    assert f"customs value USD {value:,.0f}" in md
    top_hs = runner.run(
        "SELECT left(i.hs_code, 6) FROM declarations d JOIN declaration_items i "
        "ON i.declaration_id = d.declaration_id WHERE d.trader_id = $t AND d.flow = 'import' "
        "AND d.declaration_date >= '2025-01-01' AND d.declaration_date < '2026-01-01' "
        "GROUP BY 1 ORDER BY sum(i.customs_value) DESC LIMIT 1", {"t": flagged_trader}).rows[0][0]
    assert f"| {top_hs} |" in md
    assert "regulations index was not found" in md
    assert "Risk score" in md and "duty at stake" in md
    assert md.count("```sql") == len(b.sql) >= 8


def test_trader_briefing_pdf(runner: SqlRunner, flagged_trader: str) -> None:
    from pypdf import PdfReader

    b = trader_briefing(runner, flagged_trader, None, None)
    data = b.pdf()
    assert data.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    name = runner.run("SELECT name FROM traders WHERE trader_id = $t",
                      {"t": flagged_trader}).rows[0][0]
    assert name.split()[0] in text and flagged_trader in text
    assert "Suggested audit focus" in text and "Appendix" in text
    with pytest.raises(UnknownTrader):
        trader_briefing(runner, "T999999")


def test_period_briefing(runner: SqlRunner) -> None:
    period = parse_period("2025-10")
    assert period is not None
    b = period_briefing(runner, period, n_risks=5)
    md = b.markdown()
    figures, _ = key_figures(runner, period)
    assert f"| import declarations | {figures.declarations:,} |" in md
    assert f"{figures.customs_value:,.0f}" in md
    for s in ("## Key figures", "## Monthly trend", "## Top movers: traders",
              "## Top risks: who to audit next"):
        assert s in md
    assert b.pdf().startswith(b"%PDF")


def test_cli_commands(demo_db: Path, flagged_trader: str, tmp_path: Path) -> None:
    cli = CliRunner()
    res = cli.invoke(app, ["risk", "score", flagged_trader, "--db", str(demo_db), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["trader_id"] == flagged_trader and data["reasons"]
    res = cli.invoke(app, ["risk", "top", "--period", "2025", "--n", "3", "--db", str(demo_db),
                           "--json"])
    assert res.exit_code == 0, res.output
    top = json.loads(res.stdout)["candidates"]
    assert 1 <= len(top) <= 3 and top[0]["rank"] == 1
    res = cli.invoke(app, ["risk", "score", "T999999", "--db", str(demo_db)])
    assert res.exit_code == 1 and "No trader" in res.output
    res = cli.invoke(app, ["brief", "T999999", "--db", str(demo_db)])
    assert res.exit_code == 1
    out = tmp_path / "b.pdf"
    res = cli.invoke(app, ["brief", flagged_trader, "--period", "2025", "--format", "pdf",
                           "--output", str(out), "--db", str(demo_db),
                           "--index", str(tmp_path / "none")])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"%PDF")
    res = cli.invoke(app, ["brief", "--period", "2025-10", "--db", str(demo_db)])
    assert res.exit_code == 0 and "# Period briefing: 2025-10" in res.stdout
    res = cli.invoke(app, ["brief", "--period", "someday", "--db", str(demo_db)])
    assert res.exit_code == 1
