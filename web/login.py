"""Login for the web app: required once the users store has users; single-user otherwise."""

from __future__ import annotations

import streamlit as st

from tamga.errors import TamgaError
from tamga.scope import Scope
from tamga.settings import get_settings
from tools.access import User, UserStore

TOKEN = "session_token"


def _store() -> UserStore:
    return UserStore.from_settings(get_settings())


def current_user() -> User | None:
    """The logged-in user, or None in a single-user install (no users in the store)."""
    store = _store()
    if not store.exists():
        return None
    token = st.session_state.get(TOKEN)
    if not token or not store.session_valid(token):
        return None
    return store.session(token).user


def current_scope() -> Scope:
    """What the person using this browser session may see."""
    user = current_user()
    return user.scope() if user else Scope.everything(st.session_state.get("user", "web"))


def require_login() -> None:
    """Show the login form and stop the page unless a valid session exists (or no users)."""
    store = _store()
    if not store.exists():
        st.session_state.setdefault("user", "web")
        return
    token = st.session_state.get(TOKEN)
    if token and store.session_valid(token):
        st.session_state["user"] = store.session(token).user.name
        return
    if token:
        st.session_state.pop(TOKEN, None)
        st.info("Your session has expired. Please sign in again.")
    with st.form("login"):
        st.subheader("Sign in")
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            session = store.authenticate(name.strip(), password)
        except TamgaError:
            st.error("Wrong user name or password.")
        else:
            st.session_state[TOKEN] = session.token
            st.session_state["user"] = session.user.name
            for key in ("turns", "conversation", "pending_question"):
                st.session_state.pop(key, None)
            st.rerun()
    st.stop()


def logout() -> None:
    """End this browser's session."""
    token = st.session_state.pop(TOKEN, None)
    if token:
        _store().logout(token)
    for key in ("turns", "conversation", "pending_question", "user"):
        st.session_state.pop(key, None)
