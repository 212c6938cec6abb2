"""Tamga web app (Streamlit). Thin: it lays out the pages; the assistant does the work.

Run with `tamga serve` (or `make run`).
"""

from __future__ import annotations

import logging

import streamlit as st

from tamga.errors import TamgaError
from web.chat import chat_page
from web.dashboard import dashboard_page
from web.login import require_login
from web.profile import profile_page
from web.resources import warm_up_in_background
from web.sidebar import render_exports, render_sidebar
from web.timing import section, timed_run

st.set_page_config(page_title="Tamga · Customs assistant", page_icon="🛃", layout="wide")
PAGES = {"Chat": chat_page, "Trader profile": profile_page, "Supervisor dashboard": dashboard_page}

# The warm-up starts at once, in a background thread: with the ONNX encoder and the intent
# vectors computed at install time it takes about a second and competes little with drawing.
warm_up_in_background()

with timed_run() as run:
    st.title("Tamga")
    st.caption("Customs assistant · trade data and regulations, every answer with its source")
    with section("login"):
        require_login()
    page = run["page"] = st.sidebar.radio("Page", list(PAGES), key="page")
    exports = None
    try:
        with section("sidebar"):
            exports = render_sidebar()
        PAGES[page]()
    except TamgaError as exc:
        st.error(str(exc))
    except Exception:
        logging.getLogger("tamga.app").exception("page %s failed", page)
        st.error(
            "Something went wrong while building this page. Your conversation is kept; try "
            "again, or start a new conversation from the sidebar. The details are in the "
            "server log."
        )
    render_exports(exports)
