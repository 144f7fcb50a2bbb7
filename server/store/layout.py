"""Where a model's files are under MODELS_PATH, and which names are allowed (see
server.store.files for the layout)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import IO

from server.errors import InvalidInput
from server.store.signing import SIGNATURE

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_SUFFIX = ".joblib"
ONNX_SUFFIX = ".onnx"
METADATA_SUFFIX = ".json"
VERSION_FILE_SUFFIXES = (MODEL_SUFFIX, ONNX_SUFFIX, METADATA_SUFFIX)
# Kept in the metadata file, never answered: the tags, and what serving needs of the check
# that the fit ran (server.inference.compiled.choice).
INTERNAL_KEYS = (SIGNATURE, "serving", "preparation", "profile")
POINTERS = "pointers.json"
REMOVING_SUFFIX = ".removing"


def check_name(name: str) -> str:
    """Refuse any name that could escape the directory or clash with our own files."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"invalid model name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def version_of(path: Path, suffix: str) -> int | None:
    stem = path.name[: -len(suffix)] if path.name.endswith(suffix) else ""
    return int(stem) if stem.isdigit() and not stem.startswith("0") else None


def read_regular(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, never following a link: a FIFO, a device or a link put
    into the store is refused (OSError) without blocking on it, and so is a file larger
    than `max_bytes`, unread."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if max_bytes is not None and status.st_size > max_bytes:
            raise OSError(f"{path.name} is {status.st_size} bytes, more than {max_bytes}")
        return file.read() if max_bytes is None else file.read(max_bytes + 1)


def open_regular(path: Path) -> IO[bytes]:
    """The same, as an open file to read in chunks."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    file = os.fdopen(descriptor, "rb")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        file.close()
        raise OSError(f"{path.name} is not a regular file")
    return file


def entry_problem(path: Path) -> str | None:
    """Why a folder under MODELS_PATH can't be a model's, or None: a link (it could lead
    anywhere), or a pointers file that is not a regular file."""
    if path.is_symlink():
        return f"{path.name} is a symbolic link, which the store never follows"
    pointers = path / POINTERS
    if pointers.is_symlink() or (pointers.exists() and not pointers.is_file()):
        return f"its {POINTERS} is not a regular file"
    return None


def entries(root: Path) -> dict[str, str | None]:
    """Every folder (or link) under `root` that looks like a model's, by name: None if it can
    be one, else why not (`entry_problem`)."""
    found: dict[str, str | None] = {}
    for entry in root.iterdir():
        if NAME_PATTERN.fullmatch(entry.name) and (
            entry.is_symlink() or os.path.lexists(entry / POINTERS)
        ):
            found[entry.name] = entry_problem(entry)
    return found
