"""`web.serve`: the warm-up waits for the server to listen, so it does not slow its start."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import web.resources
from web.serve import _option, warm_up_when_listening


def test_option_reads_both_spellings() -> None:
    argv = ["app.py", "--server.port", "8600", "--server.address=0.0.0.0"]
    assert _option(argv, "--server.port", "8501") == "8600"
    assert _option(argv, "--server.address", "127.0.0.1") == "0.0.0.0"
    assert _option(argv, "--server.headless", "false") == "false"


def test_warm_up_starts_only_once_the_port_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    started = threading.Event()
    monkeypatch.setattr(web.resources, "warm_up_in_background", started.set)
    with socket.socket() as probe:  # a free port, closed again: nothing listens on it yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    trigger = warm_up_when_listening("127.0.0.1", port, timeout=20)
    time.sleep(0.5)
    assert not started.is_set(), "the warm-up began before the server listened"

    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert started.wait(5), "the warm-up did not begin once the server listened"
    trigger.join(5)
    assert not trigger.is_alive()
