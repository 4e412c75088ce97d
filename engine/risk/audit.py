"""The risk audit log: every decision as one JSON line.

Records are buffered in memory as they are; `flush()` (the engine calls it when idle, and on close) hands the
batch to the log's own writer thread, which serializes and writes it, so the order path and the event loop
neither wait on the disk nor pay for the JSON. One thread writes, so lines stay in the order recorded.
Records carry order parameters and reasons only: never credentials, tokens or request headers.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import orjson

from engine.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class AuditLog:
    """Structured JSON lines to a file (appended, on the log's writer thread) or to any binary stream (written
    where `flush()` is called: the caller's stream, the caller's thread)."""

    def __init__(
        self,
        target: str | Path | IO[bytes] | None = None,
        *,
        max_buffered: int = 4096,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._now = clock.now  # each record's `ts`: wall time, Unix seconds
        self._own_stream = isinstance(target, (str, Path))
        if isinstance(target, (str, Path)):
            # opened where the log is made (the engine's start-up); written from then on by the writer
            self._stream: IO[bytes] | None = open(target, "ab")  # noqa: SIM115 (closed in close())
        else:
            self._stream = target
        self._writer: ThreadPoolExecutor | None = None  # started at the first write to a file
        self._buffer: list[dict[str, Any]] = []
        self._max_buffered = max_buffered
        self.records = 0

    def record(self, event: str, **fields: Any) -> None:
        fields["ts"] = self._now()
        fields["event"] = event
        self._buffer.append(fields)
        self.records += 1
        if len(self._buffer) >= self._max_buffered:  # bound memory if nobody flushes
            self.flush()

    def flush(self) -> None:
        """Hand the buffered records to be written (a file: by the writer thread, in order)."""
        stream = self._stream
        if not self._buffer or stream is None:
            self._buffer.clear()
            return
        batch, self._buffer = self._buffer, []
        if not self._own_stream:
            _write(stream, batch)
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="audit-writer")
        self._writer.submit(_write, stream, batch).add_done_callback(_report)

    def close(self) -> None:
        """Write what is buffered, wait for the writer, then sync and close the file (shutdown: the caller's
        thread waits for the disk)."""
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._own_stream and self._stream is not None:
            os.fsync(self._stream.fileno())
            self._stream.close()
        self._stream = None


def _write(stream: IO[bytes], batch: list[dict[str, Any]]) -> None:
    option = orjson.OPT_APPEND_NEWLINE
    stream.write(b"".join(orjson.dumps(fields, default=str, option=option) for fields in batch))
    stream.flush()


def _report(written: Future[None]) -> None:
    error = written.exception()
    if error is not None:
        log.error("writing the risk audit log failed: %r", error)
