"""The one answer type both engines return, and its JSON form (`tamga ask --json`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Table:
    """A result table: column names and rows of JSON-friendly values."""

    columns: list[str]
    rows: list[list[Any]]
    title: str = ""
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """`{"columns": [...], "rows": [[...], ...]}` as in docs/architecture.md."""
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass
class Citation:
    """A passage an answer rests on."""

    source: str
    locator: str
    text: str
    score: float = 0.0
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        """`{"source", "locator", "text", "score"}` as in docs/architecture.md."""
        return {
            "source": self.source,
            "locator": self.locator,
            "text": self.text,
            "score": round(float(self.score), 4),
        }


@dataclass
class Answer:
    """What an engine says back: text plus everything it came from.

    `chart` is a small spec the UI turns into an Altair chart:
    {"kind": "bar"|"line", "x": column, "y": column, "color": column|None, "title": str}.
    """

    text: str
    engine: str  # "offline" | "llm" | "local" | "refused" | "error"
    sql: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    citations: list[Citation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    suggestions: list[str] = field(default_factory=list)
    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    # What was handed to a language model (tools.egress.egress_summary): destination, policy,
    # counts and every payload. None when no model was asked (the offline engine).
    egress: dict[str, Any] | None = None
    # The typed query plan the answer came from (tamga.plan.QueryPlan as JSON data) and its
    # reading in one sentence ("I understood: ..."); None when no plan was used.
    plan: dict[str, Any] | None = None
    understood: str | None = None

    @property
    def table(self) -> Table | None:
        """The main result table, if any."""
        return self.tables[0] if self.tables else None

    def to_json(self, question: str) -> dict[str, Any]:
        """The `tamga ask --json` object of docs/architecture.md (plus a few extra keys)."""
        return {
            "question": question,
            "answer": self.text,
            "engine": self.engine,
            "sql": list(self.sql),
            "table": self.table.to_json() if self.table else None,
            "citations": [c.to_json() for c in self.citations],
            "elapsed_ms": round(self.elapsed_ms, 1),
            "chart": self.chart,
            "warnings": list(self.warnings),
            "intent": self.intent,
            "suggestions": list(self.suggestions),
            "plan": self.plan,
            "understood": self.understood,
            **({"egress": self.egress} if self.egress is not None else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, for the audit log and session state."""
        return asdict(self)
