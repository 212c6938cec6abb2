"""The web app in a real browser: Debian's Chromium driven by Playwright, app on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("the app did not become healthy")


@pytest.fixture(scope="module")
def app_url(
    demo_db: Path, guidance_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`tamga serve` on a free port of 127.0.0.1, stopped after the module."""
    port = _free_port()
    home = tmp_path_factory.mktemp("browser-home")
    env = dict(os.environ, TAMGA_HOME=str(home), TAMGA_LOG_DIR=str(home / "logs"))
    tamga = shutil.which("tamga", path=str(Path(sys.executable).parent)) or "tamga"
    process = subprocess.Popen(
        [tamga, "serve", "--port", str(port), "--db", str(demo_db), "--index", str(guidance_index)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _ask(page, question: str) -> float:  # type: ignore[no-untyped-def]
    """Type a question, press Enter, wait for the answer; returns seconds until it rendered.

    An answer is complete when its "How I got this" expander is on the page (every answer has
    one) and Streamlit no longer shows its running indicator."""
    answered = page.get_by_text("How I got this").count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    started = time.monotonic()
    box.press("Enter")
    page.wait_for_function(
        "n => [...document.querySelectorAll('[data-testid=\"stExpander\"] summary')]"
        ".filter(e => e.innerText.includes('How I got this')).length > n",
        arg=answered,
        timeout=90_000,
    )
    elapsed = time.monotonic() - started
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000
    )
    return elapsed


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

        timings["data_question_s"] = _ask(page, "Top 5 importers in 2024 by customs value")
        last = page.locator('[data-testid="stChatMessage"]').last
        # Tables and charts load their components lazily: wait for them to be drawn.
        last.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
        last.get_by_text("How I got this").click()
        code = last.locator('[data-testid="stCode"]').first
        code.wait_for(timeout=30_000)
        assert "SELECT" in code.inner_text().upper()
        page.screenshot(path=str(SHOTS / "02-data-answer.png"), full_page=True)

        timings["rule_question_s"] = _ask(
            page, "How long must an importer keep records of its imports?"
        )
        last = page.locator('[data-testid="stChatMessage"]').last
        cards = last.locator('[data-testid="stExpander"]').filter(has_text=".md")
        assert cards.count() >= 1
        cards.first.click()
        page.screenshot(path=str(SHOTS / "03-rule-answer.png"), full_page=True)

        timings["follow_up_s"] = _ask(page, "Top 5 importers in 2024")
        timings["follow_up_s"] = _ask(page, "and in 2023?")
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
