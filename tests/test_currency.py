"""Money is labelled with the data set's own currency: a KCS import reports in KRW, so risk
reasons, briefings, CLI output and answers must say KRW, never USD.

The KCS-format file is written here (synthetic lines in the published column layout), so the
test needs no shared data: 40 lines of one subheading from six importers around 1,000 KRW/kg,
and one line of importer IMPLOW1 at 40 KRW/kg that the unit-value indicator must flag.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.offline import OfflineEngine
from tools.briefing import trader_briefing
from tools.indicators import analysis_runner
from tools.runner import reporting_currency
from tools.trader_risk import trader_score
from tradedata import kcs
from tradedata.importers import import_files

LOW = "IMPLOW1"


def _kcs_file(path: Path) -> Path:
    rng = random.Random(11)
    header = [c[0] for c in kcs.FEATURE_COLUMNS] + [c[0] for c in kcs.LABEL_COLUMNS]
    rows = []
    importers = [f"IMP{n:04d}" for n in range(6)]
    for n in range(40):
        mass = rng.uniform(800, 1200)
        rows.append(_line(f"9{n:07d}", f"2020-0{1 + n % 9}-1{n % 9}", importers[n % 6],
                          mass, mass * rng.uniform(900, 1100)))
    rows.append(_line("99999999", "2020-06-15", LOW, 1000.0, 40_000.0))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _line(decl: str, day: str, importer: str, mass: float, price: float) -> dict[str, str]:
    return {
        "Declaration ID": decl, "Date": day, "Office ID": "30", "Process Type": "B",
        "Import Type": "11", "Import Use": "21", "Payment Type": "11", "Mode of Transport": "10",
        "Declarant ID": "DCL0001", "Importer ID": importer, "Seller ID": "SEL0001",
        "Courier ID": "", "HS6 Code": "440890", "Country of Departure": "CN",
        "Country of Origin": "CN", "Tax Rate": "8.0", "Tax Type": "A",
        "Country of Origin Indicator": "G", "Net Mass": f"{mass:.1f}",
        "Item Price": f"{price:.1f}", "Fraud": "0", "Critical Fraud": "0",
    }


@pytest.fixture(scope="module")
def kcs_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kcs")
    db = folder / "kcs.duckdb"
    import_files("kcs", [_kcs_file(folder / "kcs.csv")], db)
    return db


def test_the_import_reports_in_krw(kcs_db: Path) -> None:
    assert reporting_currency(analysis_runner(kcs_db)) == "KRW"


def test_risk_reasons_are_in_krw(kcs_db: Path) -> None:
    score = trader_score(analysis_runner(kcs_db), LOW)
    assert score.flags, "the 40 KRW/kg line should be flagged as far below its peers"
    text = " ".join(score.reasons + [f.reason for f in score.flags])
    assert "KRW" in text and "USD" not in text
    assert "KRW/kg" in text


def test_briefing_is_in_krw(kcs_db: Path) -> None:
    markdown = trader_briefing(analysis_runner(kcs_db), LOW).markdown()
    assert "customs value KRW" in markdown
    assert "USD" not in markdown


def test_cli_risk_score_is_in_krw(kcs_db: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "risk", "score", LOW, "--db", str(kcs_db)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "duty at stake KRW" in first and "expected revenue KRW" in first
    assert "USD" not in result.stdout


def test_offline_answers_are_in_krw(kcs_db: Path) -> None:
    answer = OfflineEngine.open(kcs_db).answer("What was the total import value in 2020?")
    assert answer.engine == "offline" and answer.table is not None
    assert "KRW" in answer.text and "USD" not in answer.text
