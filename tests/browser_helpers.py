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


def start_app(db: Path, index: Path, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`tamga serve` on a free port of 127.0.0.1; returns the process and its URL once healthy."""
    port = free_port()
    env = dict(os.environ, TAMGA_HOME=str(home), TAMGA_LOG_DIR=str(home / "logs"))
    tamga = shutil.which("tamga", path=str(Path(sys.executable).parent)) or "tamga"
    process = subprocess.Popen(
        [tamga, "serve", "--port", str(port), "--db", str(db), "--index", str(index)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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


def ask(page, question: str) -> float:
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
