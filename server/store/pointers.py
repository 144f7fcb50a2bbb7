"""A name's pointers: its current version, its named aliases, and the history of their moves.

One small JSON file per name (`NAME/pointers.json`), replaced atomically on every move, so a
reader sees the state before a move or after it, never a mix, and a crash loses at most the
move that had not been answered yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
CURRENT = "current"
# Names the pointers' history and the API use for the current pointer: never an alias.
RESERVED_ALIASES = frozenset({CURRENT})


@dataclass(frozen=True)
class Move:
    at: str  # ISO 8601, UTC
    pointer: str  # "current" or an alias
    before: int | None  # None: the pointer did not exist
    after: int | None  # None: the alias was removed

    def describe(self) -> dict[str, Any]:
        return {"at": self.at, "pointer": self.pointer, "from": self.before, "to": self.after}


@dataclass(frozen=True)
class Pointers:
    current: int
    aliases: dict[str, int] = field(default_factory=dict)
    history: tuple[Move, ...] = ()
    # The highest version number ever deleted: numbers are never given again.
    highest_deleted: int = 0

    def move_current(self, version: int) -> Pointers:
        return replace(
            self, current=version, history=(*self.history, _move(CURRENT, self.current, version))
        )

    def set_alias(self, alias: str, version: int | None) -> Pointers:
        """Point `alias` at `version`, or remove it (None)."""
        aliases = dict(self.aliases)
        before = aliases.pop(alias, None)
        if version is not None:
            aliases[alias] = version
        return replace(
            self, aliases=aliases, history=(*self.history, _move(alias, before, version))
        )

    def rollback_target(self) -> int | None:
        """The version that was current before the last move of the current pointer."""
        for move in reversed(self.history):
            if move.pointer == CURRENT:
                return move.before
        return None

    def deleted(self, version: int) -> Pointers:
        return replace(self, highest_deleted=max(self.highest_deleted, version))

    def pinned(self) -> set[int]:
        """Versions a pointer names: they can't be deleted."""
        return {self.current, *self.aliases.values()}

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "aliases": dict(sorted(self.aliases.items())),
            "history": [move.describe() for move in self.history],
            "highest_deleted": self.highest_deleted,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pointers:
        history = tuple(
            Move(item["at"], item["pointer"], item["from"], item["to"]) for item in data["history"]
        )
        aliases = {k: int(v) for k, v in data["aliases"].items()}
        return cls(int(data["current"]), aliases, history, int(data.get("highest_deleted", 0)))


def first(version: int) -> Pointers:
    """The pointers of a new name: its first version is current."""
    return Pointers(version, {}, (_move(CURRENT, None, version),))


def _move(pointer: str, before: int | None, after: int | None) -> Move:
    return Move(datetime.now(UTC).isoformat(timespec="milliseconds"), pointer, before, after)
