"""The hash-chained audit log: appends from threads and processes, tamper detection, export."""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.audit_log import GENESIS, AuditLog, answer_record, record_hash
from tamga.answer import Answer, Citation

ROOT = Path(__file__).resolve().parents[1]


def _fill(log: AuditLog, n: int) -> None:
    for k in range(n):
        log.append({"user": "u", "question": f"question {k}", "engine": "offline",
                    "sql": [f"SELECT {k}"], "answer": f"answer {k}"})


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_chain_links_every_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.verify().ok and log.verify().records == 0
    _fill(log, 5)
    records = list(log.records())
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(records):
        assert after["prev_hash"] == before["hash"]
    assert all(record_hash(r) == r["hash"] for r in records)
    result = log.verify()
    assert result.ok and result.records == 5 and result.head_hash == records[-1]["hash"]


def test_an_edited_record_is_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _fill(log, 5)
    lines = _lines(log)
    record = json.loads(lines[2])
    record["answer"] = "a friendlier answer"
    lines[2] = json.dumps(record) + "\n"
    log.path.write_text("".join(lines), encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.first_bad == 3 and "edited" in result.reason


def test_a_deleted_record_is_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _fill(log, 5)
    lines = _lines(log)
    del lines[1]
    log.path.write_text("".join(lines), encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.first_bad == 2 and "deleted" in result.reason


def test_cutting_off_the_last_record_is_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _fill(log, 5)
    log.path.write_text("".join(_lines(log)[:-1]), encoding="utf-8")
    result = log.verify()
    assert not result.ok and "removed from the end" in result.reason


def test_swapped_records_and_damaged_lines_are_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _fill(log, 4)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    log.path.write_text("".join(lines), encoding="utf-8")
    assert log.verify().first_bad == 2
    log.path.write_text("".join(_lines(log)[:1]) + '{"seq": 2, "trunc\n', encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.first_bad == 2 and "JSON" in result.reason


def test_appending_after_damage_keeps_the_damage_visible(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _fill(log, 2)
    with log.path.open("a", encoding="utf-8") as f:
        f.write("not json\n")
    _fill(log, 1)
    result = log.verify()
    assert not result.ok and result.first_bad == 3


def test_threads_append_without_breaking_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda k: log.append({"question": f"q{k}", "user": f"u{k % 7}"}),
                      range(200)))
    result = log.verify()
    assert result.ok and result.records == 200
    assert sorted(r["question"] for r in log.records()) == sorted(f"q{k}" for k in range(200))


def _worker(path: str, n: int, tag: str) -> None:
    log = AuditLog(Path(path))
    for k in range(n):
        log.append({"question": f"{tag}-{k}"})


def test_processes_append_without_breaking_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(path), 25, f"p{n}")) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    result = AuditLog(path).verify()
    assert result.ok and result.records == 75


def test_export_jsonl_and_csv(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    answer = Answer("USD 1,234 in 2024", engine="offline", sql=["SELECT 1", "SELECT 2"],
                    citations=[Citation("notes/a.md", "Art. 1", "text", 0.5)],
                    warnings=["careful"], intent="national_total")
    log.append(answer_record("How much?", answer, "officer7", "chat1"))
    log.append(answer_record("And now?", Answer("no", engine="refused"), "officer7", "chat1"))
    out = io.StringIO()
    assert log.export(out, "jsonl") == 2
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    assert exported == list(log.records())
    out = io.StringIO()
    assert log.export(out, "csv") == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["user"] == "officer7" and rows[0]["sql"] == "SELECT 1\n;\nSELECT 2"
    assert rows[0]["sources"] == "notes/a.md Art. 1" and rows[1]["engine"] == "refused"
    with pytest.raises(Exception, match="Unknown export format"):
        log.export(io.StringIO(), "xml")


def _tamga(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"TAMGA_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_cli_verify_and_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = AuditLog.in_folder(home / "logs")
    _fill(log, 3)
    ok = _tamga("audit", "verify", home=home)
    assert ok.returncode == 0 and "3 records" in ok.stdout
    out = tmp_path / "export.csv"
    done = _tamga("audit", "export", "--format", "csv", "--output", str(out), home=home)
    assert done.returncode == 0 and len(list(csv.DictReader(out.open()))) == 3
    lines = _lines(log)
    lines[0] = lines[0].replace("question 0", "question zero")
    log.path.write_text("".join(lines), encoding="utf-8")
    broken = _tamga("audit", "verify", "--json", home=home)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_bad"] == 1
