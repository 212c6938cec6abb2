"""The look-ups of one data context kept on disk, so a new process does not rebuild them.

A `tamga ask` process otherwise spends a third of its time reading the traders, the date range,
the offices, the HS nomenclature and the coded values out of the database and indexing them.
They only change when the database does, so the first process (or `tamga demo`) writes them to
`<home>/cache/lookups-<key>.json` and the next ones read that file.

The file's key is made of what the look-ups depend on: the database file (resolved path, inode,
size, modification time) and the scope (an officer's file holds only the traders of their offices).
A changed database or another scope gives another file. Within the file, each part is stored
under its name and the version of the code that builds it (`code_version`), so new code
never reads what old code wrote. An unreadable file is ignored and rebuilt. JSON, not pickle:
reading the cache can never run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from tamga.scope import Scope

FORMAT = 1
_KEEP = 8  # files of other keys kept per folder (other scopes, older databases)


@lru_cache(maxsize=64)
def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def code_version(*functions: Callable[..., Any] | None) -> str:
    """A hash of the source files of the modules that define `functions`: a part built by
    other code is stored under another name, so changed code never reads a stale part."""
    files = sorted({str(getattr(sys.modules.get(f.__module__), "__file__", "") or "")
                    for f in functions if f is not None})
    return hashlib.sha256("|".join(_file_hash(f) if f else "" for f in files).encode()
                          ).hexdigest()[:12]


class LookupCache:
    """The on-disk copy of one (database, scope)'s look-ups: one JSON object of named parts."""

    def __init__(self, folder: Path, database: Path, scope: Scope) -> None:
        """`folder` holds the files (made when first written); nothing is read yet."""
        self.folder = Path(folder).expanduser()
        self.database = Path(database).expanduser()
        self.scope = scope
        self._parts: dict[str, Any] | None = None
        self._path: Path | None = None

    def path(self) -> Path | None:
        """The file of this database version and scope; None when the database is missing."""
        try:
            stat = self.database.resolve().stat()
        except OSError:
            return None
        key = json.dumps([FORMAT, str(self.database.resolve()), stat.st_ino, stat.st_size,
                          stat.st_mtime_ns, self.scope.key])
        return self.folder / f"lookups-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def _load(self) -> dict[str, Any]:
        if self._parts is None:
            self._path = self.path()
            self._parts = {}
            if self._path is not None and self._path.exists():
                try:
                    found = json.loads(self._path.read_text(encoding="utf-8"))
                    if isinstance(found, dict):
                        self._parts = found
                except (OSError, ValueError):
                    self._parts = {}
        return self._parts

    def stored(self) -> bool:
        """True when this database version and scope already have their file."""
        path = self.path()
        return path is not None and path.exists()

    def get(self, name: str) -> Any:
        """The stored part `name` ("what@code version"), or None when it is not stored."""
        return self._load().get(name)

    def put(self, name: str, value: Any) -> None:
        """Store part `name` ("what@code version", replacing other versions of it), written at
        once; a folder that cannot be written, or a value that is not JSON data, is skipped."""
        parts = self._load()
        family = name.split("@", 1)[0] + "@"
        for older in [k for k in parts if k.startswith(family) and k != name]:
            del parts[older]  # written by other code: never read again
        parts[name] = value
        if self._path is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self._path.with_name(f".{self._path.name}.{os.getpid()}.part")
            partial.write_text(json.dumps(parts, ensure_ascii=False), encoding="utf-8")
            partial.replace(self._path)
            self._prune()
        except (OSError, TypeError, ValueError):  # unwritable folder, or not JSON data
            parts.pop(name, None)
            return

    def _prune(self) -> None:
        """Keep the newest files only: old database versions leave theirs behind."""
        files = sorted(self.folder.glob("lookups-*.json"), key=lambda p: p.stat().st_mtime,
                       reverse=True)
        for old in files[_KEEP:]:
            old.unlink(missing_ok=True)
