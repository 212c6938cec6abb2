"""Checking a trade document for a user: read it, verify it, keep the findings, log it.

The edges (CLI, web app) call `check_document` with the user's data context (its scoped runner
and trader index), the audit log and the findings store. Every check is appended to the audit
log, a refused document included; a finished check is kept under TAMGA_HOME/findings (never in
the trade database, which stays read-only).

    report = check_document(data, "invoice.pdf", context, user="ana",
                            audit=AuditLog.in_folder(settings.logs),
                            store=FindingsStore(settings.findings))
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from assistant.audit_log import AuditLog, egress_counts
from tamga.errors import TamgaError
from tools.documents import MAX_BYTES, extract, read_document
from tools.verify import FindingsStore, VerificationReport, verify_document

if TYPE_CHECKING:
    from assistant.context import DataContext
    from tools.verify import References


def check_document(
    data: bytes, name: str, context: DataContext, *, user: str, audit: AuditLog | None = None,
    store: FindingsStore | None = None, declaration_id: str | None = None,
    max_bytes: int = MAX_BYTES, references: References | None = None,
) -> VerificationReport:
    """Read, extract and verify a document as `context`'s scope sees the data.

    Raises DocumentRefused (bad document) or DeclarationNotFound (nothing to compare with);
    either way the attempt is in the audit log."""
    started = time.perf_counter()
    digest = hashlib.sha256(data).hexdigest()
    question = f"verify {name}" + (f" against {declaration_id}" if declaration_id else "")
    try:
        doc = extract(read_document(data, name, max_bytes=max_bytes))
        report = verify_document(doc, context.runner, declaration_id=declaration_id,
                                 traders=context.traders, references=references)
    except TamgaError as exc:
        if audit is not None:
            audit.append(_record(user, question, f"Refused: {exc}", [], [], [str(exc)],
                                 started, {"document": name, "sha256": digest,
                                           "declaration_id": declaration_id, "error": str(exc),
                                           "scope": context.scope.describe()}))
        raise
    saved = str(store.save(report, user)) if store is not None else None
    if audit is not None:
        sources = []
        for d in report.discrepancies:
            entry = {"source": d.rule.source, "locator": d.rule.locator}
            if entry not in sources:
                sources.append(entry)
        audit.append(_record(user, question, report.summary(), report.sql, sources,
                             report.warnings, started, {
                                 "document": name, "sha256": digest,
                                 "doc_type": report.doc_type,
                                 "declaration_id": report.declaration_id,
                                 "trader_id": report.trader_id, "match": report.match.get("how"),
                                 "discrepancies": [
                                     {"field": d.field, "line": d.line,
                                      "difference": d.to_json()["difference"]}
                                     for d in report.discrepancies],
                                 "findings_file": saved, "scope": context.scope.describe()}))
    return report


def _record(user: str, question: str, answer: str, sql: list[str],
            sources: list[dict[str, str]], warnings: list[str], started: float,
            verification: dict[str, Any]) -> dict[str, Any]:
    """An audit record shaped like an answered question's, plus the verification itself."""
    return {"user": user, "conversation": None, "question": question, "engine": "verify",
            "intent": "document_verification", "sql": list(sql), "sources": sources,
            "answer": answer, "warnings": list(warnings),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            "egress": egress_counts(None), "verification": verification}
