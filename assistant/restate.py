"""The local model restates a question in plain words, for the offline rules to read.

The offline planner reads officers' questions well when they use the words its rules know, and
declines the rest. A small local model is poor at writing a plan itself, but fair at saying the
same question again in plain, complete words ("dispatch country: biggest drop in number of
declarations, ytd vs same period last year (4)" -> "Which 4 dispatch countries had the biggest
drop in the number of import declarations this year compared with the same period last
year?"). The restatement is used only when it keeps what the question names: the same trader,
office, countries, goods, channel and periods, no number the question does not have, and every
grouping and measure the rules found in the original. Otherwise it is dropped and the question
goes on to the plan draft.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from assistant.planner import NUMBER_WORDS
from assistant.slots import Slots, clean_question

if TYPE_CHECKING:
    from assistant.offline import OfflineEngine
    from assistant.plan_llm import ChatMessage, JsonChat

RESTATE_HELP = (
    "You restate a customs officer's question about trade data as one plain, complete English "
    "question. Write out every abbreviation. Say which figure is wanted (customs value, import "
    "duty, VAT, number of declarations, number of distinct traders, value per kg, share ...), "
    "what it is grouped by (by origin country, by dispatch country, by customs office, by "
    "trader, by sector, by month ...), which filters apply, and the shape (total, top N, "
    "bottom N, compared with, biggest increase or drop, share of, in one period but not in "
    "another, first import ever, versus other importers). Keep every name, code, number, "
    "period and grouping word exactly as the officer wrote it (dispatch country stays dispatch "
    "country, procedure stays procedure, preference code stays preference code). Reply with the "
    "question only."
)

#: Worked examples, written for Tamga (none is taken from an evaluation set).
RESTATE_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("top 5 origins by duty year to date",
     "Which 5 origin countries paid the most import duty this year to date?"),
    ("chapter 85 imports 2024 vs 2025",
     "Compare the customs value of imports of HS chapter 85 in 2024 with 2025."),
    ("sellers gone quiet in 2025 that were active in 2024",
     "Which sellers had imports in 2024 but none in 2025?"),
    ("reds at Balboa Seaport last month - how many",
     "How many import declarations at Balboa Seaport were in the red channel last month?"),
    ("importers whose VAT rose most this year vs last",
     "Which importers had the biggest increase in VAT this year compared with the same period "
     "last year?"),
    ("air slice of Q2 2025 value",
     "What share of the customs value of imports in Q2 2025 came by air?"),
    ("newcomers 2025 per sector, count",
     "How many new importers made their first import ever in 2025, by sector?"),
    ("procedure 4000 declarations per dispatch country, last month",
     "How many import declarations under procedure 4000 were there last month, by dispatch "
     "country?"),
    ("Acme Ltd value per kg on 8703 vs everyone else, 2024",
     "Compare the value per kg of imports of heading 8703 by Acme Ltd with other importers in "
     "2024."),
)

#: One line of text (the reply stops at the end of the line).
RESTATE_GRAMMAR = 'root ::= [A-Za-z0-9"\'(] [^\\n]*\n'

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = {**{word: str(n) for word, n in NUMBER_WORDS.items()}, "single": "1"}


class Restater:
    """Asks the model to restate a question and checks that the restatement keeps it."""

    def __init__(self, chat: JsonChat, offline: OfflineEngine, max_tokens: int = 64) -> None:
        """`chat` is the model (a grammar-constrained chat function, as the plan filler's);
        `offline` is the user's offline engine, whose rules read the restatement."""
        self.chat = chat
        self.offline = offline
        self.max_tokens = max_tokens

    def messages(self, question: str) -> list[ChatMessage]:
        """The instructions, the worked examples, then the question."""
        messages: list[ChatMessage] = [{"role": "system", "content": RESTATE_HELP}]
        for asked, restated in RESTATE_EXAMPLES:
            messages += [{"role": "user", "content": asked},
                         {"role": "assistant", "content": restated}]
        return [*messages, {"role": "user", "content": question}]

    def warm(self) -> None:
        """Evaluate the fixed prefix now, so that a question pays only for its own tokens."""
        self.chat(self.messages("total value"), 1, threading.Event(), RESTATE_GRAMMAR)

    def restate(self, question: str, cancelled: threading.Event | None = None) -> str | None:
        """The model's restatement of `question` (shorthand already written out), or None."""
        reply = self.chat(self.messages(clean_question(question)), self.max_tokens,
                          cancelled or threading.Event(), RESTATE_GRAMMAR)
        lines = [line.strip() for line in (reply or "").splitlines() if line.strip()]
        return clean_question(lines[0]) if lines else None

    def differs(self, question: str, restated: str) -> str | None:
        """Why `restated` does not say what `question` says (None when it keeps it): a named
        value changed, added or lost, a number the question does not have, a grouping or a
        measure the rules found in the question gone, or a problem in the restatement
        itself."""
        original, again = clean_question(question), clean_question(restated)
        extractor = self.offline.extractor
        before, after = extractor.extract(original), extractor.extract(again)
        if after.problems:
            return " ".join(after.problems)
        if _named(before) != _named(after):
            return "it names other values than the question"
        invented = _numbers(again) - _numbers(original)
        if invented:
            return f"it has numbers the question does not have ({', '.join(sorted(invented))})"
        planner = self.offline.planner
        lost = set(planner.cues(original, before).dimensions) - set(
            planner.cues(again, after).dimensions)
        if lost:
            return f"it drops the grouping by {', '.join(sorted(lost))}"
        lost = set(planner.measures_for(original)) - set(planner.measures_for(again))
        if lost:
            return f"it drops the measure {', '.join(sorted(lost))}"
        return None


def _named(slots: Slots) -> dict[str, Any]:
    """What a question names, in database values: trader, office, countries, goods, channel,
    periods."""
    return {
        "trader": slots.trader.trader_id if slots.trader is not None else None,
        "office": slots.office,
        "countries": sorted(c.code for c in slots.countries),
        "hs": slots.hs.code if slots.hs is not None else None,
        "channel": slots.channel,
        "periods": sorted({(p.start, p.end) for p in slots.periods}),
    }


def _numbers(text: str) -> set[str]:
    """The numbers in a question, digits or words ("three" is 3), without separators."""
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    found |= {digits for word, digits in _NUMBER_WORDS.items()
              if re.search(rf"\b{word}\b", text.lower())}
    return found
