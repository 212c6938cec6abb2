"""What one user may see: the customs offices whose declarations their queries can read.

A `Scope` is passed down explicitly (Assistant -> data context -> runners and tools); nothing
caches data by database path alone. The SQL rewrite that enforces a scope is in
tools/scoping.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """What one user may see: `offices` None means every office; an empty tuple means none."""

    user: str
    offices: tuple[str, ...] | None = None

    @classmethod
    def everything(cls, user: str = "cli") -> Scope:
        """A scope that sees every office (analysts, supervisors, single-user installs)."""
        return cls(user=user, offices=None)

    @classmethod
    def offices_of(cls, user: str, offices: Iterable[str]) -> Scope:
        """A scope limited to `offices` (duplicates dropped, order kept)."""
        return cls(user=user, offices=tuple(dict.fromkeys(str(o) for o in offices)))

    @property
    def unrestricted(self) -> bool:
        """True when the scope sees every office (no rewrite is needed)."""
        return self.offices is None

    @property
    def key(self) -> str:
        """A stable text key: two scopes that see the same rows have the same key."""
        if self.offices is None:
            return "*"
        return "offices:" + "\x1f".join(sorted(self.offices))

    def describe(self) -> str:
        """The scope in words, for messages and the audit log."""
        if self.offices is None:
            return "all customs offices"
        if not self.offices:
            return "no customs office (sees no declarations)"
        return "customs offices " + ", ".join(self.offices)
