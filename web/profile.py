"""Trader profile page: find a trader, then identity, history charts, audits, declarations."""

from __future__ import annotations

from typing import Any

import streamlit as st

from tamga.errors import TamgaError
from tamga.settings import get_settings
from tools.trader_history import trader_history
from tools.traders import trader_profile
from web.render import column_config
from web.resources import (
    get_analysis_runner,
    get_assistant,
    get_context,
    reporting_currency,
)
from web.verify import document_check


def _bar(frame: Any, label: str, value: str, title: str) -> Any:
    import altair as alt

    return (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            y=alt.Y(f"{label}:N", sort="-x", title=None),
            x=alt.X(f"{value}:Q", title=value.replace("_", " ")),
            tooltip=list(frame.columns),
        )
        .properties(height=260)
    )


def profile_page() -> None:
    """Render the trader profile page."""
    import altair as alt

    st.header("Trader profile")
    query = st.text_input(
        "Trader name, TIN or ID",
        key="profile_query",
        placeholder="e.g. part of the company name, or its TIN",
    )
    if not query.strip():
        st.info("Type a name, TIN or trader ID to open a profile.")
        return
    try:
        context = get_context()
        matches = context.traders.find(query, limit=8)
    except TamgaError as exc:
        st.error(str(exc))
        return
    if not matches:
        st.warning(f"No trader matches “{query}”. Check the spelling, or search by TIN or ID.")
        return
    labels = [f"{m.name} ({m.trader_id})" for m in matches]
    chosen = st.selectbox("Matching traders", labels, index=0, key="profile_choice")
    match = matches[labels.index(chosen)]
    currency = reporting_currency()
    try:
        profile = trader_profile(context.runner, match.trader_id, context.traders)
        history = trader_history(context.runner, match.trader_id)
    except TamgaError as exc:
        st.error(str(exc))
        return

    st.subheader(profile.name)
    card = st.columns(4)
    card[0].metric("Trader ID", profile.trader_id)
    card[1].metric("TIN", profile.tin or "—")
    card[2].metric("Sector", profile.sector or "—")
    card[3].metric("AEO status", profile.aeo_status or "none")
    figures = profile.figures
    st.markdown(
        f"**Region:** {profile.region or '—'} · **Country:** {profile.country or '—'} · "
        f"**Registered:** {profile.registered_on or '—'}  \n"
        f"**Declarations:** {figures.get('declarations') or 0:,} · "
        f"**Imports:** {figures.get('import_value') or 0:,.2f} {currency} · "
        f"**Duty paid:** {figures.get('duty_paid') or 0:,.2f} {currency} · "
        f"**Red channel:** {figures.get('red_share_pct') or 0:.1f}% · "
        f"**Related-party share:** {figures.get('related_party_share_pct') or 0:.1f}%"
    )

    monthly = history["monthly_value"].to_dataframe()
    if not monthly.empty:
        st.altair_chart(
            alt.Chart(monthly, title=f"Monthly import value ({currency})")
            .mark_line(point=True)
            .encode(
                x=alt.X("month:O", title="Month"),
                y=alt.Y("customs_value:Q", title=currency),
                tooltip=list(monthly.columns),
            )
            .properties(height=260),
            width="stretch",
        )
    left, right = st.columns(2)
    headings = history["top_headings"].to_dataframe()
    origins = history["top_origins"].to_dataframe()
    suppliers = history["top_suppliers"].to_dataframe()
    if not headings.empty:
        left.altair_chart(
            _bar(headings, "heading", "customs_value", "Top HS headings"), width="stretch"
        )
    if not origins.empty:
        right.altair_chart(_bar(origins, "origin", "customs_value", "Top origins"), width="stretch")
    if not suppliers.empty:
        st.altair_chart(
            _bar(suppliers, "supplier", "customs_value", "Top suppliers"), width="stretch"
        )

    _risk_section(profile.trader_id, profile.name)

    st.subheader("Check a document")
    st.caption("Compare this trader's commercial invoice, packing list or certificate of "
               "origin with the declaration it supports; findings can go into the briefing.")
    document_check(f"doc-{profile.trader_id}", trader_id=profile.trader_id)

    st.subheader("Audit history")
    if profile.audits:
        import pandas as pd

        audits = pd.DataFrame(profile.audits)
        st.dataframe(
            audits, hide_index=True, width="stretch", column_config=column_config(audits, currency)
        )
    else:
        st.caption("No audits on record.")
    st.subheader("Latest declarations")
    latest = history["latest_declarations"].to_dataframe()
    st.dataframe(
        latest, hide_index=True, width="stretch", column_config=column_config(latest, currency)
    )
    with st.expander("How I got this"):
        for sql in profile.sql + [r.sql for r in history.values()]:
            st.code(sql.strip(), language="sql")


def _findings(runner: Any, trader_id: str) -> list[dict[str, Any]]:
    """The trader's kept verification findings that the user's scope may see."""
    from tools.verify import FindingsStore, visible_findings

    store = FindingsStore(get_settings().findings)
    return visible_findings(runner, store.for_trader(trader_id))


def _risk_section(trader_id: str, name: str) -> None:
    """Risk indicators with reasons, and the audit briefing, computed on request."""
    from tools.briefing import trader_briefing
    from tools.trader_risk import trader_score

    st.subheader("Risk indicators")
    key = f"risk-{trader_id}"
    with_findings = st.checkbox("Add the document verification findings to the briefing",
                                key=f"findings-{key}")
    if st.button("Compute risk indicators and briefing", key=f"btn-{key}"):
        with st.spinner("Comparing this trader's lines with their peers…"):
            runner = get_analysis_runner()
            score = trader_score(runner, trader_id)
            regulations = get_assistant().regulations
            briefing = trader_briefing(runner, trader_id, None,
                                       regulations if regulations.exists() else None,
                                       findings=_findings(runner, trader_id)
                                       if with_findings else None)
            st.session_state[key] = (score, briefing.markdown(), briefing.pdf())
    if key not in st.session_state:
        st.caption(
            "Indicators compare unit values, origins, splits, classification and "
            "related-party prices with peers; they take a few seconds."
        )
        return
    score, markdown, pdf = st.session_state[key]
    cols = st.columns(3)
    cols[0].metric("Risk score", f"{score.score:.2f}")
    cols[1].metric(f"Duty at stake ({reporting_currency()})", f"{score.duty_at_stake:,.0f}")
    cols[2].metric("Flags", f"{sum(score.flag_counts.values()):,}")
    if score.reasons:
        st.markdown("\n".join(f"- {reason}" for reason in score.reasons))
    else:
        st.success("No indicator flags this trader's declarations.")
    left, right = st.columns(2)
    left.download_button(
        "Briefing (PDF)",
        pdf,
        file_name=f"briefing-{trader_id}.pdf",
        mime="application/pdf",
        key=f"pdf-{key}",
    )
    right.download_button(
        "Briefing (Markdown)",
        markdown,
        file_name=f"briefing-{trader_id}.md",
        mime="text/markdown",
        key=f"md-{key}",
    )
