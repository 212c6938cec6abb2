"""Driving the web app in Debian's Chromium: shared by tests/test_browser.py and
benchmarks/bench_webapp.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import BinaryIO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
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


def start_app(
    db: Path,
    index: Path,
    home: Path,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """`tamga serve` on a free port of 127.0.0.1; returns the process and its URL once healthy.

    `extra_env` adds environment variables (e.g. TAMGA_WEB_TIMINGS); `log` receives the
    server's output (discarded otherwise)."""
    port = free_port()
    env = dict(os.environ, TAMGA_HOME=str(home), TAMGA_LOG_DIR=str(home / "logs"))
    env.update(extra_env or {})
    tamga = shutil.which("tamga", path=str(Path(sys.executable).parent)) or "tamga"
    output: BinaryIO | int = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [tamga, "serve", "--port", str(port), "--db", str(db), "--index", str(index)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        )
    finally:
        if not isinstance(output, int):
            output.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
    except BaseException:
        stop_app(process)
        raise
    return process, url


def stop_app(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by start_app."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


# Answers drawn on the chat page: assistant messages that show their thumbs up/down, which is
# drawn after everything else of an answer (earlier answers may be in short form, without
# their "How I got this" expander).
ANSWERS_JS = (
    "() => [...document.querySelectorAll('[data-testid=\"stChatMessage\"]')].filter(m =>"
    " m.querySelector('[data-testid=\"stChatMessageAvatarAssistant\"]') &&"
    " m.querySelector('[data-testid=\"stFeedback\"]')).length"
)
IDLE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def ask(page, question: str) -> float:
    """Type a question, press Enter, wait for the answer; returns seconds until it rendered.

    An answer is complete when one more answer is drawn (see ANSWERS_JS: its text, table,
    "How I got this" and thumbs) and Streamlit no longer shows its running indicator; the
    seconds are counted until the answer is drawn."""
    answered = answer_count(page)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    started = time.monotonic()
    box.press("Enter")
    page.wait_for_function(f"n => ({ANSWERS_JS})() > n", arg=answered, timeout=90_000)
    elapsed = time.monotonic() - started
    page.wait_for_function(IDLE_JS, timeout=90_000)
    return elapsed


# True once a page shows more than n answers (see ANSWERS_JS).
MORE_ANSWERS_JS = f"n => ({ANSWERS_JS})() > n"


def answer_count(page) -> int:
    """How many answers the chat page shows."""
    return int(page.evaluate(ANSWERS_JS))


def wait_answer(page, answered: int, timeout_ms: int = 90_000) -> None:
    """Wait until the page shows more than `answered` answers and has stopped running (for
    tests that type into many pages first and wait afterwards)."""
    page.wait_for_function(MORE_ANSWERS_JS, arg=answered, timeout=timeout_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
