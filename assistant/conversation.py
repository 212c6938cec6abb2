"""A conversation: its turns, and the intent and slots of the last question for follow-ups.

Follow-ups reuse what the previous question established: "and in 2023?" replaces the period,
"only from China" adds a country, "show it by month" switches to the monthly view of the same
trader and filters, "what about their duty?" switches to the duty view of the same trader.
One Conversation belongs to one officer's chat; it is safe to use from several threads.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.slots import MASKS, STOPWORDS

if TYPE_CHECKING:
    from assistant.slots import Slots
    from tamga.answer import Answer

MAX_TURNS = 200

# How a follow-up starts: these always continue the conversation ...
FOLLOW_UP_START = re.compile(
    r"^(?:and|also|plus|what about|how about|what if|same|now|then|but|only|just|instead|ok|"
    r"okay|so|show (?:it|that|them|this|me that)|as an?|make it|break (?:it|that|this) down|"
    r"again|excluding|exclude|without|limit (?:it|that)|do the same)\b",
    re.IGNORECASE,
)
# A question naming who it ranks is a question of its own, however short.
SUBJECT = re.compile(r"\b(?:importers|exporters|traders|companies|firms)\b", re.IGNORECASE)
# ... these only when the question is short ("by month", "in 2023", "top 5").
SHORT_FOLLOW_UP_START = re.compile(
    r"^(?:by|per|in|for|from|with|compared|versus|vs|top|sort|rank|order|split|since|during)\b",
    re.IGNORECASE,
)
# Words that carry no request of their own in a follow-up ("and in 2023 only, please").
_FILLER = STOPWORDS | {m.lower() for m in MASKS.values()} | {
    "only", "just", "instead", "show", "it", "that", "please", "chart", "graph", "plot",
    "picture", "diagram", "table", "same", "now", "then", "also", "what", "about", "how", "as",
    "them", "their", "they", "those", "these", "this", "one", "ones", "again", "ok", "okay",
    "thanks", "top", "import", "imports", "imported", "importers", "export",
    "exports", "exported", "exporters", "both", "too", "year", "visualise",
    "visualize", "draw", "make", "give", "view",
}
# A follow-up that only changes how a ranking is measured ("ranked by duty", "by weight").
METRIC_ONLY = re.compile(
    r"^\W*(?:(?:and|now|ok|okay|then|what about|how about|instead)\W+)*(?:(?:ranked|sorted|"
    r"ordered|rank(?: it| them)?|sort(?: it| them)?|order(?: it| them)?)\s+)?(?:by|in terms of)\s+"
    r"(?:the\s+)?(?:duty|duties|value|customs value|weight|mass|tonnage|count|number of "
    r"declarations|declarations)(?:\s+instead)?\W*$", re.IGNORECASE)


def content_words(masked: str) -> list[str]:
    """The words of a (masked) follow-up that ask for something beyond its slot values."""
    words = re.findall(r"[a-z]+", masked.lower())
    return [w for w in words if w not in _FILLER and len(w) > 1 and not w.isdigit()]


def looks_like_follow_up(question: str, masked: str, slots: Slots) -> bool:
    """True when a question reads as a continuation of the previous one."""
    words = re.findall(r"[\w'-]+", question)
    if FOLLOW_UP_START.match(question.strip()):
        return True
    if SUBJECT.search(question):
        return False  # "Top importers in 2024" stands on its own
    if len(words) <= 4:
        return True
    if len(words) <= 6 and SHORT_FOLLOW_UP_START.match(question.strip()):
        return True
    return slots.chart and len(content_words(masked)) <= 1


def merge_slots(previous: Slots, new: Slots) -> Slots:
    """The previous question's slots updated with what a follow-up says."""
    merged = previous.copy()
    if new.trader is not None:
        merged.trader = new.trader
        merged.trader_text = new.trader_text
    if new.trader_candidates:
        merged.trader_candidates = list(new.trader_candidates)
    else:
        merged.trader_candidates = []
    if new.periods:
        merged.periods = list(new.periods)
        merged.range_period = new.range_period
    for name in ("flow", "hs", "office", "channel", "metric", "grain", "top_n", "declaration"):
        value = getattr(new, name)
        if value is not None:
            setattr(merged, name, value)
    if new.countries:
        merged.countries = list(new.countries)
    merged.chart = new.chart
    merged.yoy = new.yoy or (previous.yoy and not new.periods)
    merged.like_for_like = new.like_for_like or (previous.like_for_like and not new.periods)
    merged.problems = list(new.problems)
    merged.notes = list(new.notes)
    merged.masked = new.masked
    merged.spans = list(new.spans)
    merged.unknown_name = new.unknown_name
    merged.pronoun = new.pronoun
    return merged


@dataclass
class TurnState:
    """What the engine understood of a turn: the intent it answered and the slots it used."""

    intent_id: str | None
    slots: Slots | None
    query: Any = None  # the QueryPlan answered (tamga.plan), for follow-ups that change it


@dataclass
class Turn:
    """One question and its answer."""

    question: str
    answer: Answer
    state: TurnState | None = None
    at: float = field(default_factory=time.time)


class Conversation:
    """The turns of one chat and the state follow-ups build on."""

    def __init__(self, conversation_id: str | None = None, user: str = "cli") -> None:
        self.id = conversation_id or uuid.uuid4().hex[:12]
        self.user = user
        self.turns: list[Turn] = []
        self._state: TurnState | None = None
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held while one question of this conversation is being answered."""
        return self._lock

    @property
    def last_answer(self) -> Answer | None:
        """The answer of the latest turn, if any."""
        with self._lock:
            return self.turns[-1].answer if self.turns else None

    @property
    def state(self) -> TurnState | None:
        """The intent and slots of the last question the offline engine understood."""
        with self._lock:
            return self._state

    def record(self, question: str, answer: Answer, state: TurnState | None = None) -> None:
        """Add a turn; a turn with a state becomes what the next follow-up builds on."""
        with self._lock:
            self.turns.append(Turn(question, answer, state))
            if len(self.turns) > MAX_TURNS:
                del self.turns[: len(self.turns) - MAX_TURNS]
            if state is not None and state.intent_id is not None:
                self._state = state

    def history(self, n: int = 6) -> list[tuple[str, str]]:
        """The last n (question, answer text) pairs, oldest first (for an LLM prompt)."""
        with self._lock:
            return [(t.question, t.answer.text) for t in self.turns[-n:]]

    def reset(self) -> None:
        """Forget every turn and the follow-up state."""
        with self._lock:
            self.turns.clear()
            self._state = None

    def to_json(self) -> dict[str, Any]:
        """The conversation as plain data (questions, answers and what each was understood as)."""
        with self._lock:
            return {
                "id": self.id,
                "user": self.user,
                "turns": [
                    {"question": t.question, "answer": t.answer.text, "engine": t.answer.engine,
                     "intent": t.answer.intent, "slots": t.answer.slots, "at": t.at}
                    for t in self.turns
                ],
            }
