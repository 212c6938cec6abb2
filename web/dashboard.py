"""Supervisor dashboard page: key figures for a period with change, trends, top movers."""

from __future__ import annotations

from typing import Any, Literal, cast

import streamlit as st

from tamga.errors import TamgaError
from tamga.period import CalendarKind, Period, recent_periods
from tools import dashboard
from web.render import column_config
from web.resources import get_analysis_runner, get_runner, reporting_currency


def _delta(current: float, previous: float) -> str | None:
    change = dashboard.change_pct(current, previous)
    return None if change is None else f"{change:+.1f}% vs previous"


def dashboard_page() -> None:
    """Render the supervisor dashboard."""
    import altair as alt

    st.header("Supervisor dashboard")
    try:
        runner = get_runner()
        span = dashboard.data_range(runner)
    except TamgaError as exc:
        st.error(f"{exc}")
        return
    if span is None:
        st.info("The trade database holds no declarations yet. Import data with `tamga import`.")
        return
    currency = reporting_currency()
    left, right = st.columns([1, 3])
    kind = left.selectbox("Period type", ["month", "quarter", "year"], index=0, key="dash_kind")
    periods = recent_periods(
        span[1], cast(CalendarKind, kind), 36 if kind == "month" else 12
    )
    periods = [p for p in periods if p.end > span[0]]
    labels = [p.name for p in periods]
    chosen = right.selectbox("Period", labels, index=0, key="dash_period")
    period = periods[labels.index(chosen)]
    previous = period.previous()

    current_figures, _ = dashboard.key_figures(runner, period)
    previous_figures, _ = dashboard.key_figures(runner, previous)
    st.caption(f"Imports in {period.name}, compared with {previous.name}. Amounts in {currency}.")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        "Declarations",
        f"{current_figures.declarations:,}",
        _delta(current_figures.declarations, previous_figures.declarations),
    )
    c2.metric(
        f"Customs value ({currency})",
        f"{current_figures.customs_value:,.0f}",
        _delta(current_figures.customs_value, previous_figures.customs_value),
    )
    c3.metric(
        f"Duty ({currency})",
        f"{current_figures.duty:,.0f}",
        _delta(current_figures.duty, previous_figures.duty),
    )
    red_change = current_figures.red_share_pct - previous_figures.red_share_pct
    c4.metric(
        "Red channel share",
        f"{current_figures.red_share_pct:.1f}%",
        f"{red_change:+.1f} pts",
        delta_color="inverse",
    )

    st.subheader("Trend")
    trend_start = recent_periods(period.start, "month", 24)[-1].start
    trend = dashboard.monthly_trend(runner, trend_start, period.end).to_dataframe()
    if not trend.empty:
        chart = (
            alt.Chart(trend)
            .mark_line(point=True)
            .encode(
                x=alt.X("month:O", title="Month"),
                y=alt.Y("customs_value:Q", title=f"Customs value ({currency})"),
                tooltip=list(trend.columns),
            )
            .properties(height=280)
        )
        st.altair_chart(chart, width="stretch")

    st.subheader("Top movers")
    by_trader, by_chapter = st.tabs(["By trader", "By HS chapter"])
    movers_by: tuple[tuple[Any, Literal["trader", "chapter"]], ...] = (
        (by_trader, "trader"),
        (by_chapter, "chapter"),
    )
    for tab, by in movers_by:
        with tab:
            movers = dashboard.top_movers(runner, period, by=by, limit=10).to_dataframe()
            st.dataframe(
                movers,
                hide_index=True,
                width="stretch",
                column_config=column_config(movers, currency),
            )
    _audit_section(period, currency)


def _audit_section(period: Period, currency: str) -> None:
    """Who to audit next for the period, and the period briefing, computed on request."""
    import pandas as pd

    from tools.briefing import period_briefing
    from tools.trader_risk import audit_candidates

    st.subheader("Audit selection")
    key = f"audit-{period.name}"
    if st.button("Rank audit candidates and build the period briefing", key=f"btn-{key}"):
        with st.spinner("Scoring traders…"):
            runner = get_analysis_runner()
            candidates = audit_candidates(runner, period, n=15)
            briefing = period_briefing(runner, period)
            st.session_state[key] = (candidates, briefing.markdown(), briefing.pdf())
    if key not in st.session_state:
        st.caption("Ranks traders by expected revenue at stake (risk score x duty gap).")
        return
    candidates, markdown, pdf = st.session_state[key]
    frame = pd.DataFrame(
        [
            {
                "rank": c.rank,
                "trader": f"{c.name} ({c.trader_id})",
                "score": c.score,
                "duty_at_stake": c.duty_at_stake,
                "expected_revenue": c.expected_revenue,
                "why": "; ".join(c.reasons[:2]),
                "last_audit": c.last_audit,
            }
            for c in candidates
        ]
    )
    st.dataframe(
        frame, hide_index=True, width="stretch", column_config=column_config(frame, currency)
    )
    left, right = st.columns(2)
    left.download_button(
        "Period briefing (PDF)",
        pdf,
        file_name=f"briefing-{period.name}.pdf",
        mime="application/pdf",
        key=f"pdf-{key}",
    )
    right.download_button(
        "Period briefing (Markdown)",
        markdown,
        file_name=f"briefing-{period.name}.md",
        mime="text/markdown",
        key=f"md-{key}",
    )
