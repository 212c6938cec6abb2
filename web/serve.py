"""`tamga serve` runs this module: it runs Streamlit in this process and starts warming the
assistant as soon as the server accepts connections, so the warm-up overlaps the browser's
first page load without slowing the server's own start.

    python -m web.serve app.py --server.port 8501 ...   (the arguments of `streamlit run`)

The warm-up fills the same `st.cache_resource` the pages use (web/resources.py), because the
pages run in this process too. The first page starts it too, if it comes first.
"""

from __future__ import annotations

import socket
import sys
import threading
import time


def _option(argv: list[str], name: str, default: str) -> str:
    """The value of `--name value` or `--name=value` in `argv`, else `default`."""
    for position, arg in enumerate(argv):
        if arg == name and position + 1 < len(argv):
            return argv[position + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def warm_up_when_listening(host: str, port: int, timeout: float = 60.0) -> threading.Thread:
    """Start the assistant's warm-up once `host:port` accepts connections (or after `timeout`):
    warming while Streamlit boots would compete with it for the interpreter."""

    def wait_then_warm() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        from web.resources import warm_up_in_background

        warm_up_in_background()

    thread = threading.Thread(target=wait_then_warm, name="tamga-warm-up-trigger", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> None:
    """Hand over to `streamlit run` with `argv`; warm up once the server listens."""
    from streamlit.web import cli as streamlit_cli

    host = _option(argv, "--server.address", "127.0.0.1")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    warm_up_when_listening(host, int(_option(argv, "--server.port", "8501")))
    sys.argv = ["streamlit", "run", *argv]
    streamlit_cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
