"""Users, roles and sessions: Argon2 hashes, wrong passwords, expiry, and the `tamga users` CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tamga.errors import AccessDenied, TamgaError
from tamga.scope import Scope
from tamga.settings import get_settings
from tools.access import UserStore, resolve_scope

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "users.db", session_hours=8)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh TAMGA_HOME for commands that use the default users file."""
    monkeypatch.setenv("TAMGA_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_passwords_are_stored_as_argon2id_hashes(store: UserStore) -> None:
    store.add("ana", PASSWORD, "officer", ["Balboa Seaport"])
    stored = store.password_hash("ana")
    assert stored is not None and stored.startswith("$argon2id$v=19$")
    assert PASSWORD not in store.path.read_bytes().decode("latin-1")


def test_login_opens_a_session_that_expires(store: UserStore) -> None:
    store.add("ana", PASSWORD, "officer", ["Balboa Seaport", "Tocumen International Airport"])
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    session = store.authenticate("ana", PASSWORD, now=start)
    assert session.expires_at == start + timedelta(hours=8)
    assert store.session_valid(session.token, now=start + timedelta(hours=7, minutes=59))
    live = store.session(session.token, now=start + timedelta(hours=1))
    assert live.scope() == Scope("ana", ("Balboa Seaport", "Tocumen International Airport"))
    assert not store.session_valid(session.token, now=start + timedelta(hours=8, seconds=1))
    with pytest.raises(AccessDenied, match="Not logged in"):  # an expired session is gone
        store.session(session.token, now=start)


def test_the_session_token_itself_is_not_stored(store: UserStore) -> None:
    store.add("sam", PASSWORD, "supervisor")
    session = store.authenticate("sam", PASSWORD)
    assert session.token.encode() not in store.path.read_bytes()
    assert store.session_valid(session.token)
    store.logout(session.token)
    assert not store.session_valid(session.token)


def test_wrong_password_and_unknown_user_get_the_same_answer(store: UserStore) -> None:
    store.add("ana", PASSWORD, "officer", ["Balboa Seaport"])
    with pytest.raises(AccessDenied) as wrong:
        store.authenticate("ana", "not the password")
    with pytest.raises(AccessDenied) as unknown:
        store.authenticate("nobody", PASSWORD)
    assert str(wrong.value) == str(unknown.value) == "Unknown user or wrong password."
    assert not store.session_valid("made-up-token")


def test_removing_a_user_ends_their_sessions(store: UserStore) -> None:
    store.add("ana", PASSWORD, "officer", ["Balboa Seaport"])
    session = store.authenticate("ana", PASSWORD)
    store.remove("ana")
    assert not store.session_valid(session.token)
    with pytest.raises(AccessDenied):
        store.remove("ana")


@pytest.mark.parametrize(
    ("name", "role", "offices", "password", "words"),
    [
        ("ana", "officer", [], PASSWORD, "at least one --office"),
        ("ana", "analyst", ["Balboa Seaport"], PASSWORD, "sees all of them"),
        ("ana", "boss", [], PASSWORD, "Unknown role"),
        ("ana", "analyst", [], "short", "at least 8 characters"),
        ("a b", "analyst", [], PASSWORD, "Invalid user name"),
    ],
)
def test_bad_accounts_are_refused(store: UserStore, name: str, role: str, offices: list[str],
                                  password: str, words: str) -> None:
    with pytest.raises(TamgaError, match=words):
        store.add(name, password, role, offices)
    assert store.users() == []


def test_roles_map_to_scopes_and_permissions(store: UserStore) -> None:
    store.add("ana", PASSWORD, "officer", ["Balboa Seaport"])
    store.add("al", PASSWORD, "analyst")
    store.add("sam", PASSWORD, "supervisor")
    store.add("root", PASSWORD, "admin")
    with pytest.raises(TamgaError, match="already exists"):
        store.add("ANA", PASSWORD, "analyst")
    users = {u.name: u for u in store.users()}
    assert users["ana"].scope().offices == ("Balboa Seaport",)
    assert all(users[n].scope().unrestricted for n in ("al", "sam", "root"))
    assert [n for n, u in users.items() if u.can_read_audit_log] == ["root", "sam"]
    assert [n for n, u in users.items() if u.can_manage_users] == ["root"]
    assert resolve_scope("ana", store).offices == ("Balboa Seaport",)
    with pytest.raises(AccessDenied, match="No user named 'eve'"):
        resolve_scope("eve", store)


def test_without_users_everyone_sees_everything(store: UserStore) -> None:
    assert resolve_scope("cli", store) == Scope.everything("cli")


# -- the command line -------------------------------------------------------------------------


def test_cli_add_list_remove(tmp_path: Path, demo_db: Path) -> None:
    users_db = tmp_path / "users.db"
    cli = CliRunner()
    added = cli.invoke(app, ["users", "add", "ana", "--role", "officer", "--office",
                             "Balboa Seaport", "--password-stdin", "--users-db", str(users_db),
                             "--db", str(demo_db)], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "Added officer ana (Balboa Seaport)" in added.output
    prompted = cli.invoke(app, ["users", "add", "sam", "--role", "supervisor", "--users-db",
                                str(users_db)], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    mismatch = cli.invoke(app, ["users", "add", "bob", "--role", "analyst", "--users-db",
                                str(users_db)], input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n"
                          f"{PASSWORD}\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output.lower()
    typo = cli.invoke(app, ["users", "add", "eve", "--role", "officer", "--office", "Balboa",
                            "--password-stdin", "--users-db", str(users_db), "--db",
                            str(demo_db)], input=PASSWORD + "\n")
    assert typo.exit_code == 1 and "Unknown customs office(s): Balboa" in typo.output

    listed = cli.invoke(app, ["users", "list", "--json", "--users-db", str(users_db)])
    assert listed.exit_code == 0, listed.output
    users = json.loads(listed.output)["users"]
    assert [(u["name"], u["role"], u["offices"]) for u in users] == [
        ("ana", "officer", ["Balboa Seaport"]), ("bob", "analyst", []), ("sam", "supervisor", [])]
    table = cli.invoke(app, ["users", "list", "--users-db", str(users_db)])
    assert "Balboa Seaport" in table.output and "argon2" not in table.output
    assert "argon2" not in listed.output

    removed = cli.invoke(app, ["users", "remove", "bob", "--users-db", str(users_db)])
    assert removed.exit_code == 0 and "Removed bob" in removed.output
    again = cli.invoke(app, ["users", "remove", "bob", "--users-db", str(users_db)])
    assert again.exit_code == 1 and "No user named 'bob'" in again.output
    assert [u.name for u in UserStore(users_db).users()] == ["ana", "sam"]


def test_cli_sql_runs_as_a_user(home: Path, demo_db: Path) -> None:
    store = UserStore.from_settings(get_settings())
    store.add("ana", PASSWORD, "officer", ["Balboa Seaport"])
    store.add("sam", PASSWORD, "supervisor")
    cli = CliRunner()
    query = "SELECT customs_office, count(*) AS n FROM declarations GROUP BY 1 ORDER BY 1"

    def offices(user: str | None) -> list[str]:
        args = ["sql", query, "--json", "--db", str(demo_db)]
        result = cli.invoke(app, [*args, "--user", user] if user else args)
        assert result.exit_code == 0, result.output
        return [row[0] for row in json.loads(result.output)["rows"]]

    assert offices("ana") == ["Balboa Seaport"]
    assert len(offices("sam")) == len(offices(None)) == 12
    unknown = cli.invoke(app, ["sql", query, "--json", "--db", str(demo_db), "--user", "eve"])
    assert unknown.exit_code == 1 and "No user named 'eve'" in json.loads(unknown.output)["error"]
