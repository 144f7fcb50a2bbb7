"""The serving set: which versions the primary has loaded, and each name's pointers.

One signed JSON file, `MODELS_PATH/_serving.json` (a name no model can have: model names
start with a letter or digit), replaced atomically like the pointers, so a replica reads the
set before a change or after it, never a mix. Nothing loaded is a set too (empty, signed):
a missing file is never read as "serve nothing". Generations only grow, across restarts of
the primary too (they start from the clock), so that a replica tells an old copy put back
from a newer set:

    {"generation": 1796565600123, "written_at": "2026-12-06T14:00:00.000+00:00",
     "models": {"churn": {"current": 2, "aliases": {"staging": 3},
                          "loaded": {"2": "9b1e...", "3": "04ac..."}}},
     "signature": {"key_id": "3f9c...", "tag": "<HMAC-SHA256 of the rest>"}}

The pointers travel in the set (not read from each name's `pointers.json`) so that a replica
switches what a request means and what it has loaded from one signed snapshot. Each loaded
version carries its metadata's tag: a replica serves exactly those files, and tells a
version that was removed and trained again under the same number from the one it has.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.store.atomic import write_bytes_atomically
from server.store.layout import read_regular
from server.store.signing import SigningKey

FILE_NAME = "_serving.json"
MAX_BYTES = 16 * 2**20  # thousands of loaded versions; a larger file is refused unread
_TAG_PATH = "serving-set"  # what the tag covers besides the bytes: never a model file's path


@dataclass(frozen=True)
class Served:
    """One name as the primary serves it."""

    current: int
    aliases: dict[str, int] = field(default_factory=dict)
    loaded: dict[int, str] = field(default_factory=dict)  # version -> its metadata's tag
    # The name's capture setting (server.monitoring.setting), if capture was ever on.
    capture: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        described = {
            "current": self.current,
            "aliases": dict(sorted(self.aliases.items())),
            "loaded": {str(v): self.loaded[v] for v in sorted(self.loaded)},
        }
        if self.capture is not None:
            described["capture"] = self.capture
        return described

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Served:
        aliases = {str(alias): int(v) for alias, v in data["aliases"].items()}
        loaded = {int(v): str(tag) for v, tag in data["loaded"].items()}
        capture = data.get("capture")
        return cls(int(data["current"]), aliases, loaded, dict(capture) if capture else None)


@dataclass(frozen=True)
class ServingSet:
    generation: int = 0
    written_at: str = ""
    models: dict[str, Served] = field(default_factory=dict)

    def same_content(self, other: ServingSet) -> bool:
        return self.models == other.models

    def written(self) -> datetime | None:
        return datetime.fromisoformat(self.written_at) if self.written_at else None

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "written_at": self.written_at,
            "models": {name: self.models[name].to_json() for name in sorted(self.models)},
        }


class UnreadableSet(Exception):
    """The file is there but can't be used (unreadable, malformed, or not signed by us)."""


def path_in(root: Path) -> Path:
    return root / FILE_NAME


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def next_generation(last: int) -> int:
    """Above `last`, and above every generation a primary wrote before now (milliseconds
    of the clock): a primary that lost or can't read the last set still goes forward."""
    return max(last + 1, time.time_ns() // 1_000_000)


def write(root: Path, key: SigningKey, models: dict[str, Served], generation: int) -> ServingSet:
    """Write the set, signed (blocking)."""
    served = ServingSet(generation, datetime.now(UTC).isoformat(timespec="milliseconds"), models)
    content = served.to_json()
    signature = {"key_id": key.key_id, "tag": key.tag(_TAG_PATH, [_canonical(content)])}
    write_bytes_atomically(path_in(root), json.dumps({**content, "signature": signature}).encode())
    return served


def read(root: Path, key: SigningKey) -> ServingSet | None:
    """The set as the file has it, checked; None if there is none yet (blocking)."""
    try:
        data = json.loads(read_regular(path_in(root), MAX_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as error:  # nested past Python's stack
        raise UnreadableSet(f"{FILE_NAME} can't be read: {str(error)[:200]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("signature"), dict):
        raise UnreadableSet(f"{FILE_NAME} carries no signature")
    signature = data.pop("signature")
    if signature.get("key_id") != key.key_id:
        raise UnreadableSet(
            f"{FILE_NAME} was signed with another key (key id {signature.get('key_id')!s:.16}; "
            f"this server's is {key.key_id}): the primary and the replicas need the same key"
        )
    try:
        expected = key.tag(_TAG_PATH, [_canonical(data)])
    except (ValueError, RecursionError) as error:
        raise UnreadableSet(f"{FILE_NAME} can't be read: {str(error)[:200]}") from None
    if not hmac.compare_digest(expected, str(signature.get("tag"))):
        raise UnreadableSet(f"{FILE_NAME} was changed after the primary wrote it")
    try:
        models = {str(name): Served.from_json(item) for name, item in data["models"].items()}
        return ServingSet(int(data["generation"]), str(data["written_at"]), models)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise UnreadableSet(f"{FILE_NAME} is malformed: {error!r}") from None


def stamp(root: Path) -> tuple[int, ...] | None:
    """What changes whenever the file is replaced: a stat, the poll's whole cost."""
    try:
        status = os.stat(path_in(root))
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
