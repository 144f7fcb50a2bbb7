"""Room kept for the drop counts: a file of RESERVE_BYTES in the writer's folder, given up
when the disk is full so that the counts of what could not be written are still written
(and survive a restart). While it can't be made again, no rows are written: the room it
frees goes to the counts alone."""

from __future__ import annotations

import errno
import os
from pathlib import Path

RESERVE_BYTES = 1 << 20
FILE_NAME = ".reserve"


class Reserve:
    def __init__(self, folder: Path, size: int = RESERVE_BYTES) -> None:
        self.path, self.size = folder / FILE_NAME, size

    def ensure(self) -> bool:
        """Whether the room is kept (made now if it was given up)."""
        try:
            if self.path.stat().st_size == self.size:
                return True
        except FileNotFoundError:
            pass
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as file:
                file.write(bytes(self.size))  # written, not sparse: the blocks are taken
                file.flush()
                os.fsync(file.fileno())
        except OSError:
            self.path.unlink(missing_ok=True)
            return False
        return True

    def release(self) -> bool:
        """Give the room up; whether there was any to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def is_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
