"""The document check in the web app: a real upload in Chromium, and findings in the briefing."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tamga.settings import get_settings
from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, IDLE_JS, start_app, stop_app

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "artifacts" / "screenshots"
APP = str(REPO / "app.py")


def _planted(folder: Path, kind: str, fmt: str = "pdf") -> dict[str, str]:
    with (folder / "truth.csv").open(encoding="utf-8", newline="") as fh:
        return next(r for r in csv.DictReader(fh) if r["planted"] == kind and r["format"] == fmt)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_upload_an_invoice_and_see_the_discrepancies_with_their_rules(
        demo_db: Path, guidance_index: Path, demo_documents: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    row = _planted(demo_documents, "value")
    home = tmp_path / "home"
    process, url = start_app(demo_db, guidance_index, home)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            opener = page.get_by_text("Check a document against its declaration")
            opener.wait_for(timeout=60_000)
            opener.click()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                str(demo_documents / row["document"]))
            page.get_by_text(row["document"]).first.wait_for(timeout=30_000)
            button = page.get_by_role("button", name="Check the document")
            page.wait_for_function(
                "() => [...document.querySelectorAll('button')].some(b => "
                "b.innerText.includes('Check the document') && !b.disabled)", timeout=30_000)
            page.wait_for_function(IDLE_JS, timeout=60_000)  # the upload's rerun has ended
            button.click()
            table = page.locator('[data-testid="stTable"]').first
            table.wait_for(timeout=90_000)
            text = table.inner_text()
            assert "invoice_value" in text and "customs_value" in text
            assert "WTO Customs Valuation Agreement, Article 1" in text
            assert "transaction-value-conditions.md" in text
            summary = page.locator('[data-testid="stAlert"]').first.inner_text()
            assert row["declaration_id"] in summary
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "05-document-check.png"), full_page=True)

            # A hostile document: markup in its fields is shown as text, never loaded.
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            hostile = _hostile_copy(demo_documents, tmp_path)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                str(hostile))
            page.get_by_text(hostile.name).first.wait_for(timeout=30_000)
            page.wait_for_function(IDLE_JS, timeout=60_000)
            page.get_by_role("button", name="Check the document").click()
            page.get_by_text(f"{hostile.name} (commercial invoice)").wait_for(timeout=90_000)
            page.get_by_text("Fields read from").first.click()
            page.get_by_text("![leak](http://127.0.0.1:9/leak.png)").first.wait_for(
                timeout=30_000)
            assert not [u for u in requests if "leak" in u]
            assert page.locator('[data-testid="stException"]').count() == 0
            assert errors == []
            browser.close()
    finally:
        stop_app(process)
    records = (home / "logs" / "audit.jsonl").read_text(encoding="utf-8")
    assert '"engine": "verify"' in records and row["declaration_id"] in records
    assert list((home / "findings").rglob("*.json"))


def _hostile_copy(folder: Path, tmp_path: Path) -> Path:
    """A demo XLSX invoice whose seller is a Markdown image pointing at a local address."""
    from openpyxl import load_workbook

    row = _planted(folder, "value", "xlsx")
    book = load_workbook(folder / row["document"])
    book.active["B5"] = "![leak](http://127.0.0.1:9/leak.png) [click](javascript:alert(1))"
    target = tmp_path / "hostile-invoice.xlsx"
    book.save(target)
    return target


@pytest.fixture()
def app_env(demo_db: Path, guidance_index: Path, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app on the demo database, with a fresh TAMGA_HOME (findings and logs)."""
    monkeypatch.setenv("TAMGA_DB_PATH", str(demo_db))
    monkeypatch.setenv("TAMGA_INDEX_DIR", str(guidance_index))
    monkeypatch.setenv("TAMGA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TAMGA_LOG_DIR", str(tmp_path / "home" / "logs"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_profile_briefing_with_the_document_findings(app_env: Path, demo_db: Path,
                                                     demo_documents: Path) -> None:
    from assistant.context import DataContext
    from assistant.verification import check_document
    from tools.verify import FindingsStore

    row = _planted(demo_documents, "origin")
    check_document((demo_documents / row["document"]).read_bytes(), row["document"],
                   DataContext.open(demo_db), user="web",
                   store=FindingsStore(app_env / "findings"))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.sidebar.radio(key="page").set_value("Trader profile").run()
    at.text_input(key="profile_query").set_value(row["trader_id"]).run()
    key = f"risk-{row['trader_id']}"
    at.checkbox(key=f"findings-{key}").check().run()
    at.button(key=f"btn-{key}").click().run()
    assert not at.exception, at.exception
    _score, markdown, pdf = at.session_state[key]
    assert "## Document verification findings" in markdown
    assert row["declaration_id"] in markdown and "origin" in markdown
    assert pdf.startswith(b"%PDF")
    uploads = [w for w in at.get("file_uploader")]
    assert uploads, "the profile page offers the document check"
