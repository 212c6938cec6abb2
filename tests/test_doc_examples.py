"""Every example in README.md and docs/ answers on the default demo, as a new user would try it.

The default demo is built exactly as the README says (`tamga demo --rows 500000 --seed 7`).
Examples are found in the Markdown, not listed here:

- questions written in italics and quotes, *"...?"* or *"Brief me on ..."*, in README.md;
  they are asked in order, in one conversation (the README's "their" follows the question
  before it);
- `tamga ask [...] "QUESTION"` in README.md and docs/*.md;
- the `tamga ...` lines of the README's command-line block, run as commands (lines that need
  `../shared` are skipped when it is absent, and the full shared ingest is left to
  tests/test_ingest.py; `chat` and `serve` are interactive and tested elsewhere).

A real answer: no error, not the "I can't answer" fallback, no "does not take ... into account"
warning, no "No trader named", and a table with rows, or citations for a rule question.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.core import Assistant
from tamga.answer import Answer
from tamga.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "data").resolve()
TAMGA = str(Path(sys.executable).with_name("tamga"))

pytestmark = pytest.mark.slow


def readme_questions() -> list[str]:
    """The italic quoted questions of README.md, in order."""
    flat = re.sub(r"\s*\n\s*", " ", (REPO / "README.md").read_text(encoding="utf-8"))
    found = re.findall(r'\*"([^"*]+)"\*', flat)
    return [q for q in found if q.endswith("?") or q.startswith("Brief me")]


def ask_examples() -> list[tuple[str, str]]:
    """(file, question) of every `tamga ask ... "question"` in README.md and docs/*.md."""
    out = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for question in re.findall(r'tamga ask (?:--\S+ \S+ )*"([^"]+)"',
                                   path.read_text(encoding="utf-8")):
            out.append((path.name, question))
    return out


def readme_commands() -> list[str]:
    """The `tamga ...` lines of the README's command-line block (continuations joined)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Using it from the command line", 1)[1].split("```bash", 1)[1]
    block = block.split("```", 1)[0].replace("\\\n", " ")
    lines = []
    for line in block.splitlines():
        command = line.split("  #", 1)[0].strip()
        if command.startswith("tamga "):
            lines.append(command)
    return lines


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TAMGA_HOME with the default demo, built by the README's own command."""
    folder = tmp_path_factory.mktemp("default-demo")
    demo = next(c for c in readme_commands() if c.startswith("tamga demo"))
    done = subprocess.run([TAMGA, *shlex.split(demo)[1:]], capture_output=True, text=True,
                          timeout=900, env=_env(folder))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "500,000 items" in done.stdout
    return folder


def _env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")}
    return {**keep, "TAMGA_HOME": str(home)}


def assert_real_answer(answer: Answer, question: str) -> None:
    """An answer an officer can use, with where it came from."""
    what = f"{question!r} -> {answer.engine}/{answer.intent}: {answer.text[:300]}"
    assert answer.engine in ("offline", "llm", "local"), what
    assert "I can't answer" not in answer.text, what
    assert "No trader named" not in answer.text, what
    assert not any("does not take" in w for w in answer.warnings), (what, answer.warnings)
    if answer.citations:
        assert all(c.source and c.locator for c in answer.citations), what
    else:
        assert answer.table is not None and answer.table.rows and answer.sql, what


def test_readme_questions_answer_in_one_conversation(home: Path) -> None:
    questions = readme_questions()
    assert len(questions) >= 6, questions
    assistant = Assistant(Settings(home=home), load_llm=False)
    chat = assistant.new_conversation()
    for question in questions:
        assert_real_answer(assistant.ask(question, chat), question)


@pytest.mark.parametrize(("where", "question"), ask_examples())
def test_tamga_ask_examples_answer(home: Path, where: str, question: str) -> None:
    done = subprocess.run([TAMGA, "ask", question, "--json"], capture_output=True, text=True,
                          timeout=300, env=_env(home))
    assert done.returncode == 0, (where, done.stderr[-2000:])
    import json

    data = json.loads(done.stdout)
    answer = Answer(data["answer"], data["engine"], sql=data["sql"], warnings=data["warnings"],
                    intent=data["intent"])
    if data["table"]:
        from tamga.answer import Table

        answer.tables = [Table(data["table"]["columns"], data["table"]["rows"])]
    if data["citations"]:
        from tamga.answer import Citation

        answer.citations = [Citation(c["source"], c["locator"], c["text"])
                            for c in data["citations"]]
    assert_real_answer(answer, f"{where}: {question}")


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_lines_run(home: Path, command: str, tmp_path: Path) -> None:
    words = shlex.split(command)
    if words[1] in ("chat", "serve", "demo"):
        pytest.skip(f"{words[1]}: interactive or already run by the fixture")
    if any("../shared" in w for w in words):
        if not SHARED.exists():
            pytest.skip("needs ../shared/data (not part of a clone)")
        if words[1] == "ingest":
            pytest.skip("the full shared ingest takes minutes; tests/test_ingest.py covers it")
    env = _env(home)
    typed = None
    if words[1] == "users":  # creating a user turns on sign-in: keep the shared home open
        env = {**_env(tmp_path), "TAMGA_DB_PATH": str(home / "trade.duckdb")}
        typed = "a long enough passphrase\na long enough passphrase\n"
    words = [w.replace("/tmp/kcs.duckdb", str(tmp_path / "kcs.duckdb"))
             .replace("/tmp/tamga-export", str(tmp_path / "tamga-export")) for w in words]
    words = [str(home / w[len("~/.tamga/"):]) if w.startswith("~/.tamga/") else w
             for w in words]  # the README's default home is the fixture's home
    words = [str(tmp_path / w) if w.endswith(".pdf") and not Path(w).is_absolute() else w
             for w in words]
    done = subprocess.run([TAMGA, *words[1:]], capture_output=True, text=True, timeout=900,
                          env=env, cwd=REPO, input=typed)
    assert done.returncode == 0, (command, done.stdout[-1500:], done.stderr[-1500:])
    assert done.stdout.strip() or list(tmp_path.iterdir()), command
    if "--output" in words:
        target = Path(words[words.index("--output") + 1])
        assert target.read_bytes().startswith(b"%PDF"), command
