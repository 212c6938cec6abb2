"""The web app in a real browser: Debian's Chromium driven by Playwright, app on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, ask, start_app, stop_app

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture(scope="module")
def app_url(
    demo_db: Path, guidance_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`tamga serve` on a free port of 127.0.0.1, stopped after the module."""
    process, url = start_app(demo_db, guidance_index, tmp_path_factory.mktemp("browser-home"))
    try:
        yield url
    finally:
        stop_app(process)


def test_officer_session_in_chromium(app_url: str) -> None:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        started = time.monotonic()
        page.goto(app_url)
        page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
        page.get_by_text("Audit officer").wait_for(timeout=60_000)
        timings["first_page_load_s"] = time.monotonic() - started
        page.screenshot(path=str(SHOTS / "01-empty-chat.png"), full_page=True)

        timings["data_question_s"] = ask(page, "Top 5 importers in 2024 by customs value")
        last = page.locator('[data-testid="stChatMessage"]').last
        # Tables and charts load their components lazily: wait for them to be drawn.
        last.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
        chart = last.locator('[data-testid="stVegaLiteChart"]').first
        chart.locator("canvas, svg").first.wait_for(timeout=60_000)  # Vega drew the spec
        last.get_by_text("How I got this").click()
        code = last.locator('[data-testid="stCode"]').first
        code.wait_for(timeout=30_000)
        assert "SELECT" in code.inner_text().upper()
        page.screenshot(path=str(SHOTS / "02-data-answer.png"), full_page=True)

        timings["rule_question_s"] = ask(
            page, "How long must an importer keep records of its imports?"
        )
        last = page.locator('[data-testid="stChatMessage"]').last
        cards = last.locator('[data-testid="stExpander"]').filter(has_text=".md")
        assert cards.count() >= 1
        cards.first.click()
        page.screenshot(path=str(SHOTS / "03-rule-answer.png"), full_page=True)

        timings["follow_up_s"] = ask(page, "Top 5 importers in 2024")
        timings["follow_up_s"] = ask(page, "and in 2023?")
        last = page.locator('[data-testid="stChatMessage"]').last
        last.get_by_text("How I got this").click()
        code = last.locator('[data-testid="stCode"]').first
        code.wait_for(timeout=30_000)
        assert "2023" in code.inner_text()
        page.screenshot(path=str(SHOTS / "04-follow-up.png"), full_page=True)

        assert page.locator('[data-testid="stException"]').count() == 0
        assert errors == []
        browser.close()
    (SHOTS / "timings.json").write_text(json.dumps(timings, indent=2))
    assert timings["first_page_load_s"] < 60


def test_stopping_tamga_serve_stops_the_server(demo_db: Path, guidance_index: Path,
                                               tmp_path: Path) -> None:
    """`tamga serve` becomes the Streamlit server: terminating it leaves nothing listening."""
    import urllib.error
    import urllib.request

    process, url = start_app(demo_db, guidance_index, tmp_path / "home")
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as response:
        assert response.status == 200
    stop_app(process)
    assert process.returncode is not None
    time.sleep(1)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=5)


def test_first_data_answer_soon_after_the_server_starts(
    demo_db: Path, guidance_index: Path, tmp_path: Path
) -> None:
    """From `tamga serve` to the first data answer drawn in the browser: the warm-up runs from
    the server's start (ONNX encoder, intent vectors computed at install), so the officer's
    first question does not wait for the regulations index or for torch. The bound is generous
    (shared CI machines); benchmarks/bench_webapp.py --first-only measures it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        started = time.monotonic()
        process, url = start_app(demo_db, guidance_index, tmp_path)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            asked = time.monotonic()
            answer_s = ask(page, "Top 5 importers in 2024")
            first_answer_s = asked - started + answer_s
            last = page.locator('[data-testid="stChatMessage"]').last
            assert "Top importers" in last.inner_text()
        finally:
            browser.close()
            stop_app(process)
    print(f"[browser] server start to first data answer: {first_answer_s:.1f} s")
    assert first_answer_s < 30, first_answer_s
