"""A name's capture setting (`PUT /models/{name}/monitoring`): kept in the store beside the
name's pointers, signed with the model signing key, so that it survives restarts and that
whoever can write MODELS_PATH without the key can't turn capture on or off. The replicas get
it in the signed serving set (server.replication.manifest).

    NAME/monitoring.json  {"setting": {"capture": true, "sample_rate": 1.0,
                                       "capture_exclude": ["email"], "ever": true,
                                       "generation": 3},
                           "signature": {"key_id": "...", "tag": "..."}}
    _capture.json         {"names": {"NAME": 3}, "signature": {...}}

A signature alone can't stop an old signed file from being put back, nor a file from being
deleted. So each change of a name's setting gets the next generation, and the signed index
`_capture.json` holds each name's last one: at start, a setting older than its index entry
(put back) or missing while the index names it (deleted) is refused, logged, and capture
stays off for that name until someone with the management token sets it again. The index is
written before the file, so a crash between the two refuses rather than follows. A name's
removal takes it out of the index: a new model of that name starts a new life, and a file
left from an earlier one is refused. Whoever can put back an older copy of the whole store
(both files) brings back its settings, as a restored backup brings back its models.
"""

from __future__ import annotations

import contextlib
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
INDEX_NAME = "_capture.json"
MAX_BYTES = 1 << 20
logger = logging.getLogger("server")


@dataclass(frozen=True)
class CaptureSetting:
    capture: bool = False
    sample_rate: float = 1.0
    exclude: tuple[str, ...] = ()  # columns never written
    ever: bool = False  # capture was on once: feedback is taken from then on
    generation: int = 0  # this name's changes so far (0: a setting saved before v6)
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
            "generation": self.generation,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaptureSetting:
        return cls(
            bool(data["capture"]),
            float(data["sample_rate"]),
            tuple(str(name) for name in data["capture_exclude"]),
            bool(data["ever"]),
            int(data.get("generation", 0)),
        )


class Refused(ValueError):
    """A setting file this server must not follow (the message says why)."""


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _signed(key: SigningKey, path: str, payload: Any) -> dict[str, str]:
    return {"key_id": key.key_id, "tag": key.tag(path, [_canonical(payload)])}


def _verified(key: SigningKey, path: str, data: Any, field_name: str) -> Any:
    """The payload of a signed file's data; Refused unless this key signed it."""
    try:
        payload, signature = data[field_name], data["signature"]
        tag = str(signature.get("tag"))
        signed_by = signature.get("key_id")
    except (KeyError, TypeError, AttributeError) as error:
        raise Refused(f"it can't be read ({error!r})") from None
    if signed_by != key.key_id or not hmac.compare_digest(
        key.tag(path, [_canonical(payload)]), tag
    ):
        raise Refused("it is not signed with this server's key")
    return payload


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_regular(path, MAX_BYTES))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise Refused(f"it can't be read ({error})") from None


# -- one name's file ----------------------------------------------------------------------
def write(directory: Path, key: SigningKey, name: str, setting: CaptureSetting) -> None:
    """Into the name's folder (blocking)."""
    payload = setting.to_json()
    data = {"setting": payload, "signature": _signed(key, f"{name}/monitoring", payload)}
    write_bytes_atomically(directory / FILE_NAME, json.dumps(data).encode())


def read(directory: Path, key: SigningKey, name: str) -> CaptureSetting | None:
    """The name's setting as its file says (None: no file); Refused if this server did not
    write it."""
    try:
        data = _read_json(directory / FILE_NAME)
    except FileNotFoundError:
        return None
    payload = _verified(key, f"{name}/monitoring", data, "setting")
    try:
        return CaptureSetting.from_json(payload)
    except (KeyError, TypeError, ValueError) as error:
        raise Refused(f"it can't be read ({error!r})") from None


# -- the index of generations -----------------------------------------------------------
def write_index(root: Path, key: SigningKey, generations: dict[str, int]) -> None:
    payload = dict(sorted(generations.items()))
    data = {"names": payload, "signature": _signed(key, INDEX_NAME, payload)}
    write_bytes_atomically(root / INDEX_NAME, json.dumps(data).encode())


def read_index(root: Path, key: SigningKey) -> dict[str, int] | None:
    """Each name's last generation (None: no index, a store from before v6); Refused if
    this server did not write it."""
    try:
        data = _read_json(root / INDEX_NAME)
    except FileNotFoundError:
        return None
    payload = _verified(key, INDEX_NAME, data, "names")
    if not isinstance(payload, dict):
        raise Refused("it does not hold a map of names")
    return {str(name): int(generation) for name, generation in payload.items()}


def index_or_refused(root: Path, key: SigningKey) -> dict[str, int] | None:
    """The stored index; one this server did not write counts as empty (logged): every
    name's capture stays off until set again."""
    try:
        return read_index(root, key)
    except Refused as error:
        logger.error("%s %s; every name's capture stays off until set again", INDEX_NAME, error)
        return {}


def read_all(
    directories: dict[str, Path], key: SigningKey, index: dict[str, int] | None
) -> tuple[dict[str, CaptureSetting], dict[str, str], dict[str, int]]:
    """Every name's setting that may be followed, the names whose setting is refused (why),
    and the index to keep (blocking), given the stored index (`index_or_refused`). A store
    from before v6 has no index and settings of generation 0: those are taken, once."""
    settings: dict[str, CaptureSetting] = {}
    refused: dict[str, str] = {}
    for name, directory in directories.items():
        try:
            found = read(directory, key, name)
        except Refused as error:
            refused[name] = f"{FILE_NAME} {error}"
            continue
        why = _refusal(found, None if index is None else index.get(name), index is None)
        if why is not None:
            refused[name] = why
        elif found is not None:
            settings[name] = found
    for name, why in refused.items():
        logger.error("model '%s': %s; capture is off until it is set again", name, why)
    kept = {name: found.generation for name, found in settings.items()}
    for name in refused:
        kept[name] = max((index or {}).get(name, 0), 1)
    return settings, refused, kept


def _refusal(found: CaptureSetting | None, expected: int | None, no_index: bool) -> str | None:
    """Why a name's setting must not be followed (None: it may)."""
    if found is None:
        return f"{FILE_NAME} is missing, and {INDEX_NAME} says it was set" if expected else None
    if no_index:  # a store from before v6, or an index deleted
        return None if found.generation == 0 else f"{FILE_NAME} is set, and {INDEX_NAME} is missing"
    if expected is None:
        return f"{FILE_NAME} is not in {INDEX_NAME} (left from an earlier life of the name?)"
    if found.generation < expected:
        return f"{FILE_NAME} is an older copy than the last one this server wrote"
    return None


def resign(root: Path, directories: dict[str, Path], old: SigningKey, new: SigningKey) -> list[str]:
    """Every capture setting and the index signed with the new key (`trust rotate`): what
    verifies with the old key (or the new one already) is written again as it is; a line
    per file for the operator (blocking)."""
    said = []
    with contextlib.suppress(FileNotFoundError, Refused):
        found = read_index(root, old)
        if found is not None:
            write_index(root, new, found)
            said.append(f"{INDEX_NAME}: re-signed")
    for name, directory in directories.items():
        try:
            setting = read(directory, old, name)
        except Refused:
            try:
                read(directory, new, name)
            except Refused as error:
                said.append(f"{name}/{FILE_NAME}: {error}; left as it is")
            continue
        if setting is not None:
            write(directory, new, name, setting)
            said.append(f"{name}/{FILE_NAME}: re-signed")
    return said
