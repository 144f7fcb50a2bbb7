"""Files written so that a crash leaves the old one or the new one, never a part of either."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEMP_SUFFIX = ".tmp"


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write into a temporary file beside `path` (a dot name, which no model name has), fsync
    it, rename it over `path`, and fsync the directory so that the rename itself lasts."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    write_atomically(path, lambda file: file.write(data))
