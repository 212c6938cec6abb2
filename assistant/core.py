"""`Assistant`: the public Python API behind the CLI and the web app.

    assistant = Assistant()                      # settings from TAMGA_* / ~/.tamga
    chat = assistant.new_conversation(user="officer7")
    answer = assistant.ask("What did Jefferson Food Distributors import in 2024?", chat,
                           user="officer7")
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
from typing import Any, Protocol, runtime_checkable

from assistant.audit_log import AuditLog, answer_record
from assistant.context import DataContext, DataContexts
from assistant.conversation import Conversation, TurnState
from assistant.intents import load_intents
from assistant.matcher import Matcher
from assistant.offline import OfflineEngine, Plan
from retrieval.search import RegulationsIndex
from tamga.answer import Answer
from tamga.errors import LLMUnavailable, TamgaError
from tamga.plan import QueryPlan
from tamga.scope import Scope
from tamga.settings import Settings, get_settings
from tools.access import UserStore, resolve_scope

ENGINES = ("auto", "offline", "llm")
NEVER_TO_LLM = ("refuse", "empty", "too_long", "foreign", "impossible")


@runtime_checkable
class Engine(Protocol):
    """An engine that answers a question (the LLM engine implements this)."""

    name: str

    def answer(self, question: str, conversation: Conversation | None) -> Answer:
        """Answer one question; raise LLMUnavailable when the model cannot be reached."""
        ...


class _ScopeEngines:
    """The offline engine of one scope and its LLM engine (built on first need)."""

    def __init__(self, offline: OfflineEngine) -> None:
        self.offline = offline
        self.llm: Engine | None = None
        self.llm_tried = False


class Assistant:
    """Routes questions to the engines, keeps conversations going and logs every answer.

    What each user may see is resolved from the users store to a `Scope`; each scope gets its
    own data context (runners, trader index, slot look-ups, LLM data card) and engines, so
    nothing derived from one officer's data reaches another's answers or prompts.
    """

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
        users: UserStore | None = None,
    ) -> None:
        """`llm_engine`: the LLM engine to use for every scope (tests); when None and
        `load_llm`, the one the settings configure (TAMGA_LLM_BASE_URL or TAMGA_LOCAL_MODEL)
        is built per scope on first need. `offline`: an engine to reuse for its own scope (its
        intent matcher is shared by every scope)."""
        settings = settings or get_settings()
        if engine not in ENGINES:
            raise TamgaError(f"Unknown engine {engine!r}: use auto, offline or llm.")
        self.settings = settings
        self.db_path = Path(db_path or settings.database).expanduser()
        self.index_dir = Path(index_dir or settings.index).expanduser()
        self.default_engine = engine
        self.llm_engine = llm_engine
        self._load_llm = load_llm and llm_engine is None
        self._llm_error: str | None = None
        self.library = offline.library if offline is not None else load_intents()
        self.matcher = offline.matcher if offline is not None else Matcher(self.library)
        self.regulations = RegulationsIndex(self.index_dir, chroma_url=settings.chroma_url)
        self.contexts = DataContexts(self.db_path, settings, regulations=self.regulations,
                                     vocabulary=frozenset(self.library.vocabulary()))
        self.users = users or UserStore.from_settings(settings)
        self.audit = AuditLog.in_folder(log_dir or settings.logs) if audit else None
        self._lock = threading.Lock()
        self._engines: dict[str, _ScopeEngines] = {}
        if offline is not None:
            self._engines[offline.context.scope.key] = _ScopeEngines(offline)

    # -- scopes and engines ------------------------------------------------------------------------

    def scope_of(self, user: str) -> Scope:
        """What `user` may see (AccessDenied for an unknown user once users exist)."""
        return resolve_scope(user, self.users)

    def context_for(self, scope: Scope) -> DataContext:
        """The data context of `scope` (built once per scope and database version)."""
        found = self._engines.get(scope.key)
        if found is not None and found.offline.context.database == self.db_path:
            return found.offline.context
        return self.contexts.get(scope)

    def _scope_engines(self, scope: Scope) -> _ScopeEngines:
        context = self.context_for(scope)
        with self._lock:
            found = self._engines.get(scope.key)
            if found is None or found.offline.context is not context:
                found = _ScopeEngines(OfflineEngine(context, self.matcher, self.library))
                self._engines[scope.key] = found
            return found

    def offline_for(self, scope: Scope) -> OfflineEngine:
        """The offline engine whose queries see only what `scope` may see."""
        return self._scope_engines(scope).offline

    @property
    def offline(self) -> OfflineEngine:
        """The offline engine of an unrestricted scope (single-user installs, supervisors)."""
        return self.offline_for(Scope.everything())

    def llm_for(self, scope: Scope) -> Engine | None:
        """The LLM engine for `scope`: the one given, or the configured one (built once per
        scope over that scope's data context), or None."""
        if self.llm_engine is not None:
            return self.llm_engine
        engines = self._scope_engines(scope)
        with self._lock:
            if engines.llm is not None or engines.llm_tried or not self._load_llm:
                return engines.llm
            engines.llm_tried = True
        if not (self.settings.llm_base_url or self.settings.local_model):
            return None
        try:
            from assistant.llm import build_engine

            built = build_engine(engines.offline, self.settings)
        except (TamgaError, ImportError) as exc:
            self._llm_error = str(exc)
            return None
        with self._lock:
            engines.llm = built
        return built

    def llm(self) -> Engine | None:
        """The LLM engine of the unrestricted scope (see llm_for)."""
        return self.llm_for(Scope.everything())

    def engines_for(
        self, user: str
    ) -> tuple[OfflineEngine, Callable[[], Engine | None], Scope]:
        """The offline engine and a getter of the LLM engine whose queries see only what
        `user` may see (the LLM engine is built on first need)."""
        scope = self.scope_of(user)
        return self.offline_for(scope), lambda: self.llm_for(scope), scope

    def new_conversation(self, user: str = "cli") -> Conversation:
        """A fresh conversation for one officer's chat."""
        return Conversation(user=user)

    def warm(self) -> None:
        """Load the intent embeddings, the encoder and the database look-ups now rather than on
        the first question (the look-ups of the unrestricted scope; officers' scopes are built
        on their first question). With the local model configured, it is loaded too and its
        fixed plan prompt evaluated, so the first question pays only for its own words."""
        self.offline.warm()
        if self.settings.local_model and not self.settings.llm_base_url:
            engine = self.llm()
            warm = getattr(engine, "warm", None)
            if callable(warm):
                warm()

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

    def ask_plan(self, plan: QueryPlan | dict[str, Any], conversation: Conversation | None = None,
                 user: str = "cli") -> Answer:
        """Answer a query plan directly (the app's one-click changes of an answered plan): it
        is validated, compiled and run through the user's scoped runner, and logged."""
        started = time.perf_counter()
        lock = conversation.lock if conversation is not None else contextlib.nullcontext()
        with lock:
            try:
                query = plan if isinstance(plan, QueryPlan) else QueryPlan.model_validate(plan)
                offline, _llm, scope = self.engines_for(user)
                answer = offline.run_query(query)
                if not scope.unrestricted:
                    answer.warnings.append(f"Scope: {scope.describe()}.")
                state: TurnState | None = TurnState("query", None, query)
                question = answer.understood or "plan"
            except (TamgaError, ValueError) as exc:
                message = str(exc).splitlines()[0]
                answer, state, question = Answer(message, engine="error",
                                                 warnings=[message]), None, "plan"
            answer.elapsed_ms = (time.perf_counter() - started) * 1000
            answer.timings["total_ms"] = answer.elapsed_ms
            if conversation is not None:
                conversation.record(question, answer, state)
        if self.audit is not None:
            self.audit.append(answer_record(
                question, answer, user, conversation.id if conversation is not None else None))
        return answer

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
