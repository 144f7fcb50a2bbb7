"""A name's capture setting (`PUT /models/{name}/monitoring`): kept in the store beside the
name's pointers, signed with the model signing key, so that it survives restarts and that
whoever can write MODELS_PATH without the key can't turn capture on or off. The replicas get
it in the signed serving set (server.replication.manifest).

    NAME/monitoring.json  {"setting": {"capture": true, "sample_rate": 1.0,
                                       "capture_exclude": ["email"], "ever": true},
                           "signature": {"key_id": "...", "tag": "..."}}
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.store.atomic import write_bytes_atomically
from server.store.layout import read_regular
from server.store.signing import SigningKey

FILE_NAME = "monitoring.json"
logger = logging.getLogger("server")


@dataclass(frozen=True)
class CaptureSetting:
    capture: bool = False
    sample_rate: float = 1.0
    exclude: tuple[str, ...] = ()  # columns never written
    ever: bool = False  # capture was on once: feedback is taken from then on
    # The same columns as a set, made once: every captured request carries it.
    excluded: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded", frozenset(self.exclude))

    def to_json(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "sample_rate": self.sample_rate,
            "capture_exclude": list(self.exclude),
            "ever": self.ever,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaptureSetting:
        return cls(
            bool(data["capture"]),
            float(data["sample_rate"]),
            tuple(str(name) for name in data["capture_exclude"]),
            bool(data["ever"]),
        )


def _tag(key: SigningKey, name: str, setting: CaptureSetting) -> str:
    canonical = json.dumps(setting.to_json(), sort_keys=True, separators=(",", ":")).encode()
    return key.tag(f"{name}/monitoring", [canonical])


def write(directory: Path, key: SigningKey, name: str, setting: CaptureSetting) -> None:
    """Into the name's folder (blocking)."""
    signature = {"key_id": key.key_id, "tag": _tag(key, name, setting)}
    data = {"setting": setting.to_json(), "signature": signature}
    write_bytes_atomically(directory / FILE_NAME, json.dumps(data).encode())


def read(directory: Path, key: SigningKey, name: str) -> CaptureSetting:
    """The name's setting; off if it has none, and off (logged) if its file is not the one
    this server wrote: a setting changed without the key is never followed."""
    try:
        data = json.loads(read_regular(directory / FILE_NAME, 1 << 20))
        setting = CaptureSetting.from_json(data["setting"])
        signature = data["signature"]
    except FileNotFoundError:
        return CaptureSetting()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        logger.error("model '%s': %s can't be read (%s); capture is off", name, FILE_NAME, error)
        return CaptureSetting()
    if signature.get("key_id") != key.key_id or not hmac.compare_digest(
        _tag(key, name, setting), str(signature.get("tag"))
    ):
        logger.error(
            "model '%s': %s is not signed with this server's key; capture is off", name, FILE_NAME
        )
        return CaptureSetting()
    return setting
