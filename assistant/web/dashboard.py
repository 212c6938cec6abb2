"""Supervisor dashboard page: key figures for a period with change, trends, top movers."""

from __future__ import annotations

from typing import Any, Literal, cast

import streamlit as st

from assistant.errors import TamgaError
from assistant.web.render import column_config
from assistant.web.resources import get_runner, reporting_currency
from tools import dashboard


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
    periods = dashboard.recent_periods(
        span[1], cast(dashboard.PeriodKind, kind), 36 if kind == "month" else 12
    )
    periods = [p for p in periods if p.end > span[0]]
    labels = [p.label for p in periods]
    chosen = right.selectbox("Period", labels, index=0, key="dash_period")
    period = periods[labels.index(chosen)]
    previous = period.previous()

    current_figures, _ = dashboard.key_figures(runner, period)
    previous_figures, _ = dashboard.key_figures(runner, previous)
    st.caption(f"Imports in {period.label}, compared with {previous.label}. Amounts in {currency}.")
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
    trend_start = dashboard.recent_periods(period.start, "month", 24)[-1].start
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
