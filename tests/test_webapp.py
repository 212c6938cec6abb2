"""The web app, run with Streamlit's AppTest on a real demo database and guidance index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tamga.settings import get_settings
from tradedata.db import connect

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120


@pytest.fixture()
def app_env(
    demo_db: Path, guidance_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point the app at the demo database, the guidance index and a fresh log folder."""
    monkeypatch.setenv("TAMGA_DB_PATH", str(demo_db))
    monkeypatch.setenv("TAMGA_INDEX_DIR", str(guidance_index))
    monkeypatch.setenv("TAMGA_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("TAMGA_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "logs"
    get_settings.cache_clear()


def _reference(db: Path, sql: str, params: list[object] | None = None) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.execute(sql, params).fetchall()


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def _texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_empty_chat_shows_examples_for_each_kind_of_user(app_env: Path, demo_db: Path) -> None:
    at = _app().run()
    assert not at.exception
    markdown = _texts(at)
    for who in ("Audit officer", "Staff", "Supervisor"):
        assert who in markdown
    labels = [b.label for b in at.button]
    (top_trader,) = _reference(
        demo_db,
        "SELECT t.name FROM declarations d JOIN declaration_items i USING (declaration_id) "
        "JOIN traders t ON t.trader_id = d.trader_id WHERE d.flow = 'import' GROUP BY t.name "
        "ORDER BY sum(i.customs_value) DESC "
        "LIMIT 1",
    )[0]
    assert any(top_trader in label for label in labels)
    assert any("related parties" in label for label in labels)


def test_empty_chat_shows_the_data_at_a_glance_with_its_sql(app_env: Path, demo_db: Path
                                                            ) -> None:
    at = _app().run()
    assert not at.exception
    ((last,),) = _reference(demo_db, "SELECT max(declaration_date) FROM declarations")
    reference = _reference(
        demo_db,
        "SELECT strftime(d.declaration_date, '%Y-%m') AS m, sum(i.customs_value) "
        "FROM declarations d JOIN declaration_items i USING (declaration_id) "
        "WHERE d.flow = 'import' AND d.declaration_date >= date_trunc('month', ?::DATE) "
        "- INTERVAL 11 MONTH GROUP BY m ORDER BY m", [last])
    frame = at.dataframe[0].value
    assert frame["month"].tolist() == [m for m, _ in reference]
    assert frame["customs_value"].tolist() == pytest.approx([v for _, v in reference])
    assert any(e.label.startswith("The data at a glance") for e in at.expander)
    (chart,) = at.get("vega_lite_chart")
    assert json.loads(chart.proto.spec)["mark"]["type"] == "line"
    assert any("GROUP BY" in c.value.upper() for c in at.code)  # the SQL behind it
    at.chat_input[0].set_value("Top 5 importers in 2024").run()
    assert not any(e.label.startswith("The data at a glance") for e in at.expander)


def test_sidebar_describes_the_data_set(app_env: Path, demo_db: Path) -> None:
    at = _app().run()
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    ((items,),) = _reference(demo_db, "SELECT count(*) FROM declaration_items")
    assert f"{items:,}" in sidebar
    assert "USD" in sidebar
    assert "tamga-demo" in sidebar


def test_data_question_renders_table_sql_and_feedback(app_env: Path, demo_db: Path) -> None:
    at = _app().run()
    at.chat_input[0].set_value("Top 5 importers in 2024 by customs value").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.dataframe) >= 1
    frame = at.dataframe[0].value
    reference = _reference(
        demo_db,
        "SELECT sum(i.customs_value) FROM declarations d JOIN declaration_items i "
        "USING (declaration_id) WHERE d.flow = 'import' AND year(d.declaration_date) = 2024 "
        "GROUP BY d.trader_id ORDER BY 1 DESC LIMIT 5",
    )
    numeric = frame.select_dtypes("number")
    top_value = max(float(numeric[c].max()) for c in numeric.columns)
    assert top_value == pytest.approx(reference[0][0], rel=1e-6)
    assert any(e.label == "How I got this" for e in at.expander)
    assert any("SELECT" in c.value.upper() for c in at.code)
    # The chart draws the table's own rows, its axes named by the table's columns.
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    axes = {spec["encoding"][a]["field"] for a in ("x", "y")}
    assert axes <= set(frame.columns) and spec["mark"]["type"] == "bar"
    drawn = pa.ipc.open_stream(chart.proto.data.data).read_all().to_pydict()
    for column in axes:
        assert drawn[column] == frame[column].tolist()
    # Thumbs up is stored with the question.
    at.feedback[0].set_value(1).run()
    records = [json.loads(x) for x in (app_env / "feedback.jsonl").read_text().splitlines()]
    assert records[-1]["rating"] == "up"
    assert records[-1]["question"] == "Top 5 importers in 2024 by customs value"


def test_rule_question_shows_citations(app_env: Path) -> None:
    at = _app().run()
    at.chat_input[0].set_value(
        "When can we reject the declared price because buyer and seller are related?"
    ).run()
    assert not at.exception, at.exception
    cards = [e.label for e in at.expander if e.label.startswith("[")]
    assert cards, "no citation cards"
    assert any(".md" in label for label in cards)


def test_follow_up_keeps_the_conversation(app_env: Path) -> None:
    at = _app().run()
    at.chat_input[0].set_value("Top 5 importers in 2024").run()
    at.chat_input[0].set_value("and in 2023?").run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 4
    sql = "\n".join(c.value for c in at.code)
    assert "2023" in sql


def test_new_conversation_and_exports(app_env: Path) -> None:
    at = _app().run()
    at.chat_input[0].set_value("Top 5 importers in 2024").run()
    downloads = [getattr(b, "label", "") for b in at.sidebar.get("download_button")]
    assert "Export as Markdown" in downloads and "Export as PDF" in downloads
    at.sidebar.button[0].click().run()
    assert len(at.chat_message) == 0


def test_dashboard_key_figures_match_sql(app_env: Path, demo_db: Path) -> None:
    at = _app().run()
    at.sidebar.radio(key="page").set_value("Supervisor dashboard").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    ((count,),) = _reference(
        demo_db,
        "SELECT count(*) FROM declarations WHERE flow = 'import' AND "
        "date_trunc('month', declaration_date) = "
        "(SELECT date_trunc('month', max(declaration_date)) FROM declarations)",
    )
    assert metrics["Declarations"] == f"{count:,}"
    assert "Red channel share" in metrics
    assert len(at.dataframe) >= 1


def test_trader_profile_page(app_env: Path, demo_db: Path) -> None:
    ((trader_id, name, audits),) = _reference(
        demo_db,
        "SELECT t.trader_id, t.name, count(a.audit_id) FROM traders t "
        "JOIN audits a USING (trader_id) GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 1",
    )
    at = _app().run()
    at.sidebar.radio(key="page").set_value("Trader profile").run()
    at.text_input(key="profile_query").set_value(trader_id).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Trader ID"] == trader_id
    assert any(name == s.value for s in at.subheader)
    audit_frame = at.dataframe[0].value
    assert len(audit_frame) == audits


def test_unknown_trader_gets_a_friendly_message(app_env: Path) -> None:
    at = _app().run()
    at.sidebar.radio(key="page").set_value("Trader profile").run()
    at.text_input(key="profile_query").set_value("zzqx-no-such-company-9999").run()
    assert not at.exception
    assert at.warning and "No trader matches" in at.warning[0].value


def test_profile_risk_indicators_and_briefing(
    app_env: Path, demo_db: Path, demo_truth: Path
) -> None:
    import csv

    with demo_truth.open(encoding="utf-8") as fh:
        planted = next(
            row["trader_id"]
            for row in csv.DictReader(fh)
            if row["anomaly_type"] == "split_consignment"
        )
    at = _app().run()
    at.sidebar.radio(key="page").set_value("Trader profile").run()
    at.text_input(key="profile_query").set_value(planted).run()
    at.button(key=f"btn-risk-{planted}").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Risk score"]) > 0
    assert int(metrics["Flags"].replace(",", "")) >= 1
    reasons = _texts(at)
    assert "- " in reasons
    downloads = [getattr(b, "label", "") for b in at.get("download_button")]
    assert "Briefing (PDF)" in downloads


def test_dashboard_audit_selection(app_env: Path) -> None:
    at = _app().run()
    at.sidebar.radio(key="page").set_value("Supervisor dashboard").run()
    at.selectbox(key="dash_kind").set_value("year").run()
    rank = [b for b in at.button if b.label.startswith("Rank audit candidates")]
    rank[0].click().run()
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    candidates = next(f for f in frames if "expected_revenue" in f.columns)
    assert len(candidates) >= 1
    assert list(candidates["expected_revenue"]) == sorted(
        candidates["expected_revenue"], reverse=True
    )


def test_login_required_and_officer_sees_only_own_office(app_env: Path, demo_db: Path) -> None:
    from tools.access import UserStore

    ((office,),) = _reference(
        demo_db, "SELECT customs_office FROM declarations GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )
    store = UserStore.from_settings(get_settings())
    store.add("ana", "correct horse battery", "officer", [office])
    at = _app().run()
    assert not at.chat_input, "the chat must not show before signing in"
    at.text_input(key="login_name").set_value("ana")
    at.text_input(key="login_password").set_value("wrong password")
    at.button[0].click().run()
    assert at.error and "Wrong user name or password" in at.error[0].value
    at.text_input(key="login_password").set_value("correct horse battery")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "ana" in "\n".join(m.value for m in at.sidebar.markdown)
    at.sidebar.radio(key="page").set_value("Supervisor dashboard").run()
    metrics = {m.label: m.value for m in at.metric}
    ((scoped,),) = _reference(
        demo_db,
        "SELECT count(*) FROM declarations WHERE flow = 'import' AND customs_office = ? AND "
        "date_trunc('month', declaration_date) = "
        "(SELECT date_trunc('month', max(declaration_date)) FROM declarations)".replace(
            "?", "'" + office.replace("'", "''") + "'"
        ),
    )
    assert metrics["Declarations"] == f"{scoped:,}"


def test_earlier_answers_are_drawn_short_until_opened(app_env: Path) -> None:
    at = _app().run()
    questions = [
        "Top 5 importers in 2024",
        "Top origins of imports in 2024",
        "Share of red channel declarations by customs office",
        "Monthly import value over the last 12 months",
    ]
    for question in questions:
        at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 2 * len(questions)
    # The latest three answers are drawn in full, each with its table; the first in short.
    assert len(at.dataframe) == 3
    opener = [b for b in at.button if b.label.startswith("Show the table")]
    assert len(opener) == 1
    assert "rows" in opener[0].label
    opener[0].click().run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 4
    assert not [b for b in at.button if b.label.startswith("Show the table")]


def test_plan_answer_shows_what_was_understood_and_changes_in_one_click(
    app_env: Path, demo_db: Path
) -> None:
    """A compositional question is answered from its plan: the 'I understood' sentence is
    shown, and a button re-runs the same plan by month without retyping."""
    at = _app().run()
    at.chat_input[0].set_value("What share of imports in 2024 came from China?").run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any(c.startswith("I understood: the share originating in China") for c in captions)
    ((part, whole),) = _reference(
        demo_db,
        "SELECT sum(i.customs_value) FILTER (WHERE i.origin_country = 'CN'), "
        "sum(i.customs_value) FROM declarations d JOIN declaration_items i "
        "USING (declaration_id) WHERE d.flow = 'import' AND year(d.declaration_date) = 2024")
    assert f"{100 * part / whole:.1f}%" in _texts(at)
    by_month = next(b for b in at.button if b.label == "By month")
    by_month.click().run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 4  # the change is a turn of its own
    frame = at.dataframe[-1].value
    assert list(frame.iloc[:, 0])[:2] == ["2024-01", "2024-02"]
    monthly = _reference(
        demo_db,
        "SELECT strftime(d.declaration_date, '%Y-%m'), 100.0 * sum(i.customs_value) FILTER "
        "(WHERE i.origin_country = 'CN') / sum(i.customs_value) FROM declarations d JOIN "
        "declaration_items i USING (declaration_id) WHERE d.flow = 'import' AND "
        "year(d.declaration_date) = 2024 GROUP BY 1 ORDER BY 1")
    assert float(frame["share_pct"].iloc[0]) == pytest.approx(monthly[0][1], abs=0.051)
