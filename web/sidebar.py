"""The sidebar: the data set, the engine in use and a switch, new conversation, exports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from assistant.export import conversation_markdown, conversation_pdf
from tamga.errors import TamgaError
from tamga.settings import get_settings
from web.login import current_user, logout
from web.resources import dataset_info

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

ENGINES = {
    "auto": "Automatic",
    "offline": "Offline (verified questions only)",
    "llm": "Language model",
}


def engine_description() -> str:
    """Which language model is configured, in words."""
    settings = get_settings()
    if settings.llm_base_url:
        return f"endpoint {settings.llm_base_url} · model {settings.llm_model}"
    if settings.local_model:
        return "local model (Qwen2.5-Coder-1.5B, on this machine)"
    return "no language model configured: offline engine only"


def render_sidebar() -> DeltaGenerator:
    """Draw the sidebar; returns the place for the conversation's exports (render_exports)."""
    with st.sidebar:
        user = current_user()
        if user is not None:
            offices = ", ".join(user.offices) if user.role == "officer" else "all offices"
            st.markdown(f"**Signed in:** {user.name} · {user.role} · {offices}")
            if st.button("Sign out", key="logout"):
                logout()
                st.rerun()
        st.markdown("### Data set")
        try:
            info = dataset_info()
        except TamgaError as exc:
            st.error(str(exc))
        else:
            st.markdown(
                f"**Source:** {info.get('source', 'unknown')}  \n"
                f"**Traders:** {info['traders']:,}  \n"
                f"**Declarations:** {info['declarations']:,}  \n"
                f"**Items:** {info['items']:,}  \n"
                f"**Period:** {info['date_from']} – {info['date_to']}  \n"
                f"**Currency:** {info.get('reporting_currency', 'USD')}"
            )
        st.markdown("### Engine")
        st.caption(engine_description())
        st.radio("Answer with", list(ENGINES), format_func=ENGINES.__getitem__, key="engine")
        st.markdown("### Conversation")
        if st.button("New conversation", width="stretch"):
            for key in ("turns", "conversation", "pending_question"):
                st.session_state.pop(key, None)
            st.rerun()
    return st.sidebar.container()


def render_exports(slot: DeltaGenerator | None) -> None:
    """Fill `slot` (from render_sidebar) with the conversation's exports. Called after the page,
    so that an answer given in this run is already in them."""
    turns = [(t["question"], t["answer"]) for t in st.session_state.get("turns", [])]
    if not turns or slot is None:
        return
    with slot:
        st.download_button(
            "Export as Markdown",
            lambda: conversation_markdown(turns),  # built only when clicked
            file_name="tamga-conversation.md",
            mime="text/markdown",
            width="stretch",
            on_click="ignore",
        )
        st.download_button(
            "Export as PDF",
            lambda: conversation_pdf(turns),
            file_name="tamga-conversation.pdf",
            mime="application/pdf",
            width="stretch",
            on_click="ignore",
        )
