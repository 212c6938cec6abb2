"""Web app timings in a real browser: first page load after start, and Enter-to-rendered-answer
for offline questions (warm server). Prints p50/p95.

    .venv/bin/python benchmarks/bench_webapp.py [--db PATH] [--index DIR] [--rounds 2]

Defaults to the demo data under $TAMGA_HOME (build it with `tamga demo`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.settings import get_settings
from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, ask, start_app, stop_app

QUESTIONS = [
    "Top 10 importers in 2024",
    "Monthly import value over the last 12 months",
    "Share of red channel declarations by customs office",
    "Top origins of imports in 2024",
    "Which HS chapters had the highest duty in 2024?",
    "How long must an importer keep records?",
    "When can we reject the declared price between related parties?",
    "Compare imports in 2024 with 2023",
]


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0..1) of `values`, by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def main() -> None:
    """Run the measurement and print the figures."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=settings.database)
    parser.add_argument("--index", type=Path, default=settings.index)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="tamga-bench-web-"))
    started = time.monotonic()
    process, url = start_app(args.db, args.index, home)
    server_ready = time.monotonic() - started
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            load_started = time.monotonic()
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=120_000)
            first_load = time.monotonic() - load_started
            warm = ask(page, "Top 5 importers in 2024")  # lets the warm-up finish
            timings = [ask(page, q) for _ in range(args.rounds) for q in QUESTIONS]
            browser.close()
    finally:
        stop_app(process)
    print(f"server start to healthy: {server_ready:.1f} s")
    print(f"first page load (navigation to chat input): {first_load:.2f} s")
    print(f"first question (includes model warm-up): {warm:.2f} s")
    print(
        f"offline questions, Enter to rendered answer (n={len(timings)}): "
        f"p50 {statistics.median(timings):.2f} s, p95 {percentile(timings, 0.95):.2f} s, "
        f"max {max(timings):.2f} s"
    )


if __name__ == "__main__":
    main()
