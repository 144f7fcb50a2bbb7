"""Signed model files: the server loads only bytes that it wrote itself.

A model file is a pickle, and unpickling runs whatever the pickle says: whoever can write to
MODELS_PATH could otherwise run code in the server. So every file of a version carries an
HMAC-SHA256 tag made with a key that does not live in MODELS_PATH, and the tag is checked
on the bytes in memory before any of them is deserialised (the bytes checked are the bytes
read: nothing can change them in between).

The tags live in the version's metadata, under "signature":

    {"key_id": "3f9c...", "files": {"1.joblib": "<tag>", "1.onnx": "<tag>"}, "metadata": "<tag>"}

Each tag covers its file's path in the store (`churn/1.joblib`), so a signed file can't be
passed off as another name's or version's; the metadata's tag covers the rest of the
metadata. `key_id` names the key without revealing it, so that a file signed with another
key is told apart from a changed one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SIGNATURE = "signature"
TRUST_COMMAND = "python -m server.trust"


@dataclass(frozen=True, repr=False)  # repr=False: the secret never shows in a log or traceback
class SigningKey:
    secret: bytes

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(secrets.token_bytes(32))

    def __repr__(self) -> str:
        return f"SigningKey(id={self.key_id})"

    @property
    def key_id(self) -> str:
        """A fingerprint that names the key and reveals nothing of it."""
        return hmac.new(self.secret, b"model-server key id", hashlib.sha256).hexdigest()[:16]

    def tag(self, path: str, chunks: Iterable[bytes]) -> str:
        mac = hmac.new(self.secret, path.encode() + b"\0", hashlib.sha256)
        for chunk in chunks:
            mac.update(chunk)
        return mac.hexdigest()


def _canonical(metadata: dict[str, Any]) -> bytes:
    unsigned = {key: value for key, value in metadata.items() if key != SIGNATURE}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def sign(key: SigningKey, name: str, metadata: dict[str, Any], files: dict[str, bytes]) -> dict:
    """The metadata with its signature: a tag for each of `files` (file name -> bytes, as
    written) and one for the metadata itself."""
    signature = {
        "key_id": key.key_id,
        "files": {file: key.tag(f"{name}/{file}", [data]) for file, data in files.items()},
        "metadata": key.tag(f"{name}/metadata", [_canonical(metadata)]),
    }
    return {**metadata, SIGNATURE: signature}


def metadata_tag(metadata: dict[str, Any]) -> str:
    """The tag of a version's metadata: what identifies its files (a version removed and
    trained again under another number has another)."""
    return str(metadata[SIGNATURE]["metadata"])


def metadata_problem(key: SigningKey, name: str, metadata: dict[str, Any]) -> str | None:
    """Why this metadata is not trusted, or None if the server signed it with this key."""
    signature = metadata.get(SIGNATURE)
    if not isinstance(signature, dict) or not isinstance(signature.get("metadata"), str):
        return "it carries no signature (saved before v3, or not by this server)"
    if signature.get("key_id") != key.key_id:
        return (
            f"it was signed with another key (key id {signature.get('key_id')!s:.16}; this "
            f"server's is {key.key_id})"
        )
    expected = key.tag(f"{name}/metadata", [_canonical(metadata)])
    if not hmac.compare_digest(expected, signature["metadata"]):
        return "its metadata was changed after the server wrote it (the tag does not match)"
    return None


def file_problem(
    key: SigningKey, name: str, metadata: dict[str, Any], file: str, chunks: Iterable[bytes]
) -> str | None:
    """Why these bytes of `file` are not trusted, or None. The metadata must have been
    checked first (`metadata_problem`)."""
    tags = metadata[SIGNATURE].get("files")
    tag = tags.get(file) if isinstance(tags, dict) else None
    if not isinstance(tag, str):
        return f"{file} is not one of the files the server signed"
    if not hmac.compare_digest(key.tag(f"{name}/{file}", chunks), tag):
        return f"{file} was changed after the server wrote it (its tag does not match)"
    return None


def signed_file_names(metadata: dict[str, Any]) -> list[str]:
    """The files a checked metadata's signature covers."""
    files = metadata[SIGNATURE].get("files")
    if not isinstance(files, dict):
        return []
    return sorted(file for file in files if isinstance(file, str))


def untrusted_detail(name: str, version: int, problem: str) -> str:
    """What /load answers and listings show: why, and how to trust the files on purpose."""
    return (
        f"model '{name}' version {version} is untrusted: {problem}. Nothing in it was "
        f"deserialised. If you vouch for its files, sign them with the server's key: "
        f"{TRUST_COMMAND} sign {name}/{version}"
    )
