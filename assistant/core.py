"""`Assistant`: the public Python API behind the CLI and the web app.

    assistant = Assistant()                      # settings from TAMGA_* / ~/.tamga
    chat = assistant.new_conversation(user="officer7")
    answer = assistant.ask("What did Puma Moda import in 2024?", chat, user="officer7")
    answer = assistant.ask("and in 2023?", chat, user="officer7")

Routing (`engine`): "offline" always uses the verified intents; "llm" uses the language model
engine when one is configured; "auto" (the default) answers directly from a verified intent
that matches with high confidence, otherwise asks the LLM engine if configured, otherwise
gives the offline engine's honest answer. Requests to change data are refused by the offline
engine whatever the mode, and never reach a model. Every answer is appended to the audit log.
One Assistant serves many threads; each conversation is answered one question at a time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from assistant.answer import Answer
from assistant.audit_log import AuditLog, answer_record
from assistant.conversation import Conversation, TurnState
from assistant.errors import LLMUnavailable, TamgaError
from assistant.offline import OfflineEngine, Plan

if TYPE_CHECKING:
    from assistant.settings import Settings
    from tools.scoping import Scope

ENGINES = ("auto", "offline", "llm")
NEVER_TO_LLM = ("refuse", "empty", "too_long", "foreign")


@runtime_checkable
class Engine(Protocol):
    """An engine that answers a question (the LLM engine implements this)."""

    name: str

    def answer(self, question: str, conversation: Conversation | None) -> Answer:
        """Answer one question; raise LLMUnavailable when the model cannot be reached."""
        ...


class Assistant:
    """Routes questions to the engines, keeps conversations going and logs every answer."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        db_path: Path | None = None,
        index_dir: Path | None = None,
        log_dir: Path | None = None,
        llm_engine: Engine | None = None,
        load_llm: bool = True,
        engine: str = "auto",
        audit: bool = True,
        offline: OfflineEngine | None = None,
    ) -> None:
        """`llm_engine`: the LLM engine to use; when None and `load_llm`, the one the settings
        configure (TAMGA_LLM_BASE_URL or TAMGA_LOCAL_MODEL) is built on first need."""
        if settings is None:
            from assistant.settings import get_settings

            settings = get_settings()
        if engine not in ENGINES:
            raise TamgaError(f"Unknown engine {engine!r}: use auto, offline or llm.")
        self.settings = settings
        self.db_path = Path(db_path or settings.database).expanduser()
        self.index_dir = Path(index_dir or settings.index).expanduser()
        self.default_engine = engine
        self.llm_engine = llm_engine
        self._injected_llm = llm_engine  # a given engine (tests) cannot be re-scoped
        self._load_llm = load_llm and llm_engine is None
        self._llm_error: str | None = None
        self.offline = offline or OfflineEngine(
            self.db_path, self.index_dir, cache_dir=settings.resolved_home() / "cache",
            timeout_s=settings.sql_timeout_s, row_cap=settings.sql_row_cap)
        self.audit = AuditLog.in_folder(log_dir or settings.logs) if audit else None
        self._lock = threading.Lock()
        # Officers see only their offices: one offline engine (and LLM engine) per scope, all
        # running their SQL through a ScopedRunner that rewrites every query.
        self._scoped: dict[str, tuple[OfflineEngine, Engine | None]] = {}

    def engines_for(
        self, user: str
    ) -> tuple[OfflineEngine, Callable[[], Engine | None], Scope]:
        """The offline engine and a getter of the LLM engine whose queries see only what
        `user` may see (the LLM engine is built on first need)."""
        from tools.access import resolve_scope

        scope = resolve_scope(user)
        if scope.unrestricted:
            return self.offline, self.llm, scope
        with self._lock:
            found = self._scoped.get(scope.key)
        if found is None:
            from tools.scoping import ScopedRunner

            runner = ScopedRunner(self.offline.runner, scope)
            offline = OfflineEngine(
                self.db_path, self.index_dir, runner=runner, library=self.offline.library,
                cache_dir=self.settings.resolved_home() / "cache",
                timeout_s=self.settings.sql_timeout_s, row_cap=self.settings.sql_row_cap)
            with self._lock:
                found = self._scoped.setdefault(scope.key, (offline, None))
        offline = found[0]

        def scoped_llm() -> Engine | None:
            with self._lock:
                engine = self._scoped[scope.key][1]
            if engine is not None or self._injected_llm is not None:
                return engine or self._injected_llm
            if not (self.settings.llm_base_url or self.settings.local_model):
                return None
            try:
                from assistant.llm import build_engine

                engine = build_engine(offline.runner, self.index_dir, self.settings)
            except (TamgaError, ImportError) as exc:
                self._llm_error = str(exc)
                return None
            with self._lock:
                self._scoped[scope.key] = (offline, engine)
            return engine

        return offline, scoped_llm, scope

    def new_conversation(self, user: str = "cli") -> Conversation:
        """A fresh conversation for one officer's chat."""
        return Conversation(user=user)

    def warm(self) -> None:
        """Load the database look-ups and the embedding model now rather than on first use."""
        self.offline.warm()

    def ask(self, question: str, conversation: Conversation | None = None, user: str = "cli",
            engine: str | None = None, on_step: Callable[[str], None] | None = None) -> Answer:
        """Answer one question (a follow-up when `conversation` has earlier turns) and log it.

        `on_step` is called with a short line for each step (for a progress display)."""
        mode = engine or self.default_engine
        # a lone UTF-16 surrogate cannot be encoded (log, tokenizer): make it a "?"
        question = question.encode("utf-8", "replace").decode("utf-8")
        if mode not in ENGINES:
            raise TamgaError(f"Unknown engine {mode!r}: use auto, offline or llm.")
        started = time.perf_counter()
        lock = conversation.lock if conversation is not None else contextlib.nullcontext()
        with lock:
            try:
                offline, llm_getter, scope = self.engines_for(user)
                answer, state = self._route(question, conversation, mode,
                                            on_step or (lambda _step: None), offline, llm_getter)
                if not scope.unrestricted:
                    answer.warnings.append(f"Scope: {scope.describe()}.")
            except TamgaError as exc:
                answer = Answer(str(exc), engine="error", warnings=[str(exc)])
                state = None
            answer.elapsed_ms = (time.perf_counter() - started) * 1000
            answer.timings["total_ms"] = answer.elapsed_ms
            if conversation is not None:
                conversation.record(question, answer, state)
        if self.audit is not None:
            self.audit.append(answer_record(
                question, answer, user, conversation.id if conversation is not None else None))
        return answer

    def llm(self) -> Engine | None:
        """The LLM engine: the one given, or the one the settings configure (built once)."""
        with self._lock:
            if self.llm_engine is None and self._load_llm:
                self._load_llm = False
                if self.settings.llm_base_url or self.settings.local_model:
                    try:
                        from assistant.llm import build_engine

                        self.llm_engine = build_engine(self.offline.runner, self.index_dir,
                                                       self.settings)
                    except (TamgaError, ImportError) as exc:
                        self._llm_error = str(exc)
            return self.llm_engine

    def _route(self, question: str, conversation: Conversation | None, mode: str,
               step: Callable[[str], None], offline: OfflineEngine,
               llm_getter: Callable[[], Engine | None]) -> tuple[Answer, TurnState | None]:
        step("Reading the question")
        plan = offline.plan(question, conversation)
        use_llm = plan.kind not in NEVER_TO_LLM and (
            mode == "llm" or (mode == "auto" and not plan.confident))
        llm = llm_getter() if use_llm else None
        if use_llm and llm is not None:
            step("Asking the language model")
            try:
                answer = llm.answer(question, conversation)
            except LLMUnavailable as exc:
                answer = self._offline(offline, plan)
                answer.warnings.insert(0, f"The language model is unavailable ({exc}); this "
                                       "answer comes from the offline engine.")
                # what the model had already been sent before it failed stays on record
                answer.egress = getattr(exc, "egress", None)
                return answer, offline.state_of(plan)
            return answer, None
        answer = self._offline(offline, plan, step)
        if mode == "llm" and llm is None and plan.kind not in NEVER_TO_LLM:
            why = self._llm_error or ("no language model is configured (TAMGA_LLM_BASE_URL or "
                                      "TAMGA_LOCAL_MODEL)")
            answer.warnings.insert(0, f"The LLM engine is not available: {why}; this answer "
                                   "comes from the offline engine.")
        return answer, offline.state_of(plan)

    @staticmethod
    def _offline(offline: OfflineEngine, plan: Plan,
                 step: Callable[[str], None] | None = None) -> Answer:
        if step is not None and plan.intent is not None:
            step("Searching the regulations" if plan.kind == "search"
                 else f"Running the verified query: {plan.intent.title}")
        return offline.execute(plan)
