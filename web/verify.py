"""The document check: upload an invoice, packing list or certificate of origin, see what differs
from its declaration, with the rule behind each discrepancy (chat page and trader profile)."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from tamga.errors import TamgaError
from tamga.settings import get_settings
from web.resources import get_assistant, get_context

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: Any) -> str:
    """Document text shown as plain text where Streamlit renders Markdown (st.table, messages):
    a link or image in a hostile document must not become one on the page."""
    return _MARKDOWN.sub(r"\\\1", "" if text is None else str(text))


UPLOAD_TYPES = ["pdf", "docx", "xlsx", "csv", "txt", "png", "jpg", "jpeg", "tif", "tiff"]


def _run_check(key: str, upload: Any, declaration: str) -> None:
    from assistant.verification import check_document
    from tools.verify import FindingsStore

    settings = get_settings()
    try:
        report = check_document(
            upload.getvalue(), upload.name, get_context(),
            user=st.session_state.get("user", "web"), audit=get_assistant().audit,
            store=FindingsStore(settings.findings), declaration_id=declaration.strip() or None,
            max_bytes=int(settings.max_verify_mb * 1_000_000))
    except TamgaError as exc:
        st.session_state[key] = {"error": str(exc), "document": upload.name}
        return
    st.session_state[key] = {"report": report}


def document_check(key: str, trader_id: str | None = None) -> None:
    """The upload form and, once a document was checked, its discrepancies and fields."""
    result_key = f"{key}-result"
    upload = st.file_uploader(
        "Commercial invoice, packing list or certificate of origin",
        type=UPLOAD_TYPES, key=f"{key}-file",
        help="PDF with a text layer, DOCX, XLSX or CSV; scanned images only where an OCR "
             "engine (tesseract) is installed. Nothing is written to the trade data.")
    declaration = st.text_input(
        "Declaration ID (optional)", key=f"{key}-decl",
        placeholder="e.g. 2025-402-IM-0000982; found by trader, date and goods when empty")
    if st.button("Check the document", key=f"{key}-go", disabled=upload is None):
        with st.spinner("Reading the document and comparing it with the declaration…"):
            _run_check(result_key, upload, declaration)
    result = st.session_state.get(result_key)
    if result is None:
        return
    if "error" in result:
        st.error(md_escape(result["error"]))
        return
    _show_report(result["report"], trader_id, key)


def _show_report(report: Any, trader_id: str | None, key: str) -> None:
    import json

    import pandas as pd

    if trader_id and report.trader_id != trader_id:
        st.warning(md_escape(f"The matching declaration belongs to {report.trader_name} "
                             f"({report.trader_id}), not to the trader of this profile."))
    (st.success if report.clean else st.warning)(md_escape(report.summary()))
    for warning in report.warnings:
        st.caption(md_escape(f"Note: {warning}"))
    if report.discrepancies:
        st.markdown("**Discrepancies**")
        rows = report.rows()
        st.table(pd.DataFrame(
            [[md_escape(v) for v in (r[0], r[1], r[2], r[3], r[4], d.rule.provision,
                                      f"{d.rule.locator} ({d.rule.source})")]
             for r, d in zip(rows, report.discrepancies, strict=True)],
            columns=["field", "line", "document", "declared", "difference", "rule",
                     "guidance passage"]))
        with st.expander("Why each one matters"):
            for n, d in enumerate(report.discrepancies, 1):
                st.text(f"[{n}] {d.explanation}")
    with st.expander(md_escape(f"Fields read from {report.document} ({len(report.fields)})")):
        st.table(pd.DataFrame([[md_escape(f["name"]), md_escape(_cell(f["value"])),
                                md_escape(f["where"])]
                               for f in report.fields], columns=["field", "value", "where"]))
    with st.expander("How I got this"):
        for sql in report.sql:
            st.code(sql.strip(), language="sql")
    st.download_button("Findings (JSON)", json.dumps(report.to_json(), indent=1, default=str),
                       file_name=f"findings-{report.declaration_id}.json",
                       mime="application/json", key=f"{key}-json")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "related" if value else "not related"
    return "" if value is None else str(value)
