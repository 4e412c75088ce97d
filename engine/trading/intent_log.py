"""The journal's write-ahead log for durability `os`: an intent durable in ~2 µs, with no system call.

Durability `os` promises that a record survives a killed process, which is exactly "the bytes reached the
kernel". A shared memory map of a file gives that without a system call: a record is in the page cache the
moment it is copied there, and the kernel writes it back even if the process dies the next instant. So the
order path appends its intent here, where an SQLite commit would cost a b-tree update and write(2)s, and the
journal copies the log into SQLite in its next batched transaction, off the order path, then rewinds the log.
Opening the journal replays whatever a killed process left behind. (A lost machine can lose the page cache:
that is durability `fsync`, which commits to SQLite directly and keeps no log.)

Layout: a header (magic, epoch), then records `<u32 length, u32 epoch, u32 crc32, u8 kind, payload>`, payload
a JSON array. Rewinding bumps the epoch instead of clearing the file, so a record counts only if it carries
the file's epoch and its checksum matches: replay stops at the first that does not, be it a record torn by a
kill mid-copy (whose request therefore never left) or the remains of an older epoch.
"""

from __future__ import annotations

import enum
import mmap
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from engine.errors import ConfigError

__all__ = ["DEFAULT_CAPACITY", "IntentLog", "RecordKind"]

DEFAULT_CAPACITY: Final = 1 << 20  # ~3,000 orders between two flushes; the engine flushes every 5 ms

_MAGIC: Final = b"ENGINTL1"
_FILE_HEADER = struct.Struct("<8sI4x")  # magic, epoch
_RECORD_HEADER = struct.Struct("<IIIB")  # payload length, epoch, crc32 of (kind, payload), kind


class RecordKind(enum.IntEnum):
    INTENT = 1
    OUTCOME = 2
    FILL = 3


class IntentLog:
    """An append-only log in a shared memory map. Not thread-safe: one writer, the journal's."""

    def __init__(self, path: str | Path, capacity: int = DEFAULT_CAPACITY) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                # Blocks allocated up front: a first write to a page never waits for the filesystem. (Where it
                # cannot allocate ahead, a sparse file works the same, a little slower on first writes.)
                try:
                    os.posix_fallocate(fd, 0, capacity)
                except OSError:
                    os.ftruncate(fd, capacity)
                size = capacity
            elif size < _FILE_HEADER.size + _RECORD_HEADER.size:
                raise ConfigError(f"intent log {self.path} is truncated ({size} bytes)")
            # MAP_POPULATE: page tables are filled now, not by a fault on the order path.
            self._map = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
        finally:
            os.close(fd)
        magic, epoch = _FILE_HEADER.unpack_from(self._map, 0)
        if magic == b"\0" * len(_MAGIC):  # a new file
            epoch = 1
            _FILE_HEADER.pack_into(self._map, 0, _MAGIC, epoch)
        elif magic != _MAGIC:
            self._map.close()
            raise ConfigError(f"{self.path} is not an intent log (remove it only if no journal needs it)")
        self._epoch: int = epoch
        self._end = _FILE_HEADER.size
        self.capacity = size
        self.records = 0  # appended since the last rewind

    def append(self, kind: RecordKind, fields: Sequence[Any]) -> bool:
        """Append one record; False when the log is full (flush the journal, which rewinds it, and retry)."""
        payload = orjson.dumps(fields)
        start = self._end
        body = start + _RECORD_HEADER.size
        end = body + len(payload)
        if end > self.capacity:
            if start == _FILE_HEADER.size:
                raise ValueError(f"a journal record of {len(payload)} bytes does not fit the intent log")
            return False
        self._map[body:end] = payload
        _RECORD_HEADER.pack_into(self._map, start, len(payload), self._epoch, zlib.crc32(payload, kind), kind)
        self._end = end
        self.records += 1
        return True

    def replay(self) -> list[tuple[RecordKind, list[Any]]]:
        """The records of the current epoch, oldest first, up to the first torn or stale one."""
        found: list[tuple[RecordKind, list[Any]]] = []
        view = self._map
        position = _FILE_HEADER.size
        while position + _RECORD_HEADER.size <= self.capacity:
            length, epoch, crc, kind = _RECORD_HEADER.unpack_from(view, position)
            body = position + _RECORD_HEADER.size
            end = body + length
            if epoch != self._epoch or length == 0 or end > self.capacity or kind not in _KINDS:
                break
            payload = view[body:end]
            if zlib.crc32(payload, kind) != crc:
                break
            found.append((RecordKind(kind), orjson.loads(payload)))
            position = end
        self._end = position
        self.records = len(found)
        return found

    def rewind(self) -> None:
        """Forget every record (they are in SQLite now): the next epoch starts at the top of the file."""
        self._epoch = (self._epoch % 0xFFFFFFFF) + 1
        _FILE_HEADER.pack_into(self._map, 0, _MAGIC, self._epoch)
        self._end = _FILE_HEADER.size
        self.records = 0

    def sync(self) -> None:
        """Write the log to the disk (for a caller that wants it to survive a lost machine now)."""
        self._map.flush()

    def close(self) -> None:
        if not self._map.closed:
            self._map.close()

    @property
    def used(self) -> int:
        """Bytes of records since the last rewind."""
        return self._end - _FILE_HEADER.size


_KINDS: Final = frozenset(int(kind) for kind in RecordKind)
