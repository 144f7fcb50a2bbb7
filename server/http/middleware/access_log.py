"""The access log: a line per answered request, written by a thread of its own.

Writing a log line on the event loop (a log record, its formatting, a write to stderr) cost
a good share of a 1-row prediction's CPU (see docs/performance-history.md, Figures behind the
code). The loop now only puts the request's fields on a queue; the thread
turns them into records of the `server.access` logger, in the order they came, so handlers
and formats configured on that logger work as before. Lines appear a moment after their
answers, and every line queued before shutdown is written.

The server's own handler (`BatchedLines`) writes a batch's lines to stderr in one write:
a write and a flush per line was most of the thread's time, and the thread's time is the
server's CPU.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from queue import SimpleQueue
from typing import Literal

access_logger = logging.getLogger("server.access")
Style = Literal["text", "json"]
Entry = tuple[str, str, int, float, str | None]
# Lines wait at most this long: the price of writing them in batches.
BATCH_SECONDS = 0.05


class BatchedLines(logging.StreamHandler):
    """A stream handler that keeps formatted lines until `flush`, then writes them at once,
    so no other thread's line lands inside one. The access log's thread flushes it after
    each batch."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(line + self.terminator)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._lines = self._lines, []
            if lines:
                self.stream.write("".join(lines))
            super().flush()


class AccessLog:
    def __init__(self, style: Style) -> None:
        self.style = style
        self._queue: SimpleQueue[Entry | None] = SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(
        self, method: str, route: str, status: int, seconds: float, request_id: str | None = None
    ) -> None:
        if self._writer is None:
            self._start()
        self._queue.put((method, route, status, seconds, request_id))

    def close(self, timeout: float = 5.0) -> None:
        """Write every line queued so far, then stop the thread."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_lines, name="access-log", daemon=True
                )
                self._writer.start()

    def _write_lines(self) -> None:
        # Woken by the first line, then a pause: the lines of many requests are written in
        # one go, and the loop's queue puts find no waiting thread to wake.
        while True:
            entries = [self._queue.get()]
            time.sleep(BATCH_SECONDS)
            while not self._queue.empty():
                entries.append(self._queue.get())
            try:
                for entry in entries:
                    if entry is None:
                        return
                    self._write_line(*entry)
            finally:
                for handler in access_logger.handlers:
                    handler.flush()

    def _write_line(
        self, method: str, route: str, status: int, seconds: float, request_id: str | None
    ) -> None:
        milliseconds = round(seconds * 1000, 2)
        if self.style == "json":
            line: dict[str, object] = {
                "method": method, "route": route, "status": status, "ms": milliseconds
            }  # fmt: skip
            if request_id is not None:
                line["request_id"] = request_id
            access_logger.info(json.dumps(line))
        elif request_id is not None:
            access_logger.info(
                "%s %s %d %.2f ms %s", method, route, status, milliseconds, request_id
            )
        else:
            access_logger.info("%s %s %d %.2f ms", method, route, status, milliseconds)
