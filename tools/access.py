"""Users, roles and login sessions (the embedded default; an identity provider can replace it).

Roles:

- ``officer``: sees the declarations of their own customs offices only (one or more);
- ``analyst``: sees every office, not the audit log of questions and answers;
- ``supervisor``: sees every office and the audit log;
- ``admin``: sees every office and the audit log, and manages users.

Users live in a SQLite file (default ``$TAMGA_HOME/users.db``) with Argon2id password hashes.
Session tokens are random; only their SHA-256 is stored, with an expiry (TAMGA_SESSION_HOURS).

    store = UserStore.from_settings(settings)
    store.add("ana", "a long passphrase", "officer", offices=["Balboa Seaport"])
    session = store.authenticate("ana", "a long passphrase")
    store.session(session.token).scope()   # Scope(user='ana', offices=('Balboa Seaport',))
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from tamga.errors import AccessDenied, TamgaError
from tamga.scope import Scope

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from tamga.settings import Settings

Role = Literal["officer", "analyst", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("officer", "analyst", "supervisor", "admin")
#: Roles that may read the audit log of questions and answers.
AUDIT_LOG_ROLES = frozenset({"supervisor", "admin"})
MIN_PASSWORD_CHARS = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    role TEXT NOT NULL,
    offices TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL COLLATE NOCASE,
    expires_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class User:
    """One account (the password hash stays in the store)."""

    name: str
    role: Role
    offices: tuple[str, ...]
    created_at: str

    def scope(self) -> Scope:
        """What this user's queries may see."""
        if self.role == "officer":
            return Scope.offices_of(self.name, self.offices)
        return Scope.everything(self.name)

    @property
    def can_read_audit_log(self) -> bool:
        """Supervisors and admins read the audit log; officers and analysts do not."""
        return self.role in AUDIT_LOG_ROLES

    @property
    def can_manage_users(self) -> bool:
        """Only admins add and remove users."""
        return self.role == "admin"

    def to_json(self) -> dict[str, object]:
        """The account as JSON (never includes the password hash)."""
        return {"name": self.name, "role": self.role, "offices": list(self.offices),
                "created_at": self.created_at}


@dataclass(frozen=True)
class Session:
    """A logged-in user: the bearer token (shown once) and when it stops working."""

    token: str
    user: User
    expires_at: datetime

    def scope(self) -> Scope:
        """The user's query scope."""
        return self.user.scope()


def _now() -> datetime:
    return datetime.now(UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher  # lazy: keeps `tamga` start-up fast

    return PasswordHasher()  # Argon2id, library defaults (RFC 9106 low-memory profile)


def hash_password(password: str) -> str:
    """An Argon2id hash of `password` (the PHC string, e.g. ``$argon2id$v=19$m=...``)."""
    return _hasher().hash(password)


class UserStore:
    """The users and sessions file; safe to share between threads and processes."""

    def __init__(self, path: Path, session_hours: float = 8.0) -> None:
        """Use (and create on first write) the SQLite file at `path`."""
        if session_hours <= 0:
            raise ValueError("session_hours must be positive")
        self.path = Path(path).expanduser()
        self.session_hours = float(session_hours)
        self._lock = threading.Lock()
        # a fixed hash to verify against when the user does not exist (same timing either way)
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> UserStore:
        """The store at <home>/users.db with the settings' session lifetime."""
        return cls(settings.resolved_home() / "users.db", session_hours=settings.session_hours)

    # -- storage ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=10.0)
        con.executescript(_SCHEMA)
        return con

    def exists(self) -> bool:
        """True when at least one user has been added (otherwise Tamga runs single-user)."""
        if not self.path.exists():
            return False
        with closing(self._connect()) as con:
            row = con.execute("SELECT count(*) FROM users").fetchone()
        return bool(row and row[0])

    @staticmethod
    def _user(row: tuple[str, str, str, str]) -> User:
        name, role, offices, created = row
        return User(name=name, role=cast(Role, role), offices=tuple(json.loads(offices)),
                    created_at=created)

    # -- users ------------------------------------------------------------------------------

    def add(self, name: str, password: str, role: str, offices: Iterable[str] = ()) -> User:
        """Create a user; raises TamgaError for a bad name, role, password or a duplicate."""
        if not _NAME.match(name):
            raise TamgaError(
                f"Invalid user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'."
            )
        if role not in ROLES:
            raise TamgaError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
        office_list = [o.strip() for o in offices if o.strip()]
        if role == "officer" and not office_list:
            raise TamgaError("An officer needs at least one --office (the offices they serve).")
        if role != "officer" and office_list:
            raise TamgaError(f"Only officers are limited to offices; a {role} sees all of them.")
        if len(password) < MIN_PASSWORD_CHARS:
            raise TamgaError(f"The password must have at least {MIN_PASSWORD_CHARS} characters.")
        user = User(name=name, role=cast(Role, role), offices=tuple(dict.fromkeys(office_list)),
                    created_at=_now().isoformat(timespec="seconds"))
        password_hash = hash_password(password)
        with self._lock, closing(self._connect()) as con, con:
            try:
                con.execute(
                    "INSERT INTO users (name, role, offices, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (user.name, user.role, json.dumps(list(user.offices)), password_hash,
                     user.created_at),
                )
            except sqlite3.IntegrityError as exc:
                raise TamgaError(f"A user named {name!r} already exists.") from exc
        return user

    def remove(self, name: str) -> None:
        """Delete a user and end their sessions; raises AccessDenied if there is no such user."""
        with self._lock, closing(self._connect()) as con, con:
            deleted = con.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
            con.execute("DELETE FROM sessions WHERE name = ?", (name,))
        if not deleted:
            raise AccessDenied(f"No user named {name!r}.")

    def get(self, name: str) -> User | None:
        """The user called `name` (case-insensitive), or None."""
        if not self.path.exists():
            return None
        with closing(self._connect()) as con:
            row = con.execute(
                "SELECT name, role, offices, created_at FROM users WHERE name = ?", (name,)
            ).fetchone()
        return self._user(row) if row else None

    def users(self) -> list[User]:
        """Every user, by name."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT name, role, offices, created_at FROM users ORDER BY name"
            ).fetchall()
        return [self._user(r) for r in rows]

    def password_hash(self, name: str) -> str | None:
        """The stored PHC hash of a user (for checks and tests; never printed by the CLI)."""
        with closing(self._connect()) as con:
            row = con.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    # -- login ------------------------------------------------------------------------------

    def verify_password(self, name: str, password: str) -> User:
        """The user if `password` is right; AccessDenied (same message either way) if not."""
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        user = self.get(name)
        stored = self.password_hash(name) if user else None
        if stored is None:
            if self._dummy_hash is None:
                self._dummy_hash = hasher.hash(secrets.token_hex(16))
            stored = self._dummy_hash
        try:
            hasher.verify(stored, password)
            ok = user is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            raise AccessDenied("Unknown user or wrong password.")
        if hasher.check_needs_rehash(stored):
            with self._lock, closing(self._connect()) as con, con:
                con.execute("UPDATE users SET password_hash = ? WHERE name = ?",
                            (hasher.hash(password), user.name))
        return user

    def authenticate(self, name: str, password: str, now: datetime | None = None) -> Session:
        """Check the password and open a session that expires after `session_hours`."""
        user = self.verify_password(name, password)
        start = now or _now()
        token = secrets.token_urlsafe(32)
        expires = start + timedelta(hours=self.session_hours)
        with self._lock, closing(self._connect()) as con, con:
            con.execute("DELETE FROM sessions WHERE expires_at <= ?", (start.isoformat(),))
            con.execute("INSERT INTO sessions (token_sha256, name, expires_at) VALUES (?, ?, ?)",
                        (_token_hash(token), user.name, expires.isoformat()))
        return Session(token=token, user=user, expires_at=expires)

    def session(self, token: str, now: datetime | None = None) -> Session:
        """The live session of `token`; AccessDenied when unknown, expired or its user is gone."""
        if not token or not self.path.exists():
            raise AccessDenied("Not logged in.")
        with closing(self._connect()) as con:
            row = con.execute("SELECT name, expires_at FROM sessions WHERE token_sha256 = ?",
                              (_token_hash(token),)).fetchone()
        if row is None:
            raise AccessDenied("Not logged in (unknown or ended session).")
        expires = datetime.fromisoformat(row[1])
        if expires <= (now or _now()):
            self.logout(token)
            raise AccessDenied("The session has expired; log in again.")
        user = self.get(row[0])
        if user is None:
            raise AccessDenied("This account no longer exists.")
        return Session(token=token, user=user, expires_at=expires)

    def session_valid(self, token: str, now: datetime | None = None) -> bool:
        """True when `token` belongs to a live session."""
        try:
            self.session(token, now)
        except AccessDenied:
            return False
        return True

    def logout(self, token: str) -> None:
        """End the session of `token` (no error if it was not open)."""
        if not self.path.exists():
            return
        with self._lock, closing(self._connect()) as con, con:
            con.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_token_hash(token),))


def resolve_scope(user: str, store: UserStore) -> Scope:
    """The query scope of `user` for the CLI and the Python API.

    With no users in the store (a single-user install) everyone sees everything. Once users
    exist, an unknown name is refused: AccessDenied.
    """
    if not store.exists():
        return Scope.everything(user)
    found = store.get(user)
    if found is None:
        raise AccessDenied(
            f"No user named {user!r}; ask an admin to add you (`tamga users add`)."
        )
    return found.scope()
