"""The audit log: every question and answer, appended as a hash chain of JSON lines.

Each record carries `prev_hash` (the `hash` of the record before it, or GENESIS for the first)
and its own `hash`, the SHA-256 of the record's canonical JSON without the `hash` field. Editing
a record breaks its hash; deleting or reordering records breaks the next record's `prev_hash`;
cutting records off the end is caught by the head file (`audit.jsonl.head`) that holds the
sequence number and hash of the last record. Appends take an exclusive `fcntl` lock on the
file, so threads and processes can log at the same time without interleaving.

Someone who can rewrite the whole file can also recompute every hash: keep the head hash that
`tamga audit verify` prints somewhere else (a ticket, a signed email) to anchor the chain.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tamga.errors import TamgaError

if TYPE_CHECKING:
    from tamga.answer import Answer

GENESIS = "0" * 64
LOG_NAME = "audit.jsonl"
CSV_FIELDS = ["seq", "ts", "user", "conversation", "engine", "intent", "question", "answer",
              "sql", "sources", "warnings", "elapsed_ms", "prev_hash", "hash"]


class AuditLogError(TamgaError):
    """The audit log cannot be read or written."""


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash is computed over (sorted keys, no `hash` field)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """The SHA-256 (hex) of a record's canonical form."""
    return hashlib.sha256(canonical(record)).hexdigest()


@dataclass
class Verification:
    """The result of checking a log: how many records, and the first broken one if any."""

    ok: bool
    records: int
    first_bad: int | None = None  # 1-based line number
    reason: str = ""
    head_hash: str = GENESIS

    def describe(self) -> str:
        """One or two lines for a person."""
        if self.ok:
            return (f"Audit log OK: {self.records:,} records, chain intact. "
                    f"Head hash: {self.head_hash}")
        return f"Audit log BROKEN at record {self.first_bad}: {self.reason}"


def answer_record(question: str, answer: Answer, user: str,
                  conversation: str | None = None) -> dict[str, Any]:
    """What the log keeps of one answered question."""
    return {
        "user": user,
        "conversation": conversation,
        "question": question,
        "engine": answer.engine,
        "intent": answer.intent,
        "sql": list(answer.sql),
        "sources": [{"source": c.source, "locator": c.locator} for c in answer.citations],
        "answer": answer.text,
        "warnings": list(answer.warnings),
        "elapsed_ms": round(answer.elapsed_ms, 1),
        "egress": egress_counts(answer.egress),
    }


def egress_counts(egress: dict[str, Any] | None) -> dict[str, Any]:
    """What the log keeps of an answer's egress: where to, the policy and the counts (the
    payloads themselves are shown in the app, not logged). No model asked: nothing sent."""
    if egress is None:
        return {"destination": "none", "remote": False, "policy": None, "results_sent": 0,
                "rows_sent": 0, "rows_withheld": 0}
    return {
        "destination": egress.get("destination"), "remote": bool(egress.get("remote")),
        "policy": egress.get("policy"), "results_sent": egress.get("results_sent", 0),
        "rows_sent": egress.get("rows_sent", 0), "rows_withheld": egress.get("rows_withheld", 0),
        "sent": [{"tool": r.get("tool"), "rows_sent": r.get("rows_sent", 0),
                  "rows_withheld": r.get("rows_withheld", 0),
                  "masked_columns": r.get("masked_columns", [])}
                 for r in egress.get("records", [])],
    }


class AuditLog:
    """An append-only, hash-chained JSON-lines log at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._lock = threading.Lock()

    @classmethod
    def in_folder(cls, folder: Path) -> AuditLog:
        """The log `audit.jsonl` in a folder (e.g. settings.logs)."""
        return cls(Path(folder).expanduser() / LOG_NAME)

    # -- writing ----------------------------------------------------------------------------------

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one record (adds seq, ts, prev_hash, hash) and return it as stored."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "r+b") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                try:
                    seq, prev_hash = self._tail(f)
                    record = {"seq": seq + 1,
                              "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                              **fields, "prev_hash": prev_hash}
                    record["hash"] = record_hash(record)
                    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
                    f.seek(0, os.SEEK_END)
                    f.write(line.encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
                    self._write_head(record)
                finally:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return record

    @staticmethod
    def _tail(f: Any) -> tuple[int, str]:
        """(seq, hash) of the last record in an open log file; (0, GENESIS) when empty."""
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0, GENESIS
        block = 4096
        data = b""
        pos = size
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
            if data.rstrip(b"\n").count(b"\n") >= 1:
                break
        last = data.rstrip(b"\n").split(b"\n")[-1]
        try:
            record = json.loads(last)
            return int(record["seq"]), str(record["hash"])
        except (ValueError, KeyError, TypeError):
            # a damaged last line: chain onto its bytes; `verify` reports the damage
            return 0, hashlib.sha256(last).hexdigest()

    def _write_head(self, record: dict[str, Any]) -> None:
        tmp = self.head_path.with_name(f"{self.head_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"seq": record["seq"], "hash": record["hash"],
                                   "updated": time.time()}), encoding="utf-8")
        os.replace(tmp, self.head_path)

    # -- reading and checking ---------------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in order (AuditLogError on a line that is not JSON)."""
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise AuditLogError(f"line {n} of {self.path} is not JSON: {exc}") from exc

    def verify(self) -> Verification:
        """Check every hash and link of the chain, and the head file against the last record."""
        if not self.path.exists():
            return Verification(True, 0)
        prev_hash, prev_seq, count = GENESIS, 0, 0
        with self.path.open("r", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    return Verification(False, count, n, "empty line")
                try:
                    record = json.loads(line)
                except ValueError:
                    return Verification(False, count, n, "not valid JSON (edited or cut)")
                if not isinstance(record, dict) or "hash" not in record:
                    return Verification(False, count, n, "no hash field")
                if record.get("prev_hash") != prev_hash:
                    return Verification(False, count, n, "prev_hash does not match the record "
                                        "before it (a record was deleted, inserted or moved)")
                if record_hash(record) != record["hash"]:
                    return Verification(False, count, n, "hash does not match the content "
                                        "(the record was edited)")
                if record.get("seq") != prev_seq + 1:
                    return Verification(False, count, n, f"sequence number {record.get('seq')} "
                                        f"after {prev_seq}")
                prev_hash, prev_seq, count = record["hash"], record["seq"], count + 1
        if self.head_path.exists():
            try:
                head = json.loads(self.head_path.read_text(encoding="utf-8"))
            except ValueError:
                return Verification(False, count, count + 1, "the head file is damaged")
            if (head.get("seq"), head.get("hash")) != (prev_seq, prev_hash):
                return Verification(False, count, count + 1,
                                    f"the log ends at record {prev_seq} but the head file says "
                                    f"{head.get('seq')}: records were removed from the end")
        elif count:
            return Verification(False, count, count + 1, "the head file is missing")
        return Verification(True, count, head_hash=prev_hash)

    # -- export -----------------------------------------------------------------------------------

    def export(self, out: TextIO, fmt: str = "jsonl") -> int:
        """Write every record to `out` as JSON lines or CSV; returns the number written."""
        if fmt not in ("jsonl", "csv"):
            raise AuditLogError(f"Unknown export format {fmt!r}: use jsonl or csv.")
        count = 0
        writer = None
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
        for record in self.records():
            if writer is None:
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            else:
                row = dict(record)
                row["sql"] = "\n;\n".join(record.get("sql") or [])
                row["sources"] = "; ".join(
                    f"{s.get('source')} {s.get('locator')}" for s in record.get("sources") or [])
                row["warnings"] = " | ".join(record.get("warnings") or [])
                writer.writerow(row)
            count += 1
        return count
