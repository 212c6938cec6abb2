"""Rendering an Answer in Streamlit: text, table, chart, provenance, citations, suggestions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import streamlit as st

from tamga.answer import Answer, Table

if TYPE_CHECKING:
    import pandas as pd


def table_frame(table: Table) -> pd.DataFrame:
    """A result table as a DataFrame (for sorting, download and charts)."""
    import pandas as pd

    return pd.DataFrame(table.rows, columns=table.columns)


def money_columns(columns: list[str]) -> list[str]:
    """Columns that hold amounts of money, judged by name."""
    words = ("value", "duty", "vat", "amount", "penalty", "price")
    return [c for c in columns if any(w in c.lower() for w in words)]


def column_config(frame: pd.DataFrame, currency: str = "") -> dict[str, Any]:
    """Number formats with thousands separators; money columns carry the currency."""
    config: dict[str, Any] = {}
    money = set(money_columns(list(frame.columns)))
    for name in frame.columns:
        if not str(frame[name].dtype).startswith(("int", "float")):
            continue
        if name in money:
            fmt = f"%,.2f {currency}".strip()
        elif str(frame[name].dtype).startswith("int"):
            fmt = "%,d"
        else:
            fmt = "%,.2f"
        config[name] = st.column_config.NumberColumn(name, format=fmt)
    return config


def _plain(value: Any) -> Any:
    """A table cell as Vega-Lite reads it (numbers stay numbers; dates and others as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        return float(value)  # Decimal, numpy numbers
    except (TypeError, ValueError):
        return str(value)


def _field(column: str) -> str:
    """A column name as a Vega-Lite field (dots and brackets would mean nested fields)."""
    return column.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace(
        "]", "\\]")


def chart_for(spec: dict[str, Any], table: Table) -> dict[str, Any] | None:
    """The Vega-Lite spec of the answer's small chart spec (bar or line, the rows inline), or
    None when its columns are not in the table. Written out directly: no Altair to import."""
    x, y = spec.get("x"), spec.get("y")
    if x not in table.columns or y not in table.columns:
        return None
    values = [{c: _plain(v) for c, v in zip(table.columns, row, strict=False)}
              for row in table.rows]
    tooltip = [{"field": _field(c), "title": c} for c in table.columns]
    if spec.get("kind", "bar") == "line":
        mark: dict[str, Any] = {"type": "line", "point": True}
        encoding: dict[str, Any] = {
            "x": {"field": _field(x), "type": "ordinal", "title": x},
            "y": {"field": _field(y), "type": "quantitative", "title": y}}
    else:
        mark = {"type": "bar"}
        encoding = {"y": {"field": _field(x), "type": "nominal", "sort": "-x", "title": x},
                    "x": {"field": _field(y), "type": "quantitative", "title": y}}
    encoding["tooltip"] = tooltip
    color = spec.get("color")
    if color and color in table.columns:
        encoding["color"] = {"field": _field(color), "type": "nominal", "title": color}
    return {"title": spec.get("title", ""), "data": {"values": values}, "mark": mark,
            "encoding": encoding, "height": 320}


@dataclass
class AnswerView:
    """What drawing an answer's table needs, built once per answer rather than on every rerun:
    the frame, its number formats, the CSV bytes and the chart as a Vega-Lite spec."""

    frame: pd.DataFrame | None = None
    config: dict[str, Any] = field(default_factory=dict)
    csv: bytes = b""
    chart: dict[str, Any] | None = None
    truncated: bool = False


def answer_view(answer: Answer, currency: str = "") -> AnswerView:
    """Build the AnswerView of `answer` (the chart spec too, once, here)."""
    table = answer.table
    if table is None or not table.columns:
        return AnswerView()
    frame = table_frame(table)
    return AnswerView(
        frame=frame,
        config=column_config(frame, currency),
        csv=frame.to_csv(index=False).encode("utf-8"),
        chart=chart_for(answer.chart, table) if answer.chart else None,
        truncated=table.truncated,
    )


def render_answer(
    answer: Answer, key: str, currency: str = "", view: AnswerView | None = None
) -> None:
    """Draw one answer: text, table with CSV download, chart, 'How I got this', citations.

    Pass the answer's `view` (answer_view) when drawing it again, so nothing is rebuilt."""
    st.markdown(answer.text)
    if answer.understood:
        st.caption(answer.understood)
    for warning in answer.warnings:
        st.warning(warning, icon="⚠️")
    view = view or answer_view(answer, currency)
    frame = view.frame
    if frame is not None:
        if view.chart is not None:
            st.vega_lite_chart(spec=view.chart, width="stretch")
        st.dataframe(frame, hide_index=True, width="stretch", column_config=view.config)
        caption = f"{len(frame):,} rows" + (" (cut at the row limit)" if view.truncated else "")
        st.caption(caption)
        st.download_button(
            "Download CSV",
            view.csv,
            file_name=f"tamga-{key}.csv",
            mime="text/csv",
            key=f"csv-{key}",
            on_click="ignore",
        )
    if answer.sql or answer.engine:
        with st.expander("How I got this"):
            st.markdown(
                f"**Engine:** {answer.engine}"
                + (f" · **Intent:** `{answer.intent}`" if answer.intent else "")
            )
            for sql in answer.sql:
                st.code(sql.strip(), language="sql")
            if answer.timings:
                st.caption(" · ".join(f"{k} {v:,.0f} ms" for k, v in answer.timings.items()))
    render_egress(answer)
    if answer.citations:
        st.markdown("**Sources**")
        for n, citation in enumerate(answer.citations, 1):
            with st.expander(f"[{n}] {citation.locator} — {citation.source}"):
                if citation.title:
                    st.caption(citation.title)
                st.markdown(citation.text)


def render_egress(answer: Answer) -> None:
    """'What was sent to the model': every payload a language model received for this answer
    (destination, data policy, rows sent and withheld), or that nothing left this machine."""
    egress = answer.egress
    if egress is None:
        return
    with st.expander("What was sent to the model"):
        if not egress.get("remote"):
            st.markdown(f"**Nothing left this machine** (model: "
                        f"{egress.get('destination', 'this machine')}).")
            return
        st.markdown(
            f"**Sent to** {egress.get('destination')} · **data policy** `{egress.get('policy')}`"
            f" · {egress.get('results_sent', 0)} payloads · {egress.get('rows_sent', 0):,} rows "
            f"sent · {egress.get('rows_withheld', 0):,} rows withheld")
        for record in egress.get("records", []):
            masked = ", ".join(record.get("masked_columns") or []) or "none"
            st.caption(f"{record.get('tool')} · {record.get('rows_sent', 0):,} rows sent · "
                       f"{record.get('rows_withheld', 0):,} withheld · masked: {masked}")
            if record.get("sql"):  # the query as run here, with the real values
                st.caption("Query run on this machine:")
                st.code(str(record["sql"]).strip(), language="sql")
            st.json(record.get("payload", {}), expanded=False)
