"""Twenty questions at once (issue 7, part 4): through the Python API and through the running app.

Real components: the demo database, the guidance index, the packaged embedder; the app is
`tamga serve` on 127.0.0.1 driven by Debian's Chromium. Every figure is checked against SQL
written here, and every concurrent answer against the same question asked alone. Each test
prints one "[concurrency] ..." line that docs/security.md quotes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.core import Assistant
from tamga.answer import Answer
from tamga.settings import get_settings
from tests.browser_helpers import (
    ANSWERS_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE_JS,
    MORE_ANSWERS_JS,
    start_app,
    stop_app,
)
from tradedata.db import connect

JOIN = ("FROM declarations d JOIN declaration_items i ON i.declaration_id = d.declaration_id "
        "JOIN traders t ON t.trader_id = d.trader_id")
LOCK_WORDS = ("lock", "different configuration", "conflicting", "already open", "Traceback")
RULE_QUESTIONS = [
    "How long must an importer keep records?",
    "When can we reject the declared transaction value between related parties?",
    "What are the indicators of undervaluation?",
]


def summary(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[concurrency] {line}")


@dataclass
class Chat:
    """One conversation of the test: who asks, the two questions and what must hold."""

    user: str
    questions: list[str]
    trader_id: str | None = None
    office: str | None = None
    years: list[int] = field(default_factory=list)


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connect(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def trader_value(db: Path, trader_id: str, year: int, office: str | None) -> float:
    """Import customs value of one trader in one year (at one office), straight from SQL."""
    where = "AND d.customs_office = ?" if office else ""
    rows = query(db, f"SELECT round(sum(i.customs_value), 2) {JOIN} WHERE d.trader_id = ? "
                     f"AND d.flow = 'import' AND year(d.declaration_date) = ? {where}",
                 [trader_id, year] + ([office] if office else []))
    return float(rows[0][0])


def unique_traders(db: Path, years: tuple[int, int], office: str | None) -> list[tuple[str, str]]:
    """(trader_id, name) of traders importing in both years (at `office`) whose name is not
    shared with another trader, largest first."""
    from tools.traders import core_name

    names = query(db, "SELECT trader_id, name FROM traders")
    cores = [core_name(n) for _, n in names]
    unique = {tid for (tid, _), c in zip(names, cores, strict=True) if cores.count(c) == 1}
    where = "AND d.customs_office = ?" if office else ""
    rows = query(db, f"""SELECT d.trader_id, t.name {JOIN} WHERE d.flow = 'import'
        AND year(d.declaration_date) IN (?, ?) {where} GROUP BY ALL
        HAVING count(DISTINCT year(d.declaration_date)) = 2 ORDER BY sum(i.customs_value) DESC""",
                 [*years] + ([office] if office else []))
    return [(tid, name) for tid, name in rows if tid in unique]


def fingerprint(answer: Answer) -> tuple[Any, ...]:
    """Everything of an answer that must not depend on what else is running."""
    return (answer.engine, answer.intent, answer.text, tuple(answer.sql),
            tuple(tuple(map(tuple, t.rows)) for t in answer.tables),
            tuple(c.source for c in answer.citations), tuple(answer.warnings))


def value_of(answer: Answer) -> float:
    table = answer.table
    assert table is not None, answer.text
    return float(table.rows[0][table.columns.index("value")])


# -- 20 questions at once through the Python API ---------------------------------------------------


@pytest.fixture()
def users_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_db: Path
               ) -> Iterator[tuple[str, str]]:
    """A TAMGA_HOME with an analyst, a supervisor and two officers for each of two offices."""
    from tools.access import UserStore

    monkeypatch.setenv("TAMGA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAMGA_LLM_BASE_URL", raising=False)
    get_settings.cache_clear()
    (a,), (b,) = query(demo_db, "SELECT customs_office FROM declarations GROUP BY 1 "
                                "ORDER BY count(*) DESC LIMIT 2")
    store = UserStore.from_settings(get_settings())
    store.add("ana.analyst", "a long enough password", "analyst")
    store.add("sam.super", "a long enough password", "supervisor")
    for name, office in (("off.a1", a), ("off.a2", a), ("off.b1", b), ("off.b2", b)):
        store.add(name, "a long enough password", "officer", [office])
    yield a, b
    get_settings.cache_clear()


def plan_chats(db: Path, offices: tuple[str, str], baseline: Assistant
               ) -> tuple[list[Chat], list[list[tuple[Any, ...]]]]:
    """20 conversations: 12 traders of all offices, 4 traders seen by officers, 3 rule
    questions and a ranking, each with a follow-up; and the fingerprints of their answers
    when each conversation is asked on its own, one after the other."""
    (last,) = query(db, "SELECT year(max(declaration_date)) - 1 FROM declarations")[0]
    years = [last - 1, last]
    chats: list[Chat] = []
    alone: list[list[tuple[Any, ...]]] = []
    used: set[str] = set()

    def keep(chat: Chat, conversation: Any, first: Answer) -> None:
        follow = baseline.ask(chat.questions[1], conversation, user=chat.user)
        chats.append(chat)
        alone.append([fingerprint(first), fingerprint(follow)])

    def add_trader_chats(count: int, users: list[str], office: str | None) -> None:
        for tid, name in unique_traders(db, (years[0], years[1]), office):
            if len([c for c in chats if c.office == office and c.trader_id]) >= count:
                return
            if tid in used:
                continue
            n = len(chats)
            asked, follow = (years if n % 2 else years[::-1])
            chat = Chat(users[n % len(users)], [f"What did {name} import in {asked}?",
                                                f"and in {follow}?"], tid, office, [asked, follow])
            conversation = baseline.new_conversation(chat.user)
            first = baseline.ask(chat.questions[0], conversation, user=chat.user)
            if first.intent == "trader_total" and first.sql and tid in first.sql[0]:
                keep(chat, conversation, first)
                used.add(tid)

    add_trader_chats(12, ["ana.analyst", "sam.super"], None)
    add_trader_chats(2, ["off.a1", "off.a2"], offices[0])
    add_trader_chats(2, ["off.b1", "off.b2"], offices[1])
    more = [Chat(user, [rule, f"total imports in {years[n % 2]}"]) for n, (user, rule) in
            enumerate(zip(["ana.analyst", "off.a1", "off.b2"], RULE_QUESTIONS, strict=True))]
    more.append(Chat("off.b1", [f"Top 5 importers in {years[1]}", f"and in {years[0]}?"]))
    for chat in more:
        conversation = baseline.new_conversation(chat.user)
        keep(chat, conversation, baseline.ask(chat.questions[0], conversation, user=chat.user))
    assert len(chats) == 20, [c.questions[0] for c in chats]
    return chats, alone


def test_twenty_questions_at_once_through_the_python_api(
    users_home: tuple[str, str], demo_db: Path, guidance_index: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = Assistant(db_path=demo_db, index_dir=guidance_index, audit=False)
    chats, alone = plan_chats(demo_db, users_home, baseline)

    # a fresh, cold Assistant as the web app builds it, shared by 20 threads
    shared = Assistant(db_path=demo_db, index_dir=guidance_index)
    barrier = threading.Barrier(len(chats))

    def talk(chat: Chat) -> list[Answer] | BaseException:
        try:
            conversation = shared.new_conversation(chat.user)
            barrier.wait(timeout=60)
            return [shared.ask(q, conversation, user=chat.user) for q in chat.questions]
        except BaseException as exc:  # counted below
            return exc

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(chats)) as pool:
        results = list(pool.map(talk, chats))
    elapsed = time.perf_counter() - started

    errors: dict[int, str] = {}
    cross_talk: dict[int, str] = {}
    answered = 0
    for n, (chat, result) in enumerate(zip(chats, results, strict=True)):
        if isinstance(result, BaseException):
            errors[n] = f"{type(result).__name__}: {result}"
            continue
        for turn, answer in enumerate(result):
            said = " ".join([answer.text, *answer.warnings])
            if answer.engine == "error" or any(w in said for w in LOCK_WORDS):
                errors[n] = f"turn {turn}: {said[:300]}"
                continue
            answered += 1
            if fingerprint(answer) != alone[n][turn]:
                cross_talk[n] = f"turn {turn} differs from the same question asked alone"
            others = {c.trader_id for c in chats if c.trader_id and c is not chat}
            if any(tid in " ".join(answer.sql) for tid in others):
                cross_talk[n] = f"turn {turn} queries another conversation's trader"
        if chat.trader_id and n not in errors:
            for answer, year in zip(result, chat.years, strict=True):
                assert answer.intent == "trader_total" and chat.trader_id in answer.sql[0]
                assert str(year) in answer.sql[0]
                expected = trader_value(demo_db, chat.trader_id, year, chat.office)
                assert abs(value_of(answer) - expected) < 0.01, (chat.questions, expected)
        if chat.office and n not in errors:
            assert all(chat.office in " ".join(a.warnings) for a in result)
    total = sum(len(c.questions) for c in chats)
    assert shared.audit is not None
    logged = shared.audit.verify().records
    summary(capsys, f"20 conversations through one Assistant in 20 threads ({total} questions: "
                    f"16 traders of 4 users incl. 4 scoped officers, 3 rule questions, 1 "
                    f"ranking): {answered} answered, {len(errors)} errors, {len(cross_talk)} "
                    f"cross-talk, {logged} audit records ({elapsed:.1f} s)")
    assert not errors, errors
    assert not cross_talk, cross_talk
    assert answered == total
    assert logged == total


# -- 20 questions at once through the running app ----------------------------------------------


@pytest.fixture(scope="module")
def app_url(demo_db: Path, guidance_index: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    process, url = start_app(demo_db, guidance_index, tmp_path_factory.mktemp("crowd-home"))
    try:
        yield url
    finally:
        stop_app(process)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_twenty_questions_at_once_through_the_running_app(
    app_url: str, demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (last,) = query(demo_db, "SELECT year(max(declaration_date)) - 1 FROM declarations")[0]
    picked = unique_traders(demo_db, (last - 1, last), None)[:20]
    assert len(picked) == 20
    jobs = []
    for n, (tid, name) in enumerate(picked):
        year = last - n % 2
        figure = f"{trader_value(demo_db, tid, year, None):,.0f}"
        jobs.append((f"What did {name} import in {year}?", name, figure))
    crowd = asyncio.run(twenty_pages(app_url, jobs))
    problems, page_errors = crowd["problems"], crowd["page_errors"]
    summary(capsys, f"20 questions at once through the running app (20 Chromium contexts, sent "
                    f"within {crowd['spread']:.1f} s): {20 - len(problems)} pages show their "
                    f"own answer, {len(problems)} problems, {len(page_errors)} page errors "
                    f"(pages loaded in {crowd['loaded']:.0f} s, all answered "
                    f"{crowd['answered']:.0f} s after sending)")
    assert not problems, problems
    assert not page_errors, page_errors


async def twenty_pages(url: str, jobs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Open one page per job in its own browser context, send every question at the same
    time, wait for all answers and check that each page shows its own trader and figure."""
    from playwright.async_api import async_playwright

    problems: dict[int, str] = {}
    page_errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=CHROMIUM_ARGS)
        started = time.perf_counter()

        async def open_page() -> Any:
            context = await browser.new_context(viewport={"width": 1100, "height": 800})
            page = await context.new_page()
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            await page.goto(url, wait_until="commit", timeout=240_000)
            await page.get_by_test_id("stChatInputTextArea").wait_for(timeout=240_000)
            return page

        pages = await asyncio.gather(*(open_page() for _ in jobs))
        loaded = time.perf_counter() - started
        before = await asyncio.gather(*(page.evaluate(ANSWERS_JS) for page in pages))
        boxes = [page.get_by_test_id("stChatInputTextArea") for page in pages]
        await asyncio.gather(*(box.fill(job[0]) for box, job in zip(boxes, jobs, strict=True)))
        sent_at = time.perf_counter()
        await asyncio.gather(*(box.press("Enter") for box in boxes))
        spread = time.perf_counter() - sent_at

        async def check(n: int) -> None:
            page, (_, name, figure) = pages[n], jobs[n]
            try:
                await page.wait_for_function(MORE_ANSWERS_JS, arg=before[n], timeout=240_000)
                await page.wait_for_function(IDLE_JS, timeout=240_000)
            except Exception as exc:  # counted by the caller
                problems[n] = f"no answer: {exc}"
                return
            reply = await page.locator('[data-testid="stChatMessage"]').last.inner_text()
            if name not in reply or figure not in reply:
                problems[n] = f"expected {name} and {figure}, got: {reply[:200]}"
            if any(other in reply for m, (_, other, _) in enumerate(jobs) if m != n):
                problems[n] = f"another trader's name on the page: {reply[:200]}"
            if await page.locator('[data-testid="stException"]').count():
                problems[n] = "an exception is shown"
            if await page.locator('[data-testid="stAlertContentError"]').count():
                problems[n] = "an error message is shown"

        await asyncio.gather(*(check(n) for n in range(len(jobs))))
        answered = time.perf_counter() - sent_at
        await browser.close()
    return {"problems": problems, "page_errors": page_errors, "loaded": loaded,
            "spread": spread, "answered": answered}
