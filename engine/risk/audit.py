"""The risk audit log: every decision as one JSON line.

Records are buffered in memory as they are, then serialized and written by `flush()` (the engine calls it
when idle and on close), so the order path neither waits on the disk nor pays for the JSON. Records carry
order parameters and reasons only: never credentials, tokens or request headers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Any

import orjson


class AuditLog:
    """Structured JSON lines to a file (appended) or to any binary stream."""

    def __init__(self, target: str | Path | IO[bytes] | None = None, *, max_buffered: int = 4096) -> None:
        self._own_stream = isinstance(target, (str, Path))
        if isinstance(target, (str, Path)):
            self._stream: IO[bytes] | None = open(target, "ab")  # noqa: SIM115 (closed in close())
        else:
            self._stream = target
        self._buffer: list[dict[str, Any]] = []
        self._max_buffered = max_buffered
        self.records = 0

    def record(self, event: str, **fields: Any) -> None:
        fields["ts"] = time.time()
        fields["event"] = event
        self._buffer.append(fields)
        self.records += 1
        if len(self._buffer) >= self._max_buffered:  # bound memory if nobody flushes
            self.flush()

    def flush(self) -> None:
        if not self._buffer or self._stream is None:
            self._buffer.clear()
            return
        option = orjson.OPT_APPEND_NEWLINE
        self._stream.write(
            b"".join(orjson.dumps(fields, default=str, option=option) for fields in self._buffer)
        )
        self._buffer.clear()
        self._stream.flush()

    def close(self) -> None:
        self.flush()
        if self._own_stream and self._stream is not None:
            os.fsync(self._stream.fileno())
            self._stream.close()
        self._stream = None
