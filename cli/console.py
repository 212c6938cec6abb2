"""Terminal output of the CLI commands: progress lines on stderr, JSON on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any


def progress(message: str) -> None:
    """Print one progress line to stderr (so --json output on stdout stays clean)."""
    print(message, file=sys.stderr, flush=True)


def print_json(obj: Any) -> None:
    """Print `obj` as indented JSON on stdout; dates and decimals become strings."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
