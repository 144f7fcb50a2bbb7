"""FileChecks: the tag checks of a version's files (server.store.signing), where they happen.

A file about to be deserialised is read whole and its tag checked on those very bytes, so
nothing can change them in between. A listing checks the files on disk, and remembers each
verdict until the file's inode, size or times change: a listing of a hundred models must
not hash gigabytes every time (and ctime can't be set back by hand).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from server.errors import BrokenModel, UntrustedModel
from server.store.layout import open_regular, read_regular
from server.store.signing import SIGNATURE, SigningKey, file_problem, untrusted_detail

CHUNK_BYTES = 1 << 20


class FileChecks:
    def __init__(self, key: SigningKey) -> None:
        self._key = key
        # Path -> (its inode, size and times, the verdict on its tag)
        self._verdicts: dict[Path, tuple[tuple[Any, ...], str | None]] = {}

    def read(self, name: str, version: int, metadata: dict[str, Any], path: Path) -> bytes:
        """The file's bytes, once their tag is checked (raises UntrustedModel)."""
        try:
            data = read_regular(path)
        except FileNotFoundError:
            raise BrokenModel(f"model '{name}' has lost its file {path.name}") from None
        except OSError as error:
            raise BrokenModel(f"model '{name}' can't read {path.name}: {error}") from None
        problem = file_problem(self._key, name, metadata, path.name, [data])
        if problem is not None:
            raise UntrustedModel(untrusted_detail(name, version, problem))
        return data

    def on_disk(self, name: str, metadata: dict[str, Any], paths: list[Path]) -> str | None:
        """Why one of these files is not trusted, or None (raises BrokenModel if one is
        missing)."""
        for path in paths:
            try:
                status = path.lstat()
            except FileNotFoundError:
                raise BrokenModel(f"model '{name}' has lost its file {path.name}") from None
            if not stat.S_ISREG(status.st_mode):
                raise BrokenModel(f"model '{name}': {path.name} is not a regular file")
            tag = metadata[SIGNATURE]["files"].get(path.name)  # a re-signed file: a new verdict
            stamp = (tag, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
            known = self._verdicts.get(path)
            if known is None or known[0] != stamp:
                known = (stamp, self._problem(name, metadata, path))
                self._verdicts[path] = known
            if known[1] is not None:
                return known[1]
        return None

    def _problem(self, name: str, metadata: dict[str, Any], path: Path) -> str | None:
        with open_regular(path) as file:
            chunks = iter(lambda: file.read(CHUNK_BYTES), b"")
            return file_problem(self._key, name, metadata, path.name, chunks)
