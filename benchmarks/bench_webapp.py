"""Web app timings in a real browser: first page load after start, and Enter-to-rendered-answer
for offline questions (warm server), with the server's own script-run time beside each figure.

    .venv/bin/python benchmarks/bench_webapp.py [--db PATH] [--index DIR] [--rounds 2]

Defaults to the demo data under $TAMGA_HOME (build it with `tamga demo`). The server records
each Streamlit script run (TAMGA_WEB_TIMINGS, see web/timing.py), so the figures split
into the app's part (script runs, of which the engine answering) and the rest (browser drawing,
websocket, queueing). The load average is printed because the figures depend on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamga.settings import get_settings
from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, ask, start_app, stop_app
from web.timing import ENV, read_runs

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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the number of CPUs, in words."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def server_part(runs: list[dict[str, Any]], start: float, end: float) -> tuple[float, float]:
    """Seconds of script runs (and of the engine within them) that started in [start, end]."""
    inside = [r for r in runs if start <= float(r["start"]) <= end]
    script = sum(float(r["total_ms"]) for r in inside) / 1000
    engine = sum(float(r.get("engine_ms", 0.0)) for r in inside) / 1000
    return script, engine


def browser_busy(cdp: Any) -> float:
    """Seconds the page's main thread has been busy so far (Chromium's TaskDuration)."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def stats(values: list[float]) -> str:
    """p50/p95/max of `values` in seconds."""
    return (
        f"p50 {statistics.median(values):.2f} s, p95 {percentile(values, 0.95):.2f} s, "
        f"max {max(values):.2f} s"
    )


def main() -> None:
    """Run the measurement and print the figures."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=settings.database)
    parser.add_argument("--index", type=Path, default=settings.index)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="one line per question")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="run N busy processes (one CPU each) during the measurement")
    parser.add_argument("--first-only", action="store_true",
                        help="stop after the first answer (server start to first answer)")
    args = parser.parse_args()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.load)]
    if burners:
        time.sleep(3)  # let the load settle
    home = Path(tempfile.mkdtemp(prefix="tamga-bench-web-"))
    runs_file = home / "script-runs.jsonl"
    # as `make run` does before it serves: the demo's look-ups are prepared on disk
    tamga = str(Path(sys.executable).with_name("tamga"))
    subprocess.run([tamga, "demo", "--if-missing", "--db", str(args.db), "--index",
                    str(args.index)], env=dict(os.environ, TAMGA_HOME=str(home)), check=True,
                   capture_output=True)
    load_before = load_average()
    pw_manager = sync_playwright()
    pw = pw_manager.__enter__()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    started = time.monotonic()  # the officer's browser is open: from here on it is the app
    process, url = start_app(
        args.db, args.index, home, extra_env={ENV: str(runs_file)}, log=home / "server.log"
    )
    server_ready = time.monotonic() - started
    windows: list[tuple[float, float, float]] = []  # (enter, rendered, seconds)
    asked: list[str] = []
    failed: list[str] = []  # questions with no answer drawn within ask()'s time limit
    browser_cpu: list[float] = []  # seconds the page's main thread was busy per question
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        load_started, load_wall = time.monotonic(), time.time()
        page.goto(url)
        page.get_by_test_id("stChatInputTextArea").wait_for(timeout=120_000)
        page.get_by_text("Audit officer").wait_for(timeout=120_000)
        first_load = time.monotonic() - load_started
        navigation = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
        )
        load_end = time.time()
        first_wall = time.time()
        asked_at = time.monotonic()
        warm = ask(page, "Top 5 importers in 2024")  # lets the warm-up finish
        first_end = time.time()
        start_to_answer = asked_at - started + warm  # until the answer is drawn
        rounds = 0 if args.first_only else args.rounds
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        for _ in range(rounds):
            for question in QUESTIONS:
                busy = browser_busy(cdp)
                enter = time.time()
                try:
                    elapsed = ask(page, question)
                except PlaywrightTimeout:
                    failed.append(question)
                    continue
                windows.append((enter, enter + elapsed + 0.05, elapsed))
                asked.append(question)
                browser_cpu.append(browser_busy(cdp) - busy)
    finally:
        browser.close()
        pw_manager.__exit__(None, None, None)
        stop_app(process)
        for burner in burners:
            burner.kill()
    runs = read_runs(runs_file)
    load_script, _ = server_part(runs, load_wall, load_end)
    first_run_at = min((float(r["start"]) for r in runs), default=load_wall) - load_wall
    warm_script, warm_engine = server_part(runs, first_wall, first_end)
    timings = [w[2] for w in windows]
    scripts = [server_part(runs, w[0], w[1])[0] for w in windows]
    engines = [server_part(runs, w[0], w[1])[1] for w in windows]
    print(f"demo: {args.db} ({args.db.stat().st_size / 1e6:,.0f} MB); {load_before} at start")
    print(f"server start to healthy: {server_ready:.1f} s")
    print(
        f"first page load (navigation to chat input and examples): {first_load:.2f} s "
        f"(script runs {load_script:.2f} s, starting {first_run_at:.2f} s after navigation; "
        f"the browser had Streamlit's page loaded after {navigation[1] / 1000:.2f} s)"
    )
    print(
        f"first question (includes model warm-up): {warm:.2f} s "
        f"(script runs {warm_script:.2f} s, engine {warm_engine:.2f} s)"
    )
    print(f"server start to first data answer in the browser: {start_to_answer:.2f} s "
          f"({args.load} busy processes)")
    print(f"SUMMARY-FIRST start->first answer {start_to_answer:.2f} s | load {args.load} busy "
          f"| {load_average()}")
    if not timings:
        return
    print(f"offline questions, Enter to rendered answer (n={len(timings)}): {stats(timings)}")
    print(f"  of which server script runs: {stats(scripts)}")
    print(f"  of which the engine answering: {stats(engines)}")
    rest = [t - s for t, s in zip(timings, scripts, strict=True)]
    print(f"  the rest (browser, websocket): {stats(rest)}")
    before, after = [], []
    for enter, rendered, _ in windows:
        inside = [r for r in runs if enter <= float(r["start"]) <= rendered]
        if inside:
            before.append(float(inside[0]["start"]) - enter)
            after.append(rendered - 0.05 - float(inside[-1]["end"]))
    print(f"  browser main thread busy per question: {stats(browser_cpu)}")
    if before:
        print(f"    Enter to script start: {stats(before)}")
        print(f"    script end to answer drawn: {stats(after)}")
    if args.verbose:
        for question, (enter, rendered, elapsed), cpu in zip(
            asked, windows, browser_cpu, strict=True
        ):
            inside = [r for r in runs if enter <= float(r["start"]) <= rendered]
            parts = " ".join(
                f"{k[:-3]}={float(v):.0f}"
                for r in inside
                for k, v in r.items()
                if k.endswith("_ms") and float(v) >= 1
            )
            start_gap = float(inside[0]["start"]) - enter if inside else float("nan")
            end_gap = rendered - 0.05 - float(inside[-1]["end"]) if inside else float("nan")
            gaps = f"start+{start_gap:.2f} end+{end_gap:.2f}"
            print(f"  {elapsed:5.2f} s  {gaps} busy {cpu:.2f}  {question!r}  {parts}")
    counts = [sum(1 for r in runs if w[0] <= float(r["start"]) <= w[1]) for w in windows]
    print(f"  script runs per question: {statistics.mean(counts):.1f}")
    if failed:
        print(f"NO ANSWER within 90 s for {len(failed)} questions: {failed}")
    print(f"{load_average()} at the end; server log and script runs in {home}")
    print(
        f"SUMMARY first-load {first_load:.2f} s | Enter->answer p50 "
        f"{statistics.median(timings):.2f} s p95 {percentile(timings, 0.95):.2f} s "
        f"(server p50 {statistics.median(scripts):.2f} s) | {len(failed)} unanswered | "
        f"{load_average()}"
    )


if __name__ == "__main__":
    main()
